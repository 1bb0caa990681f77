"""Sampling text from a character language model.

`generate` reads through the model's `toolkit.stepping.StateRunner` with
batch size 1: the priming text in one call, then one character per call
with the states handed back in, so producing n characters costs n steps
rather than n^2.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np

from toolkit.data.char_lm import CharVocabulary
from toolkit.stepping import StateRunner


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
        model: a character LM from `toolkit.text.models.build_char_lm`.
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
    return vocabulary.decode(
        _generate_ids(
            StateRunner.for_model(model), ids, length, temperature, top_k, seed
        )
    )


def _generate_ids(runner, ids, length, temperature, top_k, seed) -> list:
    rng = np.random.default_rng(seed)
    logits, states = runner(ids[None, :], runner.initial_state(1))
    logits = logits[0, -1]
    generated = []
    for _ in range(length):
        next_id = choose(logits, temperature, top_k, rng)
        generated.append(next_id)
        logits, states = runner(np.array([[next_id]]), states)
        logits = logits[0, -1]
    return generated


class SampleWriter(keras.callbacks.Callback):
    """After every epoch, write text sampled at a few temperatures to
    `folder/epoch_XXX.txt` (the same prime and seed every epoch, so the
    files show how the model improves).

    Args:
        folder: where the sample files go (created if missing).
        vocabulary: the model's `CharVocabulary`.
        prime: the priming text, in the vocabulary.
        temperatures: one sample per temperature.
        length: characters per sample.
        seed: sampling seed.
    """

    def __init__(
        self,
        folder,
        vocabulary: CharVocabulary,
        prime: str,
        temperatures=(0.5, 0.8, 1.0),
        length: int = 300,
        seed: int | None = 0,
    ):
        super().__init__()
        self.folder = pathlib.Path(folder)
        self.vocabulary = vocabulary
        self.prime_ids = vocabulary.encode(prime)
        self.prime = prime
        self.temperatures = tuple(temperatures)
        self.length = length
        self.seed = seed
        self._runner = None

    def on_epoch_end(self, epoch, logs=None):
        if self._runner is None:
            # Shares the model's weights: always samples the current ones.
            self._runner = StateRunner.for_model(self.model)
        parts = []
        for temperature in self.temperatures:
            ids = _generate_ids(
                self._runner,
                self.prime_ids,
                self.length,
                temperature,
                None,
                self.seed,
            )
            parts.append(
                f"--- temperature {temperature:g} ---\n"
                f"{self.prime}{self.vocabulary.decode(ids)}\n"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch_{epoch + 1:03d}.txt"
        path.write_text("\n".join(parts), encoding="utf-8")
