"""Write an IMDB run's classifier as a LiteRT model with fused LSTM kernels.

TensorFlow only. Its LSTM layers become LiteRT's fused LSTM kernel.

    python recipes/export_litert.py runs/imdb_sentiment
    python recipes/export_litert.py runs/imdb_sentiment --quantize=dynamic
    python recipes/export_litert.py runs/imdb_sentiment --out imdb.tflite \\
        --batch-size 8

Reads the run folder's model.keras, vocabulary.txt and config.json, and
writes RUN_DIR/model.tflite (model_dynamic.tflite, model_float16.tflite
when quantized) beside its saved_model/. The model takes token ids
`ids` (batch, length) int32, right-padded with 0, and returns the
positive-class probability `probability` (batch,); the length is free.
Tokenize on the device with vocabulary.txt (id = line number; 1 for a
word not in it) after lowercasing and stripping punctuation, and keep the
first max_length tokens (config.json), as the run did.

Before writing, the converted model scores held-out reviews (the first
--check-reviews IMDB test reviews, found as the run found its data) and
random right-padded ids, and must match the Keras model within 1e-5
(5e-2 when quantized); otherwise nothing is written. A layer that cannot
become the fused kernel is named with the reason, and converts as a loop.
Prints the file, its size, its ops and the largest difference from Keras.
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):  # `python recipes/export_litert.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

import recipes  # noqa: E402, F401
from recipes._cli import (  # noqa: E402
    HELP_HINT,
    RUN_ERROR,
    USAGE_ERROR,
    ArgumentParser,
    CommandError,
    fail,
)

QUANTIZATIONS = ("none", "dynamic", "float16")


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(__doc__)
    parser.add_argument(
        "run_dir", help="an IMDB run folder (from recipes/imdb_sentiment.py)"
    )
    parser.add_argument(
        "--out",
        help="where to write the .tflite (default: RUN_DIR/model.tflite, "
        "or model_QUANTIZE.tflite)",
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        default="none",
        help="none: float32; dynamic: int8 weights (dynamic-range "
        "kernels); float16: float16 weights",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="texts per call, fixed in the model (int)",
    )
    parser.add_argument(
        "--check-reviews",
        type=int,
        default=64,
        help="held-out test reviews scored by both models before writing "
        "(int; 0: random ids only)",
    )
    parser.add_argument(
        "--data-dir",
        help="where the IMDB data is (default: the run's config.json, then "
        "$TOOLKIT_DATA_DIR and the user cache)",
    )
    return parser


def read_run(run_dir: pathlib.Path):
    """(model, vectorizer, config dict) of a run folder."""
    for name in ("model.keras", "vocabulary.txt", "config.json"):
        if not (run_dir / name).is_file():
            raise CommandError(
                f"{run_dir} has no {name}: give the folder of a finished "
                "IMDB run (recipes/imdb_sentiment.py writes it)."
            )
    import keras

    import toolkit  # noqa: F401 (registers the layers)
    from toolkit import data

    try:
        model = keras.saving.load_model(run_dir / "model.keras")
    except Exception as error:  # Keras raises many types for a bad file
        raise CommandError(
            f"{run_dir / 'model.keras'} cannot be loaded ({error})."
        ) from None
    try:
        vocabulary = data.read_vocabulary(run_dir / "vocabulary.txt")
    except ValueError as error:
        raise CommandError(str(error)) from None
    vectorizer = keras.layers.TextVectorization(
        vocabulary=vocabulary, output_mode="int"
    )
    config = json.loads((run_dir / "config.json").read_text())
    return model, vectorizer, config


def held_out_ids(config, vectorizer, count, batch_size, data_dir):
    """Batches of the first `count` test reviews as right-padded ids."""
    import numpy as np

    from toolkit import data

    if count <= 0:
        return []
    try:
        imdb = data.load_imdb(
            config.get("imdb_path", config.get("dataset")),
            data_dir or config.get("data_dir"),
            download=False,
        )
    except Exception as error:  # the loader's errors name the fix
        raise CommandError(
            f"the held-out reviews could not be read ({error}); give "
            "--data-dir, or --check-reviews=0 to check on random ids only."
        ) from None
    texts = list(imdb.test.texts[:count])
    max_length = int(config.get("max_length", 400))
    batches = []
    for start in range(0, len(texts) - batch_size + 1, batch_size):
        ids = vectorizer(texts[start : start + batch_size])[:, :max_length]
        batches.append(np.asarray(ids, np.int32))
    return batches


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    run_dir = pathlib.Path(args.run_dir)
    if args.batch_size < 1:
        return fail(f"--batch-size must be 1 or more. {HELP_HINT}", USAGE_ERROR)
    if args.check_reviews < 0:
        return fail(
            f"--check-reviews must be 0 or more. {HELP_HINT}", USAGE_ERROR
        )
    try:
        if not run_dir.is_dir():
            raise CommandError(f"{run_dir} is not a folder.")
        model, vectorizer, config = read_run(run_dir)
        probes = held_out_ids(
            config, vectorizer, args.check_reviews, args.batch_size,
            args.data_dir,
        )  # fmt: skip
        from toolkit.serving import litert

        suffix = "" if args.quantize == "none" else f"_{args.quantize}"
        out = pathlib.Path(args.out or run_dir / f"model{suffix}.tflite")
        try:
            path = litert.export_litert_classifier(
                model,
                out,
                None,
                batch_size=args.batch_size,
                quantize=args.quantize,
                check_ids=probes,
            )
        except litert.LiteRTExportError as error:
            raise CommandError(str(error)) from None
    except CommandError as error:
        return fail(str(error), RUN_ERROR)
    flatbuffer = path.read_bytes()
    worst = max(
        (litert.max_difference(flatbuffer, model, ids) for ids in probes[:4]),
        default=None,
    )
    ops = collections.Counter(litert.op_names(flatbuffer))
    print(f"Wrote {path} ({len(flatbuffer) / 1e6:.2f} MB, {args.quantize})")
    print(
        "Ops: " + ", ".join(f"{name} x{n}" for name, n in sorted(ops.items()))
    )
    if worst is not None:
        checked = len(probes[:4]) * args.batch_size
        print(
            f"Largest difference from Keras on {checked} held-out "
            f"reviews: {worst:.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
