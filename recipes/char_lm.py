"""Character language models (Tiny Shakespeare, text8, any text file):
train with truncated backprop through time, score in bits per character,
sample, export.

    python recipes/char_lm.py --data-dir=../shared/data
    python recipes/char_lm.py --preset=smoke --data-dir=../shared/data
    python recipes/char_lm.py --preset=text8 --data-dir=/data
    python recipes/char_lm.py --preset=text8-cpu --corpus=imdb-unsup
    python recipes/char_lm.py --corpus=my_book.txt --run-dir=runs/book
    python recipes/char_lm.py --help

Presets: shakespeare (the default; 2 CPU cores, about two minutes of
training), text8 (one GPU), text8-cpu, smoke.

Writes to `--run-dir`: config.json, vocabulary.json, checkpoints/,
history.csv (loss and bits per character per epoch, training seconds),
logs/ (TensorBoard), samples/epoch_XXX.txt, metrics.json,
learning_curves.png, saved_model/ (`generate` and `next_char_probs`
signatures) and model.keras. Run the same command again after an
interruption to resume.
"""

from __future__ import annotations

import pathlib
import sys
import time

if __package__ in (None, ""):  # `python recipes/char_lm.py`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from recipes import training_main  # noqa: E402
from recipes.configs.char_lm import (  # noqa: E402
    DEFAULT_PRESET,
    PRESETS,
    CharLmConfig,
)
from toolkit import config as config_lib  # noqa: E402


def load_corpus(config: CharLmConfig):
    """The `CharCorpus` that `config.corpus` names."""
    from toolkit import data

    if config.corpus == "shakespeare":
        corpus = data.load_shakespeare(data_dir=config.data_dir)
        if config.max_chars is not None:
            raise config_lib.ConfigError(
                "Option `--max-chars` applies to text8 and text files, not "
                "to Tiny Shakespeare."
            )
        return corpus
    if config.corpus == "text8":
        return data.load_text8(
            data_dir=config.data_dir,
            max_chars=config.max_chars,
            strict=config.strict_data,
        )
    if config.corpus == "imdb-unsup":
        return data.imdb_unsup_text8(
            data_dir=config.data_dir,
            max_chars=config.max_chars,
            strict=config.strict_data,
        )
    return data.load_text_corpus(
        config.corpus, config.text8_format, max_chars=config.max_chars
    )


def build_model(config: CharLmConfig, vocab_size: int, training: bool):
    """The config's character LM: stateful with a fixed batch when it
    trains with stateful batches, else stateless with any batch size."""
    from toolkit import models

    stateful = training and config.batching == "stateful"
    return models.build_char_lm(
        vocab_size=vocab_size,
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=[config.units] * config.layers,
        dropout=config.dropout,
        residual=config.residual,
        stateful=stateful,
        batch_size=config.batch_size if stateful else None,
        seed=config.seed,
    )


def train_and_evaluate(config: CharLmConfig) -> dict:
    """The whole recipe; returns what it writes to metrics.json."""
    import keras
    import numpy as np

    from toolkit import (
        data,
        distribute,
        evaluation,
        export,
        optimizers,
        plots,
        training,
    )
    from toolkit.callbacks import ResetStatesEachEpoch
    from toolkit.data.char_lm import CharVocabulary
    from toolkit.sampling import SampleWriter

    start = time.perf_counter()
    run = training_main.start_run(config)
    config, strategy, chief, run_dir, log = (
        run.config,
        run.strategy,
        run.chief,
        run.run_dir,
        run.log,
    )

    corpus = load_corpus(config)
    vocabulary = corpus.vocabulary
    vocabulary_path = run_dir / "vocabulary.json"
    if vocabulary_path.exists():
        saved = CharVocabulary.from_json(vocabulary_path.read_text())
        if saved != vocabulary:
            raise config_lib.ConfigError(
                f"{run_dir} holds a run on a corpus with another vocabulary; "
                "use another --run-dir."
            )
    if chief:
        vocabulary_path.write_text(vocabulary.to_json())
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in corpus.splits.items())
    log(
        f"Corpus {corpus.name}: {len(vocabulary)} characters; {sizes} "
        f"characters ({corpus.metadata['source']})"
    )
    train_ids = corpus.splits["train"]
    validation_ids = corpus.splits["validation"]
    stateful = config.batching == "stateful"

    B, T = config.batch_size, config.sequence_length
    if stateful:
        full_pass = ((len(train_ids) - T) // B) // T
    else:
        full_pass = -(-((len(train_ids) - 1) // T) // B)
    if full_pass < 1:
        raise config_lib.ConfigError(
            f"The training split ({len(train_ids):,} characters) is too short "
            f"for batch_size={B} x sequence_length={T}; lower them."
        )
    steps_per_epoch = config.steps_per_epoch or full_pass

    def train_data_for_epoch(epoch: int):
        rng = np.random.default_rng([config.seed, epoch])
        if stateful:
            # A whole pass starts each epoch at the streams' beginning;
            # shorter epochs take turns through them.
            return data.tbptt_dataset(
                train_ids,
                B,
                T,
                offset=int(rng.integers(T)),
                first_batch=epoch * steps_per_epoch
                if config.steps_per_epoch
                else 0,
                num_batches=steps_per_epoch,
            )
        return (
            data.window_dataset(train_ids, B, T, seed=int(rng.integers(2**31)))
            .repeat()
            .take(steps_per_epoch)
            .with_options(distribute.shard_options())
        )

    total_steps = config.epochs * steps_per_epoch
    with strategy.scope():
        model = build_model(config, len(vocabulary), training=True)
        learning_rate = optimizers.make_schedule(
            config.schedule,
            config.learning_rate,
            total_steps,
            min(config.warmup_steps, total_steps - 1),
            config.final_lr_fraction,
        )
        model.compile(
            optimizer=optimizers.make_optimizer(
                config.optimizer, learning_rate, config.clipnorm
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=config.jit_compile,
        )
        model(np.zeros((B if stateful else 1, 1), dtype="int32"))  # build
    log(
        f"Model: {model.count_params():,} parameters; {steps_per_epoch:,} "
        f"steps of {B}x{T} characters per epoch, {config.batching} batches"
    )

    prime = config.sample_prime or vocabulary.decode(validation_ids[:32])
    callbacks = [
        # Every worker scores validation (same weights, same number), so
        # all agree on the best epoch; only the chief writes samples.
        evaluation.CharLMValidation(
            validation_ids, config.eval_batch_size, config.eval_sequence_length
        ),
    ]
    if chief:
        callbacks.append(
            SampleWriter(
                run_dir / "samples",
                vocabulary,
                prime,
                config.sample_temperatures,
                config.sample_length,
                seed=config.seed,
            )
        )
    if stateful:
        callbacks.insert(0, ResetStatesEachEpoch())
    state = training.train_with_resume(
        model,
        train_data_for_epoch,
        None,
        run_dir,
        epochs=config.epochs,
        patience=config.patience,
        verbose=config.verbose,
        callbacks=callbacks,
        max_train_seconds=config.max_train_seconds,
        chief=chief,
    )
    if not chief:
        return {"chief": False, "distribute": distribute.describe(strategy)}
    model = distribute.local_copy(model)  # scored and exported on one device

    # Whole splits, with the best epoch's weights; test only once, here.
    def score(name):
        result = evaluation.char_lm_cross_entropy(
            model,
            corpus.splits[name],
            config.eval_batch_size,
            config.eval_sequence_length,
        )
        log(
            f"{name}: {result['nats']:.4f} nats/char, "
            f"{result['bits']:.4f} bits/char over {result['characters']:,} "
            "characters"
        )
        return result

    results = {
        "corpus": corpus.metadata,
        "validation": score("validation"),
        "best_epoch": state.best_epoch + 1,
        "epochs_run": state.epochs_done,
        "stop_reason": state.stop_reason,
        "train_seconds": state.train_seconds,
        "parameters": int(model.count_params()),
        "distribute": distribute.describe(strategy),
    }
    if "test" in corpus.splits:
        results["test"] = score("test")
    history = training.read_history(run_dir)
    plots.char_lm_curves(
        history,
        run_dir / "learning_curves.png",
        title=f"{corpus.name}: {config.layers}-layer {config.cell}, "
        f"{config.units} units",
    )
    if config.export:
        # Stateless, any batch size: what users load and serve.
        inference = build_model(config, len(vocabulary), training=False)
        inference.set_weights(model.get_weights())
        export.export_char_lm(inference, vocabulary, run_dir / "saved_model")
        inference.save(run_dir / "model.keras")
    results["samples"] = str(run_dir / "samples")
    return training_main.write_results(run_dir, results, start)


def summary(results: dict) -> str:
    validation = results["validation"]
    lines = [
        f"Validation: {validation['nats']:.4f} nats/char "
        f"({validation['bits']:.4f} bits/char) over "
        f"{validation['characters']:,} characters; best epoch "
        f"{results['best_epoch']} of {results['epochs_run']}, "
        f"{results['train_seconds']:.0f} s of training "
        f"({results['stop_reason']})."
    ]
    if "test" in results:
        test = results["test"]
        lines.append(
            f"Test: {test['nats']:.4f} nats/char ({test['bits']:.4f} "
            f"bits/char) over {test['characters']:,} characters."
        )
    lines.append(f"Samples: {results['samples']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    return training_main.run(
        __doc__,
        PRESETS,
        CharLmConfig,
        train_and_evaluate,
        summary,
        argv,
        default_preset=DEFAULT_PRESET,
    )


if __name__ == "__main__":
    sys.exit(main())
