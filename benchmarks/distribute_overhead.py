"""Training steps per second on one device and under `mirrored` with 1 and
2 logical CPU devices, side by side in one process.

The process splits its CPU into two logical devices (`--cpu-devices=2`, as
the recipes do for testing), then trains the same model three ways on the
same global batches: no strategy, `MirroredStrategy` over one logical
device, and over two. Rounds of `--steps` steps alternate between the
three so that all see the same machine load; the table gives steps/s of
the best round and of the median round, each with its ratio to no
strategy (on a shared 2-core machine some rounds stall for whole
multiples of their normal time, so the best round is the cost of the
strategy itself and the median shows how often it stalls). Logical CPU
devices share the same cores, so two replicas add no compute: the ratio
measures what tf.distribute costs (splitting batches, all-reducing
gradients, running replicas' steps), not a speed-up. XLA is off
everywhere (it cannot run replicas on logical CPU devices).

    python benchmarks/distribute_overhead.py
    python benchmarks/distribute_overhead.py --rounds 3 --steps 10   # quick

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from toolkit.training import distribute  # noqa: E402

STRATEGIES = ("none", "mirrored-1", "mirrored-2")


def workloads():
    """`name -> (build_model, inputs, targets, global batch)`: the IMDB
    recipe's default classifier on 200-token reviews, and the Shakespeare
    preset's character LM on 64-character windows."""
    import keras
    import numpy as np

    from toolkit.text import models
    from toolkit.text.encoder import EncoderSpec
    from toolkit.training.specs import OptimizerSpec, compile_model

    rng = np.random.default_rng(0)

    def classifier():
        model = models.build_text_classifier(
            EncoderSpec(20_000, 128, units=(128, 128), bidirectional=True),
            embedding_dropout=0.0,
            head_dropout=0.0,
            pooling="mean_max",
            seed=0,
        )
        return compile_model(
            model, OptimizerSpec("adam", 2e-3), 1, loss="binary_crossentropy"
        )

    def char_lm():
        model = models.build_char_lm(EncoderSpec(65, 64, units=(192, 192)))
        return compile_model(
            model,
            OptimizerSpec("adam", 5e-3),
            1,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    return {
        "IMDB classifier (2x128 biLSTM, 200 tokens, batch 64)": (
            classifier,
            rng.integers(1, 20_000, (64, 200)),
            rng.integers(0, 2, (64, 1)).astype("float32"),
            64,
        ),
        "character LM (2x192 LSTM, 64 chars, batch 32)": (
            char_lm,
            rng.integers(0, 65, (32, 64)),
            rng.integers(0, 65, (32, 64)),
            32,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--output",
        default="benchmarks/results/distribute_overhead.json",
        help="where to write the numbers (JSON)",
    )
    args = parser.parse_args()

    devices = distribute.configure_cpu_devices(2)
    import tensorflow as tf

    from toolkit.training import run_info

    strategies = {
        "none": tf.distribute.get_strategy(),
        "mirrored-1": tf.distribute.MirroredStrategy(devices[:1]),
        "mirrored-2": tf.distribute.MirroredStrategy(
            devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
        ),
    }
    results = {"hardware": run_info.hardware(), "workloads": {}}
    for name, (build, inputs, targets, batch) in workloads().items():
        dataset = (
            tf.data.Dataset.from_tensors((inputs, targets))
            .repeat(args.steps)
            .prefetch(2)
        )
        trained = {}
        for key, strategy in strategies.items():
            with strategy.scope():
                trained[key] = build()
            trained[key].fit(dataset.take(2), verbose=0)  # trace, warm up
        seconds = {key: [] for key in strategies}
        for _ in range(args.rounds):
            for key, model in trained.items():
                start = time.perf_counter()
                model.fit(dataset, verbose=0)
                seconds[key].append(time.perf_counter() - start)
        best = {key: args.steps / min(v) for key, v in seconds.items()}
        median = {
            key: args.steps / statistics.median(v) for key, v in seconds.items()
        }
        results["workloads"][name] = {
            key: {
                "best_steps_per_second": best[key],
                "best_ratio_to_none": best[key] / best["none"],
                "median_steps_per_second": median[key],
                "median_ratio_to_none": median[key] / median["none"],
                "seconds": seconds[key],
            }
            for key in strategies
        }
        print(f"\n{name}, global batch {batch}; steps/s (x of no strategy)")
        print(f"  {'':11s} {'best round':>17s} {'median round':>17s}")
        for key in strategies:
            b, m = best[key], median[key]
            print(
                f"  {key:11s} {b:8.2f} ({b / best['none']:.2f}x)"
                f" {m:8.2f} ({m / median['none']:.2f}x)"
            )
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"\nWrote {output}")


if __name__ == "__main__":
    main()
