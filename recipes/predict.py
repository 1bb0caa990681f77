"""Score reviews with an exported sentiment model (TensorFlow only).

    python recipes/predict.py runs/imdb_sentiment/saved_model "A gem." "Dull."
    python recipes/predict.py runs/imdb_sentiment/saved_model --file reviews.txt
    echo "Loved it" | python recipes/predict.py runs/imdb/saved_model -

Prints one line per text: the positive-class probability, the label at 0.5,
and the start of the text. `--file` reads one review per line; `-` reads
standard input. `--json` prints a JSON list instead.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):  # `python recipes/predict.py`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

# TensorFlow imported quietly; the recipes package does not import toolkit.
import recipes  # noqa: E402, F401
from recipes._cli import ArgumentParser  # noqa: E402


def load_texts(args) -> list[str]:
    texts = list(args.texts)
    if args.file:
        path = pathlib.Path(args.file)
        if not path.is_file():
            raise SystemExit(f"error: --file {path} does not exist.")
        texts += path.read_text(encoding="utf-8").splitlines()
    if texts == ["-"]:
        texts = sys.stdin.read().splitlines()
    if not texts:
        raise SystemExit("error: give texts, --file FILE, or - for stdin.")
    return texts


def score(model_dir: str, texts: list[str], batch_size: int = 256):
    import tensorflow as tf

    if not (pathlib.Path(model_dir) / "saved_model.pb").exists():
        raise SystemExit(
            f"error: {model_dir} is not a SavedModel folder (no "
            "saved_model.pb); pass the run's saved_model/ folder."
        )
    served = tf.saved_model.load(model_dir)
    scores = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size])
        scores.extend(float(p) for p in served.serve(batch).numpy())
    return scores


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(__doc__)
    parser.add_argument(
        "model_dir", help="the run's saved_model/ folder (from a recipe)"
    )
    parser.add_argument(
        "texts",
        nargs="*",
        help="texts to score; a single - reads one text per line from "
        "standard input",
    )
    parser.add_argument(
        "--file", help="a UTF-8 text file with one text per line"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {text, probability} instead of lines",
    )
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    texts = load_texts(args)
    scores = score(args.model_dir, texts)
    if args.json:
        print(
            json.dumps(
                [
                    {"text": t, "probability": p}
                    for t, p in zip(texts, scores, strict=True)
                ]
            )
        )
        return 0
    for text, probability in zip(texts, scores, strict=True):
        label = "positive" if probability >= 0.5 else "negative"
        preview = text if len(text) <= 60 else text[:57] + "..."
        print(f"{probability:.4f}  {label:8}  {preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
