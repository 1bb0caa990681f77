"""Word-LM pretraining throughput: sampled softmax against full softmax.

Builds two identical `toolkit.text.word_lm.WordLanguageModel`s (the `pretrained`
preset's encoder: 20,000 words, 256-d embedding, one 256-unit LSTM), one
training with the sampled softmax (`--num-sampled` candidates) and one with
the full softmax over the whole vocabulary, and times `train_on_batch`
(forward, backward, clipped Adam update) in alternating rounds in this
process, so both see the same machine load. Reports words per second
(median of the rounds) and the ratio.

    python benchmarks/word_lm_softmax.py
    python benchmarks/word_lm_softmax.py --units 512 --rounds 5

A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import results_file  # noqa: E402 (this folder)

from toolkit.text.encoder import EncoderSpec  # noqa: E402
from toolkit.text.word_lm import WordLanguageModel  # noqa: E402
from toolkit.training import run_info  # noqa: E402


def build(num_sampled, args):
    model = WordLanguageModel(
        EncoderSpec(args.vocab_size, args.embedding_dim, units=[args.units]),
        num_sampled=num_sampled,
        stateful=True,
        batch_size=args.batch_size,
        seed=0,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
    model.build((args.batch_size, None))
    return model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=20_000)
    parser.add_argument("--embedding-dim", type=int, default=256)
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sequence-length", type=int, default=70)
    parser.add_argument("--num-sampled", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--json", help="also write the rates as a results file (JSON)"
    )
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.sequence_length)
    # Zipf-like ids, as in real text.
    ids = np.minimum(rng.zipf(1.2, shape), args.vocab_size - 1).astype("int32")
    targets = np.roll(ids, -1, axis=1)
    models = {
        f"sampled ({args.num_sampled})": build(args.num_sampled, args),
        "full softmax": build(0, args),
    }
    for model in models.values():  # trace and warm up
        model.train_on_batch(ids, targets)
    seconds = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(ids, targets)
            seconds[name].append((time.perf_counter() - start) / args.steps)
    words = args.batch_size * args.sequence_length
    rates = {
        name: words / statistics.median(times)
        for name, times in seconds.items()
    }
    names = list(models)
    hardware = run_info.hardware()
    print(
        f"CPU: {hardware['cpu_model']} ({hardware['cpus']} cores); "
        f"Keras {hardware['keras']} ({hardware['backend']})"
    )
    print(
        f"vocabulary {args.vocab_size:,}, embedding {args.embedding_dim}, "
        f"LSTM {args.units}, batch {args.batch_size}x"
        f"{args.sequence_length}; median of {args.rounds} rounds of "
        f"{args.steps} steps"
    )
    for name in names:
        print(f"  {name:>16}: {rates[name]:>9,.0f} words/s")
    print(f"  sampled / full: {rates[names[0]] / rates[names[1]]:.2f}x")
    print(json.dumps({"words_per_second": rates, "hardware": hardware}))
    if args.json:
        results_file.write(
            args.json,
            {
                "words_per_second": rates,
                "sampled_over_full": rates[names[0]] / rates[names[1]],
            },
        )


if __name__ == "__main__":
    main()
