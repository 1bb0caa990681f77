"""Execute notebooks in place, keeping their outputs (plots included) so
that they render on a code host; what the tests run without saving.

    python notebooks/execute.py                      # every notebook here
    python notebooks/execute.py notebooks/imdb_sentiment.ipynb

The IMDB and character-LM notebooks read `$TOOLKIT_DATA_DIR` (default
../shared/data); commit outputs made from the real data. The saved outputs
leave out the lines that TensorFlow's C++ runtime writes to stderr as it
starts (absl's pre-initialisation notice, CUDA probing on a machine without
a GPU): they say nothing about the notebook and differ between machines.
"""

from __future__ import annotations

import pathlib
import re
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
RUNTIME_CHATTER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\).*"
    r"|[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\] .*)$"
)


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


def without_runtime_chatter(notebook: nbformat.NotebookNode) -> None:
    """Drop TensorFlow's native start-up lines from stderr outputs."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                text = "".join(
                    line
                    for line in lines
                    if not RUNTIME_CHATTER.match(line.rstrip("\n"))
                )
                if not text.strip():
                    continue
                output["text"] = text
            kept.append(output)
        if cell.cell_type == "code":
            cell["outputs"] = kept


def main(argv: list[str]) -> int:
    paths = [pathlib.Path(a) for a in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        start = time.perf_counter()
        notebook = execute(path)
        without_runtime_chatter(notebook)
        nbformat.write(notebook, path)
        print(f"{path}: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
