"""IMDB sentiment with a deep LSTM: train, evaluate, compare, export.

    python recipes/imdb_sentiment.py
    python recipes/imdb_sentiment.py --preset=pretrained
    python recipes/imdb_sentiment.py --preset=pretrained-bi
    python recipes/imdb_sentiment.py --preset=smoke --data-dir=~/data
    python recipes/imdb_sentiment.py --cell=vanilla --run-dir=runs/vanilla
    python recipes/imdb_sentiment.py --help

Writes to `--run-dir`: config.json, vocabulary.txt, checkpoints/ and
train_state.json (the resume point, with checksums),
history.csv, logs/ (TensorBoard), metrics.json, training_curves.png,
confusion_matrix.png, saved_model/ (raw text in, probability out) and
model.keras; lm_curves.png with a pretrained encoder. With --pretrain
(presets pretrained, pretrained-bi, pretrained-gpu, smoke) the encoder is
first pretrained as a word language model in --encoder-cache/<fingerprint>/
(default ~/.cache/toolkit/encoders) and reused by every later run that
needs the same one. --direction=both trains a forward and a backward
classifier in forward/ and backward/ and exports their average. Run the
same command again after an interruption to resume.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys
import time

if __package__ in (None, ""):  # `python recipes/imdb_sentiment.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

from recipes import training_main  # noqa: E402
from recipes.configs.imdb_sentiment import PRESETS, ImdbConfig  # noqa: E402
from toolkit.training import config as config_lib  # noqa: E402

# Distinct names, so that the members of an ensemble can sit in one model.
CLASSIFIER_NAMES = {
    "forward": "text_classifier",
    "backward": "backward_classifier",
}


def build_and_compile(
    config: ImdbConfig,
    vocab_size: int,
    steps_per_epoch: int = 1,
    word_counts=None,
):
    """`(classifier, trainer)`: the config's classifier, built, and the
    compiled model that `fit` trains, which is the classifier itself or,
    with `--adversarial-epsilon`, an `AdversarialTraining` around it (call
    it inside a strategy's scope to distribute it). `steps_per_epoch` sizes
    the learning-rate schedule; `word_counts` (per id, training reviews)
    normalise the adversarial step."""
    import numpy as np

    from toolkit.text import adversarial, models
    from toolkit.training.specs import compile_model

    model = models.build_text_classifier(
        config.encoder_spec(vocab_size),
        embedding_dropout=config.embedding_dropout,
        pooling=config.pooling,
        head_dropout=config.head_dropout,
        seed=config.seed,
        reverse=config.direction == "backward",
        name=CLASSIFIER_NAMES[config.direction],
    )
    if config.freeze_embedding:
        model.get_layer("embedding").trainable = False
    model(np.zeros((1, 1), dtype="int64"))  # build, so a resume can load
    trainer = model
    if config.adversarial_epsilon:
        trainer = adversarial.AdversarialTraining(
            model,
            epsilon=config.adversarial_epsilon,
            weight=config.adversarial_weight,
            frequencies=word_counts,
            embedding_layer="embedding",
        )
    compile_model(
        trainer,
        config.optimizer_spec(),
        total_steps=config.epochs * steps_per_epoch,
        loss="binary_crossentropy",
        metrics=["accuracy"],
        jit_compile=config.jit_compile,
    )
    return model, trainer


def get_encoder(config: ImdbConfig, imdb, vectorizer, log, strategy=None):
    """The pretrained encoder the classifier starts from: `--encoder`, or
    the cached or newly pretrained one; checked against the classifier."""
    from toolkit.text import encoder_cache, pretraining

    vocab_size = vectorizer.vocabulary_size()
    lm_config = config.pretrain_config(vocab_size)
    if lm_config.num_sampled != config.lm.num_sampled:
        # A corpus with fewer words than --vocab-size (a test fixture):
        # `pretrain_config` chose the full softmax.
        log(
            f"The vocabulary has {vocab_size} words, no more than "
            f"--lm.num-sampled={config.lm.num_sampled}: the LM trains with "
            "the full softmax."
        )
    if config.encoder:
        encoder = encoder_cache.load_encoder(config.encoder)
        log(f"Starting from the encoder in {config.encoder} (--encoder).")
    else:
        if not 0 < config.lm.heldout_reviews < len(imdb.unsup):
            raise config_lib.ConfigError(
                f"Option `--lm.heldout-reviews` must be fewer than the "
                f"{len(imdb.unsup):,} unlabelled reviews it is drawn from, "
                f"got {config.lm.heldout_reviews}."
            )
        if config.lm.max_train_seconds is not None:
            log(
                "LM pretraining stops after "
                f"{config.lm.max_train_seconds:g} s of training (unless a "
                "cached encoder is reused); --lm.max-train-seconds=none to "
                "lift the cap."
            )
        train_texts, heldout_texts = pretraining.lm_reviews(
            imdb.train.texts,
            imdb.unsup.texts,
            config.lm.heldout_reviews,
            config.lm.max_reviews,
            config.seed,
        )
        encoder = pretraining.pretrain_encoder(
            lm_config,
            vectorizer,
            train_texts,
            heldout_texts,
            config.encoder_cache,
            log=log,
            verbose=config.verbose,
            strategy=strategy,
        )
    encoder_cache.check_encoder(
        encoder, lm_config.encoder.shape(), vectorizer.get_vocabulary()
    )
    return encoder


def load_reviews(config: ImdbConfig, log):
    """The IMDB splits, subsampled as the config asks."""
    from toolkit import data

    imdb = data.load_imdb(
        config.imdb_path,
        config.data_dir,
        config.validation_split,
        seed=config.seed,
        strict=config.strict_data,
        validation_by=config.validation_by,
    )
    log(f"Loaded {imdb.metadata['sizes']} from {imdb.source}")
    if "movies" in imdb.metadata:
        movies = imdb.metadata["movies"]
        log(
            f"Validation by {config.validation_by}: {movies['train']:,} "
            f"training movies, {movies['validation']:,} validation movies, "
            f"{movies['in_both']:,} in both"
        )
    for name, cap in (
        ("train", config.max_train_reviews),
        ("test", config.max_test_reviews),
    ):
        split = imdb.split(name)
        if cap is not None and cap < len(split):
            setattr(
                imdb, name, data.balanced_subsample(split, cap, config.seed)
            )
            log(
                f"Subsample: {cap:,} of {len(split):,} {name} reviews "
                f"(--max-{name}-reviews); the LSTM and the baselines use "
                "the same ones"
            )
    return imdb


def make_vocabulary(config: ImdbConfig, imdb, run: training_main.Run):
    """The vectorizer of the training reviews; its vocabulary is written to
    the run folder, or checked against the one there on resume."""
    from toolkit import data

    vectorizer = data.make_vectorizer(imdb.train.texts, config.vocab_size)
    vocabulary = vectorizer.get_vocabulary()
    path = run.run_dir / "vocabulary.txt"
    if path.exists() and _read_vocabulary(path) != vocabulary:
        # The same config on other training texts (another copy of the
        # data): the saved weights index other words.
        raise config_lib.ConfigError(
            f"{run.run_dir} holds a run trained with another vocabulary (the "
            "training reviews differ); use another --run-dir."
        )
    if run.chief:
        data.write_vocabulary(path, vocabulary)
    return vectorizer


def _read_vocabulary(path: pathlib.Path) -> list[str]:
    from toolkit import data
    from toolkit.training.run_dir import RunDirError

    try:
        return data.read_vocabulary(path)
    except ValueError as error:
        raise RunDirError(str(error)) from None


def start_encoder(
    config: ImdbConfig, model, imdb, vectorizer, log, strategy=None
):
    """A pretrained encoder applied to `model` (returned), or PPMI-SVD
    embeddings set in it (returns None), as the config asks."""
    from toolkit.text import embeddings, encoder_cache

    if config.pretrain or config.encoder:
        encoder = get_encoder(config, imdb, vectorizer, log, strategy)
        encoder_cache.apply_encoder(model, encoder)
        return encoder
    if config.pretrained_embeddings:
        embedding_start = time.perf_counter()
        texts = imdb.train.texts + imdb.unsup.texts  # never test
        vectors = embeddings.vectorizer_embeddings(
            texts, vectorizer, config.embedding_dim, seed=config.seed
        )
        model.get_layer("embedding").set_weights([vectors])
        log(
            f"PPMI-SVD embeddings from {len(texts):,} reviews in "
            f"{time.perf_counter() - embedding_start:.0f} s"
        )
    return None


def encoder_results(encoder) -> dict:
    """What metrics.json says about the pretrained encoder."""
    keys = (
        "fingerprint",
        "heldout_perplexity",
        "best_epoch",
        "epochs_run",
        "stop_reason",
        "train_seconds",
        "train_words",
        "history",
    )
    return {
        **{key: encoder.info[key] for key in keys},
        "path": str(encoder.path),
    }


def write_plots(config: ImdbConfig, run_dir, members, test) -> None:
    """training_curves.png (one per member of an ensemble, in its folder),
    confusion_matrix.png and, with a pretrained encoder, lm_curves.png."""
    from toolkit.training import plots, resumable

    bidirectional = "bidirectional " if config.bidirectional else ""
    for direction, member in members.items():
        encoder = member.encoder
        reads = "" if direction == "forward" else f", reading {direction}"
        plots.training_curves(
            resumable.read_history(member.run_dir),
            member.run_dir / "training_curves.png",
            title=f"IMDB: {config.layers}-layer {bidirectional}{config.cell},"
            f" {config.units} units{reads}"
            + (", LM-pretrained encoder" if encoder is not None else "")
            + (
                f", adversarial (epsilon {config.adversarial_epsilon:g})"
                if config.adversarial_epsilon
                else ""
            ),
            best_epoch=member.state.best_epoch + 1,
        )
        if encoder is not None:
            plots.word_lm_curves(
                encoder.info["history"],
                member.run_dir / "lm_curves.png",
                title=f"Encoder pretraining{reads}: {config.layers}-layer "
                f"{config.cell}, {config.units} units, held-out perplexity "
                f"{encoder.info['heldout_perplexity']:.1f}",
            )
    plots.confusion_matrix(
        test["confusion_matrix"],
        run_dir / "confusion_matrix.png",
        title=f"test accuracy {test['accuracy']:.2%}",
    )


class ReviewBatches:
    """The tokenized splits, batched: `batches("train", shuffle=True,
    seed=...)` is a tf.data dataset of (ids (batch, <= max_length), labels
    (batch,)), bucketed by length as the config asks."""

    def __init__(self, config: ImdbConfig, imdb, vectorizer):
        from toolkit import data

        self.config, self.imdb = config, imdb
        self.vocab_size = vectorizer.vocabulary_size()
        self.tokens = {
            name: data.tokenize(
                imdb.split(name).texts, vectorizer, config.max_length
            )
            for name in ("train", "validation", "test")
        }

    def __call__(self, name, shuffle=False, seed=None, batch_size=None):
        from toolkit import data
        from toolkit.training import distribute

        return data.token_dataset(
            self.tokens[name],
            self.imdb.split(name).labels,
            batch_size or self.config.batch_size,
            shuffle=shuffle,
            seed=seed,
            bucket_boundaries=self.config.bucket_boundaries,
        ).with_options(distribute.shard_options())

    def training_epoch(self, epoch: int):
        """The shuffled training batches of `epoch`, the same on a resume."""
        return self("train", shuffle=True, seed=self.config.seed + epoch)

    def word_counts(self):
        """How often each id occurs in the training reviews, `(vocab,)`."""
        import numpy as np

        ids = self.tokens["train"].flat_values.numpy()
        return np.bincount(ids, minlength=self.vocab_size)

    @property
    def steps_per_epoch(self) -> int:
        return int(self("train").cardinality().numpy())


def evaluate(config: ImdbConfig, model, imdb, batches, members):
    """The test report (the test set's only use), the baselines on the same
    split, and what metrics.json says about the run; for an ensemble, each
    member's own test report too."""
    from toolkit.text import evaluation

    def test_report(model):
        return evaluation.binary_report(
            *evaluation.predict_dataset(model, batches("test", batch_size=256))
        )

    def member_results(member):
        results = {
            "best_epoch": member.state.best_epoch + 1,
            "best_val_loss": member.state.best_value,
            "epochs_run": member.state.epochs_done,
            "stop_reason": member.state.stop_reason,
        }
        if member.encoder is not None:
            results["encoder"] = encoder_results(member.encoder)
        return results

    results = {
        "test": test_report(model),
        "data": imdb.metadata,
        "parameters": int(model.count_params()),
    }
    if len(members) == 1:
        (member,) = members.values()
        results.update(member_results(member))
    else:
        results["members"] = {
            direction: {
                "test": test_report(member.model),
                **member_results(member),
            }
            for direction, member in members.items()
        }
    if config.baseline:
        split = (imdb.train.texts, imdb.train.labels)
        split += (imdb.test.texts, imdb.test.labels)
        results["baseline"] = evaluation.tfidf_bigram_baseline(*split)
        results["nbsvm"] = evaluation.nbsvm_bigram_baseline(*split)
    return results


def export_model(config: ImdbConfig, model, vectorizer, run_dir) -> None:
    """saved_model/ (raw text in, probability out) and model.keras."""
    from toolkit.serving import export

    export.export_text_classifier(
        model, vectorizer, run_dir / "saved_model", config.max_length
    )
    model.save(run_dir / "model.keras")


def fine_tuning_callbacks(config: ImdbConfig, log) -> list:
    """`GradualUnfreezing` of the classifier's layer groups when the config
    asks for it."""
    from toolkit.text.models import CLASSIFIER_LAYER_GROUPS
    from toolkit.training.callbacks import GradualUnfreezing

    if not config.gradual_unfreezing:
        return []
    return [GradualUnfreezing(CLASSIFIER_LAYER_GROUPS, log=log)]


@dataclasses.dataclass
class TrainedClassifier:
    """One trained classifier: the model (best epoch's weights), its
    training state, its pretrained encoder (or None) and its folder."""

    model: object
    state: object
    encoder: object
    run_dir: pathlib.Path


def train_classifier(
    config: ImdbConfig, run, imdb, vectorizer, batches, run_dir
) -> TrainedClassifier:
    """Build, start (encoder or embeddings) and train one classifier in
    `run_dir`, resumably."""
    from toolkit.training import resumable

    log = run.log
    with run.strategy.scope():
        model, trainer = build_and_compile(
            config,
            vectorizer.vocabulary_size(),
            batches.steps_per_epoch,
            batches.word_counts(),
        )
    encoder = start_encoder(config, model, imdb, vectorizer, log, run.strategy)
    log(f"Model ({config.direction}): {model.count_params():,} parameters")
    if trainer is not model:
        log(
            "Adversarial training: each batch also trains on its embeddings "
            f"moved by {config.adversarial_epsilon} (L2 per review, "
            "frequency-normalised) along the loss gradient"
        )
    state = resumable.train_with_resume(
        trainer,
        batches.training_epoch,
        batches("validation", batch_size=256),
        run_dir,
        epochs=config.epochs,
        patience=config.patience,
        verbose=config.verbose,
        chief=run.chief,
        callbacks=fine_tuning_callbacks(config, log),
    )
    return TrainedClassifier(model, state, encoder, run_dir)


def train_and_evaluate(config: ImdbConfig) -> dict:
    """The whole recipe; returns what it writes to metrics.json."""
    from toolkit.text import models
    from toolkit.training import distribute

    start = time.perf_counter()
    run = training_main.start_run(config)
    config, run_dir, log = run.config, run.run_dir, run.log
    imdb = load_reviews(config, log)
    vectorizer = make_vocabulary(config, imdb, run)
    batches = ReviewBatches(config, imdb, vectorizer)
    directions = DIRECTIONS[config.direction]
    members = {}
    for direction in directions:
        if len(directions) > 1:
            log(f"Ensemble member: the {direction} classifier")
        members[direction] = train_classifier(
            dataclasses.replace(config, direction=direction),
            run,
            imdb,
            vectorizer,
            batches,
            run_dir / direction if len(directions) > 1 else run_dir,
        )
    train_seconds = time.perf_counter() - start
    described = distribute.describe(run.strategy)
    if not run.chief:
        return {"chief": False, "distribute": described}
    # Evaluation and export use a one-device copy: under a multi-worker
    # strategy the chief alone cannot run the distributed model.
    for member in members.values():
        member.model = distribute.local_copy(member.model)
    if len(members) == 1:
        (model,) = (member.model for member in members.values())
    else:
        model = models.average_classifiers(
            [member.model for member in members.values()]
        )

    results = evaluate(config, model, imdb, batches, members)
    results["distribute"] = described
    write_plots(config, run_dir, members, results["test"])
    if config.export:
        export_model(config, model, vectorizer, run_dir)
    return training_main.write_results(
        run_dir, results, start, train_and_load=train_seconds
    )


# The classifiers that `--direction` trains.
DIRECTIONS = {
    "forward": ("forward",),
    "backward": ("backward",),
    "both": ("forward", "backward"),
}


def summary(results: dict) -> str:
    test = results["test"]
    members = results.get("members", {"": results})
    lines = []
    for direction, member in members.items():
        name = f"{direction.capitalize()} classifier"
        if "encoder" in member:
            encoder = member["encoder"]
            lines.append(
                (f"{name}: encoder" if direction else "Encoder:")
                + " held-out LM perplexity "
                f"{encoder['heldout_perplexity']:.1f} ({encoder['path']})."
            )
        if direction:
            lines.append(
                f"{name}: test accuracy {member['test']['accuracy']:.4f} "
                f"(best epoch {member['best_epoch']} of "
                f"{member['epochs_run']})."
            )
    what = "Ensemble test" if "members" in results else "Test"
    epochs = (
        ""
        if "members" in results
        else f"best epoch {results['best_epoch']} of {results['epochs_run']}; "
    )
    lines.append(
        f"{what} accuracy {test['accuracy']:.4f}, ROC AUC "
        f"{test['roc_auc']:.4f}, F1 {test['f1']:.4f} on {test['examples']:,} "
        f"reviews ({epochs}{results['seconds']['total']:.0f} s)."
    )
    for key, name in (("baseline", "TF-IDF bigram"), ("nbsvm", "NBSVM-bigram")):
        if key in results:
            base = results[key]
            verdict = (
                "above"
                if test["accuracy"] > base["accuracy"]
                else ("NOT above")
            )
            lines.append(
                f"{name} baseline on the same split: accuracy "
                f"{base['accuracy']:.4f}, ROC AUC {base['roc_auc']:.4f} "
                f"({base['seconds']:.0f} s); the LSTM is {verdict} it."
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    return training_main.run(
        __doc__, PRESETS, ImdbConfig, train_and_evaluate, summary, argv
    )


if __name__ == "__main__":
    sys.exit(main())
