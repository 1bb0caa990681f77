"""Guards for the private Keras names in `toolkit/_keras_private.py`.

Each test pins what the toolkit assumes about one private name, so that a
Keras upgrade that renames, reshapes or stops calling one fails here rather
than silently changing what the toolkit does.
"""

import inspect
import pathlib
import re

import keras
import numpy as np
import pytest

from toolkit import _keras_private, optimizers
from toolkit._keras_private import (
    OPTIMIZER_HOOKS,
    DropoutRNNCell,
    backend_rnn,
    check_optimizer_hooks,
    seed_generator_states,
)

# What the toolkit's overrides take (after `self`), written out here
# independently of the table in `_keras_private`.
HOOKS = {
    "_backend_apply_gradients": ("grads", "trainable_variables"),
    "_all_reduce_sum_gradients": ("grads_and_vars",),
    "_clip_gradients": ("grads",),
}


def _parameters(function):
    return tuple(inspect.signature(function).parameters)[1:]


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_keras_optimizer_hook_has_the_parameters_the_toolkit_relies_on(name):
    # The TensorFlow backend (conftest) is the one where all three are used.
    (hook,) = [h for h in OPTIMIZER_HOOKS if h.name == name]
    assert hook.parameters == HOOKS[name]
    for optimizer_class in (
        keras.optimizers.Optimizer,
        *optimizers.KERAS_BASES,
        *(cls for pair in optimizers.OPTIMIZERS.values() for cls in pair),
    ):
        method = getattr(optimizer_class, name, None)
        assert callable(method), f"{optimizer_class.__name__}.{name} is gone"
        assert _parameters(method) == HOOKS[name], (
            f"{optimizer_class.__name__}.{name}{inspect.signature(method)}"
        )
    mixin = getattr(optimizers, hook.overridden_by)
    assert _parameters(vars(mixin)[name]) == HOOKS[name]


def test_keras_still_calls_the_hooks_where_the_mixins_expect():
    # ClipAfterAllReduceMixin sums the gradients before calling
    # `_backend_apply_gradients` and skips `_all_reduce_sum_gradients`
    # inside it: that only works while Keras clips, then all-reduces,
    # both within `_backend_apply_gradients`.
    from keras.src.backend.tensorflow.optimizer import TFOptimizer
    from keras.src.optimizers.base_optimizer import BaseOptimizer

    apply_source = inspect.getsource(BaseOptimizer._backend_apply_gradients)
    assert "self._clip_gradients(grads)" in apply_source
    assert "self._backend_update_step(" in apply_source
    update_source = inspect.getsource(TFOptimizer._backend_update_step)
    assert "self._all_reduce_sum_gradients(" in update_source


def _fake_optimizer(**methods):
    def apply(self, grads, trainable_variables):
        pass

    def all_reduce(self, grads_and_vars):
        pass

    def clip(self, grads):
        pass

    namespace = {
        "_backend_apply_gradients": apply,
        "_all_reduce_sum_gradients": all_reduce,
        "_clip_gradients": clip,
    }
    namespace.update(methods)
    return type("FakeOptimizer", (), {k: v for k, v in namespace.items() if v})


def test_check_optimizer_hooks_accepts_the_current_keras():
    check_optimizer_hooks()
    check_optimizer_hooks(_fake_optimizer(), backend="tensorflow")
    for optimizer_class in optimizers.KERAS_BASES:
        check_optimizer_hooks(
            optimizer_class,
            mixins=(
                optimizers.ClipAfterAllReduceMixin,
                optimizers.GradientStatsMixin,
            ),
        )


def _clip_with_variables(self, grads, variables):
    pass


@pytest.mark.parametrize(
    "methods, found",
    [
        # Renamed: the hook is gone.
        ({"_clip_gradients": None}, "no such method"),
        # Reshaped: another parameter.
        (
            {"_clip_gradients": _clip_with_variables},
            "(self, grads, variables)",
        ),
    ],
)
def test_check_optimizer_hooks_fails_loudly_on_a_changed_hook(methods, found):
    fake = _fake_optimizer(**methods)
    with pytest.raises(RuntimeError) as raised:
        check_optimizer_hooks(fake, backend="tensorflow")
    message = str(raised.value)
    assert "FakeOptimizer._clip_gradients" in message
    assert "expected signature (self, grads)" in message
    assert f"found {found}" in message
    assert f"Keras {keras.__version__}" in message
    assert "GradientStatsMixin" in message


def test_check_optimizer_hooks_skips_tensorflow_hooks_on_other_backends():
    fake = _fake_optimizer(_all_reduce_sum_gradients=None)
    check_optimizer_hooks(fake, backend="jax")
    with pytest.raises(RuntimeError, match="_all_reduce_sum_gradients"):
        check_optimizer_hooks(fake, backend="tensorflow")


def test_check_optimizer_hooks_catches_a_mixin_out_of_step_with_the_table():
    class GradientStatsMixin:
        def _clip_gradients(self, gradients):
            pass

    with pytest.raises(RuntimeError, match="must override _clip_gradients"):
        check_optimizer_hooks(mixins=(GradientStatsMixin,))


def test_gradient_stats_hook_runs_during_fit():
    # A silent no-op (Keras no longer calling `_clip_gradients`) would leave
    # the mixin's variables at zero.
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(-1, keepdims=True)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    optimizer = optimizers.make_optimizer("sgd", 0.1, 1e-4, True)
    assert isinstance(optimizer, optimizers.GradientStatsMixin)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert int(optimizer.iterations) == 4
    assert float(optimizer.gradient_norm) > 0
    assert float(optimizer.clip_fired) == 1.0
    assert float(optimizer.clipped_steps) == 4.0


def test_seed_generator_states_finds_a_dropout_layers_seed_state(tmp_path):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(2), keras.layers.Dropout(0.5)]
    )
    (state,) = seed_generator_states(model)
    assert state is model.layers[1].seed_generator.state
    assert tuple(state.shape) == (2,)
    # Why the toolkit saves them itself: the weights file leaves them out.
    before = state.numpy().copy()
    model.save_weights(tmp_path / "m.weights.h5")
    model(np.ones((1, 4), "float32"), training=True)
    assert not np.array_equal(state.numpy(), before)
    model.load_weights(tmp_path / "m.weights.h5")
    assert not np.array_equal(state.numpy(), before)


def test_rnn_configures_and_resets_dropout_masks_of_dropout_rnn_cells():
    from keras.src.layers.rnn import rnn as rnn_module

    rnn = keras.layers.RNN
    call_source = inspect.getsource(rnn.call)
    assert "self._maybe_config_dropout_masks(" in call_source
    assert "self._maybe_reset_dropout_masks(" in call_source
    assert list(
        inspect.signature(rnn._maybe_config_dropout_masks).parameters
    ) == [
        "self",
        "cell",
        "input_sequence",
        "input_state",
    ]
    assert list(
        inspect.signature(rnn._maybe_reset_dropout_masks).parameters
    ) == [
        "self",
        "cell",
    ]
    config_source = inspect.getsource(rnn._maybe_config_dropout_masks)
    reset_source = inspect.getsource(rnn._maybe_reset_dropout_masks)
    for source in (config_source, reset_source):
        assert "isinstance(cell, DropoutRNNCell)" in source
    # ... and that name is the class the toolkit's cells derive from.
    assert rnn_module.DropoutRNNCell is DropoutRNNCell
    for method in ("get_dropout_mask", "get_recurrent_dropout_mask"):
        assert _parameters(getattr(DropoutRNNCell, method)) == ("step_input",)
    for method in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
        assert _parameters(getattr(DropoutRNNCell, method)) == ()


def test_backend_rnn_takes_the_arguments_the_toolkit_passes():
    parameters = inspect.signature(backend_rnn).parameters
    assert list(parameters)[:3] == ["step_function", "inputs", "initial_states"]
    for name in (
        "go_backwards",
        "mask",
        "unroll",
        "input_length",
        "time_major",
        "zero_output_for_mask",
        "return_all_outputs",
    ):
        assert name in parameters, name


def test_multi_worker_reduce_maps_a_nest_and_reduces_scalars_across_replicas():
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()  # one replica: no cluster needed
    value = {"loss": tf.constant(2.0), "x": tf.constant([[1.0], [3.0]])}
    reduced = _keras_private.multi_worker_reduce(strategy, "SUM", value, 0)
    assert float(reduced["loss"]) == 2.0  # axis=0 dropped for the scalar
    np.testing.assert_allclose(reduced["x"], [4.0])


def test_requirements_pin_the_keras_version_the_names_were_checked_against():
    requirements = pathlib.Path(__file__).parents[2] / "requirements.txt"
    pins = re.findall(r"^keras==(\S+)$", requirements.read_text(), re.M)
    assert pins == [_keras_private.TESTED_KERAS_VERSION]


def test_fit_starts_from_the_initial_epoch_set_on_the_model():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    epochs_run = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_run.append(epoch)

    class SetStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            _keras_private.set_initial_epoch(self.model, 2)

    x = np.ones((4, 2), "float32")
    model.fit(
        x, x[:, :1], epochs=4, verbose=0, callbacks=[SetStart(), Record()]
    )
    assert epochs_run == [2, 3]
    _keras_private.set_initial_epoch(model, None)
    epochs_run.clear()
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[Record()])
    assert epochs_run == [0, 1]


def test_loss_tracker_is_the_mean_behind_fits_loss():
    # AdversarialTraining's own train_step updates it; Keras's trainers
    # must still log `loss` from this very metric.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    tracker = _keras_private.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean)
    assert tracker.name == "loss" and tracker in model.metrics
    model.train_on_batch(np.ones((2, 2)), np.zeros((2, 1)))
    assert float(tracker.result()) > 0


def test_optimizer_variable_index_finds_what_update_step_receives():
    # LayerRatesMixin looks each variable up from inside `update_step`,
    # where the TensorFlow backend passes the backing tf.Variable.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    seen = []

    class Recording(keras.optimizers.SGD):
        def update_step(self, gradient, variable, learning_rate):
            seen.append(_keras_private.optimizer_variable_index(self, variable))
            return super().update_step(gradient, variable, learning_rate)

    model.compile(Recording(0.1), "mse")
    model.train_on_batch(np.ones((2, 2)), np.zeros((2, 3)))
    assert sorted(seen) == [0, 1]
