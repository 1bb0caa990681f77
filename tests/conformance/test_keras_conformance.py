"""Conformance of the toolkit layers with Keras, in Keras's own test style.

Three groups:

* Frozen golden numbers (as in keras/src/layers/rnn/lstm_test.py and
  simple_rnn_test.py): `np.arange`-based inputs, every weight from
  `keras.initializers.Constant`, outputs compared with literal numbers
  (generated from the toolkit layers). The same test classes run again on
  `keras.layers.LSTM`, `SimpleRNN`, `LSTMCell` and `SimpleRNNCell` (the
  `TestBuiltin*` subclasses), so each literal is checked against the
  built-ins on every run: a Keras release that changes their numbers fails
  those tests, and the toolkit's keep the literals as they are.
* Weight and activity regularizers: the number and values of `losses`.
* Mixed precision: the toolkit layers against the built-ins under
  "mixed_float16" and "mixed_bfloat16".

Constructor arguments are passed by keyword throughout.
"""

import keras
import numpy as np
import pytest
from keras import initializers

import toolkit

ATOL = 1e-5

# (batch 2, timesteps 3, features 2), values 0.0 ... 1.1.
SEQUENCE = (np.arange(12).reshape((2, 3, 2)) / 10).astype("float32")
# A masked middle step (sample 0) and a masked last step (sample 1).
MASK = np.array([[True, False, True], [True, True, False]])
H0 = (np.arange(4).reshape((2, 2)) / 10).astype("float32")
C0 = (np.arange(4, 8).reshape((2, 2)) / 10).astype("float32")


def constant_weights(bias=0.05):
    return {
        "kernel_initializer": initializers.Constant(0.1),
        "recurrent_initializer": initializers.Constant(0.2),
        "bias_initializer": initializers.Constant(bias),
    }


def assert_golden(actual, expected):
    np.testing.assert_allclose(
        np.asarray(actual), np.array(expected), atol=ATOL
    )


def sequence_with_zeroed_masked_steps():
    """SEQUENCE with the steps that MASK masks set to zero, for Masking."""
    sequence = SEQUENCE.copy()
    sequence[~MASK] = 0.0
    return sequence


# The same literals serve several tests: return_sequences ends in the
# default's last output, and the mask argument and a Masking layer over
# zeroed steps give the same sequence.
LSTM_LAST = [[0.07647808, 0.07647808], [0.18431218, 0.18431218]]
LSTM_SEQUENCE = [
    [[0.01588911, 0.01588911], [0.04135145, 0.04135145], LSTM_LAST[0]],
    [[0.05270564, 0.05270564], [0.11421459, 0.11421459], LSTM_LAST[1]],
]
LSTM_MASKED = [
    [[0.01588911, 0.01588911], [0.01588911, 0.01588911], [0.05405921] * 2],
    [[0.05270564, 0.05270564], [0.11421459, 0.11421459], [0.11421459] * 2],
]
RNN_LAST = [[0.18710555, 0.18710555], [0.35688135, 0.35688135]]
RNN_SEQUENCE = [
    [[0.05992811, 0.05992811], [0.12334004, 0.12334004], RNN_LAST[0]],
    [[0.17808086, 0.17808086], [0.28326866, 0.28326866], RNN_LAST[1]],
]
RNN_MASKED = [
    [[0.05992811, 0.05992811], [0.05992811, 0.05992811], [0.16251734] * 2],
    [[0.17808086, 0.17808086], [0.28326866, 0.28326866], [0.28326866] * 2],
]


class TestLSTMGoldenNumbers:
    LSTM = toolkit.LSTM

    def test_correctness(self):
        layer = self.LSTM(units=2, **constant_weights())
        assert_golden(layer(SEQUENCE), LSTM_LAST)

    def test_return_sequences(self):
        layer = self.LSTM(units=2, return_sequences=True, **constant_weights())
        assert_golden(layer(SEQUENCE), LSTM_SEQUENCE)

    def test_go_backwards(self):
        layer = self.LSTM(
            units=2,
            go_backwards=True,
            return_sequences=True,
            **constant_weights(),
        )
        # Outputs in the order they were computed (last timestep first).
        assert_golden(
            layer(SEQUENCE),
            [
                [[0.03972995] * 2, [0.06127734] * 2, [0.06725992] * 2],
                [[0.08052044] * 2, [0.1374993] * 2, [0.17279086] * 2],
            ],
        )

    def test_masking(self):
        layer = self.LSTM(units=2, return_sequences=True, **constant_weights())
        assert_golden(layer(SEQUENCE, mask=MASK), LSTM_MASKED)
        # The same mask from a Masking layer over zeroed steps.
        model = keras.Sequential(
            [
                keras.Input(shape=(3, 2)),
                keras.layers.Masking(mask_value=0.0),
                self.LSTM(units=2, return_sequences=True, **constant_weights()),
            ]
        )
        assert_golden(model(sequence_with_zeroed_masked_steps()), LSTM_MASKED)

    def test_statefulness(self):
        layer = self.LSTM(units=2, stateful=True, **constant_weights())
        assert_golden(layer(SEQUENCE), LSTM_LAST)
        second = [[0.12579696, 0.12579696], [0.3085559, 0.3085559]]
        assert_golden(layer(SEQUENCE), second)
        layer.reset_state()
        assert_golden(layer(SEQUENCE), LSTM_LAST)
        assert_golden(layer(SEQUENCE), second)

    def test_no_bias(self):
        layer = self.LSTM(units=2, use_bias=False, **constant_weights())
        assert len(layer.weights) == 0  # not built yet
        output = layer(SEQUENCE)
        assert len(layer.weights) == 2
        assert_golden(output, [[0.03407638] * 2, [0.11503579] * 2])

    def test_unit_forget_bias_false(self):
        # With unit_forget_bias=True (the default) the forget block of the
        # bias is 1 instead of the constant 0.05: LSTM_LAST.
        layer = self.LSTM(units=2, unit_forget_bias=False, **constant_weights())
        assert_golden(layer(SEQUENCE), [[0.06525314] * 2, [0.15446751] * 2])

    def test_return_state(self):
        layer = self.LSTM(units=2, return_state=True, **constant_weights())
        output, h, c = layer(SEQUENCE)
        assert_golden(output, LSTM_LAST)
        assert_golden(h, LSTM_LAST)
        assert_golden(c, [[0.14283779] * 2, [0.33173609] * 2])

    def test_pass_initial_state(self):
        layer = self.LSTM(units=2, **constant_weights())
        output = layer(SEQUENCE, initial_state=[H0, C0])
        assert_golden(
            output, [[0.20292602, 0.22296475], [0.38956666, 0.40580121]]
        )


class TestVanillaRNNGoldenNumbers:
    VanillaRNN = toolkit.VanillaRNN

    def test_correctness(self):
        layer = self.VanillaRNN(units=2, **constant_weights())
        assert_golden(layer(SEQUENCE), RNN_LAST)

    def test_return_sequences(self):
        layer = self.VanillaRNN(
            units=2, return_sequences=True, **constant_weights()
        )
        assert_golden(layer(SEQUENCE), RNN_SEQUENCE)

    def test_go_backwards(self):
        layer = self.VanillaRNN(
            units=2,
            go_backwards=True,
            return_sequences=True,
            **constant_weights(),
        )
        assert_golden(
            layer(SEQUENCE),
            [
                [[0.13909245] * 2, [0.15439239] * 2, [0.12115882] * 2],
                [[0.25429556] * 2, [0.31105968] * 2, [0.29535586] * 2],
            ],
        )

    def test_masking(self):
        layer = self.VanillaRNN(
            units=2, return_sequences=True, **constant_weights()
        )
        assert_golden(layer(SEQUENCE, mask=MASK), RNN_MASKED)
        # The same mask from a Masking layer over zeroed steps.
        model = keras.Sequential(
            [
                keras.Input(shape=(3, 2)),
                keras.layers.Masking(mask_value=0.0),
                self.VanillaRNN(
                    units=2, return_sequences=True, **constant_weights()
                ),
            ]
        )
        assert_golden(model(sequence_with_zeroed_masked_steps()), RNN_MASKED)

    def test_statefulness(self):
        layer = self.VanillaRNN(units=2, stateful=True, **constant_weights())
        assert_golden(layer(SEQUENCE), RNN_LAST)
        second = [[0.19830367, 0.19830367], [0.37368679, 0.37368679]]
        assert_golden(layer(SEQUENCE), second)
        layer.reset_state()
        assert_golden(layer(SEQUENCE), RNN_LAST)
        assert_golden(layer(SEQUENCE), second)

    def test_no_bias(self):
        layer = self.VanillaRNN(units=2, use_bias=False, **constant_weights())
        output = layer(SEQUENCE)
        assert len(layer.weights) == 2
        assert_golden(output, [[0.11111822] * 2, [0.28880182] * 2])

    def test_relu_activation(self):
        # A negative bias so that relu clips: sample 0 stays at 0 throughout,
        # sample 1 only at the first step (0.13 - 0.15 < 0).
        layer = self.VanillaRNN(
            units=2,
            activation="relu",
            return_sequences=True,
            **constant_weights(bias=-0.15),
        )
        assert_golden(
            layer(SEQUENCE),
            [
                [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
                [[0.0, 0.0], [0.02, 0.02], [0.068, 0.068]],
            ],
        )

    def test_return_state(self):
        layer = self.VanillaRNN(
            units=2, return_state=True, **constant_weights()
        )
        output, h = layer(SEQUENCE)
        assert_golden(output, RNN_LAST)
        assert_golden(h, RNN_LAST)

    def test_pass_initial_state(self):
        layer = self.VanillaRNN(units=2, **constant_weights())
        output = layer(SEQUENCE, initial_state=[H0])
        assert_golden(output, [[0.19012678] * 2, [0.36886358] * 2])


class TestCellsGoldenNumbers:
    LSTMCell = toolkit.LSTMCell
    VanillaRNNCell = toolkit.VanillaRNNCell

    def test_lstm_cell_one_step(self):
        cell = self.LSTMCell(units=2, **constant_weights())
        output, (h, c) = cell(SEQUENCE[:, 0, :], [H0, C0])
        expected_h = [[0.16855434, 0.20198776], [0.31378314, 0.34316704]]
        assert_golden(output, expected_h)
        assert_golden(h, expected_h)
        assert_golden(c, [[0.33627701, 0.40996855], [0.61972326, 0.69710505]])

    def test_vanilla_rnn_cell_one_step(self):
        cell = self.VanillaRNNCell(units=2, **constant_weights())
        output, (h,) = cell(SEQUENCE[:, 0, :], [H0])
        expected_h = [[0.07982977] * 2, [0.27290508] * 2]
        assert_golden(output, expected_h)
        assert_golden(h, expected_h)


# The cross-check: the same tests, hence the same literals, on the Keras
# built-ins. The literals are the built-ins' numbers, not only the toolkit's.
class TestBuiltinLSTMGoldenNumbers(TestLSTMGoldenNumbers):
    LSTM = keras.layers.LSTM


class TestBuiltinSimpleRNNGoldenNumbers(TestVanillaRNNGoldenNumbers):
    VanillaRNN = keras.layers.SimpleRNN


class TestBuiltinCellsGoldenNumbers(TestCellsGoldenNumbers):
    LSTMCell = keras.layers.LSTMCell
    VanillaRNNCell = keras.layers.SimpleRNNCell


# ---------------------------------------------------------------- regularizers

LAYERS = {"lstm": toolkit.LSTM, "vanilla": toolkit.VanillaRNN}
BUILTINS = {"lstm": keras.layers.LSTM, "vanilla": keras.layers.SimpleRNN}


def regularized_layer(kind, **kwargs):
    # A different regularizer per weight, so a swapped pair shows up; a
    # random bias so that L1 of the vanilla bias is not 0.
    return LAYERS[kind](
        units=3,
        kernel_regularizer=keras.regularizers.L2(0.1),
        recurrent_regularizer=keras.regularizers.L2(0.2),
        bias_regularizer=keras.regularizers.L1(0.3),
        bias_initializer="random_normal",
        **kwargs,
    )


def weight_losses_by_hand(layer):
    """In Keras's order: the weights' creation order."""
    cell = layer.cell
    return [
        0.1 * np.sum(np.square(cell.kernel.numpy())),
        0.2 * np.sum(np.square(cell.recurrent_kernel.numpy())),
        0.3 * np.sum(np.abs(cell.bias.numpy())),
    ]


def activity_loss_by_hand(output):
    # Keras divides an activity regularizer's value by the batch size.
    output = np.asarray(output)
    return 0.5 * np.sum(np.square(output)) / output.shape[0]


def loss_values(losses):
    return [float(loss) for loss in losses]


@pytest.mark.parametrize("kind", sorted(LAYERS))
class TestRegularizers:
    def test_weight_regularizers(self, kind):
        keras.utils.set_random_seed(7)
        layer = regularized_layer(kind)
        layer(SEQUENCE)
        assert len(layer.losses) == 3
        np.testing.assert_allclose(
            loss_values(layer.losses), weight_losses_by_hand(layer), rtol=1e-6
        )
        # A second call adds nothing: weight penalties are not per call.
        layer(SEQUENCE)
        assert len(layer.losses) == 3

        # The same through a functional model.
        layer = regularized_layer(kind)
        inputs = keras.Input(shape=(3, 2))
        model = keras.Model(inputs, layer(inputs))
        model(SEQUENCE)
        assert len(model.losses) == 3
        np.testing.assert_allclose(
            loss_values(model.losses), weight_losses_by_hand(layer), rtol=1e-6
        )

    def test_activity_regularizer(self, kind):
        # Checked on the toolkit only: keras.layers.SimpleRNN 3.15.1 accepts
        # activity_regularizer but never passes it on, so it adds no loss
        # (keras.layers.LSTM does add it).
        keras.utils.set_random_seed(7)
        layer = regularized_layer(
            kind, activity_regularizer=keras.regularizers.L2(0.5)
        )
        output = layer(SEQUENCE)
        assert len(layer.losses) == 4
        # Keras lists the layer's own (activity) loss before weight losses.
        np.testing.assert_allclose(
            loss_values(layer.losses),
            [activity_loss_by_hand(output)] + weight_losses_by_hand(layer),
            rtol=1e-6,
        )

        # The same through a functional model.
        layer = regularized_layer(
            kind, activity_regularizer=keras.regularizers.L2(0.5)
        )
        inputs = keras.Input(shape=(3, 2))
        model = keras.Model(inputs, layer(inputs))
        output = model(SEQUENCE)
        assert len(model.losses) == 4
        np.testing.assert_allclose(
            loss_values(model.losses),
            [activity_loss_by_hand(output)] + weight_losses_by_hand(layer),
            rtol=1e-6,
        )


# ------------------------------------------------------------- mixed precision

# Tolerances against the built-in under the same policy. Both layers keep
# float32 weights and compute in the policy's dtype, but round at different
# places (the toolkit adds x W_x + b for all steps before the loop), so they
# can differ by a few units in the last place, accumulated over 6 steps.
# float16 has an 11-bit significand (spacing 2**-11 ~ 4.9e-4 just below 1),
# bfloat16 an 8-bit one (2**-8 ~ 3.9e-3). Measured largest differences over
# these tests: 5e-4 (float16) and 4e-3 (bfloat16); the tolerances are about
# 4x that plus a relative term, well below any real numeric difference (a
# wrong gate or a dropped bias moves outputs by > 0.05).
MIXED_TOLERANCES = {
    "mixed_float16": {"rtol": 1e-2, "atol": 2e-3},
    "mixed_bfloat16": {"rtol": 3e-2, "atol": 1.6e-2},
}


@pytest.fixture(params=sorted(MIXED_TOLERANCES))
def mixed_policy(request):
    keras.mixed_precision.set_dtype_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def mixed_inputs():
    return np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")


def toolkit_and_builtin(kind, **kwargs):
    """Built under the current policy; the built-in gets the toolkit's
    weights."""
    keras.utils.set_random_seed(3)
    x = mixed_inputs()
    ours = LAYERS[kind](units=5, **kwargs)
    theirs = BUILTINS[kind](units=5, **kwargs)
    ours(x)
    theirs(x)
    theirs.set_weights(ours.get_weights())
    if kwargs.get("stateful"):
        ours.reset_state()
        theirs.reset_state()
    return ours, theirs, x


def assert_mixed_dtypes(layer, output, policy):
    compute_dtype = keras.DTypePolicy(policy).compute_dtype
    assert keras.backend.standardize_dtype(output.dtype) == compute_dtype
    assert layer.compute_dtype == compute_dtype
    assert [w.name for w in layer.weights] == [
        "kernel",
        "recurrent_kernel",
        "bias",
    ]
    assert all(w.dtype == "float32" for w in layer.weights)


def as_float32(x):
    return np.asarray(keras.ops.cast(x, "float32"))


@pytest.mark.parametrize("kind", sorted(LAYERS))
class TestMixedPrecision:
    def test_return_sequences_matches_builtin(self, kind, mixed_policy):
        ours, theirs, x = toolkit_and_builtin(kind, return_sequences=True)
        output = ours(x)
        assert output.shape == (4, 6, 5)
        assert_mixed_dtypes(ours, output, mixed_policy)
        np.testing.assert_allclose(
            as_float32(output),
            as_float32(theirs(x)),
            **MIXED_TOLERANCES[mixed_policy],
        )

    def test_stateful_second_call_matches_builtin(self, kind, mixed_policy):
        # keras-team/keras#20605 (stateful LSTM/GRU failing to build under
        # mixed precision) does not reproduce with keras 3.15.1: the
        # built-ins run stateful under both policies, so the comparison is
        # with the built-in under the same policy, not a float32 fallback.
        ours, theirs, x = toolkit_and_builtin(
            kind, return_sequences=True, stateful=True
        )
        ours(x)
        theirs(x)
        output = ours(x)
        assert_mixed_dtypes(ours, output, mixed_policy)
        np.testing.assert_allclose(
            as_float32(output),
            as_float32(theirs(x)),
            **MIXED_TOLERANCES[mixed_policy],
        )


def _swap_input_and_forget_gates(weights):
    """Keras's gate blocks are [i, f, c, o]; a wrong layout swaps two."""
    swapped = []
    for weight in weights:
        i, f, c, o = np.split(np.asarray(weight), 4, axis=-1)
        swapped.append(np.concatenate([f, i, c, o], axis=-1))
    return swapped


# Plausible bugs, each applied to the toolkit layer's weights after the
# built-in got the right ones: the mixed-precision tolerances must not
# hide any of them.
BROKEN = {
    "lstm": {
        "input and forget gates swapped": _swap_input_and_forget_gates,
        "bias dropped": lambda w: [w[0], w[1], np.zeros_like(w[2])],
        "recurrent kernel transposed per gate": lambda w: [
            w[0],
            np.concatenate(
                [block.T for block in np.split(w[1], 4, axis=-1)], axis=-1
            ),
            w[2],
        ],
    },
    "vanilla": {
        "bias dropped": lambda w: [w[0], w[1], np.zeros_like(w[2])],
        "recurrent kernel transposed": lambda w: [w[0], w[1].T, w[2]],
    },
}


@pytest.mark.parametrize(
    ("kind", "bug"),
    [(kind, bug) for kind in sorted(BROKEN) for bug in sorted(BROKEN[kind])],
)
def test_mixed_precision_tolerance_catches_a_broken_layer(
    kind, bug, mixed_policy
):
    """The mutation check: with a deliberately broken gate or weight, the
    comparison above (same inputs, same tolerance) fails."""
    ours, theirs, x = toolkit_and_builtin(
        kind, return_sequences=True, bias_initializer="random_normal"
    )
    ours.set_weights(BROKEN[kind][bug](ours.get_weights()))
    with pytest.raises(AssertionError, match="Not equal to tolerance"):
        np.testing.assert_allclose(
            as_float32(ours(x)),
            as_float32(theirs(x)),
            **MIXED_TOLERANCES[mixed_policy],
        )
