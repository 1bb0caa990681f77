"""What a run records about where it ran."""

import os

import keras

from toolkit.training import run_info


def test_hardware_names_the_cpu_and_the_stack():
    info = run_info.hardware()
    assert info["cpu_model"] == run_info.cpu_model() != ""
    assert info["cpus"] == os.cpu_count()
    assert info["keras"] == keras.__version__
    assert info["backend"] == keras.backend.backend()


def test_set_seed_makes_keras_draws_repeat():
    run_info.set_seed(11)
    first = keras.random.normal((4,)).numpy()
    run_info.set_seed(11)
    assert (keras.random.normal((4,)).numpy() == first).all()
