"""Print text sampled from a trained character LM.

    python recipes/sample.py --run-dir=runs/shakespeare --prime="ROMEO:"
    python recipes/sample.py --saved-model=runs/shakespeare/saved_model
    python recipes/sample.py --run-dir=runs/shakespeare --length=200 --top-k=5

From a run folder it loads config.json, vocabulary.json and the best
checkpoint (or `--checkpoint`) and samples with `toolkit.sampling`
(temperature, top-k). From a SavedModel it calls the exported `generate`
signature, which needs TensorFlow only (no top-k there).
"""

from __future__ import annotations

import pathlib
import sys

if __package__ in (None, ""):  # `python recipes/sample.py`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import recipes  # noqa: E402, F401 (TensorFlow imported quietly)
from recipes._cli import RUN_ERROR, ArgumentParser, fail  # noqa: E402


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--run-dir", help="a recipes/char_lm.py run folder to sample from"
    )
    source.add_argument(
        "--saved-model",
        help="a character LM SavedModel (the run's saved_model/ folder)",
    )
    parser.add_argument(
        "--checkpoint",
        help="weights file to load with --run-dir, instead of the run "
        "folder's checkpoints/best.weights.h5",
    )
    parser.add_argument(
        "--prime", default="\n", help="text the sample continues"
    )
    parser.add_argument(
        "--length", type=int, default=500, help="characters to generate"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="softmax temperature: below 1 more predictable, above 1 more "
        "varied; 0 picks the likeliest character",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="sample from the k likeliest characters only (--run-dir only)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of the sampling"
    )
    return parser


def from_run_dir(args) -> str:
    from recipes.char_lm import build_model
    from recipes.configs.char_lm import CharLmConfig
    from toolkit import config as config_lib
    from toolkit.data.char_lm import CharVocabulary
    from toolkit.sampling import generate

    run_dir = pathlib.Path(args.run_dir)
    needed = [run_dir / "config.json", run_dir / "vocabulary.json"]
    checkpoint = pathlib.Path(
        args.checkpoint or run_dir / "checkpoints" / "best.weights.h5"
    )
    missing = [str(p) for p in needed + [checkpoint] if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"Missing {', '.join(missing)}: is {run_dir} a char_lm run "
            "folder with at least one finished epoch?"
        )
    config = config_lib.from_json(CharLmConfig, needed[0].read_text())
    vocabulary = CharVocabulary.from_json(needed[1].read_text())
    model = build_model(config, len(vocabulary), training=False)
    model.load_weights(checkpoint, skip_mismatch=False)
    return generate(
        model,
        vocabulary,
        args.prime,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )


def from_saved_model(args) -> str:
    import tensorflow as tf

    if args.top_k is not None:
        raise ValueError(
            "The exported `generate` signature has no top-k; drop --top-k or "
            "sample from the run folder (--run-dir)."
        )
    path = pathlib.Path(args.saved_model)
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(f"No SavedModel at {path}.")
    exported = tf.saved_model.load(str(path))
    try:
        text = exported.generate(
            tf.constant(args.prime),
            tf.constant(args.length, tf.int32),
            tf.constant(args.temperature, tf.float32),
            tf.constant(args.seed, tf.int64),
        )
    except tf.errors.InvalidArgumentError as error:
        raise ValueError(_assertion_text(error.message)) from None
    return text.numpy().decode("utf-8")


def _assertion_text(message: str) -> str:
    """The text of a failed `tf.debugging.Assert` in a graph error."""
    for line in message.splitlines():
        if "assertion failed:" in line:
            text = line.split("assertion failed:", 1)[1].strip()
            return text.replace("] [", " ").strip("[]").replace("\\'", "'")
    return message


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        text = from_run_dir(args) if args.run_dir else from_saved_model(args)
    except (FileNotFoundError, ValueError) as error:
        return fail(str(error), RUN_ERROR)
    print(args.prime + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
