"""The command-line entry shared by the training recipes: options, then
the run, with every expected failure turned into one `error:` line and an
exit status (2: a bad option; 1: bad data, a NaN loss, a lost worker)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from toolkit import config as config_lib


def run(
    doc: str,
    presets: Mapping[str, object],
    config_class: type,
    train_and_evaluate: Callable[[object], dict],
    summary: Callable[[dict], str],
    argv=None,
    default_preset: str = "default",
) -> int:
    """Parse `argv` into a config, run `train_and_evaluate(config)` and
    print `summary(results)` (on the chief only); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "-h" in argv or "--help" in argv:
        print(config_lib.usage(doc, presets, config_class))
        return 0
    try:
        preset, config = config_lib.parse_config(presets, argv, default_preset)
    except config_lib.ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if config.verbose:
        print(f"Preset {preset!r}; run folder {config.run_dir}")
    from toolkit.data import CorruptDataError, DataNotFoundError
    from toolkit.distribute import (
        LOST_WORKER_ERRORS,
        DistributeConfigError,
        lost_worker_message,
    )
    from toolkit.training import NonFiniteLossError

    try:
        results = train_and_evaluate(config)
    except (config_lib.ConfigError, DistributeConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (DataNotFoundError, CorruptDataError, NonFiniteLossError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except LOST_WORKER_ERRORS as error:
        if config.strategy != "multiworker":
            raise
        print(f"error: {lost_worker_message(error)}", file=sys.stderr)
        return 1
    if results.get("chief", True):
        print(summary(results))
    return 0
