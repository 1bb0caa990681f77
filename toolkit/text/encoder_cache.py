"""The pretrained-encoder cache: where it is, what an entry holds
(`encoder.json` and `encoder.npz`), and taking an entry over into a
classifier after checking that it fits.

One folder per fingerprint of the settings, vocabulary and texts
(`toolkit.text.pretraining.fingerprint`); `encoder.json` is written last,
so a folder without it is an unfinished pretraining.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Sequence

import keras
import numpy as np

ENCODER_FILE = "encoder.json"  # written last: the cache entry is complete
WEIGHTS_FILE = "encoder.npz"
# Layers a classifier takes over, by name (see toolkit.text.models).
ENCODER_LAYERS = ("embedding", "deep_rnn")
# The encoder cache: `--encoder-cache`, else this variable, else
# ~/.cache/toolkit/encoders (beside the data cache), whatever the current
# folder.
CACHE_ENV_VAR = "TOOLKIT_ENCODER_CACHE"
DEFAULT_CACHE = pathlib.Path.home() / ".cache" / "toolkit" / "encoders"


def encoder_cache_dir(
    cache_dir: str | os.PathLike | None = None,
) -> pathlib.Path:
    """Where pretrained encoders are cached, one folder per fingerprint:
    `cache_dir`, else `$TOOLKIT_ENCODER_CACHE`, else
    `~/.cache/toolkit/encoders`; always an absolute path, so runs from any
    folder share it."""
    chosen = cache_dir or os.environ.get(CACHE_ENV_VAR) or DEFAULT_CACHE
    return pathlib.Path(chosen).expanduser().resolve()


class EncoderMismatchError(ValueError):
    """A pretrained encoder does not fit the classifier it should start."""


def digest(values: Sequence[str]) -> str:
    """sha256 of the strings in order (each followed by a NUL byte)."""
    hasher = hashlib.sha256()
    for value in values:
        hasher.update(value.encode("utf-8"))
        hasher.update(b"\0")
    return hasher.hexdigest()


@dataclasses.dataclass
class Encoder:
    """A pretrained encoder: `info` from `encoder.json` (shape, vocabulary
    digest, fingerprint, held-out perplexity, training record) and the
    weights of each layer in `ENCODER_LAYERS`."""

    path: pathlib.Path
    info: dict
    weights: dict[str, list[np.ndarray]]


def load_encoder(path: str | os.PathLike) -> Encoder:
    """Read a pretrained encoder folder (a cache entry)."""
    path = pathlib.Path(path)
    info_path = path / ENCODER_FILE
    if not info_path.is_file():
        raise EncoderMismatchError(
            f"{path} holds no pretrained encoder (no {ENCODER_FILE}): pass "
            "the folder a pretraining run finished in (the log names it), "
            "or leave --encoder out to pretrain one."
        )
    try:
        info = json.loads(info_path.read_text())
        with np.load(path / WEIGHTS_FILE) as archive:
            weights = {
                name: [
                    archive[f"{name}/{index}"]
                    for index in range(info["weight_counts"][name])
                ]
                for name in ENCODER_LAYERS
            }
    except (OSError, ValueError, KeyError) as error:
        raise EncoderMismatchError(
            f"{path} holds a damaged encoder ({type(error).__name__}: "
            f"{error}); delete the folder to pretrain it again."
        ) from error
    return Encoder(path, info, weights)


def vocabulary_digest(vocabulary: Sequence[str]) -> str:
    return digest(vocabulary)


def check_encoder(
    encoder: Encoder, expected_shape: dict, vocabulary: Sequence[str]
) -> None:
    """Refuse an encoder whose shape or vocabulary differ from what the
    classifier expects, listing every difference.

    Raises:
        EncoderMismatchError: with `key: encoder value != classifier value`
            for each difference.
    """
    differences = [
        f"{key}: encoder {encoder.info['shape'].get(key)!r} != classifier "
        f"{value!r}"
        for key, value in expected_shape.items()
        if encoder.info["shape"].get(key) != value
    ]
    if encoder.info["vocabulary_sha256"] != vocabulary_digest(vocabulary):
        differences.append(
            "vocabulary: the encoder was trained with other word ids "
            f"(sha256 {encoder.info['vocabulary_sha256'][:12]}... != "
            f"{vocabulary_digest(vocabulary)[:12]}...)"
        )
    if differences:
        raise EncoderMismatchError(
            f"The encoder in {encoder.path} does not fit this classifier: "
            + "; ".join(differences)
            + ". Use an encoder pretrained with the same vocabulary and "
            "shapes, or leave --encoder out to pretrain a matching one."
        )


def apply_encoder(model: keras.Model, encoder: Encoder) -> None:
    """Copy the encoder's weights into `model`'s `embedding` and
    `deep_rnn` layers (their weights in order, frozen or not)."""
    for name in ENCODER_LAYERS:
        variables = model.get_layer(name).weights
        values = encoder.weights[name]
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [tuple(v.shape) for v in values]:
            raise EncoderMismatchError(
                f"Layer {name!r} has weights of shapes {shapes}, but the "
                f"encoder in {encoder.path} has "
                f"{[tuple(v.shape) for v in values]}."
            )
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def save_encoder(folder, lm, info) -> None:
    arrays, counts = {}, {}
    for name, values in layer_weights(lm).items():
        counts[name] = len(values)
        for index, value in enumerate(values):
            arrays[f"{name}/{index}"] = value
    temporary = folder / f".{WEIGHTS_FILE}.tmp.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, folder / WEIGHTS_FILE)
    info = {**info, "weight_counts": counts}
    temporary = folder / f".{ENCODER_FILE}.tmp"
    temporary.write_text(json.dumps(info, indent=2))
    os.replace(temporary, folder / ENCODER_FILE)


def layer_weights(model) -> dict[str, list[np.ndarray]]:
    return {
        name: [np.asarray(v) for v in layer.weights]
        for name, layer in model.encoder_layers().items()
    }
