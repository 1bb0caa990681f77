"""Ops per timestep in the while-loop bodies of a training step: the
built-in `keras.layers.LSTM` against `toolkit.LSTM` (TensorFlow backend).

Traces one `tf.function` that takes the gradient of a loss through each
layer and counts the nodes of every while-loop body in the graph (forward
loop, backward loop), by op type. Run by hand:

    python benchmarks/loop_op_count.py --units 256
"""

from __future__ import annotations

import argparse
import collections
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from results_file import write  # noqa: E402 (this folder)

import toolkit  # noqa: E402

SHOWN = (
    "MatMul",
    "Mul",
    "AddV2",
    "Sub",
    "Sigmoid",
    "Tanh",
    "Split",
    "ConcatV2",
    "TensorListGetItem",
    "TensorListSetItem",
)


def loop_bodies(layer_class, units, x):
    layer = layer_class(units)
    layer(x[:2])
    weights = layer.trainable_weights

    @tf.function
    def gradient(x):
        with tf.GradientTape() as tape:
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, weights)

    graph = gradient.get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32)
    ).graph
    for function in graph.as_graph_def().library.function:
        if "body" in function.signature.name:
            ops = collections.Counter(node.op for node in function.node_def)
            yield function.signature.name, len(function.node_def), ops


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=100)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument(
        "--cell",
        default="lstm",
        choices=["lstm", "layernorm"],
        help="lstm: keras.layers.LSTM against toolkit.LSTM; layernorm: "
        "a user's keras.layers.RNN over user_cells.py's cell against "
        "toolkit.LayerNormLSTM",
    )
    parser.add_argument(
        "--json", help="also write the counts as a results file (JSON)"
    )
    args = parser.parse_args(argv)
    x = np.zeros((args.batch, args.timesteps, args.features), "float32")
    print(f"| layer | loop body | nodes | {' | '.join(SHOWN)} |")
    print("|---|---|---:|" + "---:|" * len(SHOWN))
    if args.cell == "lstm":
        pairs = (
            ("keras.layers.LSTM", keras.layers.LSTM),
            ("toolkit.LSTM", toolkit.LSTM),
        )
    else:
        from user_cells import UserLayerNormLSTMCell

        pairs = (
            (
                "keras.layers.RNN(user cell)",
                lambda units: keras.layers.RNN(UserLayerNormLSTMCell(units)),
            ),
            ("toolkit.LayerNormLSTM", toolkit.LayerNormLSTM),
        )
    rows = []
    for name, layer_class in pairs:
        for body, nodes, ops in loop_bodies(layer_class, args.units, x):
            counts = " | ".join(str(ops.get(op, 0)) for op in SHOWN)
            print(f"| {name} | {body} | {nodes} | {counts} |")
            rows.append(
                {"layer": name, "body": body, "nodes": nodes, "ops": dict(ops)}
            )
    if args.json:
        write(args.json, {"units": args.units, "rows": rows})


if __name__ == "__main__":
    main()
