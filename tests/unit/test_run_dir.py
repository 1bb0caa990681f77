"""Faults in a run folder: damaged checkpoints and JSON files, a second
process, a stale lock, a moved folder, a run that fails on its data."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_training_loop import data, tiny_model

from recipes import training_main
from toolkit.data import DataNotFoundError
from toolkit.training import config as config_lib
from toolkit.training import resumable, run_dir


def train(rng, folder, epochs):
    train_data = data(rng)
    return resumable.train_with_resume(
        tiny_model(),
        lambda epoch: train_data,
        train_data,
        folder,
        epochs=epochs,
        verbose=0,
    )


def as_if_killed(folder):
    """Mark a run that finished its epochs as one killed after them, as a
    longer run would be: the next call resumes it."""
    state = resumable.load_state(folder)
    state.finished, state.stop_reason = False, ""
    (folder / "train_state.json").write_text(
        json.dumps(dataclasses.asdict(state))
    )


def flip_bytes(path, count=64):
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    for index in range(middle, middle + count):
        raw[index] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "name", ["epoch_001.weights.h5", "epoch_001.seeds.npy"]
)
def test_a_damaged_checkpoint_is_refused_naming_the_file(rng, tmp_path, name):
    train(rng, tmp_path, epochs=1)
    checksums = resumable.load_state(tmp_path).checksums
    assert set(checksums) >= {"epoch_001.weights.h5", "epoch_001.seeds.npy"}
    flip_bytes(tmp_path / "checkpoints" / name)
    with pytest.raises(
        run_dir.RunDirError, match=f"{name} is damaged"
    ) as error:
        train(rng, tmp_path, epochs=2)
    assert "\n" not in str(error.value)
    assert resumable.load_state(tmp_path).epochs_done == 1  # nothing lost


def test_an_undamaged_run_resumes(rng, tmp_path):
    train(rng, tmp_path, epochs=1)
    as_if_killed(tmp_path)
    assert train(rng, tmp_path, epochs=2).epochs_done == 2


def test_a_truncated_checkpoint_without_checksums_gets_a_one_line_error(
    rng, tmp_path
):
    """Run folders written before checksums existed are still checked by
    reading them."""
    train(rng, tmp_path, epochs=1)
    state = resumable.load_state(tmp_path)
    state.checksums = {}
    (tmp_path / "train_state.json").write_text(
        json.dumps(dataclasses.asdict(state))
    )
    weights = tmp_path / "checkpoints" / "epoch_001.weights.h5"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(run_dir.RunDirError, match="cannot be read") as error:
        train(rng, tmp_path, epochs=2)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"epochs": 1}'])
def test_a_corrupt_train_state_gets_a_one_line_error(tmp_path, text):
    (tmp_path / "train_state.json").write_text(text)
    with pytest.raises(run_dir.RunDirError, match="train_state.json") as error:
        resumable.load_state(tmp_path)
    assert "\n" not in str(error.value) and "--run-dir" in str(error.value)


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    run_dir: str = "runs/tiny"
    units: int = 8


@pytest.mark.parametrize("text", ["{\x00", "[]"])
def test_a_corrupt_config_json_gets_a_one_line_error(tmp_path, text):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(text)
    with pytest.raises(run_dir.RunDirError, match="config.json") as error:
        config_lib.prepare_run_dir(TinyConfig(str(folder)), folder)
    assert "\n" not in str(error.value)
    run_dir.release_lock(folder)


def run_tiny_recipe(train_and_evaluate, folder) -> int:
    """The recipes' command-line entry around `train_and_evaluate`, with a
    `TinyConfig` whose run folder is `folder`; returns the exit status."""
    return training_main.run(
        "Tiny.",
        {"default": TinyConfig(str(folder))},
        TinyConfig,
        train_and_evaluate,
        summary=str,
        argv=[],
    )


def test_the_recipe_entry_turns_run_dir_errors_into_one_line(capsys, tmp_path):
    def damaged(config):
        raise run_dir.RunDirError("x/epoch_001.weights.h5 is damaged; fix.")

    status = run_tiny_recipe(damaged, tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err == ["error: x/epoch_001.weights.h5 is damaged; fix."]


LOCK_HOLDER = textwrap.dedent(
    """
    import sys
    from toolkit.training import run_dir
    run_dir.hold_lock(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_process_is_refused_and_a_dead_ones_lock_is_not(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(
            run_dir.RunDirError,
            match=f"in use by another process .pid {holder.pid}",
        ):
            run_dir.hold_lock(folder)
    finally:
        holder.kill()  # as kill -9: the lock file stays behind
        holder.wait()
    assert (folder / run_dir.LOCK_NAME).exists()
    run_dir.hold_lock(folder)  # the stale lock does not block
    assert (folder / run_dir.LOCK_NAME).read_text() == str(os.getpid())
    run_dir.release_lock(folder)


def test_a_moved_run_folder_resumes(rng, tmp_path):
    first = tmp_path / "first"
    config = TinyConfig(str(first))
    config_lib.prepare_run_dir(config, first)
    train(rng, first, epochs=1)
    as_if_killed(first)
    run_dir.release_lock(first)
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    config_lib.prepare_run_dir(TinyConfig(str(moved)), moved)
    state = train(rng, moved, epochs=2)
    assert state.epochs_done == 2
    assert len(resumable.read_history(moved)) == 2
    run_dir.release_lock(moved)


def test_a_run_that_fails_on_its_data_leaves_no_folder(tmp_path):
    folder = tmp_path / "runs" / "tiny"

    def missing_data(config):
        config_lib.prepare_run_dir(config, config.run_dir)
        (folder / "checkpoints").mkdir()
        raise DataNotFoundError("no data here; pass --data-dir.")

    status = run_tiny_recipe(missing_data, folder)
    assert status == 1
    assert not folder.exists()


def test_a_started_run_is_never_discarded(rng, tmp_path):
    train(rng, tmp_path, epochs=1)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert not run_dir.discard_unstarted(tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    np.testing.assert_equal(resumable.load_state(tmp_path).epochs_done, 1)
