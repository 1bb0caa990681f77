"""The command-line convention that every script in recipes/ follows.

- `--help` starts with a one-line description, then examples, then every
  option with its type or choices, its default and a sentence about it.
- A bad option or argument prints one `error:` line and exits with status
  2 (`USAGE_ERROR`); a failure of the run itself (bad data, a damaged file,
  a NaN loss) prints one `error:` line and exits with status 1
  (`RUN_ERROR`). Nothing else goes to stderr: no usage block, no
  traceback, no TensorFlow start-up chatter (`recipes._quiet`).

The training recipes parse `--key=value` options into their config
dataclasses (`toolkit.config.parse_config`); `predict.py` and `sample.py`
take positional arguments too, so they use `ArgumentParser` below, which
keeps the same help layout, error line and exit status.
"""

from __future__ import annotations

import argparse
import sys

USAGE_ERROR = 2
RUN_ERROR = 1
HELP_HINT = "Run with --help to see the options."


def fail(message: str, status: int) -> int:
    """Print `error: message` to stderr; return `status` for `main`."""
    print(f"error: {message}", file=sys.stderr)
    return status


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written; an option's default (when it has one)
    after its help, as Python writes it, so a newline shows as '\\n'."""

    def _get_help_string(self, action):
        default = action.default
        shown = all(default is not v for v in (None, False, argparse.SUPPRESS))
        if action.option_strings and shown:
            return f"{action.help} (default {default!r})"
        return action.help


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the recipes' convention: `--help` shows the script's
    docstring (one-line description first) and each option's default; an
    invalid command line prints one `error:` line and exits with status 2.
    Options must be spelled out (no abbreviations)."""

    def __init__(self, doc: str, **kwargs):
        super().__init__(
            description=doc,
            formatter_class=_HelpFormatter,
            allow_abbrev=False,
            **kwargs,
        )

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"error: {message}. {HELP_HINT}\n")
