"""Training and inference throughput of toolkit layers against the Keras
built-ins.

Each configuration builds two identical models, `Input -> recurrent layer ->
MSE loss`, one with the built-in layer (`keras.layers.LSTM` /
`keras.layers.SimpleRNN`) and one with the toolkit layer, in the same
process. It times `train_on_batch` (forward, backward, Adam update with
`clipnorm`) or `predict_on_batch` (forward only) in alternating rounds, so
both see the same machine load, and reports the median throughput in
timesteps x samples per second and the ratio toolkit / built-in. The header
names the CPU model and the vector / matrix instruction sets it has.

    python benchmarks/rnn_throughput.py                 # the README table
    python benchmarks/rnn_throughput.py --units 64 --rounds 3   # quick look
    python benchmarks/rnn_throughput.py --jit-compile auto true \\
        --mode train infer --recurrent-dropout 0 0.2

`--jit-compile auto` is `model.compile`'s default, what a plain user gets.

`--memory` adds each layer's activation memory: the peak resident memory of
a fresh process running two steps at `8 * timesteps`, minus that of one at
`timesteps`, over 7. That is what `timesteps` more steps keep alive (saved
activations, loop buffers); the runtime, the graph, the weights and the
optimizer state cancel out (a single difference at `2 * timesteps` was
within the tens of MiB by which a process's baseline varies).

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from results_file import machine, write  # noqa: E402 (this folder)

import toolkit  # noqa: E402

LAYERS = {
    "lstm": (keras.layers.LSTM, toolkit.LSTM),
    "vanilla": (keras.layers.SimpleRNN, toolkit.VanillaRNN),
}


def parse_jit(value: str):
    return {"auto": "auto", "true": True, "false": False}[value]


def build_model(layer_class, units, args, jit_compile, recurrent_dropout):
    inputs = keras.Input(
        batch_shape=(args.batch, args.timesteps, args.features)
    )
    outputs = layer_class(units, recurrent_dropout=recurrent_dropout)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0),
        loss="mse",
        jit_compile=jit_compile,
    )
    return model


def time_steps(model, x, y, steps, mode):
    start = time.perf_counter()
    for _ in range(steps):
        if mode == "train":
            model.train_on_batch(x, y)
        else:
            model.predict_on_batch(x)
    return (time.perf_counter() - start) / steps


def measure(cell, units, mode, recurrent_dropout, args):
    """Median throughput of every (layer, jit_compile) variant, measured in
    interleaved rounds in this process."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.timesteps, args.features))
    x = x.astype("float32")
    y = rng.standard_normal((args.batch, units)).astype("float32")
    builtin_class, toolkit_class = LAYERS[cell]
    models = {}
    for jit_compile in args.jit_compile:
        for name, layer_class in (
            ("builtin", builtin_class),
            ("toolkit", toolkit_class),
        ):
            models[(name, jit_compile)] = build_model(
                layer_class, units, args, jit_compile, recurrent_dropout
            )
    for model in models.values():
        time_steps(model, x, y, args.warmup, mode)
    seconds = {key: [] for key in models}
    for _ in range(args.rounds):
        for key, model in models.items():
            seconds[key].append(time_steps(model, x, y, args.steps, mode))
    samples = args.batch * args.timesteps
    return {
        key: samples / statistics.median(values)
        for key, values in seconds.items()
    }


def peak_memory_child(args):
    """In a fresh process: two steps of one layer, then print the peak
    resident set size in MiB."""
    layer_class = LAYERS[args.cells[0]][args.layer == "toolkit"]
    units = args.units[0]
    model = build_model(
        layer_class,
        units,
        args,
        args.jit_compile[0],
        args.recurrent_dropout[0],
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, args.timesteps, args.features))
    y = rng.standard_normal((args.batch, units))
    time_steps(model, x.astype("float32"), y.astype("float32"), 2, args.mode[0])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def activation_memory(cell, units, mode, rate, jit_compile, layer, args):
    """(Peak memory at 8 * timesteps - peak memory at timesteps) / 7, in
    MiB, each in a fresh process."""
    peaks = []
    for timesteps in (args.timesteps, 8 * args.timesteps):
        command = [
            sys.executable,
            __file__,
            "--memory-child",
            layer,
            "--cells",
            cell,
            "--units",
            str(units),
            "--mode",
            mode,
            "--recurrent-dropout",
            str(rate),
            "--jit-compile",
            {True: "true", False: "false", "auto": "auto"}[jit_compile],
            "--batch",
            str(args.batch),
            "--timesteps",
            str(timesteps),
            "--features",
            str(args.features),
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, check=True
        )
        peaks.append(float(result.stdout.strip().splitlines()[-1]))
    return (peaks[1] - peaks[0]) / 7


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
        "--steps", type=int, default=5, help="steps per timed round"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--mode",
        nargs="+",
        default=["train"],
        choices=["train", "infer"],
        help="train: train_on_batch; infer: predict_on_batch",
    )
    parser.add_argument(
        "--recurrent-dropout",
        nargs="+",
        type=float,
        default=[0.0],
        help="recurrent dropout rates to measure (both layers)",
    )
    parser.add_argument(
        "--jit-compile",
        nargs="+",
        default=["false"],
        choices=["auto", "false", "true"],
        help="XLA settings to measure (each for both layers); auto is "
        "model.compile's default",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="also measure activation memory (fresh processes, see above)",
    )
    parser.add_argument(
        "--json", help="also write the rows as a results file (JSON)"
    )
    parser.add_argument(
        "--memory-child", choices=["builtin", "toolkit"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    args.jit_compile = [parse_jit(value) for value in args.jit_compile]
    if args.memory_child:
        args.layer = args.memory_child
        peak_memory_child(args)
        return

    print(
        f"{machine()}; keras {keras.__version__}, backend "
        f"{keras.backend.backend()}"
    )
    print(
        f"batch {args.batch}, timesteps {args.timesteps}, features "
        f"{args.features}; median of {args.rounds} rounds x {args.steps} "
        "steps"
    )
    memory_header = (
        f" activation memory per {args.timesteps} steps, MiB: built-in | "
        "toolkit |"
        if args.memory
        else ""
    )
    print(
        "| cell | units | mode | recurrent dropout | jit_compile | "
        "built-in (steps x samples/s) | toolkit | ratio |" + memory_header
    )
    print("|---|---:|---|---:|---|---:|---:|---:|" + "---:|---:|" * args.memory)
    rows = []
    for cell in args.cells:
        for units in args.units:
            for mode in args.mode:
                for rate in args.recurrent_dropout:
                    result = measure(cell, units, mode, rate, args)
                    for jit_compile in args.jit_compile:
                        builtin = result[("builtin", jit_compile)]
                        ours = result[("toolkit", jit_compile)]
                        row = {
                            "cell": cell,
                            "units": units,
                            "mode": mode,
                            "recurrent_dropout": rate,
                            "jit_compile": jit_compile,
                            "builtin": builtin,
                            "toolkit": ours,
                            "ratio": ours / builtin,
                        }
                        memory = ""
                        if args.memory:
                            row["memory_mib"] = {
                                layer: activation_memory(
                                    cell,
                                    units,
                                    mode,
                                    rate,
                                    jit_compile,
                                    layer,
                                    args,
                                )
                                for layer in ("builtin", "toolkit")
                            }
                            memory = "".join(
                                f" {value:.0f} |"
                                for value in row["memory_mib"].values()
                            )
                        rows.append(row)
                        print(
                            f"| {cell} | {units} | {mode} | {rate:g} | "
                            f"{jit_compile} | {builtin:,.0f} | {ours:,.0f} | "
                            f"{ours / builtin:.2f}x |{memory}",
                            flush=True,
                        )
    if args.json:
        write(args.json, {"rows": rows}, arguments=args)


if __name__ == "__main__":
    main()
