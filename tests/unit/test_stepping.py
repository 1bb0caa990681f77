"""StateRunner: the one way the toolkit carries a language model's states
(generation, whole-split evaluation, export), built on
`DeepRNN(initial_state=..., return_state=True)`."""

import numpy as np
import pytest

from toolkit.data import CharVocabulary
from toolkit.serving import export
from toolkit.stepping import StateRunner
from toolkit.text import evaluation, models, sampling, word_lm
from toolkit.text.encoder import EncoderSpec

VOCABULARY = CharVocabulary("abcdefgh ")


def char_lm(stateful=False, batch_size=None, **kwargs):
    settings = dict(embedding_dim=6, units=[10, 10])
    settings.update(kwargs)
    encoder = EncoderSpec(len(VOCABULARY), **settings)
    return models.build_char_lm(
        encoder, stateful=stateful, batch_size=batch_size, seed=0
    )


def test_chunks_equal_one_call_of_the_model(rng):
    model = char_lm(residual=True)
    ids = rng.integers(0, len(VOCABULARY), (3, 11)).astype("int32")
    runner = StateRunner.for_model(model)
    states = runner.initial_state(3)
    pieces = []
    for start, stop in ((0, 4), (4, 5), (5, 11)):
        logits, states = runner(ids[:, start:stop], states)
        pieces.append(logits)
    np.testing.assert_allclose(
        np.concatenate(pieces, 1), model.predict_on_batch(ids), atol=1e-5
    )


def test_runner_shares_the_model_weights(rng):
    model = char_lm()
    runner = StateRunner.for_model(model)
    ids = rng.integers(0, len(VOCABULARY), (1, 5)).astype("int32")
    before, _ = runner(ids, runner.initial_state(1))
    model.set_weights([w * 1.5 for w in model.get_weights()])
    after, _ = runner(ids, runner.initial_state(1))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, model.predict_on_batch(ids), atol=1e-5)


def test_stateful_model_keeps_its_carried_state(rng):
    """A model trained with stateful TBPTT (batch 4) is read at batch 1 and
    its carried states are neither read nor written."""
    model = char_lm(stateful=True, batch_size=4)
    ids = rng.integers(0, len(VOCABULARY), (4, 6)).astype("int32")
    model.predict_on_batch(ids)
    stack = model.get_layer("deep_rnn")
    carried = [v.numpy() for layer in stack.rnn_layers for v in layer.states]
    runner = StateRunner.for_model(model)
    logits, states = runner(ids[:1], runner.initial_state(1))
    assert logits.shape == (1, 6, len(VOCABULARY))
    after = [v.numpy() for layer in stack.rnn_layers for v in layer.states]
    for a, b in zip(carried, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert all(layer.stateful for layer in stack.rnn_layers)
    stack.reset_states()
    np.testing.assert_allclose(
        logits[0], model.predict_on_batch(ids)[0], atol=1e-5
    )


def test_generation_equals_recomputing_the_whole_prefix():
    model = char_lm()
    prime = "abc"
    text = sampling.generate(model, VOCABULARY, prime, 6, temperature=0)
    ids = list(VOCABULARY.encode(prime))
    for _ in range(6):
        logits = model.predict_on_batch(np.array([ids]))[0, -1]
        ids.append(int(np.argmax(logits)))
    assert text == VOCABULARY.decode(ids[len(prime) :])


def test_export_generates_what_sampling_generates(tmp_path):
    import tensorflow as tf

    model = char_lm(stateful=True, batch_size=2)
    path = export.export_char_lm(model, VOCABULARY, tmp_path / "lm")
    served = tf.saved_model.load(str(path))
    got = served.generate(
        prime=tf.constant("abca"),
        length=tf.constant(8),
        temperature=tf.constant(0.0),
        seed=tf.constant(0, tf.int64),
    )
    expected = sampling.generate(model, VOCABULARY, "abca", 8, temperature=0)
    assert got.numpy().decode() == expected


def test_evaluation_and_word_lm_read_through_the_runner(rng):
    ids = rng.integers(0, len(VOCABULARY), 40).astype("int32")
    model = char_lm()
    logits = model.predict_on_batch(ids[None, :-1])[0].astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(log_probs[np.arange(39), ids[1:]])
    got = evaluation.char_lm_cross_entropy(model, ids, 1, 7)["nats"]
    np.testing.assert_allclose(got, expected, rtol=1e-5)

    lm = word_lm.WordLanguageModel(
        EncoderSpec(12, embedding_dim=4, units=[5]), num_sampled=0, seed=0
    )
    words = rng.integers(1, 12, 30).astype("int32")
    hidden = lm.predict_on_batch(words[None, :-1])
    expected = float(np.mean(lm.head.token_losses(hidden, words[None, 1:])))
    got = word_lm.cross_entropy(lm, words, batch_size=1, sequence_length=4)
    np.testing.assert_allclose(got["nats"], expected, rtol=1e-5)


def test_no_other_state_carrying_mechanism_is_left():
    """Generation, evaluation and export have no model-config rewriting
    copy and the stack no step method of its own."""
    from toolkit.deep import DeepRNN

    assert not hasattr(sampling, "stateful_copy")
    assert not hasattr(word_lm, "stateful_copy")
    assert not hasattr(DeepRNN, "step")
    assert not hasattr(DeepRNN, "initial_step_states")


def test_runner_rejects_models_that_are_not_language_models():
    import keras

    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, keras.layers.Embedding(4, 2)(inputs))
    with pytest.raises(ValueError, match="not a toolkit language model"):
        StateRunner.for_model(model)
    runner = StateRunner.for_model(char_lm())
    with pytest.raises(ValueError, match=r"\(batch, steps\)"):
        runner(np.zeros(3, "int32"), runner.initial_state(1))
