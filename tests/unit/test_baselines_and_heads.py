"""NBSVM's log-count ratios by hand, the baseline on a separable corpus,
the slanted triangular rate, and last-step pooling under a mask."""

import json

import keras
import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

import toolkit
from toolkit import optimizers
from toolkit.text import evaluation, models
from toolkit.text.encoder import EncoderSpec


def test_log_count_ratios_equal_the_hand_computation():
    texts = ["good good film", "good plot", "bad film", "bad bad plot"]
    labels = [1, 1, 0, 0]
    vectorizer = CountVectorizer(binary=True)
    features = vectorizer.fit_transform(texts)
    words = vectorizer.get_feature_names_out().tolist()
    assert words == ["bad", "film", "good", "plot"]
    ratios = evaluation.nb_log_count_ratios(features, labels, alpha=1.0)
    # Binarized counts: positive docs have good 2, film 1, plot 1, bad 0;
    # negative docs have bad 2, film 1, plot 1, good 0. Plus alpha = 1:
    p = np.array([1, 2, 3, 2]) / 8
    q = np.array([3, 2, 1, 2]) / 8
    np.testing.assert_allclose(ratios, np.log(p / q), rtol=1e-12)
    np.testing.assert_allclose(ratios, [-np.log(3), 0, np.log(3), 0])
    with pytest.raises(ValueError, match="0/1 labels"):
        evaluation.nb_log_count_ratios(features, [1, 2, 0, 0])


def test_nbsvm_separates_a_separable_corpus():
    rng = np.random.default_rng(0)
    filler = ["the", "film", "plot", "actor", "scene"]

    def review(word):
        body = list(rng.choice(filler, 6))
        body.insert(int(rng.integers(7)), word)
        return " ".join(body)

    train = [review("great") for _ in range(30)] + [
        review("awful") for _ in range(30)
    ]
    test = [review("great") for _ in range(10)] + [
        review("awful") for _ in range(10)
    ]
    labels = [1] * 30 + [0] * 30
    report = evaluation.nbsvm_bigram_baseline(
        train, labels, test, [1] * 10 + [0] * 10
    )
    assert report["accuracy"] == 1.0 and report["roc_auc"] == 1.0
    assert report["examples"] == 20 and "NBSVM" in report["model"]
    json.dumps(report)  # goes into metrics.json as it is


def test_slanted_triangular_rate():
    schedule = optimizers.make_schedule("slanted", 0.01, 100, 10, 1 / 32)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100, 150)]
    low = 0.01 / 32
    expected = [low, low + (0.01 - low) * 0.5, 0.01]
    expected += [low + (0.01 - low) * 0.5, low, low]
    np.testing.assert_allclose(rates, expected, rtol=1e-5)
    again = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert float(again(55)) == pytest.approx(rates[3])


def test_last_step_pooling_reads_the_last_unmasked_step():
    values = np.arange(2 * 4 * 3, dtype="float32").reshape(2, 4, 3)
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    pooled = toolkit.MaskedGlobalPooling1D("last")(values, mask=mask)
    np.testing.assert_array_equal(np.asarray(pooled), [values[0, 1], [0] * 3])
    unmasked = toolkit.MaskedGlobalPooling1D("last")(values)
    np.testing.assert_array_equal(np.asarray(unmasked), values[:, -1])


def test_concat_pooling_classifier_uses_the_final_state():
    model = models.build_text_classifier(
        EncoderSpec(20, 4, units=[5]), pooling="last_mean_max"
    )
    pooled = keras.Model(
        model.input, model.get_layer("last_mean_max_pool").output
    )
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    features = np.asarray(pooled(ids))
    assert features.shape == (2, 15)
    # The last unmasked output of a padded row is its output after 3 words.
    unpadded = np.asarray(pooled(ids[:1, :3]))
    np.testing.assert_allclose(features[:1], unpadded, rtol=1e-5, atol=1e-6)


def test_reverse_tokens_reverses_each_row_and_keeps_the_padding_last():
    ids = np.array([[4, 5, 6, 0, 0], [7, 0, 0, 0, 0], [1, 2, 3, 8, 9]])
    reversed_ids = np.asarray(models.ReverseTokens()(ids))
    np.testing.assert_array_equal(
        reversed_ids, [[6, 5, 4, 0, 0], [7, 0, 0, 0, 0], [9, 8, 3, 2, 1]]
    )


def test_a_backward_classifier_reads_the_reversed_review(rng):
    encoder = EncoderSpec(30, 4, units=[5])
    forward = models.build_text_classifier(encoder, pooling="last", seed=0)
    backward = models.build_text_classifier(
        encoder, pooling="last", seed=0, reverse=True,
        name="backward_classifier",
    )  # fmt: skip
    backward.set_weights(forward.get_weights())
    ids = np.array([[3, 9, 4, 11, 0, 0], [5, 6, 0, 0, 0, 0]])
    reversed_by_hand = np.array([[11, 4, 9, 3, 0, 0], [6, 5, 0, 0, 0, 0]])
    np.testing.assert_allclose(
        backward(ids), forward(reversed_by_hand), atol=1e-6
    )
    ensemble = models.average_classifiers([forward, backward])
    np.testing.assert_allclose(
        ensemble(ids), (forward(ids) + backward(ids)) / 2, atol=1e-6
    )
    with pytest.raises(ValueError, match="at least 2"):
        models.average_classifiers([forward])
