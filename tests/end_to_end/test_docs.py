"""Every Python block in README.md and docs/*.md runs, so the
documentation cannot drift from the code.

A page's blocks run in order in one fresh process (a later block may use
what an earlier one defined), from a temporary folder; the loaders find
the real datasets through `$TOOLKIT_DATA_DIR`, as a user's would.
Markers in HTML comments, invisible on a rendered page, sit on the line
right before a block:

- `<!-- docs-test: skip: REASON -->` leaves the block out, for a reason
  that the test reports (a trained run folder, a GPU);
- `<!-- docs-test: setup: CODE -->` runs CODE (any number of lines)
  first: the names a block assumes, e.g. a small `model` or an export in
  the place the block reads from;
- `<!-- docs-test: needs-data -->` runs the block only where
  `$TOOLKIT_DATA_DIR` holds the real datasets (it loads them whole).
"""

import json
import os
import pathlib
import re

import pytest

from helpers import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?:<!-- docs-test: (?P<marker>(?:(?!-->).)*?)\s*-->\n)?"
    r"```python\n(?P<code>.*?)```",
    re.S,
)
REAL_DATA = pathlib.Path(os.environ.get("TOOLKIT_DATA_DIR", "/nonexistent"))
TEXT8_REASON = (
    "text8 (100M characters) cannot be had on these machines; its loader "
    "is tested on generated text8-format files"
)
HAS_REAL_DATA = (REAL_DATA / "imdb").exists() and (
    REAL_DATA / "tinyshakespeare"
).exists()


def blocks(page: pathlib.Path) -> list[dict]:
    """The page's Python blocks: code, and its marker (kind, text)."""
    found = []
    for match in BLOCK.finditer(page.read_text()):
        marker = match.group("marker") or ""
        kind, _, text = marker.partition(":")
        found.append(
            {"code": match.group("code"), "kind": kind.strip(), "text": text}
        )
    return found


def test_markers_are_known_and_every_skip_gives_its_reason():
    skipped = {}
    for page in PAGES:
        for block in blocks(page):
            assert block["kind"] in ("", "skip", "setup", "needs-data"), block
            if block["kind"] == "skip":
                reason = block["text"].strip()
                assert len(reason) > 10, f"{page.name}: a skip needs a reason"
                skipped.setdefault(page.name, []).append(reason)
    # The blocks left out, named here so that a new one is a decision.
    assert skipped == {"data.md": [TEXT8_REASON]}
    kinds = [block["kind"] for page in PAGES for block in blocks(page)]
    assert kinds.count("setup") == 4 and kinds.count("needs-data") == 1


def page_script(page: pathlib.Path, with_data: bool) -> str:
    """One script that runs the page's blocks in order; the `needs-data`
    ones only `with_data`."""
    parts = ["import os", "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')"]
    for number, block in enumerate(blocks(page), start=1):
        if block["kind"] == "skip":
            continue
        if block["kind"] == "needs-data" and not with_data:
            continue
        if block["kind"] == "setup":
            parts.append(block["text"].strip())
        parts.append(f"print('block {number}')\n{block['code']}")
    parts.append("print('ALL BLOCKS RAN')")
    return "\n".join(parts)


RUNNABLE = [
    page
    for page in PAGES
    if any(block["kind"] != "skip" for block in blocks(page))
]


NEEDS_DATA = [
    page
    for page in PAGES
    if any(block["kind"] == "needs-data" for block in blocks(page))
]


def run_page(page, with_data, tmp_path, monkeypatch):
    script = tmp_path / "page.py"
    script.write_text(page_script(page, with_data))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    if with_data:
        monkeypatch.setenv("TOOLKIT_DATA_DIR", str(REAL_DATA))
    result = run_python(str(script), timeout=600)
    assert result.returncode == 0, (
        json.dumps(page.name)
        + "\n"
        + result.stdout[-2000:]
        + result.stderr[-3000:]
    )
    assert result.stdout.strip().endswith("ALL BLOCKS RAN")


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda page: page.name)
def test_page_blocks_run(page, tmp_path, monkeypatch):
    """Every block but the `needs-data` ones, on any machine."""
    run_page(page, False, tmp_path, monkeypatch)


@pytest.mark.parametrize("page", NEEDS_DATA, ids=lambda page: page.name)
def test_page_blocks_run_on_the_real_datasets(page, tmp_path, monkeypatch):
    """The whole page, `needs-data` blocks included: a visible skip where
    `$TOOLKIT_DATA_DIR` does not hold the real datasets."""
    if not HAS_REAL_DATA:
        pytest.skip(
            f"{page.name} has blocks that load the real datasets; set "
            "TOOLKIT_DATA_DIR to a folder with imdb/ and tinyshakespeare/"
        )
    run_page(page, True, tmp_path, monkeypatch)
