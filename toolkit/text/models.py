"""Model builders: an embedding, a `DeepRNN` stack, a readout and a head."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from toolkit import _checks
from toolkit.pooling import MaskedGlobalPooling1D
from toolkit.text.encoder import EncoderSpec

POOLINGS = ("last", "mean", "max", "mean_max", "last_mean_max")
# `build_text_classifier`'s layer groups from the top down, as variable
# path prefixes: discriminative rates and gradual unfreezing act on these.
CLASSIFIER_LAYER_GROUPS = ("output", "deep_rnn", "embedding")


@keras.saving.register_keras_serializable(package="toolkit")
class ReverseTokens(keras.layers.Layer):
    """Each row's tokens in reverse order, padding kept at the end:
    `(batch, steps)` right-padded int ids (id 0 pads) -> the same shape.

    A classifier that starts with it reads every review from its last word
    to its first, as a backward language model does, and still takes the
    same ids (and raw text, once exported) as a forward one.
    """

    def call(self, ids):
        steps = ops.shape(ids)[1]
        lengths = ops.sum(
            ops.cast(ops.not_equal(ids, 0), "int32"), axis=1, keepdims=True
        )
        positions = ops.expand_dims(ops.arange(steps, dtype="int32"), 0)
        index = ops.where(
            positions < lengths, lengths - 1 - positions, positions
        )
        return ops.take_along_axis(ids, index, axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape


def average_classifiers(
    classifiers: Sequence[keras.Model], name: str = "ensemble"
) -> keras.Model:
    """One model whose output is the mean of the classifiers' outputs
    (each `(batch, timesteps)` ids -> `(batch, 1)` probability); their
    layers are shared, not copied."""
    if len(classifiers) < 2:
        raise ValueError(
            f"An ensemble needs at least 2 classifiers, got {len(classifiers)}."
        )
    tokens = keras.Input((None,), dtype="int32", name="token_ids")
    outputs = [classifier(tokens) for classifier in classifiers]
    probability = keras.layers.Average(name="average")(outputs)
    return keras.Model(tokens, probability, name=name)


def build_text_classifier(
    encoder: EncoderSpec,
    embedding_dropout: float = 0.0,
    pooling: str = "mean_max",
    head_dropout: float = 0.3,
    seed: int | None = None,
    reverse: bool = False,
    name: str = "text_classifier",
) -> keras.Model:
    """A binary text classifier over token ids.

    `Input (batch, timesteps) int -> Embedding (mask_zero) ->
    [SpatialDropout1D of embedding channels] -> DeepRNN -> pooling ->
    Dropout -> Dense(1, sigmoid)`. Id 0 is padding and is masked everywhere.

    Args:
        encoder: the embedding and the `DeepRNN` stack (`EncoderSpec`).
        embedding_dropout: fraction of embedding channels zeroed, the same
            channels at every timestep of a sequence
            (`keras.layers.SpatialDropout1D`).
        pooling: `"last"` (final state), `"mean"` or `"max"` over unmasked
            timesteps, `"mean_max"` (both, concatenated) or
            `"last_mean_max"` (the last unmasked step's output, mean and
            max, concatenated: ULMFiT's concat pooling).
        head_dropout: dropout before the output layer.
        seed: seeds every dropout layer.
        reverse: read each text backwards (`ReverseTokens` first), as a
            backward language model does.
        name: the model's name.

    Returns:
        A `keras.Model` mapping `(batch, timesteps)` int ids to `(batch, 1)`
        positive-class probabilities.
    """
    embedding_dropout = _checks.check_rate(
        "embedding_dropout", embedding_dropout
    )
    head_dropout = _checks.check_rate("head_dropout", head_dropout)
    if pooling not in POOLINGS:
        raise ValueError(
            "Received an invalid value for argument `pooling`, expected one "
            f"of {POOLINGS}, got {pooling!r}."
        )
    tokens = keras.Input((None,), dtype="int32", name="token_ids")
    ids = ReverseTokens(name="reverse_tokens")(tokens) if reverse else tokens
    x = encoder.embedding(mask_zero=True)(ids)
    if embedding_dropout:
        x = keras.layers.SpatialDropout1D(
            embedding_dropout, seed=seed, name="embedding_dropout"
        )(x)
    x = encoder.deep_rnn(return_sequences=pooling != "last", seed=seed)(x)
    if pooling in ("mean", "max"):
        x = MaskedGlobalPooling1D(pooling, name=f"{pooling}_pool")(x)
    elif pooling in ("mean_max", "last_mean_max"):
        modes = pooling.split("_")
        x = keras.layers.Concatenate(name=f"{pooling}_pool")(
            [MaskedGlobalPooling1D(m, name=f"{m}_pool")(x) for m in modes]
        )
    if head_dropout:
        x = keras.layers.Dropout(head_dropout, seed=seed, name="head_dropout")(
            x
        )
    probability = keras.layers.Dense(1, activation="sigmoid", name="output")(x)
    return keras.Model(tokens, probability, name=name)


def build_char_lm(
    encoder: EncoderSpec,
    stateful: bool = False,
    batch_size: int | None = None,
    seed: int | None = None,
) -> keras.Model:
    """A character language model that returns logits at every step.

    `Input (batch, timesteps) int -> Embedding -> DeepRNN (return_sequences)
    -> Dropout -> Dense(vocab_size)`, the encoder's `dropout` both between
    the recurrent layers and before the output layer. With `stateful=True`
    the recurrent state carries over from one batch to the next (truncated
    backpropagation through time); `batch_size` must then be fixed.

    Returns:
        A `keras.Model` mapping `(batch, timesteps)` ids to
        `(batch, timesteps, vocab_size)` logits.
    """
    if stateful and batch_size is None:
        raise ValueError(
            "Received `stateful=True` without `batch_size`: a stateful model "
            "carries one state per batch row, so the batch size must be "
            "fixed."
        )
    ids = keras.Input(
        (None,), batch_size=batch_size, dtype="int32", name="char_ids"
    )
    x = encoder.embedding()(ids)
    x = encoder.deep_rnn(stateful=stateful, seed=seed)(x)
    if encoder.dropout:
        x = keras.layers.Dropout(
            encoder.dropout, seed=seed, name="output_dropout"
        )(x)
    logits = keras.layers.Dense(encoder.vocab_size, name="logits")(x)
    return keras.Model(ids, logits, name="char_lm")
