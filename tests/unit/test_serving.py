"""Serving bounds: every request to an exported model is checked inside the
graph, refused with an `InvalidArgumentError` that names the limit and the
value, and the serving process goes on answering; the classifier's XLA
path (padded to fixed shapes, in chunks) scores exactly what the model
does."""

import json

import numpy as np
import pytest
import tensorflow as tf

from export_fixtures import (
    LIMITS,
    VOCABULARY,
    export_small_char_lm,
    small_char_lm,
    small_classifier,
)
from helpers import run_script
from toolkit.serving import export

TEXTS = [
    "a great film, superb acting",
    "",
    "dull dull dull " * 30,  # 90 tokens: more than max_length
    "awful waste ½ 中文 😀",
    "great",
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """(model, vectorizer, {jit_compile: export path}) of a small
    bidirectional classifier; chunks of 4 so that 10 texts take 3."""
    model, vectorizer = small_classifier()
    folder = tmp_path_factory.mktemp("classifier")
    paths = {
        jit: export.export_text_classifier(
            model,
            vectorizer,
            folder / f"jit_{jit}",
            max_length=40,
            limits=LIMITS,
            jit_compile=jit,
            chunk_size=4,
        )
        for jit in (True, False)
    }
    return model, vectorizer, paths


@pytest.fixture(scope="module")
def char_lm(tmp_path_factory):
    return export_small_char_lm(tmp_path_factory.mktemp("char_lm") / "lm")


def expected_scores(model, vectorizer, texts, max_length=40):
    ids = vectorizer(tf.constant(texts))[:, :max_length]
    ids = tf.pad(ids, [[0, 0], [0, 1]])  # an empty text has one step
    return model(ids, training=False).numpy().reshape(-1)


@pytest.mark.parametrize("jit_compile", [True, False])
def test_served_scores_match_the_model_in_chunks_and_alone(
    classifier, jit_compile
):
    model, vectorizer, paths = classifier
    served = tf.saved_model.load(str(paths[jit_compile]))
    texts = TEXTS * 2  # 10 texts: chunks of 4, the last one padded
    np.testing.assert_allclose(
        served.serve(tf.constant(texts)).numpy(),
        expected_scores(model, vectorizer, texts),
        atol=1e-6,
        rtol=0,
    )
    for text in TEXTS:  # batch 1, lengths padded to 16, 32 and 40
        np.testing.assert_allclose(
            served.serve(tf.constant([text])).numpy(),
            expected_scores(model, vectorizer, [text]),
            atol=1e-6,
            rtol=0,
        )
    assert served.serve(tf.constant([], tf.string)).shape == (0,)


def test_limits_are_readable_from_the_exports(classifier, char_lm):
    served = tf.saved_model.load(str(classifier[2][True]))
    limits = {k: int(v) for k, v in served.limits().items()}
    assert limits == {"max_texts": 12, "max_text_chars": 500}
    lm = tf.saved_model.load(str(char_lm))
    limits = {k: int(v) for k, v in lm.limits().items()}
    assert limits == {"max_prime_chars": 20, "max_generate_length": 50}


def refusal(call) -> str:
    """The message of the `InvalidArgumentError` that `call()` raises."""
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        call()
    return caught.value.message


def test_classifier_refuses_each_bound_then_serves_on(classifier):
    served = tf.saved_model.load(str(classifier[2][True]))
    serve = served.serve
    message = refusal(lambda: serve(tf.constant(["great"] * 13)))
    assert "at most 12 texts (ServingLimits.max_texts)" in message
    assert "[13]" in message
    message = refusal(lambda: serve(tf.constant(["ok", "é" * 501])))
    assert "limit of 500 characters (ServingLimits.max_text_chars)" in message
    assert "[501]" in message
    assert serve(tf.constant(["é" * 500])).shape == (1,)  # at the limit
    message = refusal(
        lambda: serve(tf.constant([b"fine", b"caf\xe9", b"ok", b"\xff"]))
    )
    assert "not valid UTF-8" in message and "[1 3]" in message
    assert serve(tf.constant(["still serving"])).shape == (1,)


def call_generate(lm, prime, length, temperature=1.0, seed=0):
    return lm.generate(
        tf.constant(prime),
        tf.constant(length, tf.int32),
        tf.constant(temperature, tf.float32),
        tf.constant(seed, tf.int64),
    )


def test_char_lm_refuses_each_bound_then_serves_on(char_lm):
    lm = tf.saved_model.load(str(char_lm))
    for length in (51, 2**31 - 1, -1):
        message = refusal(lambda n=length: call_generate(lm, "ab", n))
        assert "limit of 50 characters" in message
        assert f"[{length}]" in message
    assert len(call_generate(lm, "ab", 50).numpy().decode()) == 50
    message = refusal(lambda: call_generate(lm, "a" * 21, 5))
    assert "limit of 20 characters (ServingLimits.max_prime_chars)" in message
    message = refusal(lambda: lm.next_char_probs(tf.constant("b" * 21)))
    assert "[21]" in message
    for bad_prime in (b"ab\xff", b"\xc3"):
        message = refusal(lambda p=bad_prime: call_generate(lm, p, 5))
        assert "not valid UTF-8" in message
    for temperature in (-1.0, float("nan")):
        message = refusal(lambda t=temperature: call_generate(lm, "a", 5, t))
        assert "`temperature` must be 0 or more" in message
    assert lm.next_char_probs(tf.constant("a"))["probabilities"].shape == (
        len(VOCABULARY),
    )


@pytest.mark.slow
def test_a_server_without_toolkit_survives_every_refused_request(
    classifier, char_lm
):
    """One process that never imports toolkit serves both exports, sends
    every kind of refused request, and answers a valid one after each."""
    script = f"""
import json, sys
import tensorflow as tf
classifier = tf.saved_model.load({str(classifier[2][True])!r})
lm = tf.saved_model.load({str(char_lm)!r})
def generate(prime, length, temperature=1.0):
    return lm.generate(tf.constant(prime), tf.constant(length, tf.int32),
                       tf.constant(temperature), tf.constant(0, tf.int64))
bad = [
    lambda: classifier.serve(tf.constant(["x"] * 10_000)),
    lambda: classifier.serve(tf.constant(["x" * 1_000_000])),
    lambda: classifier.serve(tf.constant([b"\\xff\\xfe"])),
    lambda: generate("ab", 2**31 - 1),
    lambda: generate("a" * 100_000, 10),
    lambda: generate(b"\\xff", 10),
    lambda: generate("a", 10, float("nan")),
    lambda: lm.next_char_probs(tf.constant("a" * 100_000)),
]
messages = []
for request in bad:
    try:
        request()
        messages.append(None)
    except tf.errors.InvalidArgumentError as error:
        messages.append(error.message)
    scores = classifier.serve(tf.constant(["great film"])).numpy()
    text = generate("ab", 5).numpy().decode()
    assert scores.shape == (1,) and len(text) == 5
print(json.dumps({{"messages": messages,
                   "toolkit": "toolkit" in sys.modules}}))
"""
    result = json.loads(run_script(script).strip().splitlines()[-1])
    assert result["toolkit"] is False
    # Each refusal says which limit the request broke and how to fix it.
    expected = [
        "ServingLimits.max_texts); split the batch",
        "ServingLimits.max_text_chars); shorten it",
        "not valid UTF-8",
        "ServingLimits.max_generate_length",
        "ServingLimits.max_prime_chars); shorten it",
        "not valid UTF-8",
        "`temperature` must be 0 or more",
        "ServingLimits.max_prime_chars); shorten it",
    ]
    assert len(result["messages"]) == len(expected)
    for message, phrase in zip(result["messages"], expected, strict=True):
        assert message is not None, f"not refused; expected {phrase!r}"
        assert phrase in message, (phrase, message[:300])


def test_serving_limits_are_checked_when_made():
    with pytest.raises(ValueError, match="max_texts must be an int from 1"):
        export.ServingLimits(max_texts=0)
    with pytest.raises(ValueError, match="max_generate_length"):
        export.ServingLimits(max_generate_length=2**31)
    with pytest.raises(ValueError, match="got 1.5"):
        export.ServingLimits(max_prime_chars=1.5)


def test_warm_up_compiles_every_bucket_before_the_first_request(classifier):
    """`warm_up` runs one call per (length, batch) bucket that the export
    compiles, and the scores after it are the model's."""
    model, vectorizer, paths = classifier
    served = tf.saved_model.load(str(paths[True]))
    shapes = {k: v.numpy().tolist() for k, v in served.shapes().items()}
    assert shapes == {"lengths": [16, 32, 40], "batches": [1, 2, 4]}
    assert export.warm_up(served, batches=(1,))["shapes"] == 3
    assert export.warm_up(served)["shapes"] == 9
    texts = ["a great film", "dull and long, a waste"]
    ids = vectorizer(tf.constant(texts))
    np.testing.assert_allclose(
        served.serve(tf.constant(texts)),
        model(ids, training=False).numpy().reshape(-1),
        atol=1e-5,
    )


def test_generation_under_xla_samples_what_the_plain_graph_samples(tmp_path):
    """The XLA-compiled step gives the same text as the plain graph, for a
    seed and for greedy decoding."""
    model = small_char_lm()
    texts = {}
    for jit in (True, False):
        export.export_char_lm(
            model, VOCABULARY, tmp_path / f"jit_{jit}", LIMITS, jit_compile=jit
        )
        lm = tf.saved_model.load(str(tmp_path / f"jit_{jit}"))
        texts[jit] = [
            call_generate(lm, "ab", 30, temperature, seed=7).numpy()
            for temperature in (1.0, 0.0)
        ]
    assert texts[True] == texts[False]
    assert all(len(text.decode()) == 30 for text in texts[True])


def test_tf_serving_warmup_records_are_valid_serve_requests(classifier):
    """The export's `assets.extra/tf_serving_warmup_requests` holds one
    PredictionLog per length bucket (batch 1 by default), each a `serve`
    request that the SavedModel answers."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = classifier[2][True]
    records = tf.data.TFRecordDataset(str(path / export.WARMUP_FILE))
    served = tf.saved_model.load(str(path))
    lengths = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serve"
        texts = tf.make_ndarray(request.inputs["texts"])
        assert texts.shape == (1,)
        lengths.append(len(texts[0].split()))
        assert served.serve(tf.constant(texts)).shape == (1,)
    assert lengths == [16, 32, 40]
