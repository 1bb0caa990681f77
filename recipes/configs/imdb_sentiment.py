"""Presets for `recipes/imdb_sentiment.py`; every field is a `--key=value`
option."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar, Literal

from toolkit.training.config import (
    RecurrentCell,
    check_strategy,
    checked_specs,
    require,
)

if TYPE_CHECKING:  # the specs import Keras: only when they are built
    from toolkit.text.encoder import EncoderSpec
    from toolkit.text.pretraining import PretrainConfig
    from toolkit.training.specs import OptimizerSpec


@dataclasses.dataclass(frozen=True)
class LanguageModelPhase:
    """The language-model pretraining of `--pretrain` (`--lm.KEY=VALUE`)."""

    epochs: int = 3  # passes over the LM stream (cosine decay)
    batch_size: int = 64  # parallel streams (stateful TBPTT)
    sequence_length: int = 70  # words per truncated-BPTT window
    num_sampled: int = 1024  # sampled-softmax candidates; 0: full
    learning_rate: float = 2e-3  # peak rate of the LM pretraining
    dropout: float = 0.1  # between layers and before the softmax
    embedding_dropout: float = 0.1  # whole word vectors
    # AWD-LSTM regularisation of the LM (Merity et al. 2018): whole
    # vocabulary words dropped per batch, DropConnect on the recurrent
    # kernel (one mask per batch), one dropout mask per sequence.
    word_type_dropout: float = 0.0  # vocabulary words dropped per batch
    weight_dropout: float = 0.0  # DropConnect rate on the LM's W_h
    locked_dropout: bool = False  # one dropout mask per sequence
    max_train_seconds: float | None = None  # time budget; None: none
    heldout_reviews: int = 500  # unlabelled reviews scored, not trained
    max_reviews: int | None = None  # cap on LM training reviews
    # How the LM reads its stream: "streams" (state carried across
    # batches), "windows" (independent shuffled windows, which a --strategy
    # can split); "auto": streams on one device, windows under a strategy.
    batching: Literal["auto", "streams", "windows"] = "auto"

    def validate(self, vocab_size: int, strategy: str) -> None:
        for key in (
            "epochs",
            "batch_size",
            "sequence_length",
            "heldout_reviews",
        ):
            value = getattr(self, key)
            require(value > 0, f"lm.{key}", "a positive integer", value)
        require(
            self.max_reviews is None or self.max_reviews >= 2,
            "lm.max_reviews",
            "None or at least 2",
            self.max_reviews,
        )
        require(
            0 <= self.num_sampled < vocab_size,
            "lm.num_sampled",
            f"0 (full softmax) or fewer than vocab_size ({vocab_size})",
            self.num_sampled,
        )
        require(
            self.max_train_seconds is None or self.max_train_seconds > 0,
            "lm.max_train_seconds",
            "positive or None",
            self.max_train_seconds,
        )
        for key in (
            "dropout",
            "embedding_dropout",
            "word_type_dropout",
            "weight_dropout",
        ):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, f"lm.{key}", "in [0, 1)", value)
        require(
            self.learning_rate > 0,
            "lm.learning_rate",
            "positive",
            self.learning_rate,
        )
        require(
            strategy == "none" or self.batching != "streams",
            "lm.batching",
            "'windows' or 'auto' under --strategy (a strategy splits each "
            "batch across replicas; carried streams cannot be split)",
            self.batching,
        )


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    # config.json files written before the LM settings were nested.
    LEGACY_KEYS: ClassVar[dict[str, str]] = {
        "lm_epochs": "lm.epochs",
        "lm_batch_size": "lm.batch_size",
        "lm_sequence_length": "lm.sequence_length",
        "lm_num_sampled": "lm.num_sampled",
        "lm_learning_rate": "lm.learning_rate",
        "lm_dropout": "lm.dropout",
        "lm_embedding_dropout": "lm.embedding_dropout",
        "lm_word_type_dropout": "lm.word_type_dropout",
        "lm_weight_dropout": "lm.weight_dropout",
        "lm_locked_dropout": "lm.locked_dropout",
        "lm_max_train_seconds": "lm.max_train_seconds",
        "lm_heldout_reviews": "lm.heldout_reviews",
        "lm_max_reviews": "lm.max_reviews",
        "lm_batching": "lm.batching",
        # The IMDB location's option was called --dataset.
        "dataset": "imdb_path",
    }

    # Data.
    # The aclImdb/ folder or aclImdb_v1.tar.gz itself; None: looked for in
    # --data-dir, then $TOOLKIT_DATA_DIR, then ~/.cache/toolkit/data (and
    # downloaded there when missing).
    imdb_path: str | None = None
    data_dir: str | None = None  # folder searched for the IMDB data
    strict_data: bool = True  # require the published 25k/25k/50k counts
    validation_split: float = 0.1  # carved from train, never from test
    # "movie": whole movies (from train/urls_*.txt) go to validation, so it
    # tracks test, whose movies are disjoint from train's; "random":
    # reviews drawn at random, stratified by label.
    validation_by: Literal["movie", "random"] = "movie"
    # Subsamples for quick runs (smoke): at most this many training / test
    # reviews, drawn with the seed and balanced; None: all of them.
    max_train_reviews: int | None = None
    max_test_reviews: int | None = None  # the same for the test reviews
    vocab_size: int = 20_000  # token ids incl. padding (0) and OOV (1)
    max_length: int = 400  # tokens kept per review (the first ones)
    # Review lengths that batches are bucketed by.
    bucket_boundaries: tuple[int, ...] = (64, 128, 192, 256, 320)
    # Model.
    embedding_dim: int = 128  # width of the word embedding
    # Start the embedding from PPMI-SVD word vectors of the training and
    # unlabelled reviews (never validation or test); about 30 s on 2 cores.
    pretrained_embeddings: bool = True
    cell: RecurrentCell = "lstm"  # recurrent cell of every layer
    proj_size: int | None = None  # width of h with cell="projection"
    layers: int = 2  # recurrent layers in the DeepRNN stack
    units: int = 128  # width of every recurrent layer (each direction)
    # Each layer reads both directions (concatenated).
    bidirectional: bool = True
    # Which way the classifier (and its pretrained LM) reads a review:
    # "backward" from the last word to the first; "both" trains a forward
    # and a backward model (each with its own LM) and averages them.
    direction: Literal["forward", "backward", "both"] = "forward"
    residual: bool = False  # skip connections between equal-width layers
    dropout: float = 0.2  # between recurrent layers
    recurrent_dropout: float = 0.0  # on h_{t-1}, one mask per sequence
    embedding_dropout: float = 0.2  # embedding channels, whole sequence
    # How the sequence of outputs becomes one vector.
    pooling: Literal["last", "mean", "max", "mean_max", "last_mean_max"] = (
        "mean_max"  # last_mean_max: last step, mean and max (ULMFiT's)
    )
    head_dropout: float = 0.3  # before the classifier layer
    # Keep the embedding (pretrained or PPMI-SVD) fixed while the rest
    # trains: it holds most of the parameters and overfits first.
    freeze_embedding: bool = False
    # Adversarial training (Miyato et al. 2017): each batch's loss plus the
    # loss with its word embeddings moved by this L2 norm (per review, in
    # frequency-normalised units) along the loss gradient; 0: off.
    adversarial_epsilon: float = 0.0
    adversarial_weight: float = 1.0  # weight of the adversarial loss
    # Language-model pretraining of the encoder (embedding + DeepRNN) on
    # the training and unlabelled reviews, then fine-tuning
    # (docs/imdb_pretrained.md). Needs bidirectional=False.
    pretrain: bool = False
    encoder: str | None = None  # a pretrained encoder folder to start from
    # Pretrained encoders, one folder per fingerprint; None:
    # $TOOLKIT_ENCODER_CACHE, else ~/.cache/toolkit/encoders.
    encoder_cache: str | None = None
    # The language-model phase: `--lm.epochs=2`, `--lm.num-sampled=512`...
    lm: LanguageModelPhase = LanguageModelPhase()
    # Training.
    # The optimizer; it always clips gradients (clipnorm).
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = 2e-3  # peak rate
    # "constant" or "slanted" (ULMFiT's slanted triangular rate: a rise
    # over warmup_fraction of the steps, then a fall to 1/32 of the peak).
    schedule: Literal["constant", "slanted"] = "constant"
    # Share of the steps the slanted rate rises over.
    warmup_fraction: float = 0.1
    # Discriminative learning rates (ULMFiT): the output layer trains at
    # the rate, each group below (the recurrent stack, then the embedding)
    # at the rate above divided by this; 1: one rate for all.
    discriminative_factor: float = 1.0
    # Gradual unfreezing (ULMFiT): the first epoch trains the output layer
    # only, then one more group (recurrent stack, embedding) each epoch.
    gradual_unfreezing: bool = False
    clipnorm: float = 1.0  # gradient-norm clipping, always on
    batch_size: int = 64  # reviews per batch
    epochs: int = 3  # at most; early stopping may end sooner
    patience: int = 1  # early stopping on validation loss
    jit_compile: bool = False  # XLA; needs fixed bucket shapes
    seed: int = 1337  # weights, dropout, split and data order
    # Scale-out with tf.distribute (docs/distribute.md); batch_size
    # is the global batch, split across the replicas.
    strategy: Literal["none", "mirrored", "multiworker"] = "none"
    cpu_devices: int | None = None  # mirrored: N logical CPU devices
    # Outputs.
    # Where the run writes; the same command resumes it.
    run_dir: str = "runs/imdb_sentiment"
    baseline: bool = True  # TF-IDF and NBSVM bigram baselines, same split
    export: bool = True  # SavedModel + .keras file
    verbose: int = 1  # 0 silent, 1 progress bar, 2 one line per epoch

    def validate(self) -> None:
        require(
            0.0 < self.validation_split < 1.0,
            "validation_split",
            "in (0, 1)",
            self.validation_split,
        )
        for key in ("vocab_size", "max_length", "batch_size", "epochs"):
            value = getattr(self, key)
            require(value > 0, key, "a positive integer", value)
        require(
            self.vocab_size > 2, "vocab_size", "greater than 2", self.vocab_size
        )
        require(1 <= self.layers <= 8, "layers", "between 1 and 8", self.layers)
        for key in ("max_train_reviews", "max_test_reviews"):
            value = getattr(self, key)
            require(
                value is None or value >= 2,
                key,
                "None or at least 2",
                value,
            )
        if self.pretrain or self.encoder:
            require(
                not self.bidirectional,
                "bidirectional",
                "False with --pretrain or --encoder (the language model "
                "reads forwards only)",
                self.bidirectional,
            )
        for key in ("embedding_dropout", "head_dropout"):
            value = getattr(self, key)
            require(0.0 <= value < 1.0, key, "in [0, 1)", value)
        require(
            self.adversarial_epsilon >= 0,
            "adversarial_epsilon",
            "0 (off) or positive",
            self.adversarial_epsilon,
        )
        require(
            self.adversarial_weight > 0,
            "adversarial_weight",
            "positive",
            self.adversarial_weight,
        )
        if self.adversarial_epsilon:
            require(
                not self.freeze_embedding,
                "freeze_embedding",
                "False with --adversarial-epsilon (the perturbation's "
                "gradient is taken at the trainable embedding)",
                self.freeze_embedding,
            )
        require(
            self.discriminative_factor >= 1.0,
            "discriminative_factor",
            "at least 1 (1: one rate for all layers; ULMFiT: 2.6)",
            self.discriminative_factor,
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
        self.lm.validate(self.vocab_size, self.strategy)
        # The specs check their own values (units, dropout, rates, ...).
        checked_specs(
            self,
            lambda: self.encoder_spec(self.vocab_size),
            self.optimizer_spec,
            renames={"name": "optimizer"},
        )

    def encoder_spec(self, vocab_size: int) -> EncoderSpec:
        """The classifier's encoder over a vocabulary of `vocab_size` ids."""
        from toolkit.text.encoder import EncoderSpec

        return EncoderSpec(
            vocab_size=vocab_size,
            embedding_dim=self.embedding_dim,
            cell=self.cell,
            proj_size=self.proj_size,
            units=(self.units,) * self.layers,
            bidirectional=self.bidirectional,
            residual=self.residual,
            dropout=self.dropout,
            recurrent_dropout=self.recurrent_dropout,
        )

    def optimizer_spec(self) -> OptimizerSpec:
        """How the classifier trains: with discriminative rates down its
        layer groups when `discriminative_factor` is above 1."""
        from toolkit.optimizers import discriminative_multipliers
        from toolkit.text.models import CLASSIFIER_LAYER_GROUPS
        from toolkit.training.specs import OptimizerSpec

        multipliers = ()
        if self.discriminative_factor != 1.0:
            multipliers = discriminative_multipliers(
                CLASSIFIER_LAYER_GROUPS, self.discriminative_factor
            )
        return OptimizerSpec(
            self.optimizer,
            self.learning_rate,
            schedule=self.schedule,
            warmup_fraction=self.warmup_fraction,
            final_fraction=1 / 32,
            clipnorm=self.clipnorm,
            rate_multipliers=multipliers,
        )

    def pretrain_config(self, vocab_size: int) -> PretrainConfig:
        """The LM pretraining of the encoder this config fine-tunes: the
        classifier's encoder with the LM's dropout, and the `lm` phase."""
        from toolkit.text.pretraining import (
            PretrainConfig,
            default_lm_optimizer,
        )

        lm = self.lm
        batching = lm.batching
        if batching == "auto":
            batching = "streams" if self.strategy == "none" else "windows"
        return PretrainConfig(
            encoder=dataclasses.replace(
                self.encoder_spec(vocab_size),
                dropout=lm.dropout,
                recurrent_dropout=0.0,
            ),
            optimizer=dataclasses.replace(
                default_lm_optimizer(),
                name=self.optimizer,
                learning_rate=lm.learning_rate,
                clipnorm=self.clipnorm,
            ),
            embedding_dropout=lm.embedding_dropout,
            # A vocabulary smaller than the candidates (a test corpus):
            # the full softmax.
            num_sampled=lm.num_sampled if lm.num_sampled < vocab_size else 0,
            batch_size=lm.batch_size,
            sequence_length=lm.sequence_length,
            epochs=lm.epochs,
            max_train_seconds=lm.max_train_seconds,
            seed=self.seed,
            batching=batching,
            word_type_dropout=lm.word_type_dropout,
            recurrent_weight_dropout=lm.weight_dropout,
            locked_dropout=lm.locked_dropout,
            reverse=self.direction == "backward",
        )
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
    # About a minute: the whole pretrained path (LM pretraining, fine-
    # tuning, baselines, export) on subsamples (tests, first contact).
    "smoke": ImdbConfig(
        max_train_reviews=2_000,
        max_test_reviews=2_000,
        vocab_size=2_000,
        max_length=64,
        bucket_boundaries=(32,),
        embedding_dim=16,
        pretrained_embeddings=False,
        layers=1,
        units=16,
        bidirectional=False,
        pooling="last_mean_max",
        pretrain=True,
        schedule="slanted",
        epochs=1,
        batch_size=32,
        baseline=True,
        run_dir="runs/imdb_smoke",
        lm=LanguageModelPhase(
            epochs=1,
            batch_size=16,
            sequence_length=20,
            num_sampled=64,
            heldout_reviews=50,
            max_reviews=2_000,
        ),
    ),
    # Language-model pretraining on 2 CPU cores: a 1-layer 256-unit LSTM
    # encoder pretrained on the 72,000 training and unlabelled reviews for
    # at most 50 minutes (sampled softmax), then fine-tuned adversarially
    # (Miyato et al.'s epsilon of 5) with concat pooling and a slanted
    # triangular rate. The encoder is cached, so a rerun only fine-tunes.
    "pretrained": ImdbConfig(
        max_length=600,
        bucket_boundaries=(64, 128, 192, 256, 384, 512),
        embedding_dim=256,
        pretrained_embeddings=False,
        layers=1,
        units=256,
        bidirectional=False,
        dropout=0.0,
        embedding_dropout=0.1,
        pooling="last_mean_max",
        head_dropout=0.3,
        pretrain=True,
        adversarial_epsilon=5.0,
        learning_rate=1e-3,
        schedule="slanted",
        epochs=3,
        patience=1,
        run_dir="runs/imdb_pretrained",
        lm=LanguageModelPhase(
            epochs=3,
            max_train_seconds=3000.0,
        ),
    ),
    # Dai & Le's scale, for one GPU: a 1024-unit encoder, 256-d embeddings,
    # a 30k vocabulary, whole reviews.
    "pretrained-gpu": ImdbConfig(
        vocab_size=30_000,
        max_length=1_200,
        bucket_boundaries=(128, 256, 384, 512, 768, 1024),
        embedding_dim=256,
        pretrained_embeddings=False,
        layers=1,
        units=1024,
        bidirectional=False,
        dropout=0.0,
        embedding_dropout=0.3,
        pooling="last_mean_max",
        head_dropout=0.5,
        pretrain=True,
        learning_rate=5e-4,
        schedule="slanted",
        epochs=4,
        patience=2,
        run_dir="runs/imdb_pretrained_gpu",
        lm=LanguageModelPhase(
            epochs=10,
            batch_size=128,
            sequence_length=100,
            dropout=0.3,
            embedding_dropout=0.3,
        ),
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

# The forward and backward ensemble of ULMFiT (Howard & Ruder 2018):
# `pretrained` once reading forwards and once backwards, each with its own
# pretrained LM (cached apart), their probabilities averaged. Twice the time
# of `pretrained`; its forward member is `pretrained`'s classifier.
PRESETS["pretrained-bi"] = dataclasses.replace(
    PRESETS["pretrained"], direction="both", run_dir="runs/imdb_pretrained_bi"
)
