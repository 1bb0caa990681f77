"""SavedModel export with serving signatures that take raw text.

The exported graphs hold the text processing, so a server needs only
TensorFlow: `tf.saved_model.load(path).serve(tf.constant(["great film"]))`
for a classifier, `tf.saved_model.load(path).generate(...)` for a character
language model.

Every request is bounded (`ServingLimits`, set at export time and readable
from the export's `limits` signature) and checked inside the graph before
any work, so one request cannot take the server's memory or time: a text
that is not valid UTF-8, too many texts, a too long text or prime, or too
many characters to generate are refused with an `InvalidArgumentError`
that names the limit and the value. A SavedModel is a program: serve only
exports you trust.
"""

from __future__ import annotations

import dataclasses
import pathlib

import keras
import tensorflow as tf

from toolkit.data.char_lm import CharVocabulary
from toolkit.stepping import StateRunner

INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class ServingLimits:
    """Bounds on one request to an exported model, enforced in the graph.

    The defaults leave every IMDB review (the longest has about 14,000
    characters) and every practical call far inside them, and bound one
    call to about 100 MB of text and a few seconds of a 2-core CPU.
    """

    max_texts: int = 1024  # texts per `serve` call (classifier)
    max_text_chars: int = 100_000  # Unicode characters per text, untokenized
    max_prime_chars: int = 10_000  # characters of a character LM's prime
    max_generate_length: int = 10_000  # characters per `generate` call

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or not 1 <= value <= INT32_MAX:
                raise ValueError(
                    f"ServingLimits.{field.name} must be an int from 1 to "
                    f"{INT32_MAX}, got {value!r}."
                )


def _refuse_unless(condition, *message) -> tf.Operation:
    """An assertion whose failure is the one-line `InvalidArgumentError`
    `message` (strings and tensors, printed in order)."""
    return tf.debugging.Assert(condition, list(message), summarize=10)


def _checked(value, *checks):
    """`value`, available only after every op in `checks` has run."""
    with tf.control_dependencies(list(checks)):
        return tf.identity(value)


def _utf8_check(texts) -> tf.Operation:
    """Refuses texts (any shape) that are not valid UTF-8, naming their
    positions: one policy for every exported signature."""
    flat = tf.reshape(texts, [-1])
    valid = tf.equal(
        tf.strings.unicode_transcode(flat, "UTF-8", "UTF-8", errors="replace"),
        flat,
    )
    return _refuse_unless(
        tf.reduce_all(valid),
        "Text is not valid UTF-8 (decode it with its real encoding before "
        "sending it); invalid texts at positions:",
        tf.where(~valid)[:, 0],
    )


def _length_check(texts, limit: int, what: str, option: str) -> tf.Operation:
    """Refuses texts longer than `limit` Unicode characters."""
    longest = tf.reduce_max(
        tf.concat(
            [tf.reshape(tf.strings.length(texts, unit="UTF8_CHAR"), [-1]), [0]],
            0,
        )
    )
    return _refuse_unless(
        longest <= limit,
        f"{what} is longer than the export's limit of {limit:,} characters "
        f"(ServingLimits.{option}); shorten it. Length:",
        longest,
    )


def _buckets(largest: int, smallest: int) -> list[int]:
    """Powers of two from `smallest` below `largest`, then `largest`."""
    sizes = []
    while smallest < largest:
        sizes.append(smallest)
        smallest *= 2
    return sizes + [largest]


def _round_up(size, buckets: list[int]):
    """The smallest of `buckets` (ascending) that is >= `size` (a scalar
    tensor no larger than the last bucket)."""
    table = tf.constant(buckets, size.dtype)
    return tf.gather(table, tf.searchsorted(table, [size])[0])


def export_text_classifier(
    model: keras.Model,
    vectorizer: keras.layers.TextVectorization,
    path: str | pathlib.Path,
    max_length: int,
    limits: ServingLimits = ServingLimits(),
    jit_compile: bool = True,
    chunk_size: int = 64,
    warmup_batches: tuple[int, ...] = (1,),
) -> pathlib.Path:
    """Write a SavedModel whose `serve` signature maps a batch of UTF-8
    strings `(batch,)` to positive-class probabilities `(batch,)` float32.

    Texts are tokenized as in training and cut to their first `max_length`
    tokens; empty strings (no tokens) score too (their probability is the
    model's prior). `limits.max_texts` and `limits.max_text_chars` bound a
    call; the `limits` signature returns them.

    With `jit_compile` the model runs under XLA, which removes most of the
    recurrent loop's per-step overhead (about 7x lower latency for one
    review on a CPU). XLA compiles once per input shape, so the token ids
    are padded (with masked padding, which leaves the scores unchanged) to
    a few fixed shapes: lengths of 16, 32, 64, ... up to `max_length`, and
    batches of 1, 2, 4, ... up to `chunk_size`, bigger batches running as
    chunks of `chunk_size`. Each shape compiles on its first call (about
    a second or two on a CPU), unless the server warms the model up: TF
    Serving replays `assets.extra/tf_serving_warmup_requests` (one
    `serve` request per length bucket at each batch size of
    `warmup_batches`) when it loads the model, and a Python server calls
    `warm_up`. The `shapes` signature returns the buckets.
    """
    path = pathlib.Path(path)
    if max_length < 1 or chunk_size < 1:
        raise ValueError(
            f"`max_length` and `chunk_size` must be 1 or more, got "
            f"{max_length} and {chunk_size}."
        )
    lengths = _buckets(max_length, min(16, max_length))
    batches = _buckets(chunk_size, 1)

    @tf.function(jit_compile=jit_compile)
    def classify(ids):
        """`(chunk, length)` ids -> `(chunk,)` probabilities."""
        return tf.reshape(model(ids, training=False), [-1])

    def serve(texts):
        count = tf.size(texts)
        texts = _checked(
            texts,
            _refuse_unless(
                count <= limits.max_texts,
                f"A call scores at most {limits.max_texts:,} texts "
                "(ServingLimits.max_texts); split the batch. Texts:",
                count,
            ),
        )
        texts = _checked(texts, _utf8_check(texts))
        texts = _checked(
            texts,
            _length_check(
                texts, limits.max_text_chars, "A text", "max_text_chars"
            ),
        )
        ids = vectorizer(texts)[:, :max_length]
        # Pad to a compiled shape: the length to a bucket, the batch to a
        # bucket (or a whole number of chunks); padding ids are masked.
        length = _round_up(tf.maximum(tf.shape(ids)[1], 1), lengths)
        chunk = _round_up(tf.minimum(count, chunk_size), batches)
        chunks = tf.maximum((count + chunk - 1) // chunk, 1)  # 0 texts: 1
        ids = tf.pad(
            ids,
            [[0, chunks * chunk - count], [0, length - tf.shape(ids)[1]]],
        )
        scores = tf.map_fn(
            classify,
            tf.reshape(ids, [chunks, chunk, length]),
            fn_output_signature=tf.TensorSpec([None], tf.float32),
        )
        return tf.reshape(scores, [-1])[:count]

    if not vectorizer.built:
        vectorizer(tf.constant([""]))  # Builds it; adapt() does not.
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(vectorizer)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name="texts")],
    )
    _add_limits(archive, limits, ("max_texts", "max_text_chars"))

    def read_shapes():
        return {
            "lengths": tf.constant(lengths, tf.int32),
            "batches": tf.constant(batches, tf.int32),
        }

    # The compiled shapes, for `warm_up`.
    archive.add_endpoint(name="shapes", fn=read_shapes, input_signature=[])
    archive.write_out(str(path), verbose=False)
    write_warmup_requests(
        path, [(length, size) for length in lengths for size in warmup_batches]
    )
    return path


WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"


def _warmup_texts(length: int, size: int) -> list[str]:
    # `length` words tokenize to `length` ids (unknown words are ids too):
    # the length bucket itself.
    return [" ".join(["w"] * length)] * size


def write_warmup_requests(path, shapes) -> pathlib.Path:
    """TF Serving's warm-up file in the SavedModel folder `path`: one
    `PredictionLog` (a `serve` request of `size` texts that tokenize to
    `length` ids) per `(length, size)` of `shapes`, which TF Serving runs
    when it loads the model, before any client request."""
    from tensorflow_serving.apis import (
        model_pb2,
        predict_pb2,
        prediction_log_pb2,
    )

    target = pathlib.Path(path) / WARMUP_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(target)) as writer:
        for length, size in shapes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name="serve"),
                inputs={
                    "texts": tf.make_tensor_proto(
                        _warmup_texts(length, size), dtype=tf.string
                    )
                },
            )
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return target


def warm_up(served, batches=None) -> dict:
    """Compile every shape of a loaded classifier export
    (`tf.saved_model.load` of `export_text_classifier`'s folder) before the
    first request, so that no request waits for XLA: one `serve` call per
    length bucket and batch bucket (or only the batch sizes in `batches`,
    such as `(1,)` for a server that scores one text at a time). Returns
    `{"shapes": count, "seconds": time taken}`."""
    import time

    if not hasattr(served, "shapes"):
        raise ValueError(
            "This export has no `shapes` signature (it was written by an "
            "earlier toolkit); export it again to warm it up."
        )
    shapes = {k: v.numpy().tolist() for k, v in served.shapes().items()}
    sizes = shapes["batches"] if batches is None else list(batches)
    start, count = time.perf_counter(), 0
    for length in shapes["lengths"]:
        for size in sizes:
            served.serve(tf.constant(_warmup_texts(length, size)))
            count += 1
    return {"shapes": count, "seconds": time.perf_counter() - start}


def _add_limits(archive, limits: ServingLimits, names) -> None:
    """A `limits` signature: no inputs -> {name: int32 scalar}."""

    def read_limits():
        return {name: tf.constant(getattr(limits, name)) for name in names}

    archive.add_endpoint(name="limits", fn=read_limits, input_signature=[])


def export_char_lm(
    model: keras.Model,
    vocabulary: CharVocabulary,
    path: str | pathlib.Path,
    limits: ServingLimits = ServingLimits(),
    jit_compile: bool = True,
) -> pathlib.Path:
    """Write a SavedModel of a character LM (from
    `toolkit.text.models.build_char_lm`) with two signatures that need only
    TensorFlow:

    * `generate(prime, length, temperature, seed)`: scalar UTF-8 string,
      int32, float32, int64 -> the `length` characters sampled after
      `prime` (a scalar string). Temperature 0 picks the most likely
      character at every step; the same seed gives the same text.
    * `next_char_probs(prime)`: scalar string -> `probabilities`
      `(vocab_size,)` float32 for the character after `prime`, and
      `characters` `(vocab_size,)`, the character each one is for.

    Both read the prime in one call of the model's
    `toolkit.stepping.StateRunner`, then generate one character per call
    with the states handed back in, and fail with an
    `InvalidArgumentError` that lists any characters of `prime` outside the
    vocabulary (or says that `prime` is empty, is not valid UTF-8, or is
    longer than `limits.max_prime_chars`). `generate` refuses a `length`
    above `limits.max_generate_length` before any work; the `limits`
    signature returns both limits.

    With `jit_compile`, each generated character is one call of a step of
    fixed shape (one id and the states in, logits and states out) compiled
    with XLA once, on the first `generate`.
    """
    path = pathlib.Path(path)
    runner = StateRunner.for_model(model)
    characters = tf.constant(list(vocabulary.chars))
    # Unknown characters map to 0, known ones to their id + 1.
    lookup = keras.layers.StringLookup(
        vocabulary=list(vocabulary.chars), num_oov_indices=1, mask_token=None
    )
    lookup(tf.constant(list(vocabulary.chars)))  # builds it for export

    def run(ids, states):
        """`ids` `(steps,)` from `states` -> last logits `(1, vocab)`."""
        logits, states = runner.call_tensors(tf.reshape(ids, [1, -1]), states)
        return logits[:, -1], states

    @tf.function(jit_compile=jit_compile)
    def step(next_id, states):
        """One generated character: id `()` -> logits `(1, vocab)`."""
        return run(tf.reshape(next_id, [1]), states)

    def read_prime(prime):
        prime = _checked(prime, _utf8_check(prime))
        prime = _checked(
            prime,
            _length_check(
                prime, limits.max_prime_chars, "The prime", "max_prime_chars"
            ),
        )
        pieces = tf.strings.unicode_split(prime, "UTF-8")
        ids = tf.cast(lookup(pieces), tf.int32) - 1
        unknown = tf.boolean_mask(pieces, ids < 0)
        checks = [
            tf.debugging.Assert(
                tf.size(ids) > 0,
                ["The priming text is empty; give at least one character."],
            ),
            tf.debugging.Assert(
                tf.size(unknown) == 0,
                [
                    "The priming text has characters outside the model's "
                    "vocabulary (see next_char_probs' `characters`):",
                    unknown,
                ],
                summarize=20,
            ),
        ]
        with tf.control_dependencies(checks):
            ids = tf.identity(ids)
        states = tf.nest.map_structure(tf.constant, runner.initial_state(1))
        return run(ids, states)

    def generate(prime, length, temperature, seed):
        limit = limits.max_generate_length
        checks = [
            _refuse_unless(
                (length >= 0) & (length <= limit),
                f"`length` must be from 0 to the export's limit of {limit:,} "
                "characters (ServingLimits.max_generate_length). Length:",
                length,
            ),
            _refuse_unless(
                temperature >= 0,
                "`temperature` must be 0 or more. Temperature:",
                temperature,
            ),
        ]
        # Nothing is sized by `length` or read before the checks pass.
        length = _checked(length, *checks)
        prime = _checked(prime, *checks)
        logits, states = read_prime(prime)
        seed = tf.cast(seed, tf.int64)
        scale = tf.maximum(temperature, 1e-6)

        def body(i, logits, states, chosen):
            sampled = tf.random.stateless_categorical(
                logits / scale, 1, seed=tf.stack([seed, tf.cast(i, tf.int64)])
            )
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int64)
            next_id = tf.cast(
                tf.where(temperature > 0, sampled[0, 0], greedy[0]), tf.int32
            )
            logits, states = step(next_id, states)
            return i + 1, logits, states, chosen.write(i, next_id)

        chosen = tf.TensorArray(tf.int32, size=length)
        *_, chosen = tf.while_loop(
            lambda i, *_: i < length, body, (0, logits, states, chosen)
        )
        return tf.strings.reduce_join(tf.gather(characters, chosen.stack()))

    def next_char_probs(prime):
        logits, _ = read_prime(prime)
        return {
            "probabilities": tf.nn.softmax(logits[0]),
            "characters": characters,
        }

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(runner.model)
    archive.track(lookup)
    archive.add_endpoint(
        name="generate",
        fn=generate,
        input_signature=[
            tf.TensorSpec([], tf.string, name="prime"),
            tf.TensorSpec([], tf.int32, name="length"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ],
    )
    archive.add_endpoint(
        name="next_char_probs",
        fn=next_char_probs,
        input_signature=[tf.TensorSpec([], tf.string, name="prime")],
    )
    _add_limits(archive, limits, ("max_prime_chars", "max_generate_length"))
    archive.write_out(str(path), verbose=False)
    return path
