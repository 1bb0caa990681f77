"""A plain user's model under `model.fit` with the default compile: the
built-in recurrent layer against the toolkit layer, side by side.

    Input((100, 64)) -> LSTM(units) -> Dense(1), Adam(clipnorm=1.0), MSE,
    batch 64, `model.compile` with its defaults (`jit_compile="auto"`,
    which is no XLA on a CPU)

Each round fits every model for one epoch of `--batches` batches in turn,
then runs `model.predict` over the same data in turn, so all see the same
machine load; the tables report the median epoch time and the median of the
per-round ratios of throughputs (toolkit / built-in), for training and for
inference. Run by hand:

    python benchmarks/plain_fit.py                    # LSTM, 64 256 512
    python benchmarks/plain_fit.py --cell vanilla --units 64 256
    python benchmarks/plain_fit.py --cell layernorm   # or peephole, projection

For the LSTM variants the reference is not a built-in (Keras 3 has none)
but what a user writes today: `keras.layers.RNN` over a cell of Keras ops
from the same equations (`user_cells.py`); the projection LSTM projects
to `units // 4`.

This is a benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import user_cells  # noqa: E402 (this folder)
from results_file import machine, write  # noqa: E402 (this folder)
from rnn_throughput import LAYERS  # noqa: E402 (this folder)

import toolkit  # noqa: E402


def _user_rnn(cell_class, cell_kwargs):
    """`units -> keras.layers.RNN(cell_class(units, **cell_kwargs(units)))`."""

    def build(units):
        return keras.layers.RNN(cell_class(units, **cell_kwargs(units)))

    return build


# cell -> (reference layer, toolkit layer), each called with `units`.
PAIRS = {
    **LAYERS,
    "layernorm": (
        _user_rnn(user_cells.UserLayerNormLSTMCell, lambda u: {}),
        toolkit.LayerNormLSTM,
    ),
    "peephole": (
        _user_rnn(user_cells.UserPeepholeLSTMCell, lambda u: {}),
        toolkit.PeepholeLSTM,
    ),
    "projection": (
        _user_rnn(
            user_cells.UserProjectionLSTMCell, lambda u: {"h_size": u // 4}
        ),
        lambda units: toolkit.ProjectionLSTM(units, proj_size=units // 4),
    ),
}


def plain_model(layer_class, units, timesteps, features):
    inputs = keras.Input((timesteps, features))
    outputs = keras.layers.Dense(1)(layer_class(units)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(clipnorm=1.0), loss="mse")
    return model


def epoch_seconds(model, x, y, batch):
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def predict_seconds(model, x, batch):
    start = time.perf_counter()
    model.predict(x, batch_size=batch, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", default="lstm", choices=sorted(PAIRS))
    parser.add_argument("--units", nargs="+", type=int, default=[64, 256, 512])
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=32, help="per epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--json", help="also write the rows as a results file (JSON)"
    )
    args = parser.parse_args(argv)

    print(
        f"{machine()}; keras {keras.__version__}; "
        f"{args.cell}, batch {args.batch}, {args.timesteps} timesteps, "
        f"{args.features} features, {args.batches} batches per epoch, "
        f"median of {args.rounds} epochs"
    )
    print(
        "| cell | units | mode | reference s/epoch | toolkit s/epoch | "
        "ratio (median of rounds) |"
    )
    print("|---|---:|---|---:|---:|---:|")
    rng = np.random.default_rng(0)
    samples = args.batch * args.batches
    x = rng.standard_normal((samples, args.timesteps, args.features))
    x = x.astype("float32")
    y = rng.standard_normal((samples, 1)).astype("float32")
    rows = []
    for units in args.units:
        models = [
            plain_model(layer_class, units, args.timesteps, args.features)
            for layer_class in PAIRS[args.cell]
        ]
        for model in models:  # trace and warm up
            epoch_seconds(
                model, x[: 2 * args.batch], y[: 2 * args.batch], args.batch
            )
            predict_seconds(model, x[: 2 * args.batch], args.batch)
        seconds = {"train": ([], []), "infer": ([], [])}
        for _ in range(args.rounds):
            for index, model in enumerate(models):
                seconds["train"][index].append(
                    epoch_seconds(model, x, y, args.batch)
                )
            for index, model in enumerate(models):
                seconds["infer"][index].append(
                    predict_seconds(model, x, args.batch)
                )
        for mode, (builtin, ours) in seconds.items():
            ratio = statistics.median(
                b / o for b, o in zip(builtin, ours, strict=True)
            )
            rows.append(
                {
                    "cell": args.cell,
                    "units": units,
                    "mode": mode,
                    "reference_seconds": statistics.median(builtin),
                    "toolkit_seconds": statistics.median(ours),
                    "ratio": ratio,
                    "round_ratios": [
                        b / o for b, o in zip(builtin, ours, strict=True)
                    ],
                }
            )
            print(
                f"| {args.cell} | {units} | {mode} | "
                f"{statistics.median(builtin):.2f} | "
                f"{statistics.median(ours):.2f} | {ratio:.2f}x |",
                flush=True,
            )
    if args.json:
        write(args.json, {"rows": rows}, arguments=args)


if __name__ == "__main__":
    main()
