"""`EncoderSpec`: the token-ids -> embedding -> `DeepRNN` encoder that the
text classifier, the word language model and the character LM share,
described once.

Each value is defaulted and validated here, where the spec is built; the
model builders (`toolkit.text.models.build_text_classifier`,
`build_char_lm`, `toolkit.text.word_lm.WordLanguageModel`) and LM
pretraining (`toolkit.text.pretraining.PretrainConfig`) take the spec whole.

    encoder = EncoderSpec(vocab_size=20_000, units=(128, 128))
    model = build_text_classifier(encoder, pooling="mean_max")
"""

from __future__ import annotations

import dataclasses

import keras

from toolkit import _checks
from toolkit.deep import DeepRNN

CELLS = ("lstm", "vanilla", "layernorm", "peephole", "projection")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """An embedding and a stack of recurrent layers over token ids.

    Attributes:
        vocab_size: token ids, padding (0) and out-of-vocabulary included;
            at least 2.
        embedding_dim: embedding width.
        cell: every layer's: `"lstm"`, `"vanilla"`, `"layernorm"`,
            `"peephole"` or `"projection"` (see `toolkit.DeepRNN.from_spec`).
        proj_size: width of h in a `"projection"` cell (below each
            layer's width); `None` for the other cells.
        units: one width per recurrent layer (per direction); an int is one
            layer.
        bidirectional: every layer reads both directions (concatenated).
        residual: skip connections between equal-width layers (see
            `toolkit.DeepRNN`).
        dropout: between recurrent layers, in [0, 1).
        recurrent_dropout: on h_{t-1} in every layer, one mask per
            sequence, in [0, 1).
    """

    vocab_size: int
    embedding_dim: int = 128
    cell: str = "lstm"
    units: tuple[int, ...] = (128,)
    bidirectional: bool = False
    residual: bool = False
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    proj_size: int | None = None

    def __post_init__(self):
        units = self.units
        units = (units,) if isinstance(units, int) else tuple(units)
        if not units:
            raise _checks.ArgumentError(
                "units", "one width per recurrent layer", units
            )
        units = tuple(_checks.check_positive_int("units", u) for u in units)
        object.__setattr__(self, "units", units)
        _checks.check_positive_int("vocab_size", self.vocab_size)
        if self.vocab_size < 2:
            raise _checks.ArgumentError(
                "vocab_size",
                "at least 2 (padding and one word)",
                self.vocab_size,
            )
        _checks.check_positive_int("embedding_dim", self.embedding_dim)
        if self.cell not in CELLS:
            raise _checks.ArgumentError(
                "cell", f"one of {list(CELLS)}", self.cell
            )
        _checks.check_rate("dropout", self.dropout)
        _checks.check_rate("recurrent_dropout", self.recurrent_dropout)
        if (self.cell == "projection") != (self.proj_size is not None):
            raise _checks.ArgumentError(
                "proj_size",
                "a width below every layer's with cell='projection', and "
                "None with any other cell",
                self.proj_size,
            )
        if self.proj_size is not None:
            _checks.check_positive_int("proj_size", self.proj_size)
            if self.proj_size >= min(units):
                raise _checks.ArgumentError(
                    "proj_size",
                    f"below every layer's width (units={list(units)})",
                    self.proj_size,
                )

    def check_one_direction(self) -> None:
        """Refuse a bidirectional encoder where a language model reads it:
        predicting the next word, it reads forwards only."""
        if self.bidirectional:
            raise ValueError(
                "Received a bidirectional `encoder`: a language model "
                "predicts the next word, so it reads forwards only."
            )

    def shape(self) -> dict:
        """What a pretrained encoder records and a classifier must match
        to take it over."""
        return {
            "vocab_size": self.vocab_size,
            "embedding_dim": self.embedding_dim,
            "units": list(self.units),
            "cell": self.cell,
            "residual": self.residual,
            # Only when set, so the shapes of other encoders stay as they
            # were recorded.
            **({"proj_size": self.proj_size} if self.proj_size else {}),
        }

    def embedding(self, mask_zero: bool = False) -> keras.layers.Embedding:
        """The `embedding` layer: `(batch, steps)` ids ->
        `(batch, steps, embedding_dim)`."""
        return keras.layers.Embedding(
            self.vocab_size,
            self.embedding_dim,
            mask_zero=mask_zero,
            name="embedding",
        )

    def deep_rnn(
        self,
        return_sequences: bool = True,
        stateful: bool = False,
        seed: int | None = None,
        locked_dropout: bool = False,
        **layer_kwargs,
    ) -> DeepRNN:
        """The `deep_rnn` stack; `layer_kwargs` go to every recurrent layer
        (such as `recurrent_weight_dropout`)."""
        if self.recurrent_dropout:
            layer_kwargs["recurrent_dropout"] = self.recurrent_dropout
        if self.proj_size is not None:
            layer_kwargs["proj_size"] = self.proj_size
        return DeepRNN.from_spec(
            list(self.units),
            cell=self.cell,
            dropout=self.dropout,
            residual=self.residual,
            bidirectional=self.bidirectional,
            return_sequences=return_sequences,
            stateful=stateful,
            seed=seed,
            locked_dropout=locked_dropout,
            layer_kwargs=layer_kwargs or None,
            name="deep_rnn",
        )
