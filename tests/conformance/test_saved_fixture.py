"""Models and configs written by toolkit 0.1 (the flat-package layout) still
load: `tests/fixtures/` holds what that version saved."""

import json
import pathlib

import keras
import numpy as np

import toolkit
from toolkit.pooling import MaskedGlobalPooling1D
from toolkit.text.models import ReverseTokens

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


def test_keras_file_saved_by_0_1_loads_and_gives_the_same_outputs():
    saved = np.load(FIXTURES / "saved_by_0_1.npz")
    model = keras.saving.load_model(FIXTURES / "saved_by_0_1.keras")
    layer_types = {type(layer) for layer in model.layers}
    assert {
        toolkit.DeepRNN,
        toolkit.VanillaRNN,
        toolkit.LSTM,
        MaskedGlobalPooling1D,
        ReverseTokens,
    } <= layer_types
    cells = model.get_layer("cells").cell.cells
    assert [type(cell) for cell in cells] == [
        toolkit.LSTMCell,
        toolkit.VanillaRNNCell,
    ]
    # The optimizer came back with its state (one step per batch, 2 batches).
    assert type(model.optimizer).__module__ == "toolkit.optimizers"
    assert int(model.optimizer.iterations.numpy()) == 2
    np.testing.assert_allclose(
        model.predict(saved["x"], verbose=0), saved["y"], rtol=0, atol=1e-6
    )


def test_every_0_1_preset_resolves_to_the_same_settings():
    from recipes.configs import char_lm, gradient_flow, imdb_sentiment
    from toolkit.training import config as config_lib

    saved = json.loads((FIXTURES / "presets_0_1.json").read_text())
    for module in (imdb_sentiment, char_lm, gradient_flow):
        recipe = module.__name__.rsplit(".", 1)[1]
        # Every 0.1 preset is still there, with the same settings; presets
        # added since are new names.
        assert set(saved[recipe]) <= set(module.PRESETS), recipe
        for name, settings in saved[recipe].items():
            preset = module.PRESETS[name]
            loaded = config_lib.from_dict(type(preset), settings)
            assert loaded == preset, (recipe, name)


def test_a_run_folder_written_by_0_1_is_taken_as_the_same_run(tmp_path):
    """`config.json` of an IMDB smoke run made by toolkit 0.1 (flat `lm_*`
    keys; its machine's data and run paths put back to the preset's)
    matches today's smoke preset, so the run resumes; another setting is
    still refused."""
    import dataclasses

    from recipes.configs.imdb_sentiment import PRESETS
    from toolkit.training import config as config_lib

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    saved = (FIXTURES / "imdb_smoke_config_0_1.json").read_text()
    assert '"lm_epochs": 1' in saved
    (run_dir / "config.json").write_text(saved)
    smoke = PRESETS["smoke"]
    config_lib.prepare_run_dir(smoke, run_dir, write=False)
    changed = dataclasses.replace(
        smoke, lm=dataclasses.replace(smoke.lm, epochs=2)
    )
    try:
        config_lib.prepare_run_dir(changed, run_dir, write=False)
    except config_lib.ConfigError as error:
        assert "lm.epochs: 1 -> 2" in str(error)
    else:
        raise AssertionError("a changed LM phase was taken as the same run")
