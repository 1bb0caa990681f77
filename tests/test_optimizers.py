"""The toolkit's optimizers: named classes that always clip, the unclipped
tracked optimizer for experiments, schedules."""

import math

import keras
import numpy as np
import pytest

from toolkit import optimizers


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
