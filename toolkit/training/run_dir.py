"""A run folder's integrity: one process at a time, files checked before
they are trusted, and errors that say which file and what to do.

- `hold_lock(run_dir)`: an advisory lock (`fcntl.flock` on `run_dir/.lock`)
  held until the process exits. The operating system drops it when the
  process dies, even by `kill -9`, so a lock file left behind never blocks
  the next run; a second live process on the same folder is refused.
- `sha256(path)` / `verify(path, expected)`: the checksums that the commit
  point (`train_state.json`) records for every checkpoint file it names.
- `read_json(path)`: JSON the run wrote, with a one-line `RunDirError` for
  a file that is not.
- `discard_unstarted(run_dir)`: removes what a run that failed before its
  first epoch left (its `config.json`, the lock, empty folders), so that the
  next command starts clean.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

LOCK_NAME = ".lock"
STATE_NAME = "train_state.json"

# Lock files this process holds, by resolved folder: open handles keep the
# locks, and a second `hold_lock` on the same folder is a no-op.
_held: dict[pathlib.Path, object] = {}


class RunDirError(RuntimeError):
    """A run folder that cannot be used as it is: busy, or a file in it is
    damaged. The message is one line naming the file and the fix."""


def hold_lock(run_dir: str | os.PathLike) -> None:
    """Lock `run_dir` for this process until it exits.

    Raises:
        RunDirError: another live process holds the lock.
    """
    import fcntl

    run_dir = pathlib.Path(run_dir)
    key = run_dir.resolve()
    if key in _held:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_NAME, "a+")  # noqa: SIM115 (kept open)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise RunDirError(
            f"{run_dir} is in use by another process (pid {owner}); wait for "
            "it to finish, or pass another --run-dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _held[key] = handle


def release_lock(run_dir: str | os.PathLike) -> None:
    """Release a lock `hold_lock` took (tests; processes just exit)."""
    handle = _held.pop(pathlib.Path(run_dir).resolve(), None)
    if handle is not None:
        handle.close()


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: pathlib.Path, expected: str | None, run_dir) -> None:
    """Check `path` against the checksum the commit point recorded.

    Raises:
        RunDirError: the file is missing or its checksum differs.
    """
    fix = f"delete {run_dir} (or pass another --run-dir) to start the run over"
    if not path.exists():
        raise RunDirError(
            f"{path} is missing, but {STATE_NAME} names it as the checkpoint "
            f"to resume from; {fix}."
        )
    if expected is not None and sha256(path) != expected:
        raise RunDirError(
            f"{path} is damaged: its checksum differs from the one recorded "
            f"in {STATE_NAME} when it was written; {fix}."
        )


def read_json(path: pathlib.Path, fix: str):
    """`json.loads` of `path`, or a `RunDirError` naming it and `fix`."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = getattr(error, "msg", None) or error.reason
        raise RunDirError(
            f"{path} is not valid JSON ({reason}); {fix}."
        ) from None


def discard_unstarted(run_dir: str | os.PathLike) -> bool:
    """Remove what a run left that failed before it committed its first
    epoch: `config.json`, the lock file and empty folders, then the folder
    itself if nothing else is in it. Anything else is left alone. Returns
    whether the folder is gone."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir() or (run_dir / STATE_NAME).exists():
        return False
    release_lock(run_dir)
    for name in ("config.json", LOCK_NAME):
        (run_dir / name).unlink(missing_ok=True)
    for folder in sorted(run_dir.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if not any(run_dir.iterdir()):
        run_dir.rmdir()
        return True
    return False
