"""The shell commands in README.md, docs/*.md and recipes/README.md work as
written on any machine: they name no folder outside the clone, every
option they pass is one their script takes, and the cheap ones run in full
from a temporary folder outside the repository, with the data passed the
way a user passes it (`$TOOLKIT_DATA_DIR`).

Commands are the lines of ```bash blocks that run a script of recipes/ or
benchmarks/ (`.venv/bin/python recipes/x.py ...`, `python ...`), with
backslash continuations joined and leading `VAR=value` assignments set
aside.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import shlex

import pytest

from helpers import run_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "README.md",
    ROOT / "recipes" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
BASH_BLOCK = re.compile(r"```(?:bash|sh)\n(.*?)```", re.S)
SCRIPT = re.compile(
    r"(?:^|\s)(?:\S*python3?)\s+((?:recipes|benchmarks)/\w+\.py)"
)
REAL_DATA = pathlib.Path(os.environ.get("TOOLKIT_DATA_DIR", "/nonexistent"))
HAS_IMDB = (REAL_DATA / "imdb").exists()
TRAINING = {"imdb_sentiment", "char_lm", "gradient_flow"}
ARGPARSE = {"predict", "sample", "export_litert"}


def commands(page: pathlib.Path) -> list[tuple[str, list[str], dict]]:
    """`(script, argv, environment)` for each command on the page."""
    found = []
    for block in BASH_BLOCK.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" # ", 1)[0].strip()
            match = SCRIPT.search(line)
            if not match or line.startswith("#"):
                continue
            words = shlex.split(line)
            environment = {}
            while words and re.match(r"^[A-Z_]+=", words[0]):
                key, _, value = words.pop(0).partition("=")
                environment[key] = value
            start = words.index(match.group(1))
            found.append((match.group(1), words[start + 1 :], environment))
    return found


ALL = [
    (page, script, argv, environment)
    for page in PAGES
    for script, argv, environment in commands(page)
]


def test_the_pages_have_commands_and_name_no_folder_outside_the_clone():
    assert len(ALL) >= 20
    scripts = {pathlib.Path(script).stem for _, script, _, _ in ALL}
    assert {"imdb_sentiment", "char_lm", "predict", "sample"} <= scripts
    for page in PAGES:
        text = page.read_text()
        assert "../shared" not in text and "/work/" not in text, page.name


@pytest.mark.parametrize(
    ("page", "script", "argv", "environment"),
    ALL,
    ids=[f"{page.name}:{' '.join(argv)[:40]}" for page, _, argv, _ in ALL],
)
def test_each_command_passes_only_options_its_script_takes(
    page, script, argv, environment
):
    """What each command asks for parses as its script parses it: the
    training recipes' presets and `--key=value` overrides (validated), the
    serving scripts' argparse options."""
    name = pathlib.Path(script).stem
    assert (ROOT / script).is_file(), script
    if name in TRAINING:
        from toolkit.training import config as config_lib

        configs = importlib.import_module(f"recipes.configs.{name}")
        default = getattr(configs, "DEFAULT_PRESET", "default")
        config_lib.parse_config(configs.PRESETS, argv, default)
    elif name in ARGPARSE:
        module = importlib.import_module(f"recipes.{name}")
        module.make_parser().parse_args(argv)
    else:  # a benchmark: its own argparse, read from its --help
        result = run_python(str(ROOT / script), "--help", timeout=120)
        assert result.returncode == 0, result.stderr[-1000:]
        for word in argv:
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                assert option in result.stdout, (script, option)


@pytest.mark.skipif(
    not (HAS_IMDB and (REAL_DATA / "tinyshakespeare").exists()),
    reason="needs the real IMDB and Tiny Shakespeare data in $TOOLKIT_DATA_DIR",
)
def test_the_pages_commands_run_as_written_outside_the_clone(tmp_path):
    """From a folder outside the clone, with the data in
    $TOOLKIT_DATA_DIR: docs/distribute.md's try-it-on-a-CPU command, as
    written; then every `predict.py` and `sample.py` command on the pages,
    exactly as written, on the folders they name (`runs/imdb_sentiment`,
    `runs/shakespeare`), filled here by the smoke presets (the real runs
    take minutes to hours)."""
    environment = {
        "TOOLKIT_DATA_DIR": str(REAL_DATA),
        "TOOLKIT_ENCODER_CACHE": str(tmp_path / "encoders"),
    }
    (_, script, argv, _) = next(
        entry
        for entry in ALL
        if entry[0].name == "distribute.md" and "--cpu-devices=2" in entry[2]
    )
    char_lm = [str(ROOT / "recipes" / "char_lm.py"), "--preset=smoke"]
    for command in ([str(ROOT / script), *argv], char_lm):
        result = run_python(
            *command, cwd=tmp_path, env=environment, timeout=900
        )
        assert result.returncode == 0, (command, result.stderr[-3000:])
    runs = tmp_path / "runs"
    assert (runs / "imdb_smoke" / "saved_model" / "saved_model.pb").is_file()
    (runs / "imdb_sentiment").symlink_to("imdb_smoke")
    (runs / "shakespeare").symlink_to("char_lm_smoke")
    ran = set()
    for page, script, argv, _ in ALL:
        name = pathlib.Path(script).stem
        if name not in ("predict", "sample") or " ".join(argv) in ran:
            continue
        ran.add(" ".join(argv))
        result = run_python(str(ROOT / script), *argv, cwd=tmp_path)
        assert result.returncode == 0, (page.name, argv, result.stderr[-2000:])
        assert result.stdout.strip(), (page.name, argv)
    assert len(ran) >= 4
