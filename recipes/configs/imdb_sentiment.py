"""Presets for `recipes/imdb_sentiment.py`; every field is a `--key=value`
option."""

from __future__ import annotations

import dataclasses
from typing import Literal

from toolkit.config import check_strategy, require


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    # Data.
    dataset: str | None = None  # aclImdb/ folder or .tar.gz; None: data dir
    data_dir: str | None = None  # searched for the dataset (TOOLKIT_DATA_DIR)
    strict_data: bool = True  # require the published 25k/25k/50k counts
    validation_split: float = 0.1  # carved from train, never from test
    vocab_size: int = 20_000  # token ids incl. padding (0) and OOV (1)
    max_length: int = 400  # tokens kept per review (the first ones)
    bucket_boundaries: tuple[int, ...] = (64, 128, 192, 256, 320)
    # Model.
    embedding_dim: int = 128
    # Start the embedding from PPMI-SVD word vectors of the training and
    # unlabelled reviews (never validation or test); about 30 s on 2 cores.
    pretrained_embeddings: bool = True
    cell: Literal["lstm", "vanilla"] = "lstm"
    layers: int = 2  # recurrent layers in the DeepRNN stack
    units: int = 128  # width of every recurrent layer (each direction)
    bidirectional: bool = True
    residual: bool = False  # skip connections between equal-width layers
    dropout: float = 0.2  # between recurrent layers
    recurrent_dropout: float = 0.0  # on h_{t-1}, one mask per sequence
    embedding_dropout: float = 0.2  # whole embedding vectors
    pooling: Literal["last", "mean", "max", "mean_max"] = "mean_max"
    head_dropout: float = 0.3
    # Training.
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = 2e-3
    clipnorm: float = 1.0  # gradient-norm clipping, always on
    batch_size: int = 64
    epochs: int = 3
    patience: int = 1  # early stopping on validation loss
    jit_compile: bool = False  # XLA; needs fixed bucket shapes
    seed: int = 1337
    # Scale-out with tf.distribute (README "Several devices"); batch_size
    # is the global batch, split across the replicas.
    strategy: Literal["none", "mirrored", "multiworker"] = "none"
    cpu_devices: int | None = None  # mirrored: N logical CPU devices
    # Outputs.
    run_dir: str = "runs/imdb_sentiment"
    baseline: bool = True  # train the TF-IDF bigram baseline too
    export: bool = True  # SavedModel + .keras file
    verbose: int = 1  # 0 silent, 1 progress bar, 2 one line per epoch

    def validate(self) -> None:
        require(
            0.0 < self.validation_split < 1.0,
            "validation_split",
            "in (0, 1)",
            self.validation_split,
        )
        for key in (
            "vocab_size",
            "max_length",
            "embedding_dim",
            "units",
            "batch_size",
            "epochs",
        ):
            value = getattr(self, key)
            require(value > 0, key, "a positive integer", value)
        require(
            self.vocab_size > 2, "vocab_size", "greater than 2", self.vocab_size
        )
        require(1 <= self.layers <= 8, "layers", "between 1 and 8", self.layers)
        for key in (
            "dropout",
            "recurrent_dropout",
            "embedding_dropout",
            "head_dropout",
        ):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, key, "in [0, 1)", value)
        require(
            self.learning_rate > 0,
            "learning_rate",
            "positive",
            self.learning_rate,
        )
        require(
            self.clipnorm > 0,
            "clipnorm",
            "positive (clipping is always on)",
            self.clipnorm,
        )
        require(self.patience >= 0, "patience", "0 or more", self.patience)
        require(
            all(b > 0 for b in self.bucket_boundaries)
            and list(self.bucket_boundaries)
            == sorted(set(self.bucket_boundaries)),
            "bucket_boundaries",
            "increasing positive integers",
            self.bucket_boundaries,
        )
        require(self.verbose in (0, 1, 2), "verbose", "0, 1 or 2", self.verbose)
        check_strategy(self)
        if self.residual:
            require(
                self.layers >= 2
                and (self.layers >= 3 or self.pooling != "last"),
                "residual",
                "used with 2+ layers that return sequences (pooling "
                "other than 'last', or 3+ layers)",
                self.residual,
            )


PRESETS = {
    # The best model found for 2 CPU cores in about 15-20 minutes.
    "default": ImdbConfig(),
    # About a minute: a quick end-to-end check (tests, first contact).
    "smoke": ImdbConfig(
        vocab_size=2_000,
        max_length=64,
        bucket_boundaries=(32,),
        embedding_dim=16,
        layers=2,
        units=16,
        epochs=1,
        batch_size=32,
        baseline=True,
        run_dir="runs/imdb_smoke",
    ),
    # For a GPU: wider, deeper, longer reviews.
    "large": ImdbConfig(
        vocab_size=40_000,
        max_length=800,
        bucket_boundaries=(128, 256, 384, 512, 640),
        embedding_dim=256,
        layers=3,
        units=256,
        residual=True,
        recurrent_dropout=0.1,
        epochs=6,
        patience=2,
        batch_size=128,
        run_dir="runs/imdb_large",
    ),
}
