"""Results files: what a benchmark measured, with the command that ran it,
the machine (CPU model, instruction sets, cores), the versions and the date.

The docs quote numbers from these files (docs/results/); a test checks
that every measured number on a page is held by one of them. Run as a
script, it turns a recipe's run folder into one:

    python benchmarks/results_file.py runs/shakespeare \
        docs/results/char_lm_shakespeare.json \
        --command "python recipes/char_lm.py --data-dir=<data>"
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import time

from toolkit.training.run_info import cpu_model, instruction_sets


def machine() -> str:
    """The CPU model, its instruction sets and core count, for every
    benchmark table's header."""
    sets = ", ".join(instruction_sets()) or "no AVX2"
    return f"{cpu_model()} ({sets}), {os.cpu_count()} CPUs"


def versions() -> dict:
    """Python and the libraries whose versions change the numbers."""
    found = {"python": platform.python_version()}
    for name in ("numpy", "keras", "tensorflow", "jax"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "unknown")
    return found


def command() -> str:
    """This process's command line, with the data folder written `<data>`
    (it differs per machine)."""
    words = []
    for word in sys.argv:
        if word.startswith("--data-dir="):
            word = "--data-dir=<data>"
        elif words and words[-1] == "--data-dir":
            word = "<data>"
        words.append(word)
    script = pathlib.Path(words[0]).name if words else ""
    return " ".join([f"python benchmarks/{script}", *words[1:]])


def write(
    path: str | os.PathLike, results, run_command=None, arguments=None
) -> None:
    """`results` (anything JSON holds) as a results file at `path`, with
    the script's parsed `arguments` (an `argparse.Namespace`) when given."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": run_command or command(),
        "machine": machine(),
        "cpu_model": cpu_model(),
        "instruction_sets": instruction_sets(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d"),
        "arguments": None if arguments is None else vars(arguments),
        "results": results,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"Results: {path}")


def _without_paths(value, run_dir: pathlib.Path):
    """`value` with this machine's folders written as `<data>` / `<run>`."""
    if isinstance(value, dict):
        return {k: _without_paths(v, run_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_paths(v, run_dir) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        if value.startswith(str(run_dir)):
            return "<run>" + value[len(str(run_dir)) :]
        return "<data>/" + "/".join(pathlib.Path(value).parts[-2:])
    return value


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        description="A recipe run folder's metrics.json as a results file."
    )
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument(
        "--command", required=True, help="the command that made the run"
    )
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    write(args.out, _without_paths(metrics, run_dir), args.command)


if __name__ == "__main__":
    main()
