"""Recurrent-layer throughput on a GPU under JAX, no TensorFlow needed: the
toolkit's loops against Keras's built-ins and, when importable, PyTorch.

    KERAS_BACKEND=jax python benchmarks/gpu.py            # the full table
    KERAS_BACKEND=jax python benchmarks/gpu.py --small    # seconds, any CPU
    KERAS_BACKEND=jax python benchmarks/gpu.py --json results.json

Columns, for each cell (LSTM, vanilla RNN):
- toolkit fused: `toolkit.LSTM(use_cudnn=False)`, the fused recurrence;
- toolkit cuDNN: `toolkit.LSTM(use_cudnn=True)` (LSTM on a GPU only; "n/a"
  where the backend has no cuDNN kernel);
- keras: `keras.layers.LSTM` / `SimpleRNN` with their defaults (cuDNN on a
  GPU for the LSTM);
- torch: `torch.nn.LSTM` / `torch.nn.RNN` (cuDNN on a GPU), when PyTorch
  is installed.
Rows: batch, steps (100 and 1000), units, precision (float32 with JAX's
default matmul precision, and `mixed_bfloat16`), and mode: `train` is one
jitted gradient of `sum(outputs**2)` with `return_sequences=True`, `infer`
the jitted forward pass. Throughput is timesteps x samples per second, the
median of `--repeats` timed calls after a compiling one. Inputs have
`--features` features. The header names the device, the versions and the
matmul precision.

A benchmark, run by hand on a GPU machine; `--small` is what the tests run
(on a CPU, in a process where TensorFlow cannot be imported).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from results_file import machine  # noqa: E402 (this folder)

import toolkit  # noqa: E402

KERAS_LAYERS = {"lstm": keras.layers.LSTM, "vanilla": keras.layers.SimpleRNN}
TOOLKIT_LAYERS = {"lstm": toolkit.LSTM, "vanilla": toolkit.VanillaRNN}
COLUMNS = ("toolkit fused", "toolkit cuDNN", "keras", "torch")


def device_name() -> str:
    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"CPU: {machine()}"
    return f"{device.platform.upper()}: {device.device_kind}"


def keras_layer(column: str, cell: str, units: int):
    """The Keras-API layer of `column`, or None where it cannot run."""
    if column == "keras":
        return KERAS_LAYERS[cell](units, return_sequences=True)
    if column == "toolkit fused":
        kwargs = {"use_cudnn": False} if cell == "lstm" else {}
        return TOOLKIT_LAYERS[cell](units, return_sequences=True, **kwargs)
    if column == "toolkit cuDNN" and cell == "lstm":
        return toolkit.LSTM(units, return_sequences=True, use_cudnn=True)
    return None


def time_calls(function, args, repeats: int) -> float:
    """Median seconds of `function(*args)` after one compiling call."""
    jax.block_until_ready(function(*args))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def keras_throughput(layer, x, mode: str, repeats: int) -> float | None:
    """Timesteps x samples per second of `layer` on `x`, or None when the
    layer refuses the configuration (cuDNN without a GPU)."""
    layer.build(x.shape)
    trainable = [v.value for v in layer.trainable_variables]
    fixed = [v.value for v in layer.non_trainable_variables]

    def forward(weights, inputs):
        outputs, _ = layer.stateless_call(weights, fixed, inputs)
        return outputs

    def loss(weights, inputs):
        return jnp.sum(jnp.square(forward(weights, inputs).astype("float32")))

    function = jax.jit(jax.grad(loss) if mode == "train" else forward)
    try:
        seconds = time_calls(function, (trainable, x), repeats)
    except ValueError as error:
        if "use_cudnn=True" in str(error):
            return None
        raise
    return x.shape[0] * x.shape[1] / seconds


def torch_throughput(cell, units, x, mode, precision, repeats):
    """The same measurement for `torch.nn.LSTM` / `torch.nn.RNN`, or None
    without PyTorch."""
    try:
        import torch
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module_class = torch.nn.LSTM if cell == "lstm" else torch.nn.RNN
    module = module_class(x.shape[-1], units, batch_first=True).to(device)
    inputs = torch.from_numpy(np.asarray(x, dtype="float32")).to(device)
    autocast = torch.autocast(
        device_type=device,
        dtype=torch.bfloat16,
        enabled=precision == "mixed_bfloat16",
    )

    def call():
        with autocast:
            if mode == "train":
                outputs = module(inputs)[0]
                (outputs.float() ** 2).sum().backward()
            else:
                with torch.no_grad():
                    module(inputs)
        if device == "cuda":
            torch.cuda.synchronize()

    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return x.shape[0] * x.shape[1] / statistics.median(seconds)


def measure(args) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for precision in args.precisions:
        keras.config.set_dtype_policy(precision)
        for cell in args.cells:
            for steps in args.steps:
                for units in args.units:
                    x = rng.standard_normal(
                        (args.batch, steps, args.features)
                    ).astype("float32")
                    x = jnp.asarray(x)
                    for mode in ("train", "infer"):
                        row = {
                            "cell": cell,
                            "batch": args.batch,
                            "steps": steps,
                            "units": units,
                            "precision": precision,
                            "mode": mode,
                        }
                        for column in COLUMNS:
                            if column == "torch":
                                value = torch_throughput(
                                    cell,
                                    units,
                                    x,
                                    mode,
                                    precision,
                                    args.repeats,
                                )
                            else:
                                layer = keras_layer(column, cell, units)
                                value = (
                                    None
                                    if layer is None
                                    else keras_throughput(
                                        layer, x, mode, args.repeats
                                    )
                                )
                            row[column] = value
                        rows.append(row)
                        print(format_row(row), flush=True)
    keras.config.set_dtype_policy("float32")
    return rows


def format_row(row: dict) -> str:
    def cell(value):
        return "n/a" if value is None else f"{value / 1e6:.2f}M"

    values = " | ".join(cell(row[column]) for column in COLUMNS)
    return (
        f"| {row['cell']} | {row['batch']}, {row['steps']}, {row['units']} "
        f"| {row['precision']} | {row['mode']} | {values} |"
    )


def header() -> list[str]:
    try:
        import torch

        torch_version = f"torch {torch.__version__}"
    except ImportError:
        torch_version = "no torch"
    return [
        f"{device_name()}; keras {keras.__version__}, jax {jax.__version__}, "
        f"{torch_version}; backend {keras.backend.backend()}; JAX matmul "
        f"precision {jax.config.jax_default_matmul_precision or 'default'}",
        "Throughput in timesteps x samples per second (median of timed "
        "calls after a compiling one).",
        "| cell | batch, steps, units | precision | mode | "
        + " | ".join(COLUMNS)
        + " |",
        "|---|---|---|---|" + "---:|" * len(COLUMNS),
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="tiny sizes")
    parser.add_argument("--cells", nargs="+", default=["lstm", "vanilla"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--units", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "mixed_bfloat16"],
        choices=["float32", "mixed_bfloat16"],
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the rows and the header")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        parser.error("run with KERAS_BACKEND=jax")
    if args.small:
        args.batch, args.steps, args.units = 4, [10, 30], [8]
        args.features, args.repeats = 5, 2
    lines = header()
    print("\n".join(lines), flush=True)
    rows = measure(args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"header": lines[0], "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
