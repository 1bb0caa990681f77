"""Every notebook in notebooks/ runs top to bottom (its own cells assert
the results it describes), on the real data when `$TOOLKIT_DATA_DIR` has
it and on small generated files otherwise."""

import importlib.util
import os
import pathlib

import pytest

from data_fixtures import play_text, synthetic_imdb, write_imdb_archive
from toolkit.data.imdb import IMDB_CANDIDATES
from toolkit.data.shakespeare import SHAKESPEARE_CANDIDATES

FOLDER = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
USES = {  # one notebook per use; each must exist
    "layers_in_your_model.ipynb",
    "imdb_sentiment.ipynb",
    "char_lm.ipynb",
    "gradient_flow.ipynb",
}


def load_executor():
    """`notebooks/execute.py`, the script that commits the outputs."""
    spec = importlib.util.spec_from_file_location(
        "execute", FOLDER / "execute.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """`$TOOLKIT_DATA_DIR` where it holds IMDB and Tiny Shakespeare, else a
    folder with a generated archive and play in their places."""
    real = os.environ.get("TOOLKIT_DATA_DIR")
    if real:
        root = pathlib.Path(real)
        has = [
            any((root / name).exists() for name in names)
            for names in (IMDB_CANDIDATES, SHAKESPEARE_CANDIDATES)
        ]
        if all(has):
            return root
    root = tmp_path_factory.mktemp("data")
    write_imdb_archive(root / IMDB_CANDIDATES[1], synthetic_imdb())
    play = root / SHAKESPEARE_CANDIDATES[0]
    play.parent.mkdir(parents=True)
    # The character-LM notebook primes with "ROMEO:", so the play has him.
    play.write_text(play_text(lines=2000) + "\nROMEO:\nGood my lord!\n")
    return root


def test_there_is_a_notebook_per_use():
    assert {path.name for path in NOTEBOOKS} >= USES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path, data_dir, monkeypatch):
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(data_dir))
    notebook = load_executor().execute(path)
    # `execute` raises on the first cell that fails; every cell ran.
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
