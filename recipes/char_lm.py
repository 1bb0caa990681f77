"""Character language models: train, score in bits per character, export.

Tiny Shakespeare, text8 or any text file, trained with truncated
backpropagation through time.

    python recipes/char_lm.py
    python recipes/char_lm.py --preset=smoke --data-dir=~/data
    python recipes/char_lm.py --preset=text8 --data-dir=/data
    python recipes/char_lm.py --preset=text8-cpu --corpus=imdb-unsup
    python recipes/char_lm.py --corpus=my_book.txt --run-dir=runs/book
    python recipes/char_lm.py --help

Presets: shakespeare (the default; 2 CPU cores, about two minutes of
training), text8 (one GPU), text8-cpu, smoke.

Writes to `--run-dir`: config.json, vocabulary.json, checkpoints/ and
train_state.json (the resume point, with checksums),
history.csv (loss and bits per character per epoch, training seconds),
logs/ (TensorBoard), samples/epoch_XXX.txt, metrics.json,
learning_curves.png, saved_model/ (`generate` and `next_char_probs`
signatures) and model.keras. Run the same command again after an
interruption to resume.
"""

from __future__ import annotations

import dataclasses
import sys
import time

if __package__ in (None, ""):  # `python recipes/char_lm.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

from recipes import training_main  # noqa: E402
from recipes.configs.char_lm import (  # noqa: E402
    DEFAULT_PRESET,
    PRESETS,
    CharLmConfig,
)
from toolkit.training import config as config_lib  # noqa: E402


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
    from toolkit.text import models

    stateful = training and config.batching == "stateful"
    return models.build_char_lm(
        config.encoder_spec(vocab_size),
        stateful=stateful,
        batch_size=config.batch_size if stateful else None,
        seed=config.seed,
    )


def check_vocabulary(vocabulary, run: training_main.Run) -> None:
    """Write the corpus's vocabulary to the run folder, or check it against
    the one there on resume."""
    from toolkit.data.char_lm import CharVocabulary

    path = run.run_dir / "vocabulary.json"
    if path.exists():
        if CharVocabulary.from_json(path.read_text()) != vocabulary:
            raise config_lib.ConfigError(
                f"{run.run_dir} holds a run on a corpus with another "
                "vocabulary; use another --run-dir."
            )
    if run.chief:
        path.write_text(vocabulary.to_json())


def epoch_steps(config: CharLmConfig, train_characters: int) -> int:
    """Batches per epoch: `--steps-per-epoch`, else one pass over the
    training split (stateful streams or shuffled windows)."""
    from toolkit import data

    B, T = config.batch_size, config.sequence_length
    full_pass = data.batches_per_pass(
        train_characters, B, T, streams=config.batching == "stateful"
    )
    if full_pass < 1:
        raise config_lib.ConfigError(
            f"The training split ({train_characters:,} characters) is too "
            f"short for batch_size={B} x sequence_length={T}; lower them."
        )
    return config.steps_per_epoch or full_pass


def train_data(config: CharLmConfig, train_ids, steps_per_epoch: int):
    """`epoch -> dataset`, the same batches for the same epoch."""
    import numpy as np

    from toolkit import data
    from toolkit.training import distribute

    B, T = config.batch_size, config.sequence_length

    def for_epoch(epoch: int):
        rng = np.random.default_rng([config.seed, epoch])
        if config.batching == "stateful":
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

    return for_epoch


def compile_model(config: CharLmConfig, vocab_size, steps_per_epoch, strategy):
    """The training model, built and compiled under `strategy`."""
    import keras
    import numpy as np

    from toolkit.training import specs

    with strategy.scope():
        model = build_model(config, vocab_size, training=True)
        specs.compile_model(
            model,
            config.optimizer_spec(),
            total_steps=config.epochs * steps_per_epoch,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=config.jit_compile,
        )
        batch = config.batch_size if config.batching == "stateful" else 1
        model(np.zeros((batch, 1), dtype="int32"))  # build
    return model


def epoch_callbacks(config: CharLmConfig, run, vocabulary, validation_ids):
    """Validation over the whole split, per-epoch samples (the chief's) and,
    for stateful batches, a state reset as each epoch starts."""
    from toolkit.text import evaluation
    from toolkit.text.sampling import SampleWriter
    from toolkit.training.callbacks import ResetStatesEachEpoch

    callbacks = [
        # Every worker scores validation (same weights, same number), so
        # all agree on the best epoch; only the chief writes samples.
        evaluation.CharLMValidation(
            validation_ids, config.eval_batch_size, config.eval_sequence_length
        ),
    ]
    if run.chief:
        prime = config.sample_prime or vocabulary.decode(validation_ids[:32])
        callbacks.append(
            SampleWriter(
                run.run_dir / "samples",
                vocabulary,
                prime,
                config.sample_temperatures,
                config.sample_length,
                seed=config.seed,
            )
        )
    if config.batching == "stateful":
        callbacks.insert(0, ResetStatesEachEpoch())
    return callbacks


def evaluate(config: CharLmConfig, model, corpus, state, log) -> dict:
    """Cross-entropy over the whole validation and test splits with the
    best epoch's weights (the test split's only use), and what
    metrics.json says about the run."""
    from toolkit.text import evaluation

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
    }
    if "test" in corpus.splits:
        results["test"] = score("test")
    return results


def export_model(config: CharLmConfig, model, vocabulary, run_dir) -> None:
    """saved_model/ and model.keras from a stateless copy of `model` that
    takes any batch size: what users load and serve."""
    from toolkit.serving import export

    inference = build_model(config, len(vocabulary), training=False)
    inference.set_weights(model.get_weights())
    export.export_char_lm(inference, vocabulary, run_dir / "saved_model")
    inference.save(run_dir / "model.keras")


def train_and_evaluate(config: CharLmConfig) -> dict:
    """The whole recipe; returns what it writes to metrics.json."""
    from toolkit.training import distribute, plots, resumable

    start = time.perf_counter()
    run = training_main.start_run(config)
    config, run_dir, log = run.config, run.run_dir, run.log
    corpus = load_corpus(config)
    vocabulary = corpus.vocabulary
    check_vocabulary(vocabulary, run)
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in corpus.splits.items())
    log(
        f"Corpus {corpus.name}: {len(vocabulary)} characters; {sizes} "
        f"characters ({corpus.metadata['source']})"
    )
    train_ids = corpus.splits["train"]
    steps = epoch_steps(config, len(train_ids))
    model = compile_model(config, len(vocabulary), steps, run.strategy)
    log(
        f"Model: {model.count_params():,} parameters; {steps:,} steps of "
        f"{config.batch_size}x{config.sequence_length} characters per "
        f"epoch, {config.batching} batches"
    )
    if config.max_train_seconds is not None:
        log(
            f"Stops after {config.max_train_seconds:g} s of training "
            "(the preset's time cap); --max-train-seconds=none to lift it."
        )
    state = resumable.train_with_resume(
        model,
        train_data(config, train_ids, steps),
        None,
        run_dir,
        epochs=config.epochs,
        patience=config.patience,
        verbose=config.verbose,
        callbacks=epoch_callbacks(
            config, run, vocabulary, corpus.splits["validation"]
        ),
        max_train_seconds=config.max_train_seconds,
        chief=run.chief,
    )
    described = distribute.describe(run.strategy)
    if not run.chief:
        return {"chief": False, "distribute": described}
    model = distribute.local_copy(model)  # scored and exported on one device

    results = evaluate(config, model, corpus, state, log)
    results["distribute"] = described
    plots.char_lm_curves(
        resumable.read_history(run_dir),
        run_dir / "learning_curves.png",
        title=f"{corpus.name}: {config.layers}-layer {config.cell}, "
        f"{config.units} units",
    )
    if config.export:
        export_model(config, model, vocabulary, run_dir)
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


def uncap_other_corpus(preset: str, config: CharLmConfig, argv) -> CharLmConfig:
    """A preset's time cap is planned for the preset's own corpus: with
    another `--corpus` it is lifted, unless `--max-train-seconds` is
    given."""
    asked = any(arg.startswith("--max-train-seconds") for arg in argv)
    if asked or config.corpus == PRESETS[preset].corpus:
        return config
    return dataclasses.replace(config, max_train_seconds=None)


def main(argv=None) -> int:
    return training_main.run(
        __doc__,
        PRESETS,
        CharLmConfig,
        train_and_evaluate,
        summary,
        argv,
        default_preset=DEFAULT_PRESET,
        adjust=uncap_other_corpus,
    )


if __name__ == "__main__":
    sys.exit(main())
