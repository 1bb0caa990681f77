"""The command-line convention that every script in recipes/ follows.

- `--help` starts with a one-line description, then examples, then every
  option with its type or choices, its default and a sentence about it.
- A bad option or argument prints one `error:` line and exits with status
  2 (`USAGE_ERROR`); a failure of the run itself (bad data, a damaged file,
  a NaN loss) prints one `error:` line and exits with status 1
  (`RUN_ERROR`). Nothing else goes to stderr: no usage block, no
  traceback, no TensorFlow start-up chatter (`recipes._quiet`).

The training recipes parse `--key=value` options into their config
dataclasses (`toolkit.training.config.parse_config`); `predict.py` and
`sample.py` take positional arguments too, so they use `ArgumentParser`
below, which keeps the same help layout, error line and exit status.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import textwrap

USAGE_ERROR = 2
RUN_ERROR = 1
HELP_HINT = "Run with --help to see the options."
INT32_MAX = 2**31 - 1
TRUST_NOTE = (
    "A SavedModel is a program: loading and calling it runs whatever its "
    "graph holds, file writes included. Serve only exports you trust (ones "
    "you made, or from a source you trust); loading a .keras file with "
    "Keras's safe mode is the safe path for weights of unknown origin."
)


class CommandError(Exception):
    """A failure of the run that `main` prints as one `error:` line with
    exit status 1."""


def fail(message: str, status: int) -> int:
    """Print `error: message` to stderr; return `status` for `main`."""
    print(f"error: {message}", file=sys.stderr)
    return status


def _type_name(action) -> str:
    """What an option takes, as the training recipes' help writes it."""
    if action.nargs == 0:
        return "flag"
    label = getattr(action.type, "label", None)
    if label:
        return label
    if action.choices:
        return "one of " + ", ".join(map(str, action.choices))
    return getattr(action.type, "__name__", "str")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the recipes' convention: `--help` shows the script's
    docstring (one-line description first), then each argument and option
    with its type and default, in the training recipes' layout; an invalid
    command line prints one `error:` line and exits with status 2. Options
    must be spelled out (no abbreviations)."""

    def __init__(self, doc: str, **kwargs):
        super().__init__(description=doc, allow_abbrev=False, **kwargs)

    def format_help(self) -> str:
        lines = [self.description.rstrip(), ""]
        positionals = [
            a for a in self._actions if not a.option_strings and a.help
        ]
        if positionals:
            lines.append("Arguments:")
            for action in positionals:
                lines.append(f"  {action.metavar or action.dest.upper()}")
                lines.append(_wrapped(action.help))
        lines.append("Options:")
        for action in self._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            name = max(action.option_strings, key=len)
            if name == "--help":
                continue
            default = action.default
            hidden = (None, False, argparse.SUPPRESS)
            shown = (
                f", default {default!r}"
                if all(default is not value for value in hidden)
                else ""
            )
            lines.append(f"  {name}  ({_type_name(action)}{shown})")
            lines.append(_wrapped(action.help))
        if self.epilog:
            lines += ["", textwrap.fill(self.epilog, width=79)]
        return "\n".join(lines) + "\n"

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"error: {message}. {HELP_HINT}\n")


def _wrapped(text: str) -> str:
    return textwrap.fill(
        text, width=79, initial_indent=" " * 6, subsequent_indent=" " * 6
    )


def integer_in(low: int, high: int):
    """An argparse `type`: an int from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer, got {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be from {low} to {high:,}, got {value:,}"
            )
        return value

    parse.label = f"int from {low} to {high:,}"
    return parse


def finite_float_from(low: float):
    """An argparse `type`: a finite float of at least `low`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a number, got {text!r}"
            ) from None
        if not low <= value < float("inf"):
            raise argparse.ArgumentTypeError(
                f"must be a finite number of {low:g} or more, got {text}"
            )
        return value

    parse.label = f"finite float of {low:g} or more"
    return parse


def utf8_text(text: str, where: str) -> str:
    """`text` (from the command line), refused if it is not valid UTF-8
    (Python keeps undecodable argument bytes as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CommandError(
            f"{where} is not valid UTF-8; give UTF-8 text."
        ) from None
    return text


def read_utf8(data: bytes, where: str) -> str:
    """`data` decoded as UTF-8, or a `CommandError` that says where the
    first invalid byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(
            f"{where} is not valid UTF-8 (byte {error.start:,}); convert it, "
            "for example with `iconv -f latin1 -t utf-8`."
        ) from None


def load_saved_model(path: str, signature: str, other_script: str):
    """The SavedModel in `path` (a SavedModel folder, or a run folder
    holding one in saved_model/) that has `signature`, loaded; a
    `CommandError` for a folder without one, an unreadable one, or an
    export of another kind (served by `other_script`)."""
    import tensorflow as tf

    folder = pathlib.Path(path)
    if (folder / "saved_model" / "saved_model.pb").is_file():
        folder = folder / "saved_model"  # a run folder: its export
    if not (folder / "saved_model.pb").is_file():
        raise CommandError(
            f"{folder} is neither a run folder with a saved_model/ export "
            "nor a SavedModel folder (no saved_model.pb); pass the run "
            "folder or its saved_model/ folder."
        )
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as error:  # protobuf, OS and graph errors alike
        raise CommandError(
            f"{folder} cannot be loaded ({first_line(error)}); export the "
            "model again from its run folder."
        ) from None
    if not hasattr(loaded, signature):
        found = sorted(getattr(loaded, "signatures", {}).keys())
        raise CommandError(
            f"{folder} has no `{signature}` signature (it has "
            f"{', '.join(found) or 'none'}): it is another kind of export; "
            f"use recipes/{other_script}."
        )
    return loaded


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of `error`'s message (its type when it has none),
    cut to `limit` characters: what goes in parentheses in an `error:`
    line about a file that cannot be read."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return lines[0][:limit]


def graph_error_text(message: str) -> str:
    """The text of a failed in-graph check (`tf.debugging.Assert`) in a
    TensorFlow error message, on one line."""
    for line in message.splitlines():
        if "assertion failed:" in line:
            text = line.split("assertion failed:", 1)[1].strip()
            return text.replace("] [", " ").strip("[]").replace("\\'", "'")
    lines = [line for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "the model refused the request"
