"""Results files: what a benchmark measured, with the command that ran it,
the machine (CPU model, instruction sets, cores), the versions and the date.

The docs quote numbers from these files (docs/results/); a test checks
that every measured number on a page is held by one of them.
"""

from __future__ import annotations

import json
import os
import pathlib
import platform
import sys
import time

from toolkit.training.run_info import cpu_model

# Instruction-set flags that decide how fast the matmuls run.
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
)


def instruction_sets() -> list[str]:
    """The `ISA_FLAGS` this CPU reports in /proc/cpuinfo (Linux)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in flags]
    except OSError:
        pass
    return []


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


def write(path: str | os.PathLike, results) -> None:
    """`results` (anything JSON holds) as a results file at `path`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": command(),
        "machine": machine(),
        "cpu_model": cpu_model(),
        "instruction_sets": instruction_sets(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "date": time.strftime("%Y-%m-%d"),
        "results": results,
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"Results: {path}")
