"""`toolkit.LSTM` on the backend's cuDNN kernel: the dispatch decision for
each configuration, and numerics that do not depend on it.

There is no GPU here, so the backend kernel is replaced by a stand-in that
computes the same function with Keras's generic loop; that checks what the
layer hands the kernel (weights, states, masks, direction, input dropout)
and what it does with the result.
"""

import keras
import numpy as np
import pytest

import toolkit
from toolkit import loop

CONFIGS = {
    "default": ({}, False, True),
    "use_cudnn_false": ({"use_cudnn": False}, False, False),
    "relu": ({"activation": "relu"}, False, False),
    "hard_sigmoid": ({"recurrent_activation": "hard_sigmoid"}, False, False),
    "no_bias": ({"use_bias": False}, False, False),
    "unroll": ({"unroll": True}, False, False),
    "recurrent_dropout_training": ({"recurrent_dropout": 0.2}, True, False),
    "recurrent_dropout_inference": ({"recurrent_dropout": 0.2}, False, True),
    "dropout_training": ({"dropout": 0.2}, True, True),
    "go_backwards_stateful": (
        {"go_backwards": True, "stateful": True},
        False,
        True,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_dispatch_decision(name):
    kwargs, training, expected = CONFIGS[name]
    layer = toolkit.LSTM(4, **kwargs)
    assert layer.cudnn_allowed(training=training) is expected


def stand_in_kernel(calls):
    """The backend kernel's contract, computed by Keras's generic loop."""

    def backend_lstm(
        inputs,
        initial_state_h,
        initial_state_c,
        mask,
        kernel,
        recurrent_kernel,
        bias,
        activation,
        recurrent_activation,
        return_sequences=False,
        go_backwards=False,
        unroll=False,
    ):
        calls.append({"mask": mask is not None, "go_backwards": go_backwards})
        units = recurrent_kernel.shape[0]
        rnn = keras.layers.RNN(
            keras.layers.LSTMCell(units),
            return_sequences=True,
            return_state=True,
            go_backwards=go_backwards,
        )
        rnn.build(inputs.shape)
        rnn.cell.kernel.assign(kernel)
        rnn.cell.recurrent_kernel.assign(recurrent_kernel)
        rnn.cell.bias.assign(bias)
        outputs, h, c = rnn(
            inputs, initial_state=[initial_state_h, initial_state_c], mask=mask
        )
        return h, outputs, [h, c]

    return backend_lstm


@pytest.mark.parametrize(
    "kwargs, call",
    [
        ({}, {}),
        ({"return_sequences": True, "go_backwards": True}, {}),
        ({"return_sequences": True}, {"mask": True}),
        ({"return_state": True}, {"initial_state": True}),
        (
            {"return_sequences": True, "dropout": 0.4, "seed": 2},
            {"training": 1},
        ),
    ],
    ids=["default", "backwards", "mask", "initial_state", "input_dropout"],
)
def test_numerics_do_not_depend_on_the_dispatch(monkeypatch, rng, kwargs, call):
    x = rng.standard_normal((3, 6, 5)).astype("float32")
    call_kwargs = {}
    if call.get("mask"):
        call_kwargs["mask"] = np.arange(6)[None, :] < np.array([[6], [4], [1]])
    if call.get("initial_state"):
        call_kwargs["initial_state"] = [
            rng.standard_normal((3, 4)).astype("float32") for _ in range(2)
        ]
    if call.get("training"):
        call_kwargs["training"] = True
    fused = toolkit.LSTM(4, use_cudnn=False, **kwargs)
    cudnn = toolkit.LSTM(4, use_cudnn=True, **kwargs)
    fused.build(x.shape)
    cudnn.build(x.shape)
    cudnn.set_weights(fused.get_weights())
    calls = []
    monkeypatch.setattr(loop, "backend_lstm", stand_in_kernel(calls))
    keras.utils.set_random_seed(5)
    expected = fused(x, **call_kwargs)
    keras.utils.set_random_seed(5)
    got = cudnn(x, **call_kwargs)
    assert len(calls) == 1
    for a, b in zip(
        got if isinstance(got, list) else [got],
        expected if isinstance(expected, list) else [expected],
        strict=True,
    ):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_auto_falls_back_to_the_fused_loop_when_the_backend_declines(rng):
    # On this CPU the backend kernel raises NotImplementedError.
    x = rng.standard_normal((2, 4, 3)).astype("float32")
    auto = toolkit.LSTM(4)
    never = toolkit.LSTM(4, use_cudnn=False)
    auto(x)
    never(x)
    never.set_weights(auto.get_weights())
    np.testing.assert_allclose(auto(x), never(x), atol=1e-6)


def test_use_cudnn_true_without_a_gpu_is_a_clear_error():
    layer = toolkit.LSTM(4, use_cudnn=True)
    with pytest.raises(ValueError, match="use_cudnn='auto'"):
        layer(np.zeros((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="use_cudnn.*'maybe'"):
        toolkit.LSTM(4, use_cudnn="maybe")


def test_use_cudnn_false_never_calls_the_kernel(monkeypatch, rng):
    calls = []
    monkeypatch.setattr(loop, "backend_lstm", stand_in_kernel(calls))
    toolkit.LSTM(4, use_cudnn=False)(rng.standard_normal((2, 3, 5)))
    toolkit.LSTM(4, activation="relu")(rng.standard_normal((2, 3, 5)))
    assert calls == []


def test_backend_kernel_takes_the_arguments_the_layer_passes():
    import inspect

    from toolkit._keras_private import backend_lstm

    parameters = inspect.signature(backend_lstm).parameters
    for name in (
        "inputs",
        "initial_state_h",
        "initial_state_c",
        "mask",
        "kernel",
        "recurrent_kernel",
        "bias",
        "activation",
        "recurrent_activation",
        "return_sequences",
        "go_backwards",
        "unroll",
    ):
        assert name in parameters, name
