"""The word language model: full-softmax evaluation and the sampled softmax
against hand computations in numpy, the log-uniform sampler, the review
stream."""

import math

import keras
import numpy as np
import pytest

from toolkit.text import word_lm
from toolkit.text.encoder import EncoderSpec
from toolkit.text.word_lm import WordLanguageModel


def tiny_lm(dropout=0.0, **kwargs):
    options = dict(num_sampled=6, seed=3)
    options.update(kwargs)
    encoder = EncoderSpec(12, embedding_dim=4, units=[5], dropout=dropout)
    model = WordLanguageModel(encoder, **options)
    model.build((None, None))
    rng = np.random.default_rng(0)
    # Large enough weights that the softmax is far from uniform.
    model.set_weights(
        [rng.normal(0, 0.8, w.shape).astype("float32") for w in model.weights]
    )
    return model


def numpy_token_losses(hidden, targets, kernel, bias):
    logits = hidden.astype(np.float64) @ kernel.T.astype(np.float64) + bias
    logits -= logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(logits).sum(axis=-1))
    picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
    return log_norm - picked


def test_whole_stream_cross_entropy_equals_a_hand_computation():
    model = tiny_lm()
    ids = np.random.default_rng(1).integers(0, 12, 41).astype("int32")
    # The whole stream in one stateless call, then the softmax in numpy.
    hidden = np.asarray(model(ids[None, :-1]))[0]
    kernel, bias = (np.asarray(w) for w in model.head.weights)
    expected = numpy_token_losses(hidden, ids[1:], kernel, bias).mean()
    # Streamed in chunks of 7 with the state carried between them.
    result = word_lm.cross_entropy(model, ids, batch_size=1, sequence_length=7)
    assert result["words"] == 40
    np.testing.assert_allclose(result["nats"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        result["perplexity"], math.exp(expected), rtol=1e-5
    )
    # Keras's own evaluation path (compute_loss, training=False) agrees.
    model.compile(optimizer="adam")
    loss = model.evaluate(ids[None, :-1], ids[None, 1:], verbose=0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_several_streams_score_every_word_once():
    model = tiny_lm()
    ids = np.random.default_rng(2).integers(0, 12, 50).astype("int32")
    kernel, bias = (np.asarray(w) for w in model.head.weights)
    result = word_lm.cross_entropy(model, ids, batch_size=3, sequence_length=5)
    # Stream b covers ids[17b : 17b + 18], each from a zero state.
    total, count = 0.0, 0
    for start in range(0, 49, 17):
        piece = ids[start : min(start + 18, 50)]
        hidden = np.asarray(model(piece[None, :-1]))[0]
        total += numpy_token_losses(hidden, piece[1:], kernel, bias).sum()
        count += len(piece) - 1
    assert result["words"] == count == 49
    np.testing.assert_allclose(result["nats"], total / count, rtol=1e-5)


def test_sampled_loss_equals_a_hand_computation():
    model = tiny_lm()
    rng = np.random.default_rng(4)
    hidden = rng.normal(size=(2, 3, 5)).astype("float32")
    targets = rng.integers(0, 12, (2, 3)).astype("int32")
    targets[0, 0] = 0  # id 0 is the likeliest candidate: an accidental hit
    losses = np.asarray(model.head.sampled_losses(hidden, targets, 6, seed=11))
    sampled = np.asarray(word_lm.sample_log_uniform(6, 12, seed=11))
    assert 0 in sampled.tolist()

    kernel, bias = (np.asarray(w, np.float64) for w in model.head.weights)

    def log_expected_count(k):
        return np.log(6 * np.log((k + 2) / (k + 1)) / np.log(13))

    expected = np.zeros((2, 3))
    for index in np.ndindex(2, 3):
        h, t = hidden[index].astype(np.float64), targets[index]
        true = h @ kernel[t] + bias[t] - log_expected_count(t)
        others = [
            h @ kernel[k] + bias[k] - log_expected_count(k)
            for k in sampled
            if k != t
        ]
        logits = np.array([true, *others])
        expected[index] = np.log(np.exp(logits).sum()) - true
    np.testing.assert_allclose(losses, expected, rtol=1e-5, atol=1e-6)


def test_log_uniform_sampler_draws_its_distribution():
    vocab_size = 50
    q = np.exp(
        np.asarray(
            word_lm.log_uniform_log_probabilities(np.arange(vocab_size), 50)
        )
    )
    np.testing.assert_allclose(q.sum(), 1.0, rtol=1e-5)
    draws = np.asarray(word_lm.sample_log_uniform(200_000, vocab_size, seed=1))
    assert draws.min() >= 0 and draws.max() < vocab_size
    frequencies = np.bincount(draws, minlength=vocab_size) / draws.size
    np.testing.assert_allclose(frequencies[:10], q[:10], rtol=0.03)


def test_training_loss_is_sampled_and_evaluation_is_full():
    model = tiny_lm(num_sampled=4)
    ids = np.random.default_rng(5).integers(0, 12, (2, 9)).astype("int32")
    hidden = model(ids[:, :-1])
    full = model.compute_loss(y=ids[:, 1:], y_pred=hidden, training=False)
    sampled = model.compute_loss(y=ids[:, 1:], y_pred=hidden, training=True)
    # With 4 candidates of 12 words, the sampled softmax normalises over far
    # fewer logits, so the two differ.
    assert abs(float(full) - float(sampled)) > 1e-3
    full_only = tiny_lm(num_sampled=0)
    np.testing.assert_allclose(
        float(
            full_only.compute_loss(
                y=ids[:, 1:], y_pred=full_only(ids[:, :-1]), training=True
            )
        ),
        float(
            full_only.compute_loss(
                y=ids[:, 1:], y_pred=full_only(ids[:, :-1]), training=False
            )
        ),
        rtol=1e-6,
    )


def test_sampled_training_lowers_the_full_softmax_loss():
    keras.utils.set_random_seed(0)
    pattern = np.array([2, 3, 4, 5, 6, 7, 0], dtype="int32")
    ids = np.tile(pattern, 60)
    model = WordLanguageModel(
        EncoderSpec(30, 8, units=[16]), num_sampled=8, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(0.02, clipnorm=1.0))
    windows = ids[: 41 * 10].reshape(10, 41)
    before = word_lm.cross_entropy(model, ids, 2, 16)["nats"]
    model.fit(windows[:, :-1], windows[:, 1:], epochs=40, verbose=0)
    after = word_lm.cross_entropy(model, ids, 2, 16)["nats"]
    assert before > 3.0 and after < 0.5


def test_review_stream_order_and_markers():
    rows = [np.array([5, 6, 0]), np.array([0]), np.array([7, 8, 9])]
    stream = word_lm.review_stream(rows, seed=0)
    order = np.random.default_rng(0).permutation(3)
    expected = []
    for index in order:
        expected += [i for i in rows[index].tolist() if i] + [0]
    assert stream.tolist() == expected
    assert stream.dtype == np.int32
    assert word_lm.review_stream(rows, 0).tolist() == stream.tolist()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_sampled": 12}, "sample fewer candidates"),
        ({"num_sampled": -1}, "num_sampled"),
        ({"stateful": True, "num_sampled": 4}, "batch_size"),
        ({"embedding_dropout": 1.0, "num_sampled": 4}, "embedding_dropout"),
    ],
)
def test_bad_arguments_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        WordLanguageModel(EncoderSpec(12, 4, units=[5]), **options)


def test_a_language_model_reads_forwards_only():
    encoder = EncoderSpec(12, 4, units=[5], bidirectional=True)
    with pytest.raises(ValueError, match="forwards only"):
        WordLanguageModel(encoder)
