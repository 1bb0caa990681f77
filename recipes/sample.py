"""Print text sampled from a trained character LM.

    python recipes/sample.py runs/shakespeare --prime="ROMEO:"
    python recipes/sample.py runs/shakespeare --length=200 --top-k=5
    python recipes/sample.py runs/shakespeare/saved_model --seed=7

MODEL is a recipes/char_lm.py run folder or a SavedModel folder, as for
predict.py. From a run folder it loads config.json, vocabulary.json and the
best checkpoint (or `--checkpoint`) and samples with `toolkit.text.sampling`
(temperature, top-k); `--export` uses the run folder's saved_model/
instead. From a SavedModel it calls the exported `generate` signature,
which needs TensorFlow only (no top-k there), within the export's limits
on the prime and the length.

A SavedModel is a program: loading and calling it runs whatever its graph
holds. Sample only from exports you trust.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

if __package__ in (None, ""):  # `python recipes/sample.py`
    import _checkout  # noqa: F401 (this checkout first on sys.path)

import recipes  # noqa: E402, F401 (TensorFlow imported quietly)
from recipes._cli import (  # noqa: E402
    INT32_MAX,
    RUN_ERROR,
    TRUST_NOTE,
    ArgumentParser,
    CommandError,
    fail,
    finite_float_from,
    first_line,
    graph_error_text,
    integer_in,
    load_saved_model,
    utf8_text,
)


def make_parser() -> ArgumentParser:
    parser = ArgumentParser(__doc__, epilog=TRUST_NOTE)
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="a recipes/char_lm.py run folder, or a SavedModel folder (a "
        "run's saved_model/)",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="with a run folder: sample from its saved_model/ export, not "
        "its checkpoint",
    )
    # The names of an earlier version, still accepted.
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--saved-model", help=argparse.SUPPRESS)
    parser.add_argument(
        "--checkpoint",
        help="weights file to load from a run folder, instead of its "
        "checkpoints/best.weights.h5",
    )
    parser.add_argument(
        "--prime",
        help="text the sample continues (default: a newline, or a space "
        "where the vocabulary has no newline, as in text8)",
    )
    parser.add_argument(
        "--length",
        type=integer_in(0, INT32_MAX),
        default=500,
        help="characters to generate",
    )
    parser.add_argument(
        "--temperature",
        type=finite_float_from(0),
        default=0.8,
        help="softmax temperature: below 1 more predictable, above 1 more "
        "varied; 0 picks the likeliest character",
    )
    parser.add_argument(
        "--top-k",
        type=integer_in(1, INT32_MAX),
        default=None,
        help="sample from the k likeliest characters only (a run folder's "
        "checkpoint only)",
    )
    parser.add_argument(
        "--seed",
        type=integer_in(0, INT32_MAX),
        default=0,
        help="random seed of the sampling",
    )
    return parser


def from_run_dir(args) -> str:
    from recipes.char_lm import build_model
    from recipes.configs.char_lm import CharLmConfig
    from toolkit.data.char_lm import CharVocabulary
    from toolkit.text.sampling import generate
    from toolkit.training import config as config_lib

    run_dir = pathlib.Path(args.run_dir)
    needed = [run_dir / "config.json", run_dir / "vocabulary.json"]
    checkpoint = pathlib.Path(
        args.checkpoint or run_dir / "checkpoints" / "best.weights.h5"
    )
    missing = [str(p) for p in needed + [checkpoint] if not p.is_file()]
    if missing:
        raise CommandError(
            f"Missing {', '.join(missing)}: is {run_dir} a char_lm run "
            "folder with at least one finished epoch?"
        )
    try:
        config = config_lib.from_json(CharLmConfig, needed[0].read_text())
        vocabulary = CharVocabulary.from_json(needed[1].read_text())
    except (ValueError, KeyError, TypeError) as error:
        raise CommandError(
            f"{run_dir}'s config.json or vocabulary.json cannot be read "
            f"({error}); is it a char_lm run folder?"
        ) from None
    if args.prime is None:
        args.prime = default_prime(vocabulary.chars)
    model = build_model(config, len(vocabulary), training=False)
    try:
        model.load_weights(checkpoint, skip_mismatch=False)
    except Exception as error:  # h5py, OS and shape errors alike
        raise CommandError(
            f"{checkpoint} cannot be loaded into this run's model "
            f"({first_line(error)}); pass another --checkpoint, or the run "
            "folder's checkpoints/best.weights.h5."
        ) from None
    return generate(
        model,
        vocabulary,
        args.prime,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
    )


def default_prime(characters) -> str:
    """A newline, or a space where the vocabulary has none (text8's
    lowercase letters and spaces), else its first character."""
    for candidate in ("\n", " "):
        if candidate in characters:
            return candidate
    return characters[0]


def exported_characters(exported) -> list[str]:
    """The vocabulary of a character-LM export (`next_char_probs`'
    `characters`), read by priming with each candidate prime until one is
    in it."""
    import tensorflow as tf

    for candidate in ("\n", " "):
        try:
            found = exported.next_char_probs(tf.constant(candidate))
        except tf.errors.InvalidArgumentError:
            continue  # not in the vocabulary
        return [c.decode("utf-8") for c in found["characters"].numpy()]
    raise CommandError(
        "The export's vocabulary has neither a newline nor a space; give "
        "--prime."
    )


def from_saved_model(args) -> str:
    import tensorflow as tf

    if args.top_k is not None:
        raise CommandError(
            "The exported `generate` signature has no top-k; drop --top-k or "
            "sample from the run folder's checkpoint (MODEL = the run folder, "
            "without --export)."
        )
    exported = load_saved_model(args.saved_model, "generate", "predict.py")
    if args.prime is None:
        args.prime = default_prime(exported_characters(exported))
    try:
        text = exported.generate(
            tf.constant(args.prime),
            tf.constant(args.length, tf.int32),
            tf.constant(args.temperature, tf.float32),
            tf.constant(args.seed, tf.int64),
        )
    except tf.errors.InvalidArgumentError as error:
        raise CommandError(graph_error_text(error.message)) from None
    return text.numpy().decode("utf-8")


def resolve_model(parser, args) -> None:
    """Set `args.run_dir` or `args.saved_model` from MODEL (a run folder
    or a SavedModel folder) and `--export`."""
    given = [v for v in (args.model, args.run_dir, args.saved_model) if v]
    if len(given) != 1:
        parser.error(
            "give one MODEL: a char_lm.py run folder or a SavedModel folder"
        )
    if args.model is None:
        return
    folder = pathlib.Path(args.model)
    if (folder / "saved_model.pb").is_file() or args.export:
        args.saved_model = args.model
    elif (folder / "config.json").is_file():
        args.run_dir = args.model
    else:
        raise CommandError(
            f"{folder} is neither a char_lm.py run folder (no config.json) "
            "nor a SavedModel folder (no saved_model.pb)."
        )


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        resolve_model(parser, args)
        if args.prime is not None:
            utf8_text(args.prime, "--prime")
        text = from_run_dir(args) if args.run_dir else from_saved_model(args)
    except CommandError as error:
        return fail(str(error), RUN_ERROR)
    except ValueError as error:  # from toolkit.text.sampling: a bad prime
        return fail(str(error), RUN_ERROR)
    print(args.prime + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
