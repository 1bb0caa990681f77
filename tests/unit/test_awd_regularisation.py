"""AWD-LSTM's regularisers (Merity et al. 2018): DropConnect on the
recurrent kernel, locked dropout between layers, word-type embedding
dropout. Checked against Keras's built-in LSTM with the masked weights."""

import keras
import numpy as np
import pytest

import toolkit
from toolkit import loop as loop_module
from toolkit._keras_private import seed_generator_states
from toolkit.text.encoder import EncoderSpec
from toolkit.text.word_lm import WordLanguageModel


def weight_dropped_layer(**kwargs):
    layer = toolkit.LSTM(
        6, return_sequences=True, recurrent_weight_dropout=0.5, seed=3, **kwargs
    )
    layer.build((2, 5, 4))
    return layer


def builtin_with(layer, recurrent_kernel):
    builtin = keras.layers.LSTM(6, return_sequences=True)
    builtin.build((2, 5, 4))
    kernel, _, bias = layer.get_weights()
    builtin.set_weights([kernel, np.asarray(recurrent_kernel), bias])
    return builtin


def draw_this_calls_kernel(layer):
    """The masked W_h that the layer's next training call will use: drawn
    from the same seed state, which is then put back."""
    state = layer.weight_dropout_seed.state
    saved = np.asarray(state.value).copy()
    kernel = np.asarray(layer.weight_dropped_kernel(training=True))
    state.assign(saved)
    return kernel


def test_one_mask_for_the_whole_batch_and_sequence(rng):
    layer = weight_dropped_layer()
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    kernel = draw_this_calls_kernel(layer)
    full = layer.cell.recurrent_kernel.numpy()
    dropped = kernel == 0
    assert 0.3 < dropped.mean() < 0.7
    np.testing.assert_allclose(kernel[~dropped], 2.0 * full[~dropped])
    # Every row and every step ran with that one masked W_h: the built-in
    # LSTM given it computes the same outputs.
    np.testing.assert_allclose(
        layer(x, training=True), builtin_with(layer, kernel)(x), atol=1e-5
    )


def test_a_new_mask_each_call_and_none_at_inference(rng):
    layer = weight_dropped_layer()
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    first = draw_this_calls_kernel(layer)
    layer(x, training=True)
    second = draw_this_calls_kernel(layer)
    assert not np.array_equal(first == 0, second == 0)
    full = layer.cell.recurrent_kernel.numpy()
    np.testing.assert_allclose(
        layer(x, training=False), builtin_with(layer, full)(x), atol=1e-5
    )
    np.testing.assert_array_equal(layer(x), layer(x))


def test_the_fused_recurrence_runs_and_dropped_weights_get_no_gradient(
    rng, monkeypatch
):
    import tensorflow as tf

    layer = weight_dropped_layer()
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    kernels = []
    fused = loop_module.fused_recurrence

    def spy(*args, **kwargs):
        kernels.append(kwargs["recurrent_kernel"])
        return fused(*args, **kwargs)

    monkeypatch.setattr(loop_module, "fused_recurrence", spy)
    kernel = draw_this_calls_kernel(layer)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
    gradient = tape.gradient(loss, layer.cell.recurrent_kernel).numpy()
    assert len(kernels) == 1  # the fused loop ran, with the masked W_h
    np.testing.assert_array_equal(np.asarray(kernels[0]), kernel)
    assert np.all(gradient[kernel == 0] == 0)
    assert np.all(gradient[kernel != 0] != 0)


def test_config_round_trip_and_cudnn_declined_in_training():
    layer = weight_dropped_layer()
    config = layer.get_config()
    assert config["recurrent_weight_dropout"] == 0.5
    assert toolkit.LSTM.from_config(config).get_config() == config
    assert "recurrent_weight_dropout" not in toolkit.LSTM(3).get_config()
    assert layer.cudnn_allowed(training=False)
    assert not layer.cudnn_allowed(training=True)
    with pytest.raises(ValueError, match="`recurrent_weight_dropout`"):
        toolkit.VanillaRNN(3, recurrent_weight_dropout=1.0)
    # Its seed state is saved with a run, so a resume draws the same masks.
    assert layer.weight_dropout_seed.state in seed_generator_states(
        keras.Sequential([keras.Input((5, 4)), layer])
    )


def test_locked_dropout_keeps_one_mask_across_timesteps():
    stack = toolkit.DeepRNN.from_spec(
        [4, 4], dropout=0.5, locked_dropout=True, seed=1
    )
    x = np.ones((3, 6, 4), "float32")
    stack.build(x.shape)
    dropout = stack.dropout_layers[0]
    dropped = np.asarray(dropout(np.ones((3, 6, 4)), training=True)) == 0
    assert np.all(dropped == dropped[:, :1, :])  # same channels every step
    assert dropped.any() and not dropped.all()
    config = stack.get_config()
    assert config["locked_dropout"] is True
    assert toolkit.DeepRNN.from_config(config).locked_dropout


def test_word_type_dropout_drops_every_occurrence_of_a_word():
    model = WordLanguageModel(
        EncoderSpec(30, 4, units=(5,)),
        num_sampled=0,
        word_type_dropout=0.5,
        seed=0,
    )
    model.build((None, None))
    ids = np.tile(np.arange(30), (2, 1))
    ids = np.concatenate([ids, ids[:, ::-1]], axis=1)  # each word 4 times
    embedded = model.embedding(ids)
    np.testing.assert_array_equal(
        model.drop_word_types(embedded, ids, training=False), embedded
    )
    dropped_words = []
    for _ in range(2):  # a new draw each batch
        out = np.asarray(model.drop_word_types(embedded, ids, training=True))
        zero = np.all(out == 0, axis=-1)
        dropped = {w for w in range(30) if zero[ids == w].all()}
        for word in range(30):
            at = ids == word
            if word not in dropped:
                assert not zero[at].any(), word
                np.testing.assert_allclose(
                    out[at], 2.0 * np.asarray(embedded)[at], rtol=1e-6
                )
        assert 5 < len(dropped) < 25
        dropped_words.append(dropped)
    assert dropped_words[0] != dropped_words[1]
