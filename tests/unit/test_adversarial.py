"""Adversarial training (toolkit.text.adversarial) against a hand computation.

The tiny classifier is `ids (batch, T) -> Embedding (V, D) -> Flatten ->
Dense(1, sigmoid)`, whose loss gradient with respect to the embedded words
and whose SGD update are written out in numpy below.
"""

import keras
import numpy as np
import pytest

from toolkit.text import adversarial, models
from toolkit.text.encoder import EncoderSpec

V, D, T, B = 7, 3, 4, 5


def tiny_classifier():
    ids = keras.Input((T,), dtype="int32")
    x = keras.layers.Embedding(V, D, name="embedding")(ids)
    x = keras.layers.Flatten()(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="output")(x)
    return keras.Model(ids, output)


def batch(rng):
    x = rng.integers(0, V, (B, T)).astype("int32")
    y = rng.integers(0, 2, (B, 1)).astype("float32")
    return x, y


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hand_gradient(embeddings, w, b, x, y):
    """dL/ds for L = mean_b BCE(sigmoid(w . flat(s_b) + b), y_b)."""
    s = embeddings[x].reshape(B, -1)
    p = sigmoid(s @ w + b)
    return ((p - y) / B * w[:, 0]).reshape(B, T, D)


def hand_scale(embeddings, counts):
    f = counts / counts.sum()
    mean = f @ embeddings
    return np.sqrt(f @ (embeddings - mean) ** 2)


@pytest.mark.parametrize("normalised", [False, True])
def test_perturbation_matches_a_hand_computation(rng, normalised):
    classifier = tiny_classifier()
    counts = rng.integers(1, 50, V).astype("float64") if normalised else None
    model = adversarial.AdversarialTraining(
        classifier, epsilon=0.7, frequencies=counts
    )
    model.compile("sgd", "binary_crossentropy")
    x, y = batch(rng)
    embeddings, (w, b) = (
        classifier.get_layer("embedding").get_weights()[0],
        classifier.get_layer("output").get_weights(),
    )
    r = np.asarray(model.perturbation(x, y))

    g = hand_gradient(embeddings, w, b, x, y)
    scale = hand_scale(embeddings, counts) if normalised else np.ones(D)
    normalised_g = g * scale
    norms = np.sqrt((normalised_g**2).sum(axis=(1, 2), keepdims=True))
    expected = 0.7 * normalised_g / norms * scale
    np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-7)
    # Direction: along the (normalised) gradient; norm: epsilon per review,
    # measured in units of each dimension's standard deviation.
    in_units = r / scale
    np.testing.assert_allclose(
        np.sqrt((in_units**2).sum(axis=(1, 2))), 0.7, rtol=1e-5
    )
    cosine = (in_units * normalised_g).sum(axis=(1, 2)) / (0.7 * norms[:, 0, 0])
    np.testing.assert_allclose(cosine, 1.0, rtol=1e-5)


def test_adversarial_perturbation_of_a_zero_gradient_is_zero():
    r = adversarial.adversarial_perturbation(np.zeros((2, 3, 4)), 5.0)
    np.testing.assert_array_equal(np.asarray(r), 0.0)
    tiny = np.full((1, 2, 2), 1e-30, dtype="float32")  # squares underflow
    r = np.asarray(adversarial.adversarial_perturbation(tiny, 2.0))
    np.testing.assert_allclose(np.sqrt((r**2).sum()), 2.0, rtol=1e-6)


def test_one_sgd_step_is_the_clean_plus_adversarial_gradient(rng):
    """The update equals -lr * (dL(s)/dtheta + weight * dL(s + r)/dtheta)
    with r held fixed, computed in numpy."""
    classifier = tiny_classifier()
    model = adversarial.AdversarialTraining(classifier, epsilon=0.5, weight=0.8)
    model.compile(keras.optimizers.SGD(0.3), "binary_crossentropy")
    x, y = batch(rng)
    embeddings = classifier.get_layer("embedding").get_weights()[0]
    w, b = classifier.get_layer("output").get_weights()

    g = hand_gradient(embeddings, w, b, x, y)
    r = 0.5 * g / np.sqrt((g**2).sum(axis=(1, 2), keepdims=True))
    total_e, total_w, total_b = np.zeros_like(embeddings), 0.0, 0.0
    for delta, weight in ((0.0, 1.0), (r, 0.8)):
        s = (embeddings[x] + delta).reshape(B, -1)
        p = sigmoid(s @ w + b)
        d_logit = (p - y) / B  # (B, 1)
        total_w = total_w + weight * s.T @ d_logit
        total_b = total_b + weight * d_logit.sum(0)
        d_s = (d_logit * w[:, 0]).reshape(B, T, D)
        np.add.at(total_e, x, weight * d_s)

    logs = model.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(
        classifier.get_layer("embedding").get_weights()[0],
        embeddings - 0.3 * total_e,
        atol=1e-6,
    )
    new_w, new_b = classifier.get_layer("output").get_weights()
    np.testing.assert_allclose(new_w, w - 0.3 * total_w, atol=1e-6)
    np.testing.assert_allclose(new_b, b - 0.3 * total_b, atol=1e-6)
    assert logs["adversarial_loss"] > logs["loss"]  # r raises the loss


def test_trains_a_toolkit_classifier_under_fit(rng):
    """Masked, bucketed reviews through the toolkit LSTM; the classifier
    itself is trained, evaluated and its outputs unchanged by the wrapper."""
    classifier = models.build_text_classifier(
        EncoderSpec(50, 8, units=[8]),
        pooling="last_mean_max",
        embedding_dropout=0.1,
        seed=3,
    )
    model = adversarial.AdversarialTraining(
        classifier, epsilon=2.0, frequencies=np.arange(50) + 1
    )
    assert len(model.trainable_variables) == len(classifier.trainable_variables)
    x = rng.integers(1, 50, (32, 12))
    x[:16, 7:] = 0  # right padding, masked
    y = (x[:, 0] > 25).astype("float32")[:, None]
    np.testing.assert_allclose(
        model.predict(x, verbose=0), classifier.predict(x, verbose=0)
    )
    before = [w.copy() for w in classifier.get_weights()]
    model.compile(
        keras.optimizers.Adam(1e-2), "binary_crossentropy", metrics=["acc"]
    )
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert set(history.history) == {"loss", "acc", "adversarial_loss"}
    assert all(np.isfinite(history.history["adversarial_loss"]))
    for old, new in zip(before, classifier.get_weights(), strict=True):
        assert not np.allclose(old, new)
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {
        "loss",
        "acc",
    }


def test_bad_arguments_are_refused_with_a_message():
    classifier = tiny_classifier()
    with pytest.raises(ValueError, match="`epsilon`.*positive"):
        adversarial.AdversarialTraining(classifier, epsilon=0.0)
    with pytest.raises(ValueError, match="`frequencies`.*\\(7,\\)"):
        adversarial.AdversarialTraining(classifier, frequencies=np.ones(5))
    with pytest.raises(ValueError, match="not an Embedding"):
        adversarial.AdversarialTraining(classifier, embedding_layer="output")
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="0 Embedding layers"):
        adversarial.AdversarialTraining(plain)
