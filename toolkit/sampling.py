"""Sampling text from a character language model.

`generate` runs a stateful copy of the model with batch size 1: the priming
text is fed once, then one character at a time, so producing n characters
costs n steps rather than n^2.
"""

from __future__ import annotations

import keras
import numpy as np

from toolkit.data.char_lm import CharVocabulary


def choose(
    logits: np.ndarray,
    temperature: float,
    top_k: int | None,
    rng: np.random.Generator,
) -> int:
    """Draw an id from `logits` `(vocab,)`.

    `temperature` 0 returns the argmax; otherwise the logits are divided by
    it (lower is more conservative). `top_k` keeps only the k most likely
    ids before drawing.
    """
    if temperature < 0:
        raise ValueError(
            "Received an invalid value for argument `temperature`, expected "
            f"0 or more, got {temperature!r}."
        )
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = logits / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(
                "Received an invalid value for argument `top_k`, expected a "
                f"positive integer or None, got {top_k!r}."
            )
        cutoff = np.sort(scaled)[-min(top_k, scaled.size)]
        scaled = np.where(scaled >= cutoff, scaled, -np.inf)
    probabilities = np.exp(scaled - scaled.max())
    probabilities /= probabilities.sum()
    return int(rng.choice(probabilities.size, p=probabilities))


def stateful_copy(model: keras.Model, batch_size: int = 1) -> keras.Model:
    """The same network with `stateful=True` and a fixed `batch_size`,
    sharing nothing with `model` but a copy of its weights."""
    config = model.get_config()
    for layer in config["layers"]:
        # Rebuild every layer from the new batch-1 input, not from the
        # shapes recorded for `model`.
        layer.pop("build_config", None)
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [batch_size, None]
        if layer["class_name"] == "DeepRNN":
            layer["config"]["stateful"] = True
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def generate(
    model: keras.Model,
    vocabulary: CharVocabulary,
    prime: str,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> str:
    """`length` characters that follow `prime` (not included).

    Args:
        model: a character LM from `toolkit.models.build_char_lm`.
        vocabulary: the vocabulary it was trained with; `prime` must use
            only its characters (an error lists any others).
        prime: at least one character to start from.
        length: how many characters to generate.
        temperature, top_k: see `choose`.
        seed: the same seed gives the same text.
    """
    if not prime:
        raise ValueError(
            "Received an empty `prime`; give at least one "
            "character to start from."
        )
    if length < 0:
        raise ValueError(
            "Received an invalid value for argument `length`, expected 0 or "
            f"more, got {length!r}."
        )
    ids = vocabulary.encode(prime)
    runner = stateful_copy(model)
    rng = np.random.default_rng(seed)
    logits = runner.predict_on_batch(ids[None, :])[0, -1]
    generated = []
    for _ in range(length):
        next_id = choose(logits, temperature, top_k, rng)
        generated.append(next_id)
        logits = runner.predict_on_batch(np.array([[next_id]]))[0, -1]
    return vocabulary.decode(generated)
