"""Every notebook in notebooks/ runs top to bottom (its own cells assert
the results it describes)."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted(
    (pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb")
)


def test_there_is_a_notebook():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(path):
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    # `execute` raises on the first cell that fails; every cell ran.
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(cell.execution_count for cell in code_cells)
