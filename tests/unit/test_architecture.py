"""The folder tree is the architecture: the layer library at the top of
`toolkit/`, applications in subpackages, and the library never imports an
application. Checked on the source (every import statement, including the
ones inside functions) and on what `import toolkit` loads."""

import ast
import pathlib
import subprocess
import sys

import pytest

TOOLKIT = pathlib.Path(__file__).resolve().parents[2] / "toolkit"
APPLICATIONS = ("data", "lab", "serving", "text", "training")


def core_modules() -> list[pathlib.Path]:
    return sorted(TOOLKIT.glob("*.py"))


def imported_toolkit_modules(path: pathlib.Path) -> set[str]:
    """Every `toolkit...` module that `path` imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == "toolkit"}


def test_every_subpackage_is_an_application():
    packages = sorted(
        path.name
        for path in TOOLKIT.iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    )
    assert packages == sorted(APPLICATIONS)


def test_the_layer_library_imports_no_application():
    offenders = {
        path.name: sorted(
            name
            for name in imported_toolkit_modules(path)
            if name.split(".")[1:2] and name.split(".")[1] in APPLICATIONS
        )
        for path in core_modules()
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    # The check above must be able to fail: a lazy import counts.
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from toolkit.text import models\n")
    assert "toolkit.text.models" in imported_toolkit_modules(module)


@pytest.mark.slow
def test_import_toolkit_loads_only_the_layer_library():
    code = (
        "import sys, toolkit; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('toolkit')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=TOOLKIT.parent,
    ).stdout.split()
    core = {"toolkit"} | {
        f"toolkit.{path.stem}"
        for path in core_modules()
        if path.stem != "__init__"
    }
    assert set(loaded) <= core, sorted(set(loaded) - core)
    # and the public API is all there
    assert {"toolkit.layers", "toolkit.deep", "toolkit.optimizers"} <= set(
        loaded
    )
