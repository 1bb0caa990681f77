"""Every measured number in README.md and docs/*.md is held by a results
file, so a reader can tell which run produced it.

A page names the files behind its numbers in HTML comments, invisible on
the rendered page: `<!-- results: docs/results/serving.json
docs/imdb_pretrained/metrics*.json -->` (paths from the repository root,
globs allowed, any number of comments). Results files are JSON (numbers at
any depth), CSV or plain-text logs (every number in them).

A measured number is, outside code (but in a code block's `#` comments
and in `text` blocks, which show a command's output), link targets and
HTML comments:
- a decimal (`88.67`, `1.35x`, `6.6 ms`, `1.03e-10`), or
- an integer with a unit (`24 min`, `130 s`, `12 MB`, `7x`, `90%`), or
- an integer written with thousands separators (`183,409`).
It is held by a file when a value there rounds to it at the precision
shown, directly or in the page's unit (a fraction as a percentage, seconds
as minutes or hours, seconds as milliseconds, a count in millions for `M`).
A setting is held by the file that sets it: a page that quotes a preset's
`130 s` cap names `recipes/configs/char_lm.py`. Numbers of other projects
are in `docs/results/published.json`, each with its citation.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PUBLISHED = ROOT / "docs" / "results" / "published.json"

SOURCES = re.compile(r"^[ \t]*<!--\s*results:(.*?)-->", re.S | re.M)
CODE_BLOCK = re.compile(r"```(?P<language>[^\n]*)\n(?P<code>.*?)```", re.S)
HIDDEN = [
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    # Versions: Keras 3.15.1, TensorFlow 2.21, Python 3.10+, 0.1 formats.
    re.compile(
        r"(?:Keras|TensorFlow|TF|Python|keras|tensorflow|JAX|jax|PyTorch|"
        r"LiteRT|version|toolkit|CUDA|cuDNN)[ =<>]*\d+(?:\.\d+)+\+?"
    ),
    re.compile(r"\b\d+\.\d+\.\d+\b"),
    re.compile(r"(?:[Ss]ection|§|Table|Figure|eq\.) ?\d+(?:\.\d+)*"),
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b"),  # dates
    re.compile(r"\(\d{4}\)|\b(?:19|20)\d{2}\b"),  # years
]
UNITS = {
    "%": (1, 100),
    "x": (1,),
    "×": (1,),
    "ms": (1, 1000),
    "s": (1,),
    "min": (1, 1 / 60),
    "minutes": (1, 1 / 60),
    "seconds": (1,),
    "h": (1, 1 / 3600),
    "hours": (1, 1 / 3600),
    "M": (1e-6,),
    "MB": (1, 1e-6),
    "MiB": (1, 1 / 2**20),
    "GiB": (1, 1 / 2**30),
    "nats": (1,),
    "bits": (1,),
}
NUMBER = re.compile(
    r"(?<![\w.\-/#])"
    r"(?P<value>\d+(?:\.\d+)?e[+-]?\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|"
    r"\d+\.\d+|\d+)"
    r"(?P<unit>%|×|x\b|M\b|\s?(?:ms|s|min|minutes|seconds|h|hours|MB|MiB|"
    r"GiB|nats|bits)\b)?"
)


@dataclasses.dataclass(frozen=True)
class Number:
    text: str  # as written, unit included
    value: float
    decimals: int
    unit: str
    line: int


def measured_numbers(page_text: str) -> list[Number]:
    """The measured numbers of a page, in order."""
    # A code block counts by its `#` comments (what a reader takes for
    # prose: "# 88.67% in 12 min"), and console output by all of it.
    text = CODE_BLOCK.sub(_block_prose, page_text)
    for pattern in HIDDEN:
        # Keep the line count, so that line numbers stay right.
        text = pattern.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    found = []
    for match in NUMBER.finditer(text):
        written = match.group("value")
        unit = (match.group("unit") or "").strip()
        if not (unit or "." in written or "," in written):
            continue
        digits = written.replace(",", "")
        mantissa, _, exponent = digits.partition("e")
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        found.append(
            Number(
                text=match.group(0).strip(),
                value=float(digits),
                decimals=decimals - int(exponent or 0),
                unit=unit,
                line=text.count("\n", 0, match.start()) + 1,
            )
        )
    return found


def _block_prose(match: re.Match) -> str:
    """What of a code block is prose: its comments, or, for a `text`
    block (a command's output), every line; line count kept."""
    lines = match.group("code").split("\n")
    if match.group("language").strip() == "text":
        kept = lines
    else:
        kept = [
            line.split("# ", 1)[1] if "# " in line else "" for line in lines
        ]
    return "\n" + "\n".join(kept)


def _numbers_in(value, into: list[float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            into.append(float(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            _numbers_in(key, into)
            _numbers_in(item, into)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _numbers_in(item, into)
    elif isinstance(value, str):
        value = re.sub(r"(?<=\d)_(?=\d)", "", value)  # 12_500 in code
        # Every match is a valid float once its separators are gone.
        into.extend(
            float(text.replace(",", ""))
            for text in re.findall(r"-?\d[\d,]*\.?\d*(?:e-?\d+)?", value)
        )


def file_numbers(path: pathlib.Path) -> list[float]:
    """Every number a results file holds."""
    values: list[float] = []
    if path.suffix == ".json":
        _numbers_in(json.loads(path.read_text()), values)
    elif path.suffix == ".csv":
        with path.open() as handle:
            for row in csv.reader(handle):
                _numbers_in(row, values)
    else:
        _numbers_in(path.read_text(), values)
    return values


def declared_sources(page_text: str) -> list[pathlib.Path]:
    paths = []
    for match in SOURCES.finditer(page_text):
        for pattern in match.group(1).split():
            found = sorted(ROOT.glob(pattern))
            assert found, f"results comment names {pattern!r}: no such file"
            paths.extend(found)
    return paths


def holds(values: list[float], number: Number) -> bool:
    tolerance = 0.5 * 10.0**-number.decimals * (1 + 1e-9) + 1e-12
    for factor in UNITS.get(number.unit, (1,)):
        for value in values:
            if abs(value * factor - number.value) <= tolerance:
                return True
    return False


def published() -> dict[str, dict[str, str]]:
    """{page name: {number as written: citation}}."""
    table: dict[str, dict[str, str]] = {}
    for entry in json.loads(PUBLISHED.read_text()):
        assert entry["source"].strip() and entry["what"].strip(), entry
        table.setdefault(entry["page"], {})[entry["number"]] = entry["source"]
    return table


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_measured_number_has_a_results_file(page):
    text = page.read_text()
    values = []
    for path in declared_sources(text):
        values.extend(file_numbers(path))
    allowed = published().get(page.name, {})
    missing = [
        f"line {number.line}: {number.text}"
        for number in measured_numbers(text)
        if number.text not in allowed and not holds(values, number)
    ]
    assert not missing, (
        f"{page.name}: numbers no results file holds (name the file in a "
        "`<!-- results: PATH -->` comment, or remeasure):\n"
        + "\n".join(missing)
    )


def test_published_numbers_are_cited_and_used():
    """The allow-list is short, each entry cited, and each still on its
    page (a stale entry would let a wrong number back in)."""
    table = published()
    assert sum(len(numbers) for numbers in table.values()) <= 25
    for page_name, numbers in table.items():
        page = (
            ROOT / page_name
            if page_name == "README.md"
            else (ROOT / "docs" / page_name)
        )
        written = {number.text for number in measured_numbers(page.read_text())}
        for number, source in numbers.items():
            assert number in written, (page_name, number)
            assert "http" in source or "(" in source, (number, source)


def test_the_check_finds_numbers_and_refuses_an_unbacked_one():
    """The extractor and the matcher on a made-up page."""
    page = (
        "Trained in 24 min to 89.06% (`--units=256`, `1.5` in code is "
        "ignored); 183,409 steps/s, 1.35x.\n<!-- 7.7 hidden -->\n"
        "Keras 3.15.1 and TensorFlow 2.21 are versions, 2026-12-05 a date."
    )
    numbers = measured_numbers(page)
    assert [n.text for n in numbers] == ["24 min", "89.06%", "183,409", "1.35x"]
    values = [1440.0, 0.89064, 183409.2, 1.346]
    assert all(holds(values, n) for n in numbers)
    assert not holds([1440.0, 0.8894], numbers[1])  # 88.94% is not 89.06%
    assert not holds([1.356], numbers[3])  # rounds to 1.36x
