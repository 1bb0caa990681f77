"""Presets for `recipes/char_lm.py`; every field is a `--key=value`
option."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Literal

from toolkit.training.config import (
    RecurrentCell,
    check_strategy,
    checked_specs,
    require,
)

if TYPE_CHECKING:  # the specs import Keras: only when they are built
    from toolkit.text.encoder import EncoderSpec
    from toolkit.training.specs import OptimizerSpec


@dataclasses.dataclass(frozen=True)
class CharLmConfig:
    # Data. `corpus`: "shakespeare" (90/10 split), "text8" (90/5/5),
    # "imdb-unsup" (IMDB's 50,000 unlabelled reviews in text8 format,
    # 90/5/5; it is not text8) or the path of any UTF-8 text file (90/5/5).
    corpus: str = "shakespeare"
    data_dir: str | None = None  # searched for the corpus (TOOLKIT_DATA_DIR)
    strict_data: bool = True  # text8 must have 10^8 chars; IMDB its counts
    text8_format: bool = False  # for a file: convert it with normalize_text8
    max_chars: int | None = None  # keep only the first characters (text8)
    # Model: Embedding -> DeepRNN -> Dense over the characters.
    embedding_dim: int = 64  # width of the character embedding
    cell: RecurrentCell = "lstm"  # recurrent cell of every layer
    proj_size: int | None = None  # width of h with cell="projection"
    layers: int = 2  # recurrent layers in the DeepRNN stack
    units: int = 192  # width of every recurrent layer
    residual: bool = False  # skip connections between equal-width layers
    dropout: float = 0.0  # between layers and before the output layer
    # Training. "stateful": truncated backprop through time, state carried
    # across consecutive batches and reset every epoch; "windows": shuffled
    # independent windows, each starting from a zero state.
    batching: Literal["stateful", "windows"] = "stateful"
    batch_size: int = 32  # sequences per batch (streams when stateful)
    sequence_length: int = 64  # characters per window (TBPTT length)
    # The optimizer; it always clips gradients (clipnorm).
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = 5e-3  # peak rate
    schedule: Literal["constant", "cosine"] = "cosine"  # over the whole run
    warmup_steps: int = 50  # linear warm-up to the peak rate
    final_lr_fraction: float = 0.02  # cosine ends at this x learning_rate
    clipnorm: float = 1.0  # gradient-norm clipping, always on
    epochs: int = 4  # passes over the training split (or steps_per_epoch)
    steps_per_epoch: int | None = None  # None: a whole pass over train
    max_train_seconds: float | None = None  # stop after this much training
    patience: int | None = None  # early stopping on validation loss
    jit_compile: bool = True  # XLA (fixed batch shapes, so it pays off)
    seed: int = 1337  # weights, dropout and data order
    # Scale-out with tf.distribute (docs/distribute.md); batch_size
    # is the global batch, split across the replicas. Needs "windows".
    strategy: Literal["none", "mirrored", "multiworker"] = "none"
    cpu_devices: int | None = None  # mirrored: N logical CPU devices
    # Evaluation over whole splits: this many parallel streams, read in
    # chunks of eval_sequence_length with the state carried across chunks.
    eval_batch_size: int = 16
    eval_sequence_length: int = 256  # characters per evaluation chunk
    # Outputs.
    # Where the run writes; the same command resumes it.
    run_dir: str = "runs/char_lm"
    sample_prime: str | None = None  # None: validation's first 32 chars
    # One sample per temperature after each epoch.
    sample_temperatures: tuple[float, ...] = (0.5, 0.8, 1.0)
    sample_length: int = 300  # characters per sample
    export: bool = True  # SavedModel (generate, next_char_probs) + .keras
    verbose: int = 1  # 0 silent, 1 progress bar, 2 one line per epoch

    def validate(self) -> None:
        for key in (
            "batch_size",
            "sequence_length",
            "epochs",
            "eval_batch_size",
            "eval_sequence_length",
        ):
            value = getattr(self, key)
            require(value > 0, key, "a positive integer", value)
        require(1 <= self.layers <= 8, "layers", "between 1 and 8", self.layers)
        for key in ("steps_per_epoch", "max_chars", "patience"):
            value = getattr(self, key)
            require(value is None or value > 0, key, "positive or none", value)
        require(
            self.max_train_seconds is None or self.max_train_seconds > 0,
            "max_train_seconds",
            "positive or none",
            self.max_train_seconds,
        )
        require(
            self.sample_length >= 0,
            "sample_length",
            "0 or more",
            self.sample_length,
        )
        require(
            all(t >= 0 for t in self.sample_temperatures),
            "sample_temperatures",
            "0 or more each",
            self.sample_temperatures,
        )
        require(self.verbose in (0, 1, 2), "verbose", "0, 1 or 2", self.verbose)
        check_strategy(self)
        require(
            self.strategy == "none" or self.batching == "windows",
            "batching",
            "'windows' under a distribution strategy. Stateful TBPTT keeps "
            "each layer's state in one variable, which tf.distribute would "
            "mirror across replicas, so replicas would overwrite each "
            "other's streams; use --batching=windows with "
            f"--strategy={self.strategy}",
            self.batching,
        )
        if self.residual:
            require(
                self.layers >= 2,
                "residual",
                "used with 2 or more layers",
                self.residual,
            )
        # The specs check their own values (units, dropout, rates, ...).
        checked_specs(
            self,
            lambda: self.encoder_spec(2),
            self.optimizer_spec,
            renames={
                "name": "optimizer",
                "final_fraction": "final_lr_fraction",
            },
        )

    def encoder_spec(self, vocab_size: int) -> EncoderSpec:
        """The model's embedding and recurrent stack over `vocab_size`
        characters."""
        from toolkit.text.encoder import EncoderSpec

        return EncoderSpec(
            vocab_size=vocab_size,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            proj_size=self.proj_size,
            units=(self.units,) * self.layers,
            residual=self.residual,
            dropout=self.dropout,
        )

    def optimizer_spec(self) -> OptimizerSpec:
        """How the model trains."""
        from toolkit.training.specs import OptimizerSpec

        return OptimizerSpec(
            self.optimizer,
            self.learning_rate,
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            final_fraction=self.final_lr_fraction,
            clipnorm=self.clipnorm,
        )


PRESETS = {
    # Tiny Shakespeare on 2 CPU cores: 4 passes in about 115 s of
    # training, stopped at 130 s on a slower machine.
    "shakespeare": CharLmConfig(
        max_train_seconds=130.0, run_dir="runs/shakespeare"
    ),
    # The same budget with the layer-normalised LSTM (toolkit.LayerNormLSTM).
    "shakespeare-layernorm": CharLmConfig(
        cell="layernorm",
        max_train_seconds=130.0,
        run_dir="runs/shakespeare_layernorm",
    ),
    # Tiny Shakespeare, larger and regularised: about 30 minutes on 2 CPU
    # cores (a few on a GPU).
    "shakespeare-large": CharLmConfig(
        embedding_dim=128,
        units=512,
        dropout=0.2,
        sequence_length=128,
        learning_rate=4e-3,
        warmup_steps=100,
        epochs=12,
        run_dir="runs/shakespeare_large",
    ),
    # The standard text8 task (90M/5M/5M characters), sized for one GPU.
    "text8": CharLmConfig(
        corpus="text8",
        embedding_dim=128,
        layers=3,
        units=1024,
        residual=True,
        dropout=0.1,
        batch_size=128,
        sequence_length=256,
        learning_rate=2e-3,
        warmup_steps=500,
        final_lr_fraction=0.05,
        epochs=20,
        steps_per_epoch=2_000,
        eval_batch_size=512,
        eval_sequence_length=512,
        run_dir="runs/text8",
    ),
    # text8-format corpora on 2 CPU cores: about 15 minutes of training.
    "text8-cpu": CharLmConfig(
        corpus="text8",
        embedding_dim=64,
        layers=2,
        units=256,
        batch_size=64,
        sequence_length=64,
        learning_rate=3e-3,
        warmup_steps=100,
        epochs=6,
        steps_per_epoch=1_000,
        eval_batch_size=256,
        eval_sequence_length=256,
        run_dir="runs/text8_cpu",
    ),
    # Seconds: an end-to-end check (tests, first contact).
    "smoke": CharLmConfig(
        embedding_dim=8,
        layers=2,
        units=16,
        batch_size=4,
        sequence_length=16,
        warmup_steps=2,
        epochs=2,
        steps_per_epoch=10,
        eval_batch_size=4,
        eval_sequence_length=64,
        sample_length=40,
        run_dir="runs/char_lm_smoke",
    ),
}
DEFAULT_PRESET = "shakespeare"
