"""Carrying a language model's recurrent state from one call to the next.

The toolkit has one way to do this: `DeepRNN` called with `initial_state=`
and `return_state=True`. `StateRunner` wraps a language model's embedding,
stack and head around it, sharing their weights (nothing is copied, so a
runner always sees the model's current weights):

    (ids (batch, steps), states) -> (outputs (batch, steps, ...), states)

Generation (`toolkit.text.sampling`), whole-split evaluation
(`toolkit.text.evaluation`, `toolkit.text.word_lm`) and the SavedModel
export (`toolkit.serving.export`) all read text through a `StateRunner`: a
prime is read in one call, then one token per call; a split is read in
chunks with the states handed from chunk to chunk.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from toolkit.deep import DeepRNN


@contextlib.contextmanager
def explicit_states_only(stack: DeepRNN):
    """While inside, `stack`'s layers neither read nor write the states they
    carry for `stateful=True` (nor check the batch size those fix): a runner
    hands every state in and takes it back out. Keras's RNN reads
    `stateful` when it traces a call, so the runner traces inside this.
    """
    layers = []
    for layer in stack.rnn_layers:
        layers.append(layer)
        if isinstance(layer, keras.layers.Bidirectional):
            layers += [layer.forward_layer, layer.backward_layer]
    saved = [layer.stateful for layer in layers]
    try:
        for layer in layers:
            layer.stateful = False
        yield
    finally:
        for layer, stateful in zip(layers, saved, strict=True):
            layer.stateful = stateful


class StateRunner:
    """A language model run chunk by chunk with explicit recurrent states.

    Args:
        embedding: maps `(batch, steps)` int ids to `(batch, steps, dim)`.
        stack: the model's `DeepRNN` (one-way).
        head: optional layer applied to the stack's outputs (the char LM's
            logits `Dense`); `None` returns the top layer's hidden states.
        name: name of the runner's Keras model.

    Attributes:
        model: a `keras.Model` over the same layers,
            `[ids, *flat_states] -> [outputs, *flat_states]`. Call it through
            `__call__` / `call_tensors`, which keep a stateful model's
            carried states untouched (`explicit_states_only`).
    """

    def __init__(self, embedding, stack, head=None, name="state_runner"):
        if not isinstance(stack, DeepRNN):
            raise TypeError(
                f"StateRunner needs a toolkit DeepRNN, got {type(stack)}."
            )
        if stack.bidirectional:
            raise ValueError(
                f"{stack.name} is bidirectional; a backward layer needs the "
                "whole sequence, so its state cannot be carried forward "
                "chunk by chunk."
            )
        if not stack.return_sequences:
            raise ValueError(
                f"{stack.name} returns one vector; a language model's stack "
                "returns sequences."
            )
        self.stack = stack
        self.state_sizes = stack.state_sizes
        # A second view over the same recurrent layers that returns their
        # states; it shares every weight with `stack`. No dropout between
        # layers: a runner is for inference.
        with_state = DeepRNN(
            stack.rnn_layers,
            dropout=0.0,
            residual=stack.residual,
            return_state=True,
            seed=stack.seed,
            name=f"{stack.name}_with_state",
        )
        ids = keras.Input((None,), dtype="int32", name="ids")
        state_inputs = [
            [
                keras.Input((size,), name=f"layer{k}_state{j}")
                for j, size in enumerate(sizes)
            ]
            for k, sizes in enumerate(self.state_sizes)
        ]
        x = embedding(ids)
        with explicit_states_only(stack):
            y, *states = with_state(x, initial_state=state_inputs)
        if head is not None:
            y = head(y)
        flat_inputs = [s for layer in state_inputs for s in layer]
        flat_states = [s for layer in states for s in layer]
        self.model = keras.Model(
            [ids, *flat_inputs], [y, *flat_states], name=name
        )

    @classmethod
    def for_model(cls, model, head: bool = True) -> StateRunner:
        """The runner of a toolkit language model.

        A char LM (`toolkit.text.models.build_char_lm`) runs as embedding ->
        `deep_rnn` -> `logits` (`head=False` stops at the stack); a
        `toolkit.text.word_lm.WordLanguageModel` runs as its `embedding` ->
        `deep_rnn` and returns hidden states (score them with its
        `head`). Dropout is left out: runners are for inference.
        """
        if hasattr(model, "deep_rnn") and hasattr(model, "head"):
            if not model.built:
                model.build((None, None))
            return cls(model.embedding, model.deep_rnn, None)
        try:
            embedding = model.get_layer("embedding")
            stack = model.get_layer("deep_rnn")
            logits = model.get_layer("logits") if head else None
        except ValueError as error:
            raise ValueError(
                f"Model '{model.name}' is not a toolkit language model: it "
                "needs layers named 'embedding', 'deep_rnn' and 'logits' "
                "(toolkit.text.models.build_char_lm) or to be a "
                "WordLanguageModel."
            ) from error
        return cls(embedding, stack, logits)

    def initial_state(self, batch_size: int) -> list[list[np.ndarray]]:
        """Zero states: one list per layer of `(batch_size, units)` arrays."""
        return [
            [np.zeros((batch_size, size), np.float32) for size in sizes]
            for sizes in self.state_sizes
        ]

    def flatten(self, states) -> list:
        return [s for layer in states for s in layer]

    def nest(self, flat) -> list[list]:
        nested, start = [], 0
        for sizes in self.state_sizes:
            nested.append(list(flat[start : start + len(sizes)]))
            start += len(sizes)
        return nested

    def __call__(self, ids, states):
        """Read `ids` `(batch, steps)` from `states`; numpy in and out.

        Returns:
            `(outputs, states)`: `(batch, steps, ...)` and the states after
            the last step, in the format of `initial_state`.
        """
        ids = np.asarray(ids, dtype=np.int32)
        if ids.ndim != 2:
            raise ValueError(
                f"Expected ids of shape (batch, steps), got {ids.shape}."
            )
        with explicit_states_only(self.stack):
            outputs, *flat = self.model.predict_on_batch(
                [ids, *self.flatten(states)]
            )
        return np.asarray(outputs), self.nest([np.asarray(s) for s in flat])

    def call_tensors(self, ids, states):
        """As `__call__`, on backend tensors (for `tf.function` and
        gradient tapes): `(outputs, states)`."""
        with explicit_states_only(self.stack):
            outputs, *flat = self.model(
                [ids, *self.flatten(states)], training=False
            )
        return outputs, self.nest(flat)
