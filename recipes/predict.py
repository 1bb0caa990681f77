"""Score reviews with an exported sentiment model (TensorFlow only).

    python recipes/predict.py runs/imdb_sentiment "A gem." "Dull."
    python recipes/predict.py runs/imdb_sentiment --file reviews.txt
    echo "Loved it" | python recipes/predict.py \\
        runs/imdb_sentiment/saved_model -

MODEL is an IMDB run folder (its saved_model/ export is used) or a
SavedModel folder.

Prints one line per text: the positive-class probability, the label at 0.5,
and the start of the text. `--file` reads one review per line (UTF-8); `-`
reads standard input. `--json` prints a JSON list instead. Texts go to the
model in batches no bigger than its export allows (its `limits`).

A SavedModel is a program: loading and calling it runs whatever its graph
holds. Score only exports you trust.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if __package__ in (None, ""):  # `python recipes/predict.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

# TensorFlow imported quietly; the recipes package does not import toolkit.
import recipes  # noqa: E402, F401
from recipes._cli import (  # noqa: E402
    HELP_HINT,
    RUN_ERROR,
    TRUST_NOTE,
    USAGE_ERROR,
    ArgumentParser,
    CommandError,
    fail,
    graph_error_text,
    load_saved_model,
    read_utf8,
    utf8_text,
)


def load_texts(args) -> list[str]:
    """The texts to score: the arguments, `--file`'s lines, or stdin's."""
    texts = [utf8_text(text, "A text argument") for text in args.texts]
    if args.file:
        path = pathlib.Path(args.file)
        if path.is_dir():
            raise CommandError(
                f"--file {path} is a folder; give a text file with one "
                "review per line."
            )
        if not path.is_file():
            raise CommandError(f"--file {path} does not exist.")
        texts += read_utf8(path.read_bytes(), f"--file {path}").splitlines()
    if texts == ["-"]:
        texts = read_utf8(sys.stdin.buffer.read(), "Standard input")
        texts = texts.splitlines()
    if not texts:
        raise CommandError("no texts to score: the input is empty.")
    return texts


def score(model_dir: str, texts: list[str], batch_size: int = 256):
    """Positive-class probabilities of `texts` from the export."""
    import tensorflow as tf

    served = load_saved_model(model_dir, "serve", "sample.py")
    if hasattr(served, "limits"):
        batch_size = min(batch_size, int(served.limits()["max_texts"]))
    scores = []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(texts[start : start + batch_size])
        try:
            scores.extend(float(p) for p in served.serve(batch).numpy())
        except tf.errors.InvalidArgumentError as error:
            raise CommandError(graph_error_text(error.message)) from None
    return scores


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(__doc__, epilog=TRUST_NOTE)
    parser.add_argument(
        "model_dir",
        metavar="MODEL",
        help="an IMDB run folder, or its saved_model/ folder",
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
    if not args.texts and not args.file:
        return fail(
            f"give texts, --file FILE, or - for stdin. {HELP_HINT}",
            USAGE_ERROR,
        )
    try:
        texts = load_texts(args)
        scores = score(args.model_dir, texts)
    except CommandError as error:
        return fail(str(error), RUN_ERROR)
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
