"""Serving speed and memory of exported SavedModels, as a server sees them.

    python benchmarks/serving.py --classifier runs/imdb_sentiment \
        --char-lm runs/shakespeare/saved_model --json results.json
    python benchmarks/serving.py --classifier runs/imdb_sentiment --litert \
        --litert-accuracy --json results.json

`--classifier` takes an IMDB run folder (its model.keras is exported again
with this checkout's `toolkit.serving.export`, so the graph measured is
today's) or a saved_model/ folder. The texts are real IMDB test reviews of
about the median length (170 words); every call draws its batch from them.

Reports, with the CPU model:
- the first call at each shape (the XLA compile);
- texts/s and p50/p99 latency of `serve` at batch 1, 32 and 256 from 1, 4
  and 16 client threads, each thread calling in a loop for `--seconds`;
- the p50 latency of one median-length review, from one thread, with the
  machine otherwise idle (the target: 20 ms or less on 2 cores);
- `generate(200)` characters/s of the character LM, and `next_char_probs`
  latency;
- resident memory before and after `--calls` single-review calls;
- with `--char-lm-run` (a char_lm.py run folder): generate() characters/s
  of its model exported with and without the XLA-compiled step;
- with `--litert` (an IMDB run folder as `--classifier`): the run's
  classifier exported to LiteRT (float32, dynamic-range int8 weights,
  float16 weights; fused LSTM kernel; batch 1, free length), and, with
  `--litert-loop`, as the loop of builtin ops at 400 tokens: p50/p99 of
  one median review in `tf.lite.Interpreter` beside the SavedModel's
  (LiteRT times the model on token ids; the SavedModel's call includes
  tokenizing), the file sizes, and with `--litert-accuracy` the accuracy
  of each on the test reviews against the Keras model's.

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
from results_file import machine, write  # noqa: E402 (this folder)

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


def median_reviews(
    data_dir: str | None, count: int = 256
) -> tuple[list[str], dict]:
    """`count` IMDB test reviews around the median length in words, and
    their lengths for the results file: the test set's median and the
    chosen reviews' shortest and longest."""
    from toolkit.data import load_imdb

    texts = load_imdb(data_dir=data_dir).test.texts
    by_length = sorted(texts, key=lambda text: len(text.split()))
    middle = len(by_length) // 2
    chosen = by_length[middle - count // 2 : middle + count // 2]
    words = [len(text.split()) for text in chosen]
    lengths = {
        "test set": len(by_length[middle].split()),
        "chosen": [min(words), max(words)],
    }
    print(
        f"Reviews: {len(chosen)} test reviews of {min(words)}-{max(words)} "
        f"words (median of the test set: {lengths['test set']})"
    )
    return chosen, lengths


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


def bench_classifier(export_dir: str, reviews, median_words, args) -> dict:
    import tensorflow as tf

    served = tf.saved_model.load(export_dir)
    rng = np.random.default_rng(0)

    def batch_of(size):
        return tf.constant(
            [reviews[i] for i in rng.integers(len(reviews), size=size)]
        )

    results = {"median_words": median_words, "first_call_s": {}}
    print("\nClassifier first call per batch size (XLA compile):")
    for size in args.batches:
        start = time.perf_counter()
        served.serve(batch_of(size))
        results["first_call_s"][size] = time.perf_counter() - start
        print(f"  batch {size}: {results['first_call_s'][size]:.2f} s")
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
    results["one_review"] = single
    results["load"] = []
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
            results["load"].append(
                {
                    "batch": size,
                    "threads": threads,
                    "texts_per_s": result["calls_per_s"] * size,
                    **result,
                }
            )
            print(
                f"| {size} | {threads} | {result['calls_per_s'] * size:,.0f}"
                f" | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} |"
            )

    print(f"\nResident memory over {args.calls:,} single-review calls:")
    before = resident_mib()
    for i in range(args.calls):
        served.serve(tf.constant([reviews[i % len(reviews)]])).numpy()
    after = resident_mib()
    print(f"  {before:,.0f} MiB -> {after:,.0f} MiB")
    results["resident_mib"] = {"before": before, "after": after}
    return results


def litert_models(run_dir: pathlib.Path, folder: pathlib.Path, loop: bool):
    """(keras model, vectorizer, max_length, {name: flatbuffer bytes})."""
    import keras

    import toolkit  # noqa: F401
    from toolkit.data import read_vocabulary
    from toolkit.serving import litert

    config = json.loads((run_dir / "config.json").read_text())
    model = keras.saving.load_model(run_dir / "model.keras")
    vectorizer = keras.layers.TextVectorization(
        vocabulary=read_vocabulary(run_dir / "vocabulary.txt")
    )
    exports = {}
    for quantize in ("none", "dynamic", "float16"):
        name = "LiteRT float32" if quantize == "none" else f"LiteRT {quantize}"
        start = time.perf_counter()
        path = litert.export_litert_classifier(
            model, folder / f"{quantize}.tflite", None, quantize=quantize
        )
        exports[name] = path.read_bytes()
        print(
            f"{name}: converted and checked in "
            f"{time.perf_counter() - start:.0f} s, "
            f"{len(exports[name]) / 1e6:.1f} MB, "
            f"{litert.op_names(exports[name]).count('UNIDIRECTIONAL_SEQUENCE_LSTM')}"
            " fused LSTM ops"
        )
    if loop:
        path = litert.export_litert_classifier(
            model, folder / "loop.tflite", config["max_length"], fuse_lstm=False
        )
        exports["LiteRT float32, loop (400 tokens)"] = path.read_bytes()
    return model, vectorizer, config["max_length"], exports


def bench_litert(run_dir, export_dir, reviews, args) -> dict:
    """One median review's latency for the SavedModel and each LiteRT
    model, and optionally the test accuracy of each."""
    import tensorflow as tf

    from toolkit.serving import litert

    results = {}
    with tempfile.TemporaryDirectory() as folder:
        model, vectorizer, max_length, exports = litert_models(
            run_dir, pathlib.Path(folder), args.litert_loop
        )
    ids = [
        np.asarray(vectorizer([text])[:, :max_length], np.int32)
        for text in reviews
    ]
    served = tf.saved_model.load(export_dir)
    for text in reviews[:16]:  # compile the length buckets
        served.serve(tf.constant([text])).numpy()
    rng = np.random.default_rng(0)
    rows = {
        "SavedModel (XLA, text in)": lambda: served.serve(
            tf.constant([reviews[rng.integers(len(reviews))]])
        ).numpy()
    }
    for name, flatbuffer in exports.items():
        runner = litert.LiteRTRunner(flatbuffer)  # resets the LSTM states
        fixed = "loop" in name

        def call(runner=runner, fixed=fixed):
            review = ids[rng.integers(len(ids))]
            if fixed:
                review = np.pad(
                    review, [[0, 0], [0, max_length - review.shape[1]]]
                )
            return runner(ids=review)["probability"]

        call()
        rows[name] = call
    print(
        "\n| model | one median review p50 (ms) | p99 (ms) | size (MB) |"
        "\n|---|---:|---:|---:|"
    )
    for name, call in rows.items():
        result = load_test(call, 1, args.seconds)
        size = len(exports[name]) / 1e6 if name in exports else None
        shown = "-" if size is None else f"{size:.1f}"
        print(
            f"| {name} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | "
            f"{shown} |",
            flush=True,
        )
        results[name] = {**result, "size_mb": size}
    if args.litert_accuracy:
        results["accuracy"] = litert_accuracy(
            model, vectorizer, max_length, exports, args
        )
    return results


def litert_accuracy(model, vectorizer, max_length, exports, args) -> dict:
    """Accuracy on the IMDB test reviews of the Keras model and of each
    LiteRT model (batch 1, reviews in length order)."""
    from toolkit.data import load_imdb
    from toolkit.serving import litert

    test = load_imdb(data_dir=args.data_dir).test
    texts, labels = list(test.texts), np.asarray(test.labels)
    if args.litert_accuracy_reviews:
        texts = texts[: args.litert_accuracy_reviews]
        labels = labels[: args.litert_accuracy_reviews]
    ids = [
        np.asarray(vectorizer([text])[0, :max_length], np.int32)
        for text in texts
    ]
    order = np.argsort([len(i) for i in ids])
    accuracy = {}
    keras_scores = np.zeros(len(ids))
    for start in range(0, len(order), 64):
        chunk = order[start : start + 64]
        width = max(1, max(len(ids[i]) for i in chunk))
        batch = np.zeros((len(chunk), width), np.int32)
        for row, i in enumerate(chunk):
            batch[row, : len(ids[i])] = ids[i]
        keras_scores[chunk] = np.reshape(model(batch, training=False), [-1])
    accuracy["Keras"] = float(np.mean((keras_scores >= 0.5) == labels))
    print(f"\nTest accuracy over {len(ids):,} reviews:")
    print(f"  Keras model: {accuracy['Keras']:.4%}")
    for name, flatbuffer in exports.items():
        if "loop" in name:
            continue
        runner = litert.LiteRTRunner(flatbuffer)
        scores = np.zeros(len(ids))
        start = time.perf_counter()
        for i in order:
            review = ids[i] if len(ids[i]) else np.zeros(1, np.int32)
            scores[i] = runner(ids=review[None])["probability"][0]
        accuracy[name] = float(np.mean((scores >= 0.5) == labels))
        agree = float(np.mean((scores >= 0.5) == (keras_scores >= 0.5)))
        worst = float(np.max(np.abs(scores - keras_scores)))
        print(
            f"  {name}: {accuracy[name]:.4%} ({agree:.4%} of decisions as "
            f"Keras's; largest difference {worst:.2e};"
            f" {time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    return accuracy


def bench_generation_xla(run_dir: pathlib.Path, args) -> dict:
    """generate(`--generate`) characters/s of a character-LM run's model
    exported with and without the XLA-compiled step (same checkout)."""
    import keras
    import tensorflow as tf

    import toolkit  # noqa: F401
    from toolkit.data import CharVocabulary
    from toolkit.serving import export

    model = keras.saving.load_model(run_dir / "model.keras")
    vocabulary = CharVocabulary.from_json(
        (run_dir / "vocabulary.json").read_text()
    )
    results = {}
    print(f"\nCharacter LM generate({args.generate}), median of 5:")
    with tempfile.TemporaryDirectory() as folder:
        for jit in (False, True):
            target = pathlib.Path(folder) / f"jit_{jit}"
            export.export_char_lm(model, vocabulary, target, jit_compile=jit)
            lm = tf.saved_model.load(str(target))

            def generate(seed, lm=lm):
                return lm.generate(
                    tf.constant("ROMEO:\n"),
                    tf.constant(args.generate, tf.int32),
                    tf.constant(0.8),
                    tf.constant(seed, tf.int64),
                ).numpy()

            start = time.perf_counter()
            generate(0)
            first = time.perf_counter() - start
            times = []
            for seed in range(1, 6):
                start = time.perf_counter()
                generate(seed)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            name = "XLA step" if jit else "plain graph"
            results[name] = {
                "characters_per_s": args.generate / seconds,
                "first_call_s": first,
            }
            print(
                f"  {name}: {args.generate / seconds:,.0f} characters/s "
                f"(first call {first:.1f} s)",
                flush=True,
            )
    return results


def bench_char_lm(export_dir: str, args) -> dict:
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
    after = resident_mib()
    print(
        f"Resident memory over {args.calls // 100} generate calls: "
        f"{before:,.0f} MiB -> {after:,.0f} MiB"
    )
    return {
        "generate_characters": args.generate,
        "generate_ms": seconds * 1e3,
        "characters_per_s": args.generate / seconds,
        "next_char_probs": probs,
        "resident_mib": {"before": before, "after": after},
    }


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
    parser.add_argument("--litert", action="store_true")
    parser.add_argument("--litert-loop", action="store_true")
    parser.add_argument("--litert-accuracy", action="store_true")
    parser.add_argument("--litert-accuracy-reviews", type=int)
    parser.add_argument("--json", type=pathlib.Path, help="write results")
    parser.add_argument(
        "--char-lm-run",
        type=pathlib.Path,
        help="a char_lm.py run folder: generation with and without XLA",
    )
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        if args.classifier:
            export_dir = classifier_export(
                args.classifier, pathlib.Path(folder)
            )
            reviews, median_words = median_reviews(args.data_dir)
            if args.litert:
                results.update(
                    bench_litert(args.classifier, export_dir, reviews, args)
                )
            else:
                results["classifier"] = bench_classifier(
                    export_dir, reviews, median_words, args
                )
        if args.char_lm:
            results["char_lm"] = bench_char_lm(args.char_lm, args)
        if args.char_lm_run:
            results.update(bench_generation_xla(args.char_lm_run, args))
    if args.json:
        write(args.json, results)


if __name__ == "__main__":
    main()
