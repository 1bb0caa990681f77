"""Dataclass configs with presets and type-checked `--key=value` overrides.

A recipe defines one dataclass (a field per setting, with a comment each)
and a dict of presets. `parse_config` picks a preset with `--preset NAME`
(default `"default"`) and applies overrides; unknown keys and values of the
wrong type are errors that name the key, raised before any work starts.

    --units=256   --units 256   --dropout=0.3   --bidirectional
    --no-bidirectional   --data-dir=/data   --units=128,128 (a tuple)

A field whose type is itself a dataclass is a nested config (a phase of
the recipe, such as IMDB's language-model pretraining); its options are
named with a dot, `--lm.epochs=2`, and it is saved as a nested JSON object.
A config class may list `LEGACY_KEYS` (old flat key -> dotted key), so
that `config.json` files written before a setting moved still load.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import pathlib
import textwrap
import types
import typing
from collections.abc import Mapping, Sequence

from toolkit._checks import ArgumentError

# The recurrent cells a recipe's `--cell` takes (`toolkit.DeepRNN.from_spec`
# builds each by this name).
RecurrentCell = typing.Literal[
    "lstm", "vanilla", "layernorm", "peephole", "projection"
]


class ConfigError(ValueError):
    """A config key or value is invalid."""


def _is_config_class(annotation) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def _field_types(config_class) -> dict[str, object]:
    """Every option's type by its key, nested configs' as `outer.inner`."""
    hints = typing.get_type_hints(config_class)
    types_by_key = {}
    for field in dataclasses.fields(config_class):
        annotation = hints[field.name]
        if _is_config_class(annotation):
            for key, inner in _field_types(annotation).items():
                types_by_key[f"{field.name}.{key}"] = inner
        else:
            types_by_key[field.name] = annotation
    return types_by_key


def flat_values(config) -> dict[str, object]:
    """Every option's value in `config` by its key (`outer.inner` for a
    nested config)."""
    values = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            for key, inner in flat_values(value).items():
                values[f"{field.name}.{key}"] = inner
        else:
            values[field.name] = value
    return values


def replace(config, updates: Mapping[str, object]):
    """`config` with the options in `updates` (flat keys, `outer.inner`
    for a nested config) replaced."""
    own, nested = {}, {}
    for key, value in updates.items():
        outer, dot, inner = key.partition(".")
        if dot:
            nested.setdefault(outer, {})[inner] = value
        else:
            own[key] = value
    for outer, inner_updates in nested.items():
        own[outer] = replace(getattr(config, outer), inner_updates)
    return dataclasses.replace(config, **own)


def _convert(key: str, text: str, annotation) -> object:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", "") and type(None) in args:
            return None
        (annotation,) = [a for a in args if a is not type(None)]
        return _convert(key, text, annotation)
    if origin is tuple:
        item_type = args[0]
        return tuple(
            _convert(key, item, item_type)
            for item in text.split(",")
            if item.strip()
        )
    if origin is typing.Literal:
        if text not in args:
            raise ConfigError(
                f"Option `--{key}` must be one of {list(args)}, got {text!r}."
            )
        return text
    if annotation is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(
            f"Option `--{key}` expects true or false, got {text!r}."
        )
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise ConfigError(
                f"Option `--{key}` expects {annotation.__name__}, got {text!r}."
            ) from None
    raise ConfigError(f"Option `--{key}` has unsupported type {annotation}.")


def _unknown_key(key: str, known: Sequence[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" Did you mean `--{close[0]}`?" if close else ""
    return ConfigError(
        f"Unknown option `--{key}`.{hint} Known options: "
        + ", ".join(f"--{k}" for k in sorted(known))
        + "."
    )


def parse_overrides(config, argv: Sequence[str]):
    """Return `config` with the `--key=value` overrides in `argv` applied."""
    types_by_key = _field_types(type(config))
    known = [k.replace("_", "-") for k in types_by_key]
    updates = {}
    args = list(argv)
    while args:
        token = args.pop(0)
        if not token.startswith("--"):
            raise ConfigError(
                f"Unexpected argument {token!r}: options look like "
                "`--key=value`."
            )
        key, has_value, value = token[2:].partition("=")
        field = key.replace("-", "_")
        # An option's earlier name (the config class's LEGACY_KEYS).
        field = getattr(type(config), "LEGACY_KEYS", {}).get(field, field)
        if not has_value and field not in types_by_key:
            negated = field.removeprefix("no_")
            if field.startswith("no_") and types_by_key.get(negated) is bool:
                updates[negated] = False
                continue
        if field not in types_by_key:
            raise _unknown_key(key, known)
        annotation = types_by_key[field]
        if not has_value:
            if annotation is bool:
                updates[field] = True
                continue
            if not args or args[0].startswith("--"):
                raise ConfigError(f"Option `--{key}` needs a value.")
            value = args.pop(0)
        updates[field] = _convert(key, value, annotation)
    return replace(config, updates)


def split_preset(
    presets: Mapping[str, object],
    argv: Sequence[str],
    default: str = "default",
) -> tuple[str, list[str]]:
    """`(preset_name, other_args)`: the preset that `--preset NAME` or
    `--preset=NAME` names (else `default`), checked against `presets`, and
    the arguments without it."""
    args = list(argv)
    name = default
    for index, token in enumerate(args):
        if token == "--preset" or token.startswith("--preset="):
            if "=" in token:
                name = token.split("=", 1)[1]
                del args[index]
            else:
                if index + 1 >= len(args):
                    raise ConfigError("Option `--preset` needs a value.")
                name = args[index + 1]
                del args[index : index + 2]
            break
    if name not in presets:
        raise ConfigError(
            f"Unknown preset {name!r}; choose one of {sorted(presets)}."
        )
    return name, args


def parse_config(
    presets: Mapping[str, object],
    argv: Sequence[str],
    default: str = "default",
) -> tuple[str, object]:
    """`(preset_name, config)` from `--preset NAME` (else `default`) and
    overrides, validated with the config's `validate()`."""
    name, args = split_preset(presets, argv, default)
    config = parse_overrides(presets[name], args)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return name, config


def usage(
    doc: str,
    presets: Mapping[str, object],
    config_class,
    preset: str | None = None,
) -> str:
    """A recipe's `--help` text: its docstring, then every option with the
    value that `preset` (a name from `split_preset`) gives it, or the
    class's own defaults without one."""
    config = config_class() if preset is None else presets[preset]
    shown = "" if preset is None else f"; values of --preset={preset}"
    return (
        f"{doc}\nOptions (--key=value; --preset={'|'.join(presets)}"
        f"{shown}):\n{describe(config_class, config)}"
    )


def field_docs(config_class) -> dict[str, str]:
    """Each field's documentation, read from the config class's source: the
    comment on the field's line, else the comment lines right above it
    (leading comment lines of a few words there are section headings, not
    documentation)."""
    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):
        return {}
    names = {field.name for field in dataclasses.fields(config_class)}
    docs, block = {}, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# ").strip())
            continue
        name = stripped.split(":", 1)[0].strip()
        if name in names and ":" in stripped:
            code, hash_, comment = stripped.partition("  # ")
            # Section headings ("# Model.") are not field documentation.
            while block and len(block[0].split()) <= 4:
                block.pop(0)
            if hash_:
                docs[name] = comment.strip()
            elif block:
                docs[name] = " ".join(block)
        block = []
    return docs


def _nested_field_docs(config_class) -> dict[str, str]:
    docs = field_docs(config_class)
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if _is_config_class(hints[field.name]):
            for key, doc in _nested_field_docs(hints[field.name]).items():
                docs[f"{field.name}.{key}"] = doc
    return docs


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    return getattr(annotation, "__name__", str(annotation))


def describe(config_class, config=None) -> str:
    """For `--help`: per option its type (or choices) and its value in
    `config` (default: the class's defaults), then its documentation
    (`field_docs`)."""
    defaults = flat_values(config_class() if config is None else config)
    docs = _nested_field_docs(config_class)
    lines = []
    for key, annotation in _field_types(config_class).items():
        lines.append(
            f"  --{key.replace('_', '-')}  ({_type_name(annotation)}, "
            f"default {defaults[key]!r})"
        )
        if key in docs:
            lines.append(
                textwrap.fill(
                    docs[key],
                    width=79,
                    initial_indent=" " * 6,
                    subsequent_indent=" " * 6,
                )
            )
    return "\n".join(lines)


def to_json(config) -> str:
    return json.dumps(dataclasses.asdict(config), indent=2, sort_keys=True)


def from_json(config_class, text: str):
    return from_dict(config_class, json.loads(text))


def from_dict(config_class, values: dict):
    """The config that `values` (read from `to_json`'s output) describes;
    keys a config class moved (its `LEGACY_KEYS`) are read where they were
    and put where they are now."""
    values = dict(values)
    for old, new in getattr(config_class, "LEGACY_KEYS", {}).items():
        if old in values:
            outer, nested, inner = new.partition(".")
            if nested:
                values.setdefault(outer, {})[inner] = values.pop(old)
            else:
                values[new] = values.pop(old)
    hints = typing.get_type_hints(config_class)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigError(
            f"Saved config has keys {unknown} that {config_class.__name__} "
            "does not know; it was written by another version."
        )
    for key, annotation in hints.items():
        if key not in values:
            continue
        if _is_config_class(annotation):
            values[key] = from_dict(annotation, values[key])
        elif typing.get_origin(annotation) is tuple:
            values[key] = tuple(values[key])
    return config_class(**values)


def require(condition: bool, key: str, expectation: str, value) -> None:
    """Raise `ConfigError` naming `--key` unless `condition` holds."""
    if not condition:
        raise ConfigError(
            f"Option `--{key.replace('_', '-')}` must be {expectation}, got "
            f"{value!r}."
        )


def checked_specs(config, *builds, renames: Mapping[str, str] = ()) -> None:
    """Call each of `builds` (a config's spec builders, which check their
    own values); a value they refuse becomes a `ConfigError` naming the
    option it came from (`renames`: spec argument -> option, where they
    differ) and the value as the option gave it."""
    renames = dict(renames)
    for build in builds:
        try:
            build()
        except ArgumentError as error:
            key = renames.get(error.argument, error.argument)
            value = getattr(config, key, error.value)
            require(False, key, error.expectation, value)


def check_strategy(config) -> None:
    """Validate a recipe's `strategy` and `cpu_devices` options."""
    if config.cpu_devices is not None:
        require(
            config.cpu_devices >= 1,
            "cpu_devices",
            "a positive integer",
            config.cpu_devices,
        )
        require(
            config.strategy == "mirrored",
            "cpu_devices",
            "used with --strategy=mirrored only (it sets how many logical "
            "CPU devices to mirror over)",
            config.cpu_devices,
        )


# Options that may change between a run and its resumption: the same global
# batch trains the same way on one device or several.
# Options that may differ between a run and its resumption. `run_dir` is
# one: a run folder can be moved or copied and resumed where it is.
RESUMABLE_CHANGES = ("verbose", "strategy", "cpu_devices", "run_dir")


def prepare_run_dir(
    config,
    run_dir,
    ignore: Sequence[str] = RESUMABLE_CHANGES,
    write: bool = True,
) -> pathlib.Path:
    """Create the run folder and write `config.json` there, or check that
    the folder's run was made with the same config (all but `ignore`), so
    that a resumed run continues the same experiment. With `write=False`
    (a multi-worker run's non-chief workers) only the check is made.

    The chief (`write=True`) locks the folder for this process first.

    Raises:
        ConfigError: the folder holds a run with other settings; lists
            them.
        RunDirError: another process is using the folder, or its
            `config.json` is not valid JSON.
    """
    from toolkit.training import run_dir as run_dir_lib

    run_dir = pathlib.Path(run_dir)
    if write:
        # Refuses a second live process on the same folder (RunDirError).
        run_dir_lib.hold_lock(run_dir)
    path = run_dir / "config.json"
    if path.exists():
        fix = (
            "delete it and rerun with the options the run was started with "
            "to resume it, or pass another --run-dir"
        )
        values = run_dir_lib.read_json(path, fix)
        if not isinstance(values, dict):
            raise run_dir_lib.RunDirError(
                f"{path} is not a config (not a JSON object); {fix}."
            )
        saved = from_dict(type(config), values)
        saved_values, values = flat_values(saved), flat_values(config)
        changed = {
            key: (saved_values[key], values[key])
            for key in values
            if key not in ignore and saved_values[key] != values[key]
        }
        if changed:
            details = ", ".join(
                f"{key}: {old!r} -> {new!r}"
                for key, (old, new) in changed.items()
            )
            raise ConfigError(
                f"{run_dir} holds a run made with a different config "
                f"({details}). Use another --run-dir, or the same options to "
                "resume it."
            )
    if write:
        path.write_text(to_json(config))
    return run_dir
