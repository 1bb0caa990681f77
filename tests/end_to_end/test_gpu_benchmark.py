"""`benchmarks/gpu.py` runs end to end in its small mode on a CPU, under
JAX, in a process where TensorFlow cannot be imported (as on a GPU machine
that has JAX but no TensorFlow): `import toolkit` and the layers must work
there."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

WITHOUT_TENSORFLOW = """
import runpy, sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now fails
sys.argv = ["gpu.py", "--small", "--json", sys.argv[1]]
runpy.run_path("gpu.py", run_name="__main__")
assert "tensorflow" not in {m.split(".")[0] for m in sys.modules
                            if sys.modules[m] is not None}
"""


def test_small_mode_runs_without_tensorflow(tmp_path):
    results = tmp_path / "gpu.json"
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, str(results)],
        cwd=ROOT / "benchmarks",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "backend jax" in lines[0]
    table = [
        line
        for line in lines
        if line.startswith("| lstm") or line.startswith("| vanilla")
    ]
    # 2 cells x 2 lengths x 2 precisions x 2 modes
    assert len(table) == 16
    rows = json.loads(results.read_text())["rows"]
    assert len(rows) == 16
    assert {row["precision"] for row in rows} == {"float32", "mixed_bfloat16"}
    assert {row["mode"] for row in rows} == {"train", "infer"}
    for row in rows:
        assert row["toolkit fused"] > 0 and row["keras"] > 0
        # No cuDNN on a CPU: the forced toolkit cuDNN column says so.
        assert row["toolkit cuDNN"] is None
