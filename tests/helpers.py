"""Running Python in a fresh process, as a user or a server would."""

import os
import subprocess
import sys


def run_python(
    *args: str, timeout: int = 300, cwd=None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`python *args` in a new process, from `cwd`, with `env` added to
    this process's environment; output captured as text."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )


def run_script(script: str, timeout: int = 300) -> str:
    """Run `script` with `python -c`, fail the test with its stderr if it
    fails, and return its stdout."""
    result = run_python("-c", script, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
