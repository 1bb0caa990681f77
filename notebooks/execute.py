"""Execute notebooks in place, keeping their outputs (plots included) so
that they render on a code host; what the tests run without saving.

    python notebooks/execute.py                      # every notebook here
    python notebooks/execute.py notebooks/imdb_sentiment.ipynb

The IMDB and character-LM notebooks read `$TOOLKIT_DATA_DIR` (default
../shared/data); commit outputs made from the real data.
"""

from __future__ import annotations

import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent


def execute(path: pathlib.Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run `path` top to bottom in a fresh kernel started in its folder;
    raises on the first failing cell. Returns the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return notebook


def main(argv: list[str]) -> int:
    paths = [pathlib.Path(a) for a in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        start = time.perf_counter()
        nbformat.write(execute(path), path)
        print(f"{path}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
