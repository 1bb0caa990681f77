"""Every private Keras name the toolkit relies on, in one place.

Keras 3 has no public equivalent for these; each entry says why the toolkit
needs it and which upstream issue tracks it (searched in the public
keras-team/keras issues on 2026-11-28).
`tests/conformance/test_keras_private.py` checks that each still exists
with the signature the toolkit calls, and `check_optimizer_hooks` runs when
`toolkit.optimizers` is imported, so a Keras upgrade that renames or
reshapes one fails loudly instead of silently changing behaviour. The pin
in requirements.txt (`TESTED_KERAS_VERSION`) is the version they were
checked against.
"""

from __future__ import annotations

import dataclasses
import inspect

import keras

# The backend loop behind `keras.layers.RNN` (masking, go_backwards, unroll,
# a JAX `scan` or a TensorFlow `while_loop`). `keras.ops.scan` has no mask,
# go_backwards or unroll, and under TensorFlow its per-step outputs must
# have the carry's shape and dtype (keras-team/keras#19681, the PR that
# added it); reusing Keras's loop also keeps the toolkit layers' numerics
# identical to the built-ins'.
# Upstream: no upstream issue found (searched 2026-11-28).
from keras.src.backend import rnn as backend_rnn

# `keras.layers.RNN.call` draws a cell's dropout masks before its loop and
# clears them after, but only for cells that are instances of this class
# (`RNN._maybe_config_dropout_masks` / `_maybe_reset_dropout_masks`). A
# toolkit cell inside a plain `keras.layers.RNN` must be one to get a new
# mask on every call rather than the first call's mask for ever.
# Upstream: no keras-team/keras issue found (searched 2026-11-28); the
# tf.keras report that asked for this isinstance check is
# tensorflow/tensorflow#32543 "RNN layer does not reset dropout masks of
# RNNCell" (see also keras-team/keras PR #14056 "Reset dropout masks in RNN
# layer", closed).
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

# The Keras version whose private names this file was checked against
# (requirements.txt pins it).
TESTED_KERAS_VERSION = "3.15.1"


# --- Private optimizer hooks overridden by toolkit.optimizers' mixins ----


@dataclasses.dataclass(frozen=True)
class OptimizerHook:
    """A private Keras optimizer method that a toolkit mixin overrides.

    `parameters` are the names after `self` that the override takes and
    passes on to `super()`; `backends` are those under which the toolkit
    uses the override (`None`: all)."""

    name: str
    parameters: tuple[str, ...]
    defined_in: str
    overridden_by: str
    backends: tuple[str, ...] | None
    reason: str
    upstream: str

    @property
    def signature(self) -> str:
        return f"(self, {', '.join(self.parameters)})"


_CLIP_UPSTREAM = (
    "no keras-team/keras issue found (searched 2026-11-28); the tf.keras "
    'precedent is tensorflow/tensorflow#33929 "Optimizer clipvalue and '
    'clipnorm not working in Tensorflow 2.0" (clipping before the '
    "cross-replica sum is usually wrong)"
)

OPTIMIZER_HOOKS: tuple[OptimizerHook, ...] = (
    OptimizerHook(
        name="_backend_apply_gradients",
        parameters=("grads", "trainable_variables"),
        defined_in="keras.src.optimizers.base_optimizer.BaseOptimizer",
        overridden_by="ClipAfterAllReduceMixin",
        backends=("tensorflow",),
        reason=(
            "Keras clips each replica's gradients here (`_clip_gradients`) "
            "and sums them across replicas only later, in the TensorFlow "
            "`_backend_update_step`; the mixin all-reduces first so that "
            "clipping sees the global gradient, as on one device."
        ),
        upstream=_CLIP_UPSTREAM,
    ),
    OptimizerHook(
        name="_all_reduce_sum_gradients",
        parameters=("grads_and_vars",),
        defined_in="keras.src.backend.tensorflow.optimizer.TFOptimizer",
        overridden_by="ClipAfterAllReduceMixin",
        backends=("tensorflow",),
        reason=(
            "Called by the TensorFlow `_backend_update_step` to sum the "
            "replicas' gradients; the mixin skips it for gradients it has "
            "already summed, or they would be summed twice."
        ),
        upstream=_CLIP_UPSTREAM,
    ),
    OptimizerHook(
        name="_clip_gradients",
        parameters=("grads",),
        defined_in="keras.src.optimizers.base_optimizer.BaseOptimizer",
        overridden_by="GradientStatsMixin",
        backends=None,
        reason=(
            "The one place every backend passes all of a step's gradients "
            "before clipping; GradientStatsMixin records their global norm "
            "and whether clipping fires. Keras has no public gradient hook."
        ),
        upstream="no upstream issue found (searched 2026-11-28)",
    ),
)


def _parameters_after_self(function) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)[1:]


def _found_signature(function) -> str:
    try:
        return str(inspect.signature(function))
    except (TypeError, ValueError):
        return f"an object of type {type(function).__name__}"


def check_optimizer_hooks(
    optimizer_class: type | None = None,
    *,
    backend: str | None = None,
    mixins: tuple[type, ...] = (),
) -> None:
    """Raise `RuntimeError` unless every hook in `OPTIMIZER_HOOKS` that the
    toolkit uses under `backend` exists on `optimizer_class` with the
    parameters the toolkit's overrides take.

    An override of a renamed or reshaped private method is never called,
    so without this check a mixin would silently stop working.

    Args:
        optimizer_class: a Keras optimizer class without the toolkit's
            mixins (default `keras.optimizers.Optimizer`).
        backend: default `keras.backend.backend()`.
        mixins: toolkit mixins to check against the table too: each must
            override, with the same parameters, the hooks listed for it.
    """
    if optimizer_class is None:
        optimizer_class = keras.optimizers.Optimizer
    if backend is None:
        backend = keras.backend.backend()
    for hook in OPTIMIZER_HOOKS:
        if hook.backends is not None and backend not in hook.backends:
            continue
        method = getattr(optimizer_class, hook.name, None)
        if not callable(method):
            found = "no such method"
        elif _parameters_after_self(method) != hook.parameters:
            found = _found_signature(method)
        else:
            continue
        raise RuntimeError(
            f"Keras {keras.__version__} changed a private optimizer hook "
            f"that toolkit.optimizers.{hook.overridden_by} overrides: "
            f"{optimizer_class.__name__}.{hook.name} expected signature "
            f"{hook.signature} (as in {hook.defined_in}), found {found}. "
            f"The override would silently never run. The toolkit is tested "
            f"with keras=={TESTED_KERAS_VERSION} (requirements.txt): install "
            "that, or update the mixin and the table in "
            "toolkit/_keras_private.py together."
        )
    for mixin in mixins:
        for hook in OPTIMIZER_HOOKS:
            if hook.overridden_by != mixin.__name__:
                continue
            method = vars(mixin).get(hook.name)
            if method is None or _parameters_after_self(method) != (
                hook.parameters
            ):
                raise RuntimeError(
                    f"toolkit.optimizers.{mixin.__name__} must override "
                    f"{hook.name}{hook.signature}, as listed in "
                    "toolkit/_keras_private.py.OPTIMIZER_HOOKS; it "
                    + (
                        "does not define it."
                        if method is None
                        else f"defines {hook.name}{_found_signature(method)}."
                    )
                )


# --- SeedGenerator states --------------------------------------------------

# Keras weight files (`save_weights`, `.weights.h5`) leave out the states
# of the `SeedGenerator`s behind dropout (checked with 3.15.1: a Dropout
# layer's `vars` group is empty), so a resumed run would draw different
# dropout masks from an uninterrupted one. The variables have no public
# accessor; they are found by the name `SeedGenerator` gives them
# (keras/src/random/seed_generator.py).
# Upstream: keras-team/keras#19796 "Dropout variables are inconsistent
# across save/load" (the `seed_generator_state` changes across a save and
# load; closed as stale).
SEED_STATE_NAME = "seed_generator_state"


def seed_generator_states(model) -> list:
    """The `SeedGenerator` state variables of `model`, in a fixed order."""
    return [
        v for v in model.non_trainable_variables if SEED_STATE_NAME in v.path
    ]


# --- MultiWorkerMirroredStrategy.reduce under Keras 3's fit ----------------

# Keras 3's TensorFlow trainer calls `strategy.reduce` in two ways the stock
# `MultiWorkerMirroredStrategy` refuses as soon as there are two workers:
#
# * `_symbolic_build` reduces the first `(x, y)` batch, a nest of
#   per-replica values, to build the model; the stock class fails with
#   "Attempt to convert a value (PerReplica...)" where `MirroredStrategy`
#   maps over the nest;
# * `reduce_per_replica` reduces each step's logged metrics with `axis=0`,
#   which fails for per-replica scalars with "Invalid reduction dimension 0
#   for input with 0 dimensions"; a scalar is reduced across replicas only.
#
# Upstream: keras-team/keras#20585 "Does Keras 3 work with
# `tf.distribute.MultiWorkerMirroredStrategy`?" (open; the maintainers'
# answer is that it does not). The scalar case is also
# tensorflow/tensorflow#72388 "`tf.distribute` and `keras` 3
# incompatibility: ValueError: Invalid reduction dimension 0 for input
# with 0 dimensions."


def multi_worker_reduce(strategy, reduce_op, value, axis):
    """`tf.distribute.MultiWorkerMirroredStrategy.reduce` on `strategy`,
    accepting what Keras 3's `fit` passes it: a nest of values, and
    `axis=0` for per-replica scalars (reduced across replicas only)."""
    import tensorflow as tf

    def reduce_one(item):
        local = strategy.experimental_local_results(item)[0]
        shape = getattr(local, "shape", None)
        scalar = shape is not None and len(shape) == 0
        return tf.distribute.MultiWorkerMirroredStrategy.reduce(
            strategy, reduce_op, item, None if scalar else axis
        )

    return tf.nest.map_structure(reduce_one, value)


__all__ = [
    "OPTIMIZER_HOOKS",
    "SEED_STATE_NAME",
    "TESTED_KERAS_VERSION",
    "DropoutRNNCell",
    "OptimizerHook",
    "backend_lstm",
    "backend_rnn",
    "check_optimizer_hooks",
    "multi_worker_reduce",
    "seed_generator_states",
]


# --- The backend's cuDNN LSTM kernel ----------------------------------------

# `keras.layers.LSTM` runs on the backend's fused cuDNN kernel when the
# configuration allows it; the backend raises NotImplementedError when it
# cannot (no GPU, an unsupported mask). `toolkit.LSTM` has the same weight
# layout and calls the same function, so on a GPU it is never behind the
# built-in. Keras exports no public name for it.
# Upstream: no upstream issue found (searched 2026-11-28).
from keras.src.backend import lstm as backend_lstm  # noqa: E402


# --- Model._initial_epoch ----------------------------------------------------
# `fit` starts from `model._initial_epoch` when it is set, reading it after
# the callbacks' `on_train_begin` (both backends' trainers). Keras's own
# `keras.callbacks.BackupAndRestore` sets it so that a restored run skips
# the epochs it already did; `toolkit.training.resumable.ExactResume` does
# the same.
# There is no public way for a callback to move `fit`'s first epoch, and
# Keras never clears the attribute, so `ExactResume` clears it once `fit`
# has read it.
# Upstream: not searched.
def set_initial_epoch(model, epoch: int | None) -> None:
    if not hasattr(model, "_initial_epoch"):
        raise RuntimeError(
            f"keras {keras.__version__}: Model has no `_initial_epoch`; "
            "toolkit.training.resumable.ExactResume cannot skip finished "
            "epochs. See "
            "toolkit/_keras_private.py."
        )
    model._initial_epoch = epoch


# --- Trainer._loss_tracker ----------------------------------------------------
# The `Mean` metric behind the `loss` that `fit` logs. A model that writes its
# own `train_step` (toolkit.text.adversarial.AdversarialTraining) must update it
# to report its loss under that name; Keras's own trainers update it
# directly, and keras.io's "customizing fit" guides make a second tracker
# instead, which would log `loss` twice.
# Upstream: not searched.
def loss_tracker(model):
    tracker = getattr(model, "_loss_tracker", None)
    if tracker is None:
        raise RuntimeError(
            f"keras {keras.__version__}: a compiled Model has no "
            "`_loss_tracker`; a custom train_step cannot log its loss. See "
            "toolkit/_keras_private.py."
        )
    return tracker


# --- Optimizer._get_variable_index ------------------------------------------
# The index of a variable in the optimizer's list, for the variable (or, under
# a tf.distribute strategy, the per-replica component) that `update_step`
# receives. Keras's own optimizers find their slots with it (Adam's
# `self._momentums[self._get_variable_index(variable)]`);
# `toolkit.optimizers.LayerRatesMixin` finds each variable's learning-rate
# multiplier the same way. No public equivalent.
# Upstream: not searched.
def optimizer_variable_index(optimizer, variable) -> int:
    find = getattr(optimizer, "_get_variable_index", None)
    if find is None:
        raise RuntimeError(
            f"keras {keras.__version__}: optimizers have no "
            "`_get_variable_index`; per-layer learning rates cannot find "
            "their variables. See toolkit/_keras_private.py."
        )
    return find(variable)
