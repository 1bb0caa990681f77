"""Training throughput of toolkit layers against the Keras built-ins.

Each configuration builds two identical models, `Input -> recurrent layer ->
MSE loss`, one with the built-in layer (`keras.layers.LSTM` /
`keras.layers.SimpleRNN`) and one with the toolkit layer, in the same
process. It times `train_on_batch` (forward, backward, Adam update) in
alternating rounds, so both see the same machine load, and reports the
median throughput in timesteps x samples per second and the ratio
toolkit / built-in.

    python benchmarks/rnn_throughput.py                 # the README table
    python benchmarks/rnn_throughput.py --units 64 --rounds 3   # quick look
    python benchmarks/rnn_throughput.py --jit-compile false true  # and XLA

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import toolkit  # noqa: E402

LAYERS = {
    "lstm": (keras.layers.LSTM, toolkit.LSTM),
    "vanilla": (keras.layers.SimpleRNN, toolkit.VanillaRNN),
}


def build_model(layer_class, units, batch, timesteps, features, jit_compile):
    inputs = keras.Input(batch_shape=(batch, timesteps, features))
    outputs = layer_class(units)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss="mse",
        jit_compile=jit_compile,
    )
    return model


def time_steps(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


def measure(cell, units, args):
    """Median throughput of every (layer, jit_compile) variant, measured in
    interleaved rounds in this process."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.timesteps, args.features)).astype(
        "float32"
    )
    y = rng.standard_normal((args.batch, units)).astype("float32")
    builtin_class, toolkit_class = LAYERS[cell]
    models = {}
    for jit_compile in args.jit_compile:
        for name, layer_class in (
            ("builtin", builtin_class),
            ("toolkit", toolkit_class),
        ):
            models[(name, jit_compile)] = build_model(
                layer_class,
                units,
                args.batch,
                args.timesteps,
                args.features,
                jit_compile,
            )
    for model in models.values():
        time_steps(model, x, y, args.warmup)
    seconds = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            seconds[key].append(time_steps(model, x, y, args.steps))
    samples = args.batch * args.timesteps
    return {
        key: samples / statistics.median(values)
        for key, values in seconds.items()
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cells",
        nargs="+",
        default=["lstm", "vanilla"],
        choices=sorted(LAYERS),
    )
    parser.add_argument("--units", nargs="+", type=int, default=[64, 256, 512])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=128)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument(
        "--steps", type=int, default=5, help="train steps per timed round"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--jit-compile",
        nargs="+",
        default=["false"],
        choices=["false", "true"],
        help="XLA settings to measure (each for both layers)",
    )
    args = parser.parse_args(argv)
    args.jit_compile = [value == "true" for value in args.jit_compile]

    print(
        f"keras {keras.__version__}, backend {keras.backend.backend()}, "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"batch {args.batch}, timesteps {args.timesteps}, features "
        f"{args.features}; median of {args.rounds} rounds x {args.steps} "
        "train steps"
    )
    print(
        "| cell | units | jit_compile | built-in (steps x samples/s) | "
        "toolkit | ratio |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for cell in args.cells:
        for units in args.units:
            result = measure(cell, units, args)
            for jit_compile in args.jit_compile:
                builtin = result[("builtin", jit_compile)]
                ours = result[("toolkit", jit_compile)]
                print(
                    f"| {cell} | {units} | {jit_compile} | {builtin:,.0f} | "
                    f"{ours:,.0f} | {ours / builtin:.2f}x |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
