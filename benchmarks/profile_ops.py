"""Where a training (or inference) step's time goes, by TensorFlow op type:
the built-in `keras.layers.LSTM` / `SimpleRNN` against the toolkit layer.

Builds the same model as `rnn_throughput.py` (`Input -> layer -> MSE`,
Adam with `clipnorm`, the default compile), traces a few `train_on_batch`
(or `predict_on_batch`) steps with TensorFlow's profiler, reads the trace
(`.xplane.pb`) and prints, per layer, the milliseconds per step spent in
each op type on the CPU, the busiest first. Run by hand:

    python benchmarks/profile_ops.py --units 256
    python benchmarks/profile_ops.py --units 64 --mode infer --top 12

The sum of op times is larger than the wall time when ops overlap on the
two cores and smaller when the executor's own overhead dominates; both
numbers are printed.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from results_file import machine, write  # noqa: E402 (this folder)
from rnn_throughput import LAYERS  # noqa: E402 (this folder)
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402


def build_model(layer_class, args):
    inputs = keras.Input(
        batch_shape=(args.batch, args.timesteps, args.features)
    )
    outputs = layer_class(
        args.units,
        return_sequences=args.return_sequences,
        recurrent_dropout=args.recurrent_dropout,
    )(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0), loss="mse"
    )
    return model


def region(node_name: str) -> str:
    """The while loop a node runs in (the name of the loop), or "outside
    loops"."""
    head, found, _ = node_name.partition("/body/")
    if not found:
        return "outside loops"
    return "loop " + "/".join(head.split("/")[-3:])


def op_times(logdir: str):
    """Total microseconds per TensorFlow op type, and per region (`region`),
    in the trace in `logdir`."""
    totals = collections.Counter()
    regions = collections.Counter()
    for path in glob.glob(
        os.path.join(logdir, "**", "*.xplane.pb"), recursive=True
    ):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as handle:
            space.ParseFromString(handle.read())
        for plane in space.planes:
            if "host" not in plane.name.lower():
                continue
            names = {
                key: meta.name for key, meta in plane.event_metadata.items()
            }
            for line in plane.lines:
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    # Executor op events read "name:OpType".
                    if ":" not in name or "::" in name or name.startswith("$"):
                        continue
                    node_name, op_type = name.rsplit(":", 1)
                    if not op_type or not op_type[0].isupper():
                        continue
                    totals[op_type] += event.duration_ps / 1e6
                    regions[region(node_name)] += event.duration_ps / 1e6
    return totals, regions


def profile(model, x, y, args):
    def step():
        if args.mode == "train":
            model.train_on_batch(x, y)
        else:
            model.predict_on_batch(x)

    for _ in range(args.warmup):
        step()
    logdir = tempfile.mkdtemp(prefix="profile_ops_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    wall = (time.perf_counter() - start) / args.steps
    tf.profiler.experimental.stop()
    return wall, op_times(logdir)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", default="lstm", choices=sorted(LAYERS))
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=128)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--mode", default="train", choices=["train", "infer"])
    parser.add_argument("--recurrent-dropout", type=float, default=0.0)
    parser.add_argument("--return-sequences", action="store_true")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--json", help="also write the profiles as a results file (JSON)"
    )
    args = parser.parse_args(argv)

    print(
        f"{machine()}; {args.cell} {args.units} "
        f"units, batch {args.batch}, timesteps {args.timesteps}, features "
        f"{args.features}, {args.mode}, {args.steps} traced steps"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.timesteps, args.features))
    x = x.astype("float32")
    out_shape = (
        (args.batch,)
        + ((args.timesteps,) if args.return_sequences else ())
        + (args.units,)
    )
    y = rng.standard_normal(out_shape).astype("float32")
    results = {}
    for name, layer_class in zip(
        ("built-in", "toolkit"), LAYERS[args.cell], strict=True
    ):
        results[name] = profile(build_model(layer_class, args), x, y, args)
    written = {}
    for name, (wall, (totals, regions)) in results.items():
        busy = sum(totals.values()) / 1e3 / args.steps
        written[name] = {
            "wall_ms_per_step": wall * 1e3,
            "op_ms_per_step": busy,
            "regions_ms_per_step": {
                part: micros / 1e3 / args.steps
                for part, micros in regions.items()
            },
            "ops_ms_per_step": {
                op_type: micros / 1e3 / args.steps
                for op_type, micros in totals.most_common(args.top)
            },
        }
        print(
            f"\n{name}: {wall * 1e3:.1f} ms wall per step, "
            f"{busy:.1f} ms summed op time per step"
        )
        print(
            "  "
            + ", ".join(
                f"{part} {micros / 1e3 / args.steps:.1f} ms"
                for part, micros in sorted(regions.items())
            )
        )
        print("| op type | ms per step | share |")
        print("|---|---:|---:|")
        for op_type, micros in totals.most_common(args.top):
            print(
                f"| {op_type} | {micros / 1e3 / args.steps:.2f} | "
                f"{micros / max(sum(totals.values()), 1):.0%} |"
            )
    if args.json:
        write(args.json, written)


if __name__ == "__main__":
    main()
