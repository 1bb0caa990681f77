"""Pretrain a classifier's encoder as a word language model, cache it, and
start a classifier from it.

`pretrain_encoder` trains a `toolkit.text.word_lm.WordLanguageModel` with
truncated backpropagation through time over the concatenated reviews
(stateful batches, as the character LM), a sampled softmax, clipped
gradients, a time budget and the full-softmax perplexity of held-out reviews
after every epoch. Its folder is named by a fingerprint of the settings, the
vocabulary and the texts, so a later run that needs the same encoder finds
it and skips the pretraining, and a killed pretraining resumes from its last
epoch. `apply_encoder` copies the encoder's weights into a classifier after
`check_encoder` has compared vocabularies and shapes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from toolkit.data.char_lm import batches_per_pass
from toolkit.data.pipelines import write_vocabulary
from toolkit.text.encoder import EncoderSpec
from toolkit.text.encoder_cache import (
    ENCODER_FILE,
    Encoder,
    EncoderMismatchError,
    digest,
    encoder_cache_dir,
    layer_weights,
    load_encoder,
    save_encoder,
    vocabulary_digest,
)
from toolkit.training.specs import OptimizerSpec, compile_model

# Tokens kept per review in the language model's stream (all, in practice).
MAX_REVIEW_TOKENS = 100_000


def default_lm_optimizer() -> OptimizerSpec:
    """The LM's optimizer unless told otherwise: Adam at 2e-3, a 200-step
    warm-up and a cosine decay to 5% of the peak, gradients clipped to 1."""
    return OptimizerSpec(
        "adam",
        2e-3,
        schedule="cosine",
        warmup_steps=200,
        final_fraction=0.05,
        clipnorm=1.0,
    )


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides what `pretrain_encoder` learns.

    `encoder`: the encoder's shape (`EncoderSpec`; its `dropout` is the
    LM's, between layers and before the softmax). `optimizer`: how it
    trains (`OptimizerSpec`, run for `epochs` passes;
    `default_lm_optimizer()` unless given). Truncated backpropagation
    through time over `batch_size` streams in windows of `sequence_length`
    words, `num_sampled` softmax candidates (0: full softmax), at most
    `max_train_seconds` of training (`None`: no limit). Held-out
    perplexity is scored on streams of `eval_batch_size` rows.
    `embedding_dropout`, `word_type_dropout`, `recurrent_weight_dropout`,
    `locked_dropout`: as in `WordLanguageModel` (the last three are
    AWD-LSTM's regularisers). `batching`: `"streams"` (stateful truncated
    backpropagation through time: row i of every batch continues stream i,
    the state carried across batches) or `"windows"` (shuffled independent
    windows, each read from a zero state), which a `tf.distribute` strategy
    can split across replicas. `reverse`: a backward LM, every review read
    from its last word to its first.
    """

    encoder: EncoderSpec
    optimizer: OptimizerSpec = dataclasses.field(
        default_factory=default_lm_optimizer
    )
    embedding_dropout: float = 0.1
    num_sampled: int = 1024
    batch_size: int = 64
    sequence_length: int = 70
    epochs: int = 3
    max_train_seconds: float | None = None
    eval_batch_size: int = 16
    seed: int = 1337
    batching: str = "streams"
    # AWD-LSTM regularisation (Merity et al. 2018), see WordLanguageModel.
    word_type_dropout: float = 0.0
    recurrent_weight_dropout: float = 0.0
    locked_dropout: bool = False
    reverse: bool = False

    def __post_init__(self):
        # Fails here, before any text is tokenised, not at the model.
        self.encoder.check_one_direction()


# The fingerprint is taken over these settings, flat, as encoders were
# first cached with them; settings added since are left out while they
# have the values that change nothing, so that earlier cache entries stay
# valid.
_NEUTRAL_SETTINGS = {
    "batching": "streams",
    "word_type_dropout": 0.0,
    "recurrent_weight_dropout": 0.0,
    "locked_dropout": False,
    "reverse": False,
    "recurrent_dropout": 0.0,
    "proj_size": None,
    "schedule": "cosine",
    "warmup_fraction": 0.0,
    "final_fraction": 0.05,
    "rate_multipliers": (),
    "track_gradients": False,
}
BATCHINGS = ("streams", "windows")


def _settings(config: PretrainConfig) -> dict:
    encoder = dataclasses.asdict(config.encoder)
    del encoder["bidirectional"]  # always False here
    optimizer = dataclasses.asdict(config.optimizer)
    optimizer["optimizer"] = optimizer.pop("name")
    settings = {
        **encoder,
        **optimizer,
        **{
            field.name: getattr(config, field.name)
            for field in dataclasses.fields(config)
            if field.name not in ("encoder", "optimizer")
        },
    }
    return {
        key: value
        for key, value in settings.items()
        if not (key in _NEUTRAL_SETTINGS and value == _NEUTRAL_SETTINGS[key])
    }


def fingerprint(
    config: PretrainConfig,
    vocabulary: Sequence[str],
    train_texts: Sequence[str],
    heldout_texts: Sequence[str],
) -> str:
    """sha256 of the settings, the vocabulary and every text (in order):
    the name of the cache entry that these inputs produce."""
    settings = json.dumps(_settings(config), sort_keys=True)
    parts = [
        settings,
        digest(vocabulary),
        digest(train_texts),
        digest(heldout_texts),
    ]
    return digest(parts)


def token_stream(
    texts: Sequence[str], vectorizer, seed: int, reverse: bool = False
) -> np.ndarray:
    """`review_stream` of `texts` tokenized by `vectorizer` (whole
    reviews), each review's words reversed when `reverse` (the end-of-review
    marker still follows it)."""
    from toolkit.data import tokenize
    from toolkit.text.word_lm import review_stream

    if not texts:
        return np.zeros(0, dtype=np.int32)
    tokens = tokenize(texts, vectorizer, MAX_REVIEW_TOKENS)
    flat = tokens.flat_values.numpy()
    splits = tokens.row_splits.numpy()
    rows = np.split(flat, splits[1:-1])
    if reverse:
        rows = [row[::-1] for row in rows]
    return review_stream(rows, seed)


def lm_reviews(
    labelled_texts: Sequence[str],
    unlabelled_texts: Sequence[str],
    heldout_reviews: int,
    max_reviews: int | None = None,
    seed: int = 0,
) -> tuple[list[str], list[str]]:
    """`(train, heldout)` reviews for the language model.

    `heldout_reviews` unlabelled reviews, drawn with `seed`, are held out
    for perplexity; the model trains on the classifier's training reviews
    (pass its training split only: never validation or test) and the
    other unlabelled ones, at most `max_reviews` of them (a seeded draw)
    when set.
    """
    order = np.random.default_rng(seed).permutation(len(unlabelled_texts))
    if not 0 < heldout_reviews < len(order):
        raise ValueError(
            f"Received heldout_reviews={heldout_reviews} with "
            f"{len(order):,} unlabelled reviews; hold out at least one and "
            "fewer than all."
        )
    heldout = [unlabelled_texts[i] for i in order[:heldout_reviews]]
    train = list(labelled_texts) + [
        unlabelled_texts[i] for i in order[heldout_reviews:]
    ]
    if max_reviews is not None and max_reviews < len(train):
        keep = np.random.default_rng([seed, 1]).choice(
            len(train), max_reviews, replace=False
        )
        train = [train[i] for i in np.sort(keep)]
    return train, heldout


def pretrain_encoder(
    config: PretrainConfig,
    vectorizer,
    train_texts: Sequence[str],
    heldout_texts: Sequence[str],
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
    verbose: int = 1,
    strategy=None,
) -> Encoder:
    """The encoder that `config` learns from `train_texts`, from the cache
    when an earlier run already learned it.

    Args:
        config: the settings; `config.encoder.vocab_size` must equal the
            vectorizer's vocabulary size.
        vectorizer: the classifier's `TextVectorization` (its ids are the
            encoder's).
        train_texts: the language model's training reviews (never
            validation or test reviews of the classifier).
        heldout_texts: reviews scored after every epoch (full softmax).
        cache_dir: where cache entries live, one folder per fingerprint
            (`encoder_cache_dir`: None means `$TOOLKIT_ENCODER_CACHE` or
            `~/.cache/toolkit/encoders`).
        log: prints what happens (reuse, pretraining, perplexities).
        verbose: `fit`'s verbosity (1: progress bar).
        strategy: a `tf.distribute` strategy to train under (its
            `batch_size` is the global batch, split across the replicas);
            it needs `batching="windows"`. Under a multi-worker strategy
            every worker trains and the chief alone writes the cache entry.

    Returns:
        The `Encoder` (its `info` holds the held-out perplexity per epoch).
    """
    from toolkit.training import distribute, resumable, run_info

    vocabulary = vectorizer.get_vocabulary()
    if len(vocabulary) != config.encoder.vocab_size:
        raise EncoderMismatchError(
            f"The vectorizer has {len(vocabulary)} words but the pretraining "
            f"config says vocab_size={config.encoder.vocab_size}."
        )
    if config.batching not in BATCHINGS:
        raise ValueError(
            "Received an invalid value for `batching`, expected one of "
            f"{BATCHINGS}, got {config.batching!r}."
        )
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    if replicas > 1 and config.batching != "windows":
        raise EncoderMismatchError(
            f"A strategy with {replicas} replicas splits every batch across "
            "them, and carried streams cannot be split: pretrain with "
            'batching="windows" (--lm.batching=windows).'
        )
    key = fingerprint(config, vocabulary, train_texts, heldout_texts)
    folder = encoder_cache_dir(cache_dir) / key[:16]
    if (folder / ENCODER_FILE).exists():
        encoder = load_encoder(folder)
        log(
            f"Reusing the pretrained encoder in {folder} (same settings, "
            "vocabulary and texts; no pretraining). Held-out perplexity "
            f"{encoder.info['heldout_perplexity']:.1f}."
        )
        return encoder

    start = time.perf_counter()
    chief = distribute.is_chief(strategy)
    if chief:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pretrain_config.json").write_text(
            json.dumps(dataclasses.asdict(config), indent=2)
        )
        write_vocabulary(folder / "vocabulary.txt", vocabulary)
    stream = token_stream(train_texts, vectorizer, config.seed, config.reverse)
    heldout = token_stream(
        heldout_texts, vectorizer, config.seed, config.reverse
    )
    steps_per_epoch = batches_per_pass(
        len(stream),
        config.batch_size,
        config.sequence_length,
        streams=config.batching == "streams",
    )
    if steps_per_epoch < 1 or len(heldout) < 2:
        raise EncoderMismatchError(
            f"Too little text to pretrain on: {len(stream):,} training words "
            f"for batches of {config.batch_size}x{config.sequence_length}, "
            f"{len(heldout):,} held-out words."
        )
    log(
        f"Pretraining the encoder as a {_direction(config)}word LM in "
        f"{folder}: "
        f"{len(train_texts):,} reviews ({len(stream):,} words), "
        f"{steps_per_epoch:,} steps of {config.batch_size}x"
        f"{config.sequence_length} per epoch ({_describe(config, replicas)});"
        f" held-out {len(heldout_texts):,} reviews ({len(heldout):,} words). "
        "A killed run resumes here."
    )
    # The encoder is a function of its fingerprint's inputs alone.
    run_info.set_seed(config.seed)
    with (strategy or _default_strategy()).scope():
        model = _compiled_language_model(config, steps_per_epoch)
    state = resumable.train_with_resume(
        model,
        _epoch_data(config, stream, steps_per_epoch),
        None,
        folder,
        epochs=config.epochs,
        verbose=verbose,
        callbacks=_callbacks(config, heldout),
        max_train_seconds=config.max_train_seconds,
        chief=chief,
    )
    history = resumable.read_history(folder) if chief else []
    for row in history:
        log(
            f"LM epoch {int(row['epoch']) + 1}: held-out perplexity "
            f"{row['val_perplexity']:.1f} ({row['val_loss']:.4f} nats/word)"
        )
    info = {
        "fingerprint": key,
        "shape": config.encoder.shape(),
        "vocabulary_sha256": vocabulary_digest(vocabulary),
        "heldout_perplexity": float(np.exp(state.best_value)),
        "heldout_nats": state.best_value,
        "best_epoch": state.best_epoch + 1,
        "epochs_run": state.epochs_done,
        "stop_reason": state.stop_reason,
        "train_seconds": state.train_seconds,
        "seconds": time.perf_counter() - start,
        "train_words": int(len(stream)),
        "heldout_words": int(len(heldout)),
        "history": history,
        "config": dataclasses.asdict(config),
        "replicas": replicas,
    }
    if not chief:  # the chief writes the entry; this worker has the weights
        return Encoder(folder, info, layer_weights(model))
    save_encoder(folder, model, info)
    log(
        f"Encoder pretrained in {info['seconds']:.0f} s: held-out perplexity "
        f"{info['heldout_perplexity']:.1f} (epoch {info['best_epoch']} of "
        f"{info['epochs_run']}; {state.stop_reason}); saved to {folder}."
    )
    return load_encoder(folder)


def _direction(config: PretrainConfig) -> str:
    return "backward " if config.reverse else ""


def _default_strategy():
    import tensorflow as tf

    return tf.distribute.get_strategy()


def _describe(config: PretrainConfig, replicas: int) -> str:
    how = (
        "carried streams, truncated BPTT"
        if config.batching == "streams"
        else "shuffled windows from a zero state"
    )
    return how + (f", split over {replicas} replicas" if replicas > 1 else "")


def _compiled_language_model(config: PretrainConfig, steps_per_epoch: int):
    """The `WordLanguageModel` that `config` trains, compiled and built."""
    from toolkit.text.word_lm import WordLanguageModel

    streams = config.batching == "streams"
    model = WordLanguageModel(
        config.encoder,
        embedding_dropout=config.embedding_dropout,
        num_sampled=config.num_sampled,
        stateful=streams,
        batch_size=config.batch_size if streams else None,
        seed=config.seed,
        word_type_dropout=config.word_type_dropout,
        recurrent_weight_dropout=config.recurrent_weight_dropout,
        locked_dropout=config.locked_dropout,
        name="word_lm",
    )
    compile_model(
        model, config.optimizer, total_steps=config.epochs * steps_per_epoch
    )
    model.build((config.batch_size if streams else None, None))
    return model


def _epoch_data(config: PretrainConfig, stream, steps_per_epoch: int):
    """`epoch -> dataset`: the same batches for the same epoch."""
    from toolkit.data import tbptt_dataset, window_dataset
    from toolkit.training import distribute

    B, T = config.batch_size, config.sequence_length

    def for_epoch(epoch: int):
        rng = np.random.default_rng([config.seed, epoch])
        if config.batching == "streams":
            return tbptt_dataset(stream, B, T, offset=int(rng.integers(T)))
        return (
            window_dataset(stream, B, T, seed=int(rng.integers(2**31)))
            .take(steps_per_epoch)
            .with_options(distribute.shard_options())
        )

    return for_epoch


def _callbacks(config: PretrainConfig, heldout) -> list:
    from toolkit.text.word_lm import HeldOutPerplexity
    from toolkit.training.callbacks import ResetStatesEachEpoch

    scoring = HeldOutPerplexity(heldout, config.eval_batch_size)
    if config.batching == "streams":
        return [ResetStatesEachEpoch(), scoring]
    return [scoring]
