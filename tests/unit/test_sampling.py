"""Sampling from character language models."""

import numpy as np
import pytest

from toolkit.data import CharVocabulary
from toolkit.text import models, sampling
from toolkit.text.encoder import EncoderSpec

VOCABULARY = CharVocabulary(tuple("abcdefgh "))


def test_choose_temperature_zero_and_top_k_one_are_argmax():
    logits = np.array([0.1, 2.0, 1.9, -1.0])
    rng = np.random.default_rng(0)
    assert sampling.choose(logits, 0.0, None, rng) == 1
    assert all(sampling.choose(logits, 5.0, 1, rng) == 1 for _ in range(50))
    assert all(sampling.choose(logits, 1e-4, None, rng) == 1 for _ in range(50))


def test_choose_top_k_and_temperature_one_follow_the_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    rng = np.random.default_rng(1)
    draws = np.array(
        [sampling.choose(logits, 1.0, None, rng) for _ in range(20_000)]
    )
    frequencies = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=0.015)
    top_two = {sampling.choose(logits, 1.0, 2, rng) for _ in range(500)}
    assert top_two == {0, 1}


def test_choose_rejects_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="`temperature`.*-1"):
        sampling.choose(np.zeros(3), -1, None, rng)
    with pytest.raises(ValueError, match="`top_k`.*0"):
        sampling.choose(np.zeros(3), 1.0, 0, rng)


@pytest.fixture
def char_model():
    return models.build_char_lm(
        EncoderSpec(len(VOCABULARY), embedding_dim=8, units=[16, 16]), seed=0
    )


def test_char_lm_shapes_and_stateful_needs_a_batch_size(char_model):
    logits = char_model(np.zeros((3, 7), "int32"))
    assert logits.shape == (3, 7, len(VOCABULARY))
    with pytest.raises(ValueError, match="`batch_size`"):
        models.build_char_lm(EncoderSpec(5), stateful=True)


def test_greedy_generation_equals_argmax_decoding_of_the_whole_prefix(
    char_model,
):
    """Temperature 0 through the stateful copy, one step at a time, equals
    re-running the stateless model on the whole text at every step."""
    generated = sampling.generate(
        char_model, VOCABULARY, "abc", 12, temperature=0.0
    )
    text = "abc"
    for _ in range(12):
        logits = char_model.predict_on_batch(VOCABULARY.encode(text)[None])
        text += VOCABULARY.chars[int(np.argmax(logits[0, -1]))]
    assert generated == text[3:]
    assert len(generated) == 12


def test_same_seed_same_sample(char_model):
    first = sampling.generate(char_model, VOCABULARY, "a", 30, seed=4)
    again = sampling.generate(char_model, VOCABULARY, "a", 30, seed=4)
    other = sampling.generate(char_model, VOCABULARY, "a", 30, seed=5)
    assert first == again
    assert first != other
    assert set(first) <= set(VOCABULARY.chars)


def test_priming_outside_the_vocabulary_is_a_clear_error(char_model):
    with pytest.raises(ValueError, match=r"outside.*\['Z'\]"):
        sampling.generate(char_model, VOCABULARY, "abZ", 5)
    with pytest.raises(ValueError, match="empty `prime`"):
        sampling.generate(char_model, VOCABULARY, "", 5)


def test_cross_entropy_of_a_uniform_model_is_log_vocabulary():
    """Zero output weights give uniform predictions: exactly ln(V) nats and
    log2(V) bits per character, whatever the text."""
    from toolkit.text.evaluation import char_lm_cross_entropy

    model = models.build_char_lm(
        EncoderSpec(len(VOCABULARY), embedding_dim=4, units=[8]), seed=0
    )
    logits_layer = model.get_layer("logits")
    logits_layer.set_weights(
        [np.zeros_like(w) for w in logits_layer.get_weights()]
    )
    ids = VOCABULARY.encode("abc defg hab " * 20)
    result = char_lm_cross_entropy(model, ids, batch_size=2, sequence_length=16)
    np.testing.assert_allclose(result["nats"], np.log(9), rtol=1e-9)
    np.testing.assert_allclose(result["bits"], np.log2(9), rtol=1e-9)
    assert result["characters"] == len(ids) - 1


def test_chunked_stateful_evaluation_equals_one_pass_over_the_text(
    char_model,
):
    """Carrying state across chunks gives the loss of reading the whole
    text at once with the same weights."""
    from toolkit.text.evaluation import char_lm_cross_entropy

    rng = np.random.default_rng(0)
    ids = rng.integers(0, len(VOCABULARY), 161).astype("int32")
    chunked = char_lm_cross_entropy(
        char_model, ids, batch_size=1, sequence_length=20
    )
    logits = np.asarray(
        char_model.predict_on_batch(ids[None, :-1]), np.float64
    )[0]
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    whole = -np.mean(log_probs[np.arange(160), ids[1:]])
    assert chunked["characters"] == 160
    np.testing.assert_allclose(chunked["nats"], whole, rtol=1e-5)
