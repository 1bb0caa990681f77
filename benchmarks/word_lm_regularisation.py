"""Held-out perplexity of the IMDB word LM with and without AWD-LSTM's
regularisation, trained on the same reviews for the same steps.

Pretrains the `pretrained` preset's encoder (20,000 words, 256-d
embedding, one 256-unit LSTM, sampled softmax) twice on the same
`--reviews` training and unlabelled reviews, for `--epochs` passes each:
once as the preset does (dropout 0.1 between layers and before the
softmax, 0.1 of word positions dropped), once with AWD-LSTM's
regularisers added (`--weight-dropout` DropConnect on W_h, `--word-type-
dropout` of the vocabulary per batch, locked dropout). The same steps and
the same cosine schedule, so the two spend the same time budget up to the
regularisers' own cost, which the table shows. Held-out perplexity is the
full softmax over the same 500 unlabelled reviews the recipe holds out.

    python benchmarks/word_lm_regularisation.py --data-dir DIR
    python benchmarks/word_lm_regularisation.py --reviews 72000 --epochs 3

Writes one JSON line per run and a table; a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from results_file import machine  # noqa: E402 (this folder)

from recipes.configs.imdb_sentiment import PRESETS  # noqa: E402
from toolkit import data  # noqa: E402
from toolkit.text import pretraining  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--reviews", type=int, default=15_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--weight-dropout", type=float, default=0.3)
    parser.add_argument("--word-type-dropout", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)

    imdb = data.load_imdb(
        data_dir=args.data_dir, seed=args.seed, validation_by="movie"
    )
    vectorizer = data.make_vectorizer(imdb.train.texts, 20_000)
    train_texts, heldout_texts = pretraining.lm_reviews(
        imdb.train.texts, imdb.unsup.texts, 500, args.reviews, args.seed
    )
    plain = dataclasses.replace(
        PRESETS["pretrained"].pretrain_config(vectorizer.vocabulary_size()),
        epochs=args.epochs,
        seed=args.seed,
        max_train_seconds=None,
    )
    variants = {
        "plain (the preset)": plain,
        "AWD-LSTM regularisers added": dataclasses.replace(
            plain,
            recurrent_weight_dropout=args.weight_dropout,
            word_type_dropout=args.word_type_dropout,
            locked_dropout=True,
        ),
    }
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name, config in variants.items():
            encoder = pretraining.pretrain_encoder(
                config, vectorizer, train_texts, heldout_texts, cache, verbose=2
            )
            row = {
                "variant": name,
                "heldout_perplexity": encoder.info["heldout_perplexity"],
                "train_seconds": encoder.info["train_seconds"],
                "train_words": encoder.info["train_words"],
                "epochs": encoder.info["epochs_run"],
                "config": encoder.info["config"],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(
        f"\n{machine()}; {len(train_texts):,} LM reviews "
        f"({rows[0]['train_words']:,} words), {args.epochs} epoch(s)\n"
    )
    print("| LM | held-out perplexity | training time |")
    print("|---|---:|---:|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['heldout_perplexity']:.1f} | "
            f"{row['train_seconds']:.0f} s |"
        )


if __name__ == "__main__":
    main()
