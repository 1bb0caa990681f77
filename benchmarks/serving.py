"""Serving speed and memory of exported SavedModels, as a server sees them.

    python benchmarks/serving.py --classifier runs/imdb_default_movie \
        --char-lm runs/shakespeare/saved_model --data-dir ../shared/data

`--classifier` takes an IMDB run folder (its model.keras is exported again
with this checkout's `toolkit.serving.export`, so the graph measured is
today's) or a saved_model/ folder. The texts are real IMDB test reviews of
about the median length (230 words); every call draws its batch from them.

Reports, with the CPU model:
- the first call at each shape (the XLA compile);
- texts/s and p50/p99 latency of `serve` at batch 1, 32 and 256 from 1, 4
  and 16 client threads, each thread calling in a loop for `--seconds`;
- the p50 latency of one median-length review, from one thread, with the
  machine otherwise idle (the issue's target: 20 ms or less on 2 cores);
- `generate(200)` characters/s of the character LM, and `next_char_probs`
  latency;
- resident memory before and after `--calls` single-review calls.

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rnn_throughput import machine  # noqa: E402 (this folder)

import recipes  # noqa: E402, F401 (TensorFlow imported quietly)


def resident_mib() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def classifier_export(path: pathlib.Path, folder: pathlib.Path) -> str:
    """A saved_model/ folder: `path` itself, or `path`'s model.keras and
    vocabulary.txt exported into `folder` with today's toolkit."""
    if (path / "saved_model.pb").exists():
        return str(path)
    import keras

    from toolkit.data import read_vocabulary
    from toolkit.serving import export

    config = json.loads((path / "config.json").read_text())
    vocabulary = read_vocabulary(path / "vocabulary.txt")
    vectorizer = keras.layers.TextVectorization(
        max_tokens=len(vocabulary), vocabulary=vocabulary[2:]
    )
    model = keras.saving.load_model(path / "model.keras")
    target = folder / "classifier"
    export.export_text_classifier(
        model, vectorizer, target, config["max_length"]
    )
    return str(target)


def median_reviews(data_dir: str | None, count: int = 256) -> list[str]:
    """`count` IMDB test reviews around the median length in words."""
    from toolkit.data import load_imdb

    texts = load_imdb(data_dir=data_dir).test.texts
    by_length = sorted(texts, key=lambda text: len(text.split()))
    middle = len(by_length) // 2
    chosen = by_length[middle - count // 2 : middle + count // 2]
    words = [len(text.split()) for text in chosen]
    print(
        f"Reviews: {len(chosen)} test reviews of {min(words)}-{max(words)} "
        f"words (median of the test set: "
        f"{len(by_length[middle].split())})"
    )
    return chosen


def load_test(call, threads: int, seconds: float) -> dict:
    """`call()` from `threads` threads in a loop for `seconds`: calls/s and
    p50/p99 latency in ms."""
    latencies, lock = [], threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        own = []
        while time.perf_counter() < stop:
            start = time.perf_counter()
            call()
            own.append(time.perf_counter() - start)
        with lock:
            latencies.extend(own)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    return {
        "calls_per_s": len(ms) / elapsed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "calls": len(ms),
    }


def bench_classifier(export_dir: str, reviews, args) -> None:
    import tensorflow as tf

    served = tf.saved_model.load(export_dir)
    rng = np.random.default_rng(0)

    def batch_of(size):
        return tf.constant(
            [reviews[i] for i in rng.integers(len(reviews), size=size)]
        )

    print("\nClassifier first call per batch size (XLA compile):")
    for size in args.batches:
        start = time.perf_counter()
        served.serve(batch_of(size))
        print(f"  batch {size}: {time.perf_counter() - start:.2f} s")
    # Warm every length bucket these reviews reach, at every batch size.
    for size in args.batches:
        for _ in range(8):
            served.serve(batch_of(size))

    single = load_test(
        lambda: served.serve(batch_of(1)).numpy(), 1, args.seconds
    )
    print(
        f"\nOne median-length review, one client: p50 {single['p50_ms']:.1f} "
        f"ms, p99 {single['p99_ms']:.1f} ms ({single['calls']} calls)"
    )
    print(
        "\n| batch | client threads | texts/s | p50 latency (ms) | "
        "p99 latency (ms) |\n|---:|---:|---:|---:|---:|"
    )
    for size in args.batches:
        batch = batch_of(size)
        for threads in args.threads:
            result = load_test(
                lambda b=batch: served.serve(b).numpy(), threads, args.seconds
            )
            print(
                f"| {size} | {threads} | {result['calls_per_s'] * size:,.0f}"
                f" | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} |"
            )

    print(f"\nResident memory over {args.calls:,} single-review calls:")
    before = resident_mib()
    for i in range(args.calls):
        served.serve(tf.constant([reviews[i % len(reviews)]])).numpy()
    print(f"  {before:,.0f} MiB -> {resident_mib():,.0f} MiB")


def bench_char_lm(export_dir: str, args) -> None:
    import tensorflow as tf

    lm = tf.saved_model.load(export_dir)
    prime = tf.constant("ROMEO:\n")

    def generate(seed):
        return lm.generate(
            prime,
            tf.constant(args.generate, tf.int32),
            tf.constant(0.8),
            tf.constant(seed, tf.int64),
        ).numpy()

    generate(0)
    times = []
    for seed in range(5):
        start = time.perf_counter()
        generate(seed)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    print(
        f"\nCharacter LM generate({args.generate}): {seconds * 1e3:.0f} ms, "
        f"{args.generate / seconds:,.0f} characters/s (median of 5)"
    )
    probs = load_test(lambda: lm.next_char_probs(prime), 1, args.seconds / 2)
    print(
        f"next_char_probs on a {len('ROMEO:') + 1}-character prime: p50 "
        f"{probs['p50_ms']:.1f} ms"
    )
    before = resident_mib()
    for seed in range(args.calls // 100):
        generate(seed)
    print(
        f"Resident memory over {args.calls // 100} generate calls: "
        f"{before:,.0f} MiB -> {resident_mib():,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", type=pathlib.Path)
    parser.add_argument("--char-lm")
    parser.add_argument(
        "--data-dir", default=os.environ.get("TOOLKIT_DATA_DIR")
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--generate", type=int, default=200)
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        if args.classifier:
            export_dir = classifier_export(
                args.classifier, pathlib.Path(folder)
            )
            bench_classifier(export_dir, median_reviews(args.data_dir), args)
        if args.char_lm:
            bench_char_lm(args.char_lm, args)


if __name__ == "__main__":
    main()
