"""The toolkit's optimizers: named classes that always clip, the unclipped
tracked optimizer for experiments, schedules."""

import math

import keras
import numpy as np
import pytest

from toolkit import optimizers

KERAS_CLASSES = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def _after_two_steps(optimizer):
    """A variable after an over-norm gradient (norm 10) then a small one."""
    variable = keras.Variable(np.ones(4, "float32"))
    for gradient in ([6.0, 8.0, 0.0, 0.0], [0.01, -0.02, 0.03, 0.0]):
        optimizer.apply_gradients(
            [(keras.ops.convert_to_tensor(gradient), variable)]
        )
    return variable.numpy()


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
@pytest.mark.parametrize("track_gradients", [False, True])
def test_every_optimizer_clips_an_over_norm_gradient(name, track_gradients):
    """The update equals Keras's with `clipnorm=0.5`, and differs from the
    unclipped one: the norm-10 gradient was scaled to norm 0.5."""
    ours = optimizers.make_optimizer(
        name, 0.1, 0.5, track_gradients=track_gradients
    )
    clipped = KERAS_CLASSES[name](learning_rate=0.1, clipnorm=0.5)
    unclipped = KERAS_CLASSES[name](learning_rate=0.1)
    got = _after_two_steps(ours)
    np.testing.assert_allclose(got, _after_two_steps(clipped), rtol=1e-6)
    assert np.abs(got - _after_two_steps(unclipped)).max() > 1e-3
    if name == "sgd":  # the first step moved by exactly lr * 0.5
        sgd = optimizers.make_optimizer("sgd", 1.0, 0.5)
        variable = keras.Variable(np.zeros(2, "float32"))
        sgd.apply_gradients(
            [(keras.ops.convert_to_tensor([6.0, 8.0]), variable)]
        )
        np.testing.assert_allclose(variable.numpy(), [-0.3, -0.4], rtol=1e-6)


def test_optimizer_always_clips():
    optimizer = optimizers.make_optimizer("adam", 1e-3, 0.5)
    assert optimizer.clipnorm == 0.5
    with pytest.raises(ValueError, match="`clipnorm`.*0"):
        optimizers.make_optimizer("adam", 1e-3, 0)
    with pytest.raises(ValueError, match="`optimizer`.*'lion'"):
        optimizers.make_optimizer("lion", 1e-3, 1.0)
    assert not math.isnan(optimizer.learning_rate.numpy())


@pytest.mark.parametrize("name", sorted(optimizers.OPTIMIZERS))
def test_named_classes_are_keras_optimizers_that_reload_by_name(name):
    clipped, tracked = optimizers.OPTIMIZERS[name]
    assert clipped.__name__.startswith("Clipped")
    assert tracked.__name__ == "Tracked" + clipped.__name__[len("Clipped") :]
    assert issubclass(tracked, clipped)
    assert issubclass(tracked, optimizers.GradientStatsMixin)
    optimizer = optimizers.make_optimizer(name, 1e-3, 0.5, track_gradients=True)
    assert type(optimizer) is tracked
    config = keras.optimizers.serialize(optimizer)
    restored = keras.optimizers.deserialize(config)
    assert type(restored) is tracked and restored.clipnorm == 0.5


def test_tracked_optimizer_without_clipping_is_built_unclipped():
    optimizer = optimizers.tracked_optimizer("sgd", 0.1, None)
    assert type(optimizer) is optimizers.TrackedSGD
    assert optimizer.clipnorm is None and optimizer.global_clipnorm is None
    clipped = optimizers.tracked_optimizer("sgd", 0.1, 2.0)
    assert clipped.clipnorm == 2.0
    with pytest.raises(ValueError, match="`optimizer`"):
        optimizers.tracked_optimizer("lion", 0.1, None)


def test_cosine_schedule_warms_up_and_decays_to_its_floor():
    schedule = optimizers.make_schedule("cosine", 1e-2, 110, 10, 0.1)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 500)]
    np.testing.assert_allclose(
        values, [0.0, 5e-3, 1e-2, 5.5e-3, 1e-3, 1e-3], rtol=1e-5
    )
    assert optimizers.make_schedule("constant", 3e-3, 10) == 3e-3
    with pytest.raises(ValueError, match="`schedule`"):
        optimizers.make_schedule("step", 1e-3, 10)
    with pytest.raises(ValueError, match="warmup_steps=10"):
        optimizers.make_schedule("cosine", 1e-3, 10, 10)


def _two_layer_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="low")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="top")(hidden))


def _one_step(model, optimizer, rng):
    """Weights before and after one `train_on_batch`, and the gradients of
    the mean squared error at the start (computed by TensorFlow directly)."""
    import tensorflow as tf

    x = rng.random((4, 3)).astype("float32")
    y = rng.random((4, 1)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    gradients = [
        g.numpy() for g in tape.gradient(loss, model.trainable_variables)
    ]
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.compile(optimizer, "mse")
    model.train_on_batch(x, y)
    after = [v.numpy() for v in model.trainable_variables]
    return before, after, gradients


def test_discriminative_rates_scale_one_sgd_step_exactly(rng):
    model = _two_layer_model()
    multipliers = optimizers.discriminative_multipliers(["top", "low"], 2.6)
    assert multipliers == {"top": 1.0, "low": 1 / 2.6}
    optimizer = optimizers.make_optimizer(
        "sgd", 0.1, 1e6, rate_multipliers=multipliers
    )
    before, after, gradients = _one_step(model, optimizer, rng)
    paths = [v.path for v in model.trainable_variables]
    assert paths == ["low/kernel", "low/bias", "top/kernel", "top/bias"]
    for path, old, new, gradient in zip(
        paths, before, after, gradients, strict=True
    ):
        rate = 0.1 / 2.6 if path.startswith("low/") else 0.1
        np.testing.assert_allclose(new, old - rate * gradient, atol=1e-7)


def test_discriminative_rates_scale_adams_step_not_its_gradient(rng):
    # Adam's first step moves every weight by about the learning rate,
    # whatever the gradient's scale: the multiplier must scale the step.
    model = _two_layer_model()
    optimizer = optimizers.make_optimizer(
        "adam", 0.01, 1e6, rate_multipliers={"low": 0.25}
    )
    before, after, _ = _one_step(model, optimizer, rng)
    steps = [np.abs(a - b).max() for a, b in zip(after, before, strict=True)]
    np.testing.assert_allclose(steps, [0.0025, 0.0025, 0.01, 0.01], rtol=1e-3)


def test_longest_prefix_wins_and_bad_multipliers_are_refused():
    optimizer = optimizers.make_optimizer(
        "adam", 1e-3, 1.0, rate_multipliers={"a": 0.5, "a/b": 0.2}
    )
    assert optimizer.multiplier_of("a/b/kernel") == 0.2
    assert optimizer.multiplier_of("a/c/kernel") == 0.5
    assert optimizer.multiplier_of("ab/kernel") == 1.0
    assert optimizer.get_config()["rate_multipliers"] == {"a": 0.5, "a/b": 0.2}
    with pytest.raises(ValueError, match="`rate_multipliers` for 'a'"):
        optimizers.make_optimizer("sgd", 1e-3, 1.0, rate_multipliers={"a": 0})
    with pytest.raises(ValueError, match="`factor`.*at least 1"):
        optimizers.discriminative_multipliers(["a", "b"], 0.5)


def test_frozen_layers_do_not_move_and_unfreeze_again(rng):
    model = _two_layer_model()
    optimizer = optimizers.make_optimizer("sgd", 0.1, 1e6)
    optimizer.build(model.trainable_variables)
    assert optimizer.freeze(["low"]) == ["low/kernel", "low/bias"]
    before, after, gradients = _one_step(model, optimizer, rng)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[2], before[2] - 0.1 * gradients[2])
    assert optimizer.freeze([]) == []
    model.train_on_batch(rng.random((4, 3)), rng.random((4, 1)))
    assert not np.allclose(model.trainable_variables[0].numpy(), after[0])
