"""Scale-out with TensorFlow's own engine, `tf.distribute`.

`make_strategy` turns a recipe's `--strategy` option into a strategy:

* `none`: TensorFlow's default strategy (one device, no replication).
* `mirrored`: `tf.distribute.MirroredStrategy` over all local GPUs, or over
  `cpu_devices` logical CPU devices (for testing on a CPU-only machine).
* `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`, configured
  from the standard `TF_CONFIG` environment variable on every worker.

Under every strategy the configured batch size is the *global* batch: each
step splits it across `strategy.num_replicas_in_sync` replicas and sums
their gradients, so a step sees the same examples and takes the same
update as on one device. Datasets are sharded across workers by
`tf.data`'s auto-sharding with the `DATA` policy (`shard_options`): every
worker builds the whole pipeline and keeps its share of the batches, which
works for in-memory data (the `FILE` policy needs one file per shard).

Only the chief (`is_chief`) writes checkpoints, logs and exports.

Keras's `clipnorm` clips each replica's gradients before they are summed
across replicas; `optimizers.make_optimizer` clips after the sum instead,
which is what a single device computes.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from toolkit import _keras_private

STRATEGIES = ("none", "mirrored", "multiworker")


class DistributeConfigError(ValueError):
    """A strategy option or `TF_CONFIG` that cannot work, with the fix."""


def configure_cpu_devices(count: int) -> list[str]:
    """Split the host CPU into `count` logical devices; return their names.

    Must run before TensorFlow initialises its devices (before any tensor
    is created), as a recipe does when it starts."""
    if count < 1:
        raise DistributeConfigError(
            f"cpu_devices must be a positive integer, got {count!r}."
        )
    (cpu,) = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != count:
            raise DistributeConfigError(
                f"cpu_devices={count} must be set before TensorFlow starts; "
                f"this process already runs {len(existing)} CPU device(s). "
                "Choose the strategy at the start of the process."
            ) from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def read_tf_config() -> dict:
    """The parsed `TF_CONFIG`, checked for what `multiworker` needs."""
    text = os.environ.get("TF_CONFIG")
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise DistributeConfigError(
            "--strategy=multiworker needs the TF_CONFIG environment "
            f"variable on every worker, e.g. TF_CONFIG='{example}' (index 1 "
            "on the second host)."
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise DistributeConfigError(
            f"TF_CONFIG is not valid ({error!r}); expected JSON like "
            f"'{example}'."
        ) from None
    if task.get("type") not in ("worker", "chief"):
        raise DistributeConfigError(
            "TF_CONFIG's task type must be 'worker' or 'chief', got "
            f"{task.get('type')!r}."
        )
    size = len(config["cluster"].get(task["type"], []))
    if not 0 <= index < size:
        raise DistributeConfigError(
            f"TF_CONFIG's task index {index} is outside its "
            f"{size}-entry {task['type']!r} list."
        )
    if not workers:
        raise DistributeConfigError("TF_CONFIG lists no workers.")
    return config


def make_strategy(
    kind: str = "none",
    cpu_devices: int | None = None,
    timeout_seconds: float | None = 300.0,
) -> tf.distribute.Strategy:
    """The strategy for a recipe's `--strategy` and `--cpu-devices`.

    Args:
        kind: `"none"`, `"mirrored"` or `"multiworker"`.
        cpu_devices: with `mirrored`, mirror over this many logical CPU
            devices instead of the GPUs.
        timeout_seconds: `multiworker` only: a collective operation that
            waits longer than this (a worker died or hangs) fails with an
            error instead of blocking for ever. `None` waits for ever.
    """
    if kind not in STRATEGIES:
        raise DistributeConfigError(
            f"strategy must be one of {', '.join(STRATEGIES)}, got {kind!r}."
        )
    if cpu_devices is not None and kind != "mirrored":
        raise DistributeConfigError(
            "cpu_devices applies to --strategy=mirrored only; got "
            f"--strategy={kind}."
        )
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if cpu_devices is not None:
            devices = configure_cpu_devices(cpu_devices)
            return tf.distribute.MirroredStrategy(
                devices,
                cross_device_ops=tf.distribute.ReductionToOneDevice(),
            )
        if not tf.config.list_physical_devices("GPU"):
            raise DistributeConfigError(
                "--strategy=mirrored found no GPU. On a CPU-only machine, "
                "add --cpu-devices=N to mirror over N logical CPU devices "
                "(for testing; it does not add compute)."
            )
        return tf.distribute.MirroredStrategy()
    read_tf_config()
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout_seconds
    )
    return _MultiWorkerMirroredStrategy(communication_options=options)


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts what Keras 3's
    `fit` passes it (keras-team/keras#20585; without this, `fit` fails
    under the stock class as soon as there are two workers): a nest of
    per-replica values, and `axis=0` for per-replica scalars. The
    workaround and its reasons are `_keras_private.multi_worker_reduce`.
    """

    def reduce(self, reduce_op, value, axis):
        return _keras_private.multi_worker_reduce(self, reduce_op, value, axis)


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's files: always, except on the
    non-chief workers of a multi-worker strategy (the chief is the task
    of type `chief`, or worker 0 when there is none)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return (
        not has_chief
        and resolver.task_type == "worker"
        and (resolver.task_id == 0)
    )


def shard_options() -> tf.data.Options:
    """`tf.data` options that shard a pipeline across workers by data
    (`AutoShardPolicy.DATA`)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def describe(strategy: tf.distribute.Strategy) -> dict:
    """What a run records about its strategy (metrics.json, logs)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    info = {
        "strategy": type(strategy).__name__.lstrip("_"),
        "replicas": int(strategy.num_replicas_in_sync),
    }
    if resolver is not None and resolver.cluster_spec().as_dict():
        info["task"] = f"{resolver.task_type}:{resolver.task_id}"
        info["workers"] = resolver.cluster_spec().num_tasks("worker")
    return info


def local_copy(model):
    """`model` itself, or, for a model built under a strategy's scope, a
    copy on the default (one-device) strategy with the same weights, for
    evaluation and export by the chief alone. Call it outside any scope.
    The copy is not compiled."""
    import keras

    if model.distribute_strategy is tf.distribute.get_strategy():
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# What a collective operation raises when a peer worker crashed, was
# preempted or stopped answering (heartbeats or `timeout_seconds`).
LOST_WORKER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)


def lost_worker_message(error: tf.errors.OpError) -> str:
    """One paragraph for a multi-worker run that lost a worker."""
    lines = [
        line.strip()
        for line in str(error.message).splitlines()
        if "task" in line.lower() or "abort" in line.lower()
    ]
    detail = " ".join(lines[:3]) or type(error).__name__
    return (
        "the multi-worker run lost a worker, so every worker stops "
        f"({detail}). Its checkpoints are intact: start all workers again "
        "with the same command to resume from the last finished epoch."
    )


def supports_xla(strategy: tf.distribute.Strategy) -> bool:
    """False when the strategy mirrors over several CPU devices of one
    process: XLA compiles each replica's step for the first CPU device and
    then cannot reach the other replicas' variables ("Trying to access
    resource ... located in device CPU:1 from device CPU:0"; see
    tensorflow.org/xla/known_issues). GPUs and one-device strategies are
    fine."""
    if not isinstance(strategy, tf.distribute.MirroredStrategy):
        return True
    devices = list(strategy.extended.worker_devices)
    return not (
        len(devices) > 1 and all("CPU" in device.upper() for device in devices)
    )
