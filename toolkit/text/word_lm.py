"""Word-level language models that pretrain a text classifier's encoder.

The encoder is the classifier's `Embedding` + unidirectional `DeepRNN`
(`toolkit.text.models.build_text_classifier` names them `embedding` and
`deep_rnn`). `WordLanguageModel` puts a softmax over the vocabulary on top
of the same two layers and learns to predict the next word of a stream of
concatenated reviews (id 0, padding in the classifier, marks the end of each
review in the stream). Once trained, its `embedding` and `deep_rnn` weights
start the classifier (Dai & Le 2015; Howard & Ruder 2018).

The softmax over a 20k-30k word vocabulary costs more than the LSTM on a
CPU. Training therefore uses a sampled softmax (Jean et al. 2015): each
step scores the true next word against `num_sampled` candidates drawn from
a log-uniform (Zipfian) distribution over the frequency-sorted vocabulary,
with the logits corrected by the log of each candidate's expected count.
Evaluation always uses the full softmax, so perplexities are exact.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from toolkit import _checks
from toolkit.stepping import StateRunner
from toolkit.text.encoder import EncoderSpec
from toolkit.text.evaluation import StreamedValidation, streamed_cross_entropy


def replicas_in_sync() -> int:
    """Replicas of the `tf.distribute` strategy in force (1 without one,
    and on other backends)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def log_uniform_log_probabilities(ids, vocab_size: int):
    """log q(k) of the log-uniform distribution over `[0, vocab_size)`:
    q(k) = log((k + 2) / (k + 1)) / log(vocab_size + 1)."""
    ids = ops.cast(ids, "float32")
    return ops.log(
        ops.log((ids + 2.0) / (ids + 1.0)) / math.log(vocab_size + 1.0)
    )


def sample_log_uniform(num_sampled: int, vocab_size: int, seed):
    """`num_sampled` ids from the log-uniform distribution, with
    replacement: floor(exp(u log(V + 1))) - 1 for u ~ U[0, 1)."""
    u = keras.random.uniform((num_sampled,), seed=seed)
    ids = ops.floor(ops.exp(u * math.log(vocab_size + 1.0))) - 1.0
    return ops.clip(ops.cast(ids, "int32"), 0, vocab_size - 1)


@keras.saving.register_keras_serializable(package="toolkit")
class SoftmaxHead(keras.layers.Layer):
    """The output layer of a word LM: logits `h W^T + b` over the
    vocabulary, computed in full or for sampled candidates only.

    Args:
        vocab_size: number of word ids.

    Weights: `kernel` `(vocab_size, features)` (one row per word, so a
    sampled step gathers rows) and `bias` `(vocab_size,)`.
    """

    def __init__(self, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = _checks.check_positive_int("vocab_size", vocab_size)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(self.vocab_size, input_shape[-1]),
            initializer="glorot_uniform",
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.vocab_size,), initializer="zeros", name="bias"
        )

    def call(self, hidden):
        """Full logits: `(..., features) -> (..., vocab_size)`."""
        return ops.matmul(hidden, ops.transpose(self.kernel)) + self.bias

    def token_losses(self, hidden, targets):
        """Full-softmax cross-entropy of every position, in nats:
        `hidden (..., features)`, `targets (...)` int -> `(...)`."""
        logits = ops.cast(self(hidden), "float32")
        picked = ops.take_along_axis(
            logits, ops.expand_dims(ops.cast(targets, "int32"), -1), axis=-1
        )[..., 0]
        return ops.logsumexp(logits, axis=-1) - picked

    def sampled_losses(self, hidden, targets, num_sampled: int, seed):
        """Sampled-softmax cross-entropy of every position: the true word
        against `num_sampled` log-uniform candidates shared by the batch.

        Each logit is corrected by subtracting log(num_sampled * q(k)), the
        log of the expected number of times word k is drawn, and a
        candidate equal to the true word is removed from that position's
        softmax ("accidental hits"). Returns `(...)` like `token_losses`.
        """
        features = ops.shape(hidden)[-1]
        flat_hidden = ops.reshape(hidden, (-1, features))
        flat_targets = ops.reshape(ops.cast(targets, "int32"), (-1,))
        sampled = sample_log_uniform(num_sampled, self.vocab_size, seed)
        log_count = math.log(num_sampled)

        true_rows = ops.take(self.kernel, flat_targets, axis=0)
        true_logits = (
            ops.sum(flat_hidden * true_rows, axis=-1)
            + ops.take(self.bias, flat_targets)
            - log_uniform_log_probabilities(flat_targets, self.vocab_size)
            - log_count
        )
        sampled_logits = (
            ops.matmul(
                flat_hidden,
                ops.transpose(ops.take(self.kernel, sampled, axis=0)),
            )
            + ops.take(self.bias, sampled)
            - log_uniform_log_probabilities(sampled, self.vocab_size)
            - log_count
        )
        hits = ops.equal(
            ops.expand_dims(flat_targets, 1), ops.expand_dims(sampled, 0)
        )
        sampled_logits = ops.where(hits, -1e9, sampled_logits)
        logits = ops.concatenate(
            [ops.expand_dims(true_logits, 1), sampled_logits], axis=1
        )
        losses = ops.logsumexp(logits, axis=1) - true_logits
        return ops.reshape(losses, ops.shape(targets))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size}


@keras.saving.register_keras_serializable(package="toolkit")
class WordLanguageModel(keras.Model):
    """Next-word prediction over token ids, with the layers of a text
    classifier's encoder.

    `ids (batch, timesteps) -> Embedding -> [word dropout] -> DeepRNN
    (return_sequences) -> [dropout] -> SoftmaxHead`. Calling the model
    returns the top layer's hidden states `(batch, timesteps, units)`;
    `compute_loss` turns them into the mean cross-entropy of the targets,
    sampled while training (when `num_sampled` is set) and full otherwise.

    Args:
        encoder: the embedding and the `DeepRNN` stack (`EncoderSpec`;
            `vocab_size` counts id 0, the end-of-review marker). Its
            `dropout` is also applied before the softmax; it must read
            forwards only (`bidirectional=False`).
        embedding_dropout: fraction of words whose whole embedding vector
            is zeroed (one draw per position).
        word_type_dropout: fraction of vocabulary words dropped for a whole
            batch: every occurrence of a dropped word reads a zero vector
            (AWD-LSTM's embedding dropout, Gal & Ghahramani 2016), the
            others are scaled by `1 / (1 - rate)`.
        recurrent_weight_dropout: DropConnect on every recurrent layer's
            W_h, one mask per batch (AWD-LSTM's weight drop; see
            `toolkit.LSTM`).
        locked_dropout: the dropout between layers and before the softmax
            uses one mask per sequence for all timesteps (AWD-LSTM's locked
            dropout) instead of a new one at every timestep.
        num_sampled: candidates of the sampled softmax; `None` or 0 trains
            with the full softmax.
        stateful: carry the state across batches (truncated
            backpropagation through time); needs `batch_size`.
        batch_size: the fixed batch size of a stateful model.
        seed: seeds dropout and the candidate sampler.
    """

    def __init__(
        self,
        encoder: EncoderSpec,
        embedding_dropout: float = 0.0,
        num_sampled: int | None = 1024,
        stateful: bool = False,
        batch_size: int | None = None,
        seed: int | None = None,
        word_type_dropout: float = 0.0,
        recurrent_weight_dropout: float = 0.0,
        locked_dropout: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(encoder, dict):  # from get_config
            encoder = EncoderSpec(**encoder)
        encoder.check_one_direction()
        self.encoder = encoder
        vocab_size = encoder.vocab_size
        self.vocab_size = vocab_size
        self.embedding_dim = encoder.embedding_dim
        self.units = list(encoder.units)
        self.dropout = encoder.dropout
        self.embedding_dropout = _checks.check_rate(
            "embedding_dropout", embedding_dropout
        )
        self.word_type_dropout = _checks.check_rate(
            "word_type_dropout", word_type_dropout
        )
        self.recurrent_weight_dropout = _checks.check_rate(
            "recurrent_weight_dropout", recurrent_weight_dropout
        )
        self.locked_dropout = bool(locked_dropout)
        if num_sampled is not None and num_sampled < 0:
            raise ValueError(
                "Received an invalid value for argument `num_sampled`, "
                f"expected 0 or a positive integer, got {num_sampled!r}."
            )
        if num_sampled and num_sampled >= vocab_size:
            raise ValueError(
                f"Received num_sampled={num_sampled} for a vocabulary of "
                f"{vocab_size}: sample fewer candidates than there are "
                "words, or pass 0 for the full softmax."
            )
        self.num_sampled = int(num_sampled or 0)
        if stateful and batch_size is None:
            raise ValueError(
                "Received `stateful=True` without `batch_size`: a stateful "
                "model carries one state per batch row."
            )
        self.stateful = bool(stateful)
        self.batch_size = batch_size
        self.seed = seed
        self.embedding = encoder.embedding()
        self.word_dropout = keras.layers.Dropout(
            self.embedding_dropout,
            noise_shape=(None, None, 1),
            seed=seed,
            name="word_dropout",
        )
        self.deep_rnn = encoder.deep_rnn(
            stateful=stateful,
            seed=seed,
            locked_dropout=self.locked_dropout,
            **(
                {"recurrent_weight_dropout": self.recurrent_weight_dropout}
                if self.recurrent_weight_dropout
                else {}
            ),
        )
        self.output_dropout = keras.layers.Dropout(
            self.dropout,
            noise_shape=(None, 1, None) if self.locked_dropout else None,
            seed=seed,
            name="output_dropout",
        )
        self.word_type_seed = keras.random.SeedGenerator(
            None if seed is None else seed + 4243, name="word_type_seed"
        )
        self.head = SoftmaxHead(vocab_size, name="softmax")
        self.sampler_seed = keras.random.SeedGenerator(
            seed, name="sampler_seed"
        )

    def call(self, ids, training=False):
        x = self.drop_word_types(self.embedding(ids), ids, training)
        x = self.word_dropout(x, training=training)
        x = self.deep_rnn(x, training=training)
        return self.output_dropout(x, training=training)

    def drop_word_types(self, embedded, ids, training=False):
        """`embedded (batch, steps, dim)` with `word_type_dropout` of the
        vocabulary zeroed for this batch (the others scaled up)."""
        if not (training and self.word_type_dropout):
            return embedded
        keep = keras.random.dropout(
            ops.ones((self.vocab_size,), dtype=embedded.dtype),
            rate=self.word_type_dropout,
            seed=self.word_type_seed,
        )
        return embedded * ops.expand_dims(ops.take(keep, ids), -1)

    def build(self, input_shape=None):
        # A stateful model needs its fixed batch size at build time.
        batch = self.batch_size if self.stateful else None
        self.embedding.build((batch, None))
        self.deep_rnn.build((batch, None, self.embedding_dim))
        self.head.build((None, self.units[-1]))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        if training and self.num_sampled:
            losses = self.head.sampled_losses(
                y_pred, y, self.num_sampled, self.sampler_seed
            )
        else:
            losses = self.head.token_losses(y_pred, y)
        # Each replica returns its share, as Keras's own losses do: the
        # replicas' gradients are summed, and the sum must be one device's
        # gradient of the global batch's mean.
        return ops.mean(losses) / replicas_in_sync()

    def encoder_layers(self) -> dict:
        """The layers a classifier takes over, by their classifier names."""
        return {"embedding": self.embedding, "deep_rnn": self.deep_rnn}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "encoder" not in config:  # saved by toolkit 0.1: flat settings
            config["encoder"] = {
                key: config.pop(key)
                for key in (
                    "vocab_size",
                    "embedding_dim",
                    "units",
                    "cell",
                    "residual",
                    "dropout",
                )
                if key in config
            }
        return cls(**config)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": dataclasses.asdict(self.encoder),
            "embedding_dropout": self.embedding_dropout,
            "num_sampled": self.num_sampled,
            "stateful": self.stateful,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "word_type_dropout": self.word_type_dropout,
            "recurrent_weight_dropout": self.recurrent_weight_dropout,
            "locked_dropout": self.locked_dropout,
        }


def review_stream(rows: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """One `(n,)` int32 stream of word ids: the reviews in a seeded random
    order, each followed by id 0 (end of review). Padding ids (0) inside a
    row are dropped first, so an empty review leaves only its marker."""
    order = np.random.default_rng(seed).permutation(len(rows))
    pieces = []
    for index in order:
        row = np.asarray(rows[index])
        pieces.append(row[row != 0])
        pieces.append(np.zeros(1, dtype=row.dtype))
    if not pieces:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate(pieces).astype(np.int32)


def cross_entropy(
    model: WordLanguageModel,
    ids: np.ndarray,
    batch_size: int = 16,
    sequence_length: int = 128,
) -> dict:
    """Full-softmax cross-entropy of `model` over a whole stream, in nats
    per word, and its perplexity.

    The model's `StateRunner` reads `ids` as `batch_size` contiguous
    streams, handing the states from chunk to chunk; every word but the
    first is scored exactly once.

    Returns:
        `{"nats": float, "perplexity": float, "words": int}`.
    """
    return _score(
        model, StateRunner.for_model(model), ids, batch_size, sequence_length
    )


def _score(model, runner, ids, batch_size, sequence_length):
    def chunk_losses(hidden, targets):
        return np.asarray(model.head.token_losses(hidden, targets))

    result = streamed_cross_entropy(
        runner, ids, batch_size, sequence_length, chunk_losses
    )
    return {
        "nats": result["nats"],
        "perplexity": float(math.exp(result["nats"])),
        "words": result["count"],
    }


class HeldOutPerplexity(StreamedValidation):
    """After every epoch, score a held-out stream with the full softmax
    and add `val_loss` (nats per word) and `val_perplexity` to the logs.

    Args:
        ids: the held-out stream (`review_stream` of held-out reviews).
        batch_size, sequence_length: see `cross_entropy`.
    """

    def __init__(self, ids, batch_size: int = 16, sequence_length: int = 128):
        super().__init__(ids, batch_size, sequence_length)

    def score(self, runner) -> dict:
        return _score(
            self.model, runner, self.ids, self.batch_size, self.sequence_length
        )

    def add_logs(self, logs, result):
        logs["val_loss"] = result["nats"]
        logs["val_perplexity"] = result["perplexity"]
