"""The command-line entry shared by the training recipes: options, then
the run, with every expected failure turned into one `error:` line and an
exit status (2: a bad option; 1: bad data, a NaN loss, a lost worker), as
`recipes._cli` sets out for every script."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from collections.abc import Callable, Mapping

from recipes._cli import HELP_HINT, RUN_ERROR, USAGE_ERROR, fail
from toolkit.training import config as config_lib


def run(
    doc: str,
    presets: Mapping[str, object],
    config_class: type,
    train_and_evaluate: Callable[[object], dict],
    summary: Callable[[dict], str],
    argv=None,
    default_preset: str = "default",
    adjust: Callable[[str, object, list[str]], object] | None = None,
) -> int:
    """Parse `argv` into a config, run `train_and_evaluate(config)` and
    print `summary(results)` (on the chief only); return the exit status.
    `adjust(preset, config, argv)`, when given, returns the config to run
    (a recipe's rule that depends on which options were given)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        try:
            preset, _ = config_lib.split_preset(presets, argv, default_preset)
        except config_lib.ConfigError as error:
            return fail(f"{error} {HELP_HINT}", USAGE_ERROR)
        print(config_lib.usage(doc, presets, config_class, preset))
        return 0
    try:
        preset, config = config_lib.parse_config(presets, argv, default_preset)
    except config_lib.ConfigError as error:
        return fail(f"{error} {HELP_HINT}", USAGE_ERROR)
    if adjust is not None:
        config = adjust(preset, config, argv)
    if getattr(config, "verbose", 0):
        print(f"Preset {preset!r}; run folder {config.run_dir}")
    from toolkit.data import CorruptDataError, DataNotFoundError
    from toolkit.text.encoder_cache import EncoderMismatchError
    from toolkit.training.distribute import (
        LOST_WORKER_ERRORS,
        DistributeConfigError,
        lost_worker_message,
    )
    from toolkit.training.resumable import NonFiniteLossError
    from toolkit.training.run_dir import RunDirError, discard_unstarted

    try:
        results = train_and_evaluate(config)
    except (
        config_lib.ConfigError,
        DistributeConfigError,
        EncoderMismatchError,
    ) as error:
        return fail(str(error), USAGE_ERROR)
    except (DataNotFoundError, CorruptDataError) as error:
        # Nothing was trained: leave no folder that the corrected command
        # would refuse as "a different config".
        discard_unstarted(config.run_dir)
        return fail(str(error), RUN_ERROR)
    except (NonFiniteLossError, RunDirError) as error:
        return fail(str(error), RUN_ERROR)
    except LOST_WORKER_ERRORS as error:
        if getattr(config, "strategy", "none") != "multiworker":
            raise
        return fail(lost_worker_message(error), RUN_ERROR)
    if results.get("chief", True):
        print(summary(results))
    return 0


@dataclasses.dataclass(frozen=True)
class Run:
    """What `start_run` sets up for a training recipe."""

    config: object  # the recipe's config, as this process runs it
    strategy: object  # a tf.distribute strategy, or None
    chief: bool  # whether this process writes the run folder
    run_dir: pathlib.Path
    log: Callable[..., None]  # print, on the chief only and when verbose


def start_run(config) -> Run:
    """The strategy, the run folder, the seed and a logger for a training
    recipe.

    The strategy comes first: logical CPU devices can only be set before
    TensorFlow starts. Then the run folder (written and locked by the chief
    only), the seed, and `log`, which prints on the chief only (when
    verbose). `Run.config` has `jit_compile` off where the strategy cannot
    run XLA (replicas on logical CPU devices); `config.json` keeps what
    was asked for."""
    from toolkit.training import distribute, run_info

    strategy = distribute.make_strategy(config.strategy, config.cpu_devices)
    chief = distribute.is_chief(strategy)
    run_dir = config_lib.prepare_run_dir(config, config.run_dir, write=chief)
    run_info.set_seed(config.seed)
    log = print if config.verbose and chief else (lambda *a, **k: None)
    if config.strategy != "none":
        log(f"Strategy: {distribute.describe(strategy)}")
    if config.jit_compile and not distribute.supports_xla(strategy):
        log("XLA is off: it cannot run replicas on logical CPU devices.")
        config = dataclasses.replace(config, jit_compile=False)
    return Run(config, strategy, chief, run_dir, log)


def write_results(
    run_dir: pathlib.Path, results: dict, start: float, **seconds
):
    """The shared end of a training recipe: `results` gets its timings
    (`seconds`, plus the total since `start`, a `time.perf_counter()`) and
    where it ran, and goes to `run_dir/metrics.json`. Returns `results`."""
    from toolkit.training import run_info

    results["seconds"] = {**seconds, "total": time.perf_counter() - start}
    results["hardware"] = run_info.hardware()
    (run_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results
