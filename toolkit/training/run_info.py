"""What a run records about where it ran, and its seed."""

from __future__ import annotations

import os
import platform

import keras


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what
    `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def hardware() -> dict:
    """Where a run trained, for its metrics file."""
    return {
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "instruction_sets": instruction_sets(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(seed)
