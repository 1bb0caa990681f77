"""`toolkit.loop`: which loop each layer configuration runs, decided in one
place, and what runs is what was planned."""

import keras
import numpy as np
import pytest

import toolkit
from toolkit import loop

PLANS = [
    (toolkit.LSTM, {}, False, ["cudnn", "fused"]),
    (toolkit.LSTM, {"use_cudnn": False}, False, ["fused"]),
    (toolkit.LSTM, {"use_cudnn": True}, False, ["cudnn"]),
    (toolkit.LSTM, {"recurrent_dropout": 0.2}, True, ["fused"]),
    (toolkit.LSTM, {"recurrent_dropout": 0.2}, False, ["cudnn", "fused"]),
    (toolkit.LSTM, {"recurrent_weight_dropout": 0.2}, True, ["fused"]),
    (toolkit.LSTM, {"unroll": True}, False, ["keras"]),
    (toolkit.LSTM, {"activation": "relu"}, False, ["keras"]),
    (toolkit.LSTM, {"recurrent_activation": "hard_sigmoid"}, False, ["keras"]),
    (toolkit.LSTM, {"use_bias": False}, False, ["fused"]),
    (toolkit.VanillaRNN, {}, False, ["fused"]),
    (toolkit.VanillaRNN, {"activation": "relu"}, False, ["keras"]),
    (toolkit.VanillaRNN, {"unroll": True}, False, ["keras"]),
]


@pytest.mark.parametrize("layer_class, kwargs, training, plan", PLANS)
def test_the_plan_of_each_configuration(
    monkeypatch, layer_class, kwargs, training, plan
):
    monkeypatch.setattr(loop, "_backend", lambda: "tensorflow")
    layer = layer_class(4, **kwargs)
    assert loop.loop_plan(layer, training) == plan
    assert layer_class is not toolkit.LSTM or layer.cudnn_allowed(training) == (
        plan[0] == "cudnn"
    )


@pytest.mark.parametrize(
    "kwargs, ran",
    [
        ({}, "fused"),
        ({"activation": "relu"}, "keras"),
        ({"unroll": True}, "keras"),
    ],
)
def test_the_planned_loop_is_the_one_that_runs(monkeypatch, kwargs, ran):
    """On a CPU cuDNN declines, and the next loop of the plan runs."""
    calls = []
    for name in ("fused_recurrence", "backend_rnn"):
        original = getattr(loop, name)

        def spy(*args, _original=original, _name=name, **kw):
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(loop, name, spy)
    layer = toolkit.LSTM(3, **kwargs)
    layer(np.ones((2, 5, 4), "float32"))
    expected = "fused_recurrence" if ran == "fused" else "backend_rnn"
    assert calls and set(calls) == {expected}


def test_use_cudnn_true_without_a_gpu_names_the_conditions():
    if keras.config.backend() != "tensorflow":
        pytest.skip("checked under TensorFlow")
    layer = toolkit.LSTM(3, use_cudnn=True)
    with pytest.raises(ValueError, match="use_cudnn='auto'"):
        layer(np.ones((2, 5, 4), "float32"))


def test_auto_takes_the_fused_loop_on_jax_and_true_takes_cudnn(monkeypatch):
    """Measured on a JAX GPU, the fused loop beat cuDNN: `"auto"` does not
    try cuDNN there even when the kernel would run (faked here by a
    stand-in that always runs); `use_cudnn=True` does."""
    calls = []

    def stand_in_kernel(inputs, h, c, mask, **kwargs):
        calls.append("cudnn")
        batch, units = h.shape[0], h.shape[-1]
        outputs = keras.ops.zeros((batch, inputs.shape[1], units))
        return outputs[:, -1], outputs, [h, c]

    monkeypatch.setattr(loop, "backend_lstm", stand_in_kernel)
    monkeypatch.setattr(loop, "_backend", lambda: "jax")
    x = np.ones((2, 5, 4), "float32")
    auto = toolkit.LSTM(3)
    assert loop.loop_plan(auto) == ["fused"]
    auto(x)
    assert calls == []
    forced = toolkit.LSTM(3, use_cudnn=True)
    assert loop.loop_plan(forced) == ["cudnn"]
    forced(x)
    assert calls == ["cudnn"]
    monkeypatch.setattr(loop, "_backend", lambda: "tensorflow")
    assert loop.loop_plan(toolkit.LSTM(3)) == ["cudnn", "fused"]
    toolkit.LSTM(3)(x)
    assert calls == ["cudnn", "cudnn"]
