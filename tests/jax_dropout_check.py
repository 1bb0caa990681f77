"""Run by test_keras_api.py in a fresh process with KERAS_BACKEND=jax.

A toolkit cell inside `keras.layers.RNN` draws new dropout masks on every
call and every `fit` step under JAX, as `keras.layers.LSTMCell` does.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import toolkit  # noqa: E402

assert keras.backend.backend() == "jax"

x = np.random.default_rng(0).standard_normal((4, 6, 3)).astype("float32")
y = np.zeros((4, 1), "float32")
for cls in (toolkit.LSTMCell, toolkit.VanillaRNNCell):
    rnn = keras.layers.RNN(cls(8, dropout=0.5, recurrent_dropout=0.5, seed=2))
    outputs = [np.asarray(rnn(x, training=True)) for _ in range(3)]
    assert not np.allclose(outputs[0], outputs[1]), cls.__name__
    assert not np.allclose(outputs[1], outputs[2]), cls.__name__
    np.testing.assert_array_equal(rnn(x), rnn(x))

    model = keras.Sequential([keras.Input((6, 3)), rnn, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    losses = model.fit(x, y, batch_size=4, epochs=3, verbose=0).history["loss"]
    assert len(set(np.round(losses, 7))) == 3, (cls.__name__, losses)
print("fresh masks under jax: ok")
