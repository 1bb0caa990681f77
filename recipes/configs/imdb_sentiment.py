"""Presets for `recipes/imdb_sentiment.py`; every field is a `--key=value`
option."""

from __future__ import annotations

import dataclasses
from typing import Literal

from toolkit.training.config import check_strategy, require


@dataclasses.dataclass(frozen=True)
class ImdbConfig:
    # Data.
    dataset: str | None = None  # aclImdb/ folder or .tar.gz; None: data dir
    data_dir: str | None = None  # searched for the dataset (TOOLKIT_DATA_DIR)
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
    cell: Literal["lstm", "vanilla"] = "lstm"  # recurrent cell of every layer
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
    pooling: Literal["last", "mean", "max", "mean_max"] = "mean_max"
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
    lm_epochs: int = 3  # passes over the LM stream (cosine decay)
    lm_batch_size: int = 64  # parallel streams (stateful TBPTT)
    lm_sequence_length: int = 70  # words per truncated-BPTT window
    lm_num_sampled: int = 1024  # sampled-softmax candidates; 0: full
    lm_learning_rate: float = 2e-3  # peak rate of the LM pretraining
    lm_dropout: float = 0.1  # between layers and before the softmax
    lm_embedding_dropout: float = 0.1  # whole word vectors
    # AWD-LSTM regularisation of the LM (Merity et al. 2018): whole
    # vocabulary words dropped per batch, DropConnect on the recurrent
    # kernel (one mask per batch), one dropout mask per sequence.
    lm_word_type_dropout: float = 0.0  # vocabulary words dropped per batch
    lm_weight_dropout: float = 0.0  # DropConnect rate on the LM's W_h
    lm_locked_dropout: bool = False  # one dropout mask per sequence
    lm_max_train_seconds: float | None = None  # time budget; None: none
    lm_heldout_reviews: int = 500  # unlabelled reviews scored, not trained
    lm_max_reviews: int | None = None  # cap on LM training reviews
    # How the LM reads its stream: "streams" (state carried across
    # batches), "windows" (independent shuffled windows, which a --strategy
    # can split); "auto": streams on one device, windows under a strategy.
    lm_batching: Literal["auto", "streams", "windows"] = "auto"
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
        for key in (
            "vocab_size",
            "max_length",
            "embedding_dim",
            "units",
            "batch_size",
            "epochs",
            "lm_epochs",
            "lm_batch_size",
            "lm_sequence_length",
            "lm_heldout_reviews",
        ):
            value = getattr(self, key)
            require(value > 0, key, "a positive integer", value)
        require(
            self.vocab_size > 2, "vocab_size", "greater than 2", self.vocab_size
        )
        require(1 <= self.layers <= 8, "layers", "between 1 and 8", self.layers)
        for key in ("max_train_reviews", "max_test_reviews", "lm_max_reviews"):
            value = getattr(self, key)
            require(
                value is None or value >= 2,
                key,
                "None or at least 2",
                value,
            )
        require(
            0 <= self.lm_num_sampled < self.vocab_size,
            "lm_num_sampled",
            f"0 (full softmax) or fewer than vocab_size ({self.vocab_size})",
            self.lm_num_sampled,
        )
        require(
            self.lm_max_train_seconds is None or self.lm_max_train_seconds > 0,
            "lm_max_train_seconds",
            "positive or None",
            self.lm_max_train_seconds,
        )
        require(
            0.0 <= self.warmup_fraction < 1.0,
            "warmup_fraction",
            "in [0, 1)",
            self.warmup_fraction,
        )
        if self.pretrain or self.encoder:
            require(
                not self.bidirectional,
                "bidirectional",
                "False with --pretrain or --encoder (the language model "
                "reads forwards only)",
                self.bidirectional,
            )
        for key in (
            "dropout",
            "recurrent_dropout",
            "embedding_dropout",
            "head_dropout",
            "lm_dropout",
            "lm_embedding_dropout",
            "lm_word_type_dropout",
            "lm_weight_dropout",
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
        require(
            self.strategy == "none" or self.lm_batching != "streams",
            "lm_batching",
            "'windows' or 'auto' under --strategy (a strategy splits each "
            "batch across replicas; carried streams cannot be split)",
            self.lm_batching,
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
        lm_epochs=1,
        lm_batch_size=16,
        lm_sequence_length=20,
        lm_num_sampled=64,
        lm_heldout_reviews=50,
        lm_max_reviews=2_000,
        schedule="slanted",
        epochs=1,
        batch_size=32,
        baseline=True,
        run_dir="runs/imdb_smoke",
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
        lm_epochs=3,
        lm_max_train_seconds=3000.0,
        adversarial_epsilon=5.0,
        learning_rate=1e-3,
        schedule="slanted",
        epochs=3,
        patience=1,
        run_dir="runs/imdb_pretrained",
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
        lm_epochs=10,
        lm_batch_size=128,
        lm_sequence_length=100,
        lm_dropout=0.3,
        lm_embedding_dropout=0.3,
        learning_rate=5e-4,
        schedule="slanted",
        epochs=4,
        patience=2,
        run_dir="runs/imdb_pretrained_gpu",
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
