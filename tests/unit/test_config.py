"""Config parsing: presets, typed overrides, errors naming the key."""

import dataclasses
import json
from typing import Literal

import pytest

from toolkit.training import config as config_lib
from toolkit.training.config import (
    ConfigError,
    from_dict,
    from_json,
    parse_config,
    parse_overrides,
    require,
    to_json,
)


@dataclasses.dataclass(frozen=True)
class Example:
    units: int = 8
    rate: float = 0.5
    name: str = "a"
    flag: bool = False
    cell: Literal["lstm", "vanilla"] = "lstm"
    sizes: tuple[int, ...] = (1, 2)
    path: str | None = None

    def validate(self):
        require(self.units > 0, "units", "a positive integer", self.units)


PRESETS = {"default": Example(), "small": Example(units=2)}


def test_overrides_of_every_type():
    config = parse_overrides(
        Example(),
        [
            "--units=16",
            "--rate",
            "0.25",
            "--name=b",
            "--flag",
            "--cell=vanilla",
            "--sizes=3,4,5",
            "--path=/tmp/x",
        ],
    )
    assert config == Example(
        16, 0.25, "b", True, "vanilla", (3, 4, 5), "/tmp/x"
    )
    assert parse_overrides(Example(flag=True), ["--no-flag"]).flag is False
    assert parse_overrides(Example(path="p"), ["--path=none"]).path is None
    assert parse_overrides(Example(), ["--flag=false"]).flag is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--unit=3"], "Unknown option `--unit`. Did you mean `--units`?"),
        (["--units=x"], "`--units` expects int, got 'x'"),
        (["--rate=fast"], "`--rate` expects float, got 'fast'"),
        (["--flag=maybe"], "`--flag` expects true or false"),
        (["--cell=gru"], "`--cell` must be one of ['lstm', 'vanilla']"),
        (["--units"], "`--units` needs a value"),
        (["units=3"], "Unexpected argument 'units=3'"),
    ],
)
def test_bad_overrides_name_the_key(argv, message):
    with pytest.raises(ConfigError) as error:
        parse_overrides(Example(), argv)
    assert message in str(error.value)


def test_presets_and_validation():
    assert parse_config(PRESETS, [])[1] == Example()
    name, config = parse_config(PRESETS, ["--preset", "small", "--rate=1"])
    assert name == "small" and config.units == 2 and config.rate == 1.0
    with pytest.raises(ConfigError, match="Unknown preset 'big'"):
        parse_config(PRESETS, ["--preset=big"])
    with pytest.raises(ConfigError, match="`--units` must be a positive"):
        parse_config(PRESETS, ["--units=0"])


def test_json_round_trip_and_unknown_saved_keys():
    config = Example(units=3, sizes=(7,))
    assert from_json(Example, to_json(config)) == config
    with pytest.raises(ConfigError, match=r"\['extra'\]"):
        from_json(Example, '{"units": 1, "extra": 2}')


@pytest.mark.parametrize(
    "module", ["imdb_sentiment", "char_lm", "gradient_flow"]
)
def test_every_recipe_option_is_documented_in_help(module):
    import importlib

    configs = importlib.import_module(f"recipes.configs.{module}")
    config_class = type(next(iter(configs.PRESETS.values())))
    # Every field is documented, the nested configs' ones too.
    for dataclass in [
        value
        for value in vars(configs).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value)
    ]:
        docs = config_lib.field_docs(dataclass)
        fields = [field.name for field in dataclasses.fields(dataclass)]
        assert [name for name in fields if not docs.get(name)] == []
    text = config_lib.describe(config_class)
    for key in config_lib.flat_values(config_class()):
        assert f"--{key.replace('_', '-')}  (" in text
    cells = "lstm, vanilla, layernorm, peephole, projection"
    assert f"(one of {cells}, default 'lstm')" in text or (
        module == "gradient_flow"
    )


@pytest.mark.parametrize("module", ["imdb_sentiment", "char_lm"])
def test_recipes_take_the_lstm_variants_by_name(module):
    import importlib

    presets = importlib.import_module(f"recipes.configs.{module}").PRESETS
    preset = f"--preset={next(iter(presets))}"
    for cell in ("layernorm", "peephole"):
        _, config = parse_config(presets, [preset, f"--cell={cell}"])
        assert config.encoder_spec(50).cell == cell
    with pytest.raises(ConfigError, match="`--proj-size`"):
        parse_config(presets, [preset, "--cell=projection"])
    with pytest.raises(ConfigError, match="`--proj-size`"):
        parse_config(presets, [preset, "--proj-size=16"])  # without the cell
    _, config = parse_config(
        presets, [preset, "--cell=projection", "--proj-size=16"]
    )
    spec = config.encoder_spec(50)
    assert (spec.cell, spec.proj_size) == ("projection", 16)
    stack = spec.deep_rnn()
    cells = [
        getattr(layer, "forward_layer", layer).cell
        for layer in stack.rnn_layers
    ]
    assert {cell.proj_size for cell in cells} == {16}


@dataclasses.dataclass(frozen=True)
class Phase:
    epochs: int = 2  # passes
    rate: float = 0.1  # peak rate


@dataclasses.dataclass(frozen=True)
class Outer:
    LEGACY_KEYS = {"phase_epochs": "phase.epochs"}

    epochs: int = 5  # passes of the main phase
    phase: Phase = Phase()  # the first phase


def test_nested_configs_take_dotted_options_and_keep_their_neighbours():
    config = parse_overrides(Outer(), ["--phase.epochs=7", "--epochs", "3"])
    assert config == Outer(epochs=3, phase=Phase(epochs=7, rate=0.1))
    assert from_json(Outer, to_json(config)) == config
    text = config_lib.describe(Outer)
    assert "--phase.epochs  (int, default 2)" in text
    assert "passes" in text.split("--phase.epochs", 1)[1]
    with pytest.raises(ConfigError, match=r"Did you mean `--phase.epochs`"):
        parse_overrides(Outer(), ["--phase.epoch=1"])
    with pytest.raises(ConfigError, match=r"`--phase.epochs` expects int"):
        parse_overrides(Outer(), ["--phase.epochs=many"])


def test_a_config_saved_before_a_setting_moved_still_loads():
    assert from_dict(Outer, {"epochs": 1, "phase_epochs": 4}) == Outer(
        epochs=1, phase=Phase(epochs=4)
    )


@pytest.mark.parametrize(
    "module", ["imdb_sentiment", "char_lm", "gradient_flow"]
)
def test_every_value_a_preset_uses_is_accepted_on_the_command_line(module):
    """A preset's text values (pooling, cell, schedule, ...) can all be
    given as `--key=value` to the recipe's default config."""
    import importlib

    presets = importlib.import_module(f"recipes.configs.{module}").PRESETS
    base = next(iter(presets.values()))
    for name, preset in presets.items():
        for key, value in config_lib.flat_values(preset).items():
            if isinstance(value, str) and key not in ("run_dir", "corpus"):
                option = f"--{key.replace('_', '-')}={value}"
                parsed = parse_overrides(base, [option])
                assert config_lib.flat_values(parsed)[key] == value, (
                    name,
                    option,
                )


def test_the_imdb_options_earlier_name_still_works():
    """`--dataset` was renamed `--imdb-path` (what it takes): the old
    option and config.json files that use the old key still work."""
    from recipes.configs.imdb_sentiment import PRESETS, ImdbConfig
    from toolkit.training import config as config_lib

    _, config = config_lib.parse_config(PRESETS, ["--dataset=/d/a.tar.gz"])
    assert config.imdb_path == "/d/a.tar.gz"
    _, config = config_lib.parse_config(PRESETS, ["--imdb-path=/d/aclImdb"])
    assert config.imdb_path == "/d/aclImdb"
    saved = json.loads(config_lib.to_json(ImdbConfig()))
    saved["dataset"] = saved.pop("imdb_path")
    saved["dataset"] = "/old/aclImdb_v1.tar.gz"
    restored = config_lib.from_dict(ImdbConfig, saved)
    assert restored.imdb_path == "/old/aclImdb_v1.tar.gz"
