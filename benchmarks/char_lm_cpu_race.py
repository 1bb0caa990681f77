"""Tiny Shakespeare at equal CPU time: the `shakespeare` recipe preset
against a plain Keras character LSTM, and nanoGPT's published CPU result.

Both models train in this process, one after the other, and are scored the
same way: cross-entropy over the whole validation split (the last 10% of
the file, as nanoGPT's `shakespeare_char`), with the state carried through
it (`toolkit.text.evaluation.char_lm_cross_entropy`). Training time excludes
the evaluations.

* toolkit: `python recipes/char_lm.py` (preset `shakespeare`), run through
  `recipes.char_lm.train_and_evaluate`; one point per epoch.
* plain Keras: Embedding(65, 64) -> one built-in `keras.layers.LSTM(256)`
  -> Dense, shuffled windows of 64 characters, batch 32, Adam 2e-3 with
  clipnorm 1.0, no XLA; scored every `--eval-every` seconds of training.
* nanoGPT (Karpathy): its README's CPU configuration (4 layers, 4 heads,
  128 wide, block 64, batch 12, 2000 iterations) reaches 1.88 validation
  loss; on these 2-core machines that took 128 s, and 1.898 over the
  whole validation split. Drawn as a point; it is not rerun here.

    python benchmarks/char_lm_cpu_race.py

Writes `--out` (default benchmarks/results): char_lm_cpu_race.json and
char_lm_cpu_race.png. A benchmark, not a test: times depend on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from recipes import char_lm  # noqa: E402
from recipes.configs.char_lm import PRESETS  # noqa: E402
from toolkit import data  # noqa: E402
from toolkit.text import evaluation  # noqa: E402
from toolkit.training import (
    plots,  # noqa: E402
    resumable,  # noqa: E402
    run_info,  # noqa: E402
)

NANOGPT_CPU = {"seconds": 128.0, "whole_validation": 1.898, "reported": 1.886}
TARGET = 1.65


def plain_keras_curve(corpus, budget, eval_every, seed):
    """The plain Keras reference: `(seconds, val_nats)` points."""
    run_info.set_seed(seed)
    vocab_size = len(corpus.vocabulary)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, 64),
            keras.layers.LSTM(256, return_sequences=True),
            keras.layers.Dense(vocab_size),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    validation = corpus.splits["validation"]
    seconds, next_eval = 0.0, eval_every
    points = []
    passes = 0
    while seconds < budget:
        windows = data.window_dataset(
            corpus.splits["train"], 32, 64, seed=seed + passes
        )
        passes += 1
        for inputs, targets in windows:
            start = time.perf_counter()
            model.train_on_batch(inputs, targets)
            seconds += time.perf_counter() - start
            if seconds >= next_eval or seconds >= budget:
                nats = evaluation.char_lm_cross_entropy(
                    model, validation, 16, 256
                )["nats"]
                points.append((seconds, nats))
                print(f"plain Keras: {seconds:6.1f} s  {nats:.4f} nats/char")
                next_eval += eval_every
            if seconds >= budget:
                break
    return points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--budget", type=float, default=130.0)
    parser.add_argument("--eval-every", type=float, default=20.0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    config = dataclasses.replace(
        PRESETS["shakespeare"],
        data_dir=args.data_dir,
        run_dir=str(out / "shakespeare_run"),
        max_train_seconds=args.budget,
        export=False,
        verbose=2,
    )
    results = char_lm.train_and_evaluate(config)
    history = resumable.read_history(config.run_dir)
    toolkit_points = [(r["train_seconds"], r["val_loss"]) for r in history]
    keras.backend.clear_session()
    corpus = data.load_shakespeare(data_dir=args.data_dir)
    reference = plain_keras_curve(
        corpus, args.budget, args.eval_every, args.seed
    )
    report = {
        "toolkit_shakespeare_preset": {
            "points": toolkit_points,
            "final_validation": results["validation"],
            "train_seconds": results["train_seconds"],
            "parameters": results["parameters"],
        },
        "plain_keras_lstm256": {"points": reference},
        "nanogpt_cpu_published": NANOGPT_CPU,
        "budget_seconds": args.budget,
        "hardware": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "keras": keras.__version__,
        },
    }
    (out / "char_lm_cpu_race.json").write_text(json.dumps(report, indent=2))
    plots.loss_vs_time(
        {
            f"toolkit `shakespeare` preset ({results['parameters']:,} "
            "params)": tuple(zip(*toolkit_points, strict=True)),
            "plain Keras LSTM(256)": tuple(zip(*reference, strict=True)),
        },
        out / "char_lm_cpu_race.png",
        points={
            "nanoGPT CPU config (published, whole split)": (
                NANOGPT_CPU["seconds"],
                NANOGPT_CPU["whole_validation"],
            )
        },
        target=TARGET,
        title=f"Tiny Shakespeare, {os.cpu_count()} CPU cores, "
        f"{args.budget:.0f} s of training",
    )
    final = results["validation"]["nats"]
    print(
        f"toolkit: {final:.4f} nats/char after "
        f"{results['train_seconds']:.0f} s; plain Keras: "
        f"{reference[-1][1]:.4f} after {reference[-1][0]:.0f} s; nanoGPT "
        f"(published): {NANOGPT_CPU['whole_validation']} after 128 s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
