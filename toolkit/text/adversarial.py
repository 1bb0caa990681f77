"""Adversarial training of text classifiers on their word embeddings.

Miyato, Dai & Goodfellow (2017) regularise a text classifier by adding, to
the loss on each batch, the loss on the same batch with its word
embeddings moved a small step in the direction that raises the loss most:

    g     = dL/ds                     (s: the batch's embedded words)
    r_adv = epsilon * g / ||g||_2     (norm over each example's words)
    loss  = L(s) + weight * L(s + r_adv)

with `r_adv` held constant (no gradient flows through it). They measure the
step in frequency-normalised embedding coordinates, v' = (v - E[v]) /
sqrt(Var[v]) with E and Var weighted by word frequency, so that `epsilon`
means the same whatever scale the embedding learns. `AdversarialTraining`
keeps the classifier's raw embeddings (a pretrained encoder is used as it
is) and takes the step in those coordinates: with `frequencies`, the
gradient is scaled into normalised coordinates, normalised there, and the
step scaled back (`adversarial_perturbation`), which is the same set of
perturbations as a model that normalises its embeddings.

One training step costs two forward and two backward passes: the clean
pass gives the parameters' gradient and `g` in one backward sweep (`g` is
the gradient of a zero tensor added to the embedding output), the
perturbed pass the rest. It runs under plain `model.fit` on the TensorFlow
and JAX backends; `classifier` itself is unchanged and is what you save,
export or evaluate.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
from keras import ops

from toolkit import _keras_private


def frequency_scale(embeddings, frequencies):
    """The frequency-weighted standard deviation of each embedding
    dimension: `(vocab, dim)`, `(vocab,)` weights summing to 1 -> `(dim,)`.
    """
    mean = ops.sum(frequencies[:, None] * embeddings, axis=0)
    variance = ops.sum(
        frequencies[:, None] * ops.square(embeddings - mean), axis=0
    )
    return ops.sqrt(variance + 1e-12)


def adversarial_perturbation(gradient, epsilon: float, scale=None):
    """`epsilon * g / ||g||_2` per example, `g (batch, ...)`.

    With `scale` (`(dim,)`, from `frequency_scale`), `g` is first taken
    into normalised coordinates (`g * scale`) and the step back to raw ones
    (`* scale`): the returned raw perturbation has norm `epsilon` measured
    in units of each dimension's standard deviation. Examples whose
    gradient is zero get a zero perturbation. No gradient flows through the
    result.
    """
    gradient = ops.stop_gradient(gradient)
    if scale is not None:
        gradient = gradient * scale
    axes = tuple(range(1, len(gradient.shape)))
    # Divide by the largest entry first: squares of tiny gradients
    # underflow in float32.
    largest = ops.max(ops.abs(gradient), axis=axes, keepdims=True)
    gradient = gradient / ops.maximum(largest, 1e-30)
    norm = ops.sqrt(ops.sum(ops.square(gradient), axis=axes, keepdims=True))
    step = epsilon * gradient / ops.maximum(norm, 1e-30)
    if scale is not None:
        step = step * scale
    return ops.stop_gradient(step)


class _EmbeddingPerturbation(keras.layers.Layer):
    """Identity, or `embedded + delta` inside `perturbed(delta)`: the hook
    that `AdversarialTraining` puts after the embedding. The delta is set
    while a step is traced, so the compiled step takes it as a tensor."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        object.__setattr__(self, "_delta", None)

    @contextlib.contextmanager
    def perturbed(self, delta):
        object.__setattr__(self, "_delta", delta)
        try:
            yield
        finally:
            object.__setattr__(self, "_delta", None)

    def call(self, embedded):
        if self._delta is None:
            return embedded
        return embedded + ops.cast(self._delta, embedded.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


class AdversarialTraining(keras.Model):
    """Train `classifier` with adversarial perturbations of its word
    embeddings (Miyato et al. 2017) under plain `fit`.

    Args:
        classifier: a Functional `keras.Model` with one `Embedding` layer;
            it is shared, not copied: training this model trains it.
        epsilon: the perturbation's L2 norm per example (in normalised
            coordinates when `frequencies` is given); Miyato et al. used
            5.0 on IMDB.
        weight: the adversarial loss's weight (1.0 in the paper).
        frequencies: optional `(vocab,)` word counts or frequencies (ids
            in the embedding's order); the step is then measured in
            frequency-normalised coordinates.
        embedding_layer: the name of the embedding layer to perturb; by
            default the classifier's only `keras.layers.Embedding`.

    Calling the model calls `classifier`; evaluation and prediction are
    those of `classifier`. Compile it as you would the classifier.

    Example:
        model = build_text_classifier(20_000, ...)
        trainer = AdversarialTraining(model, epsilon=5.0, frequencies=counts)
        trainer.compile(optimizer, "binary_crossentropy", ["accuracy"])
        trainer.fit(dataset)
        model.save("classifier.keras")  # the trained classifier
    """

    def __init__(
        self,
        classifier: keras.Model,
        epsilon: float = 5.0,
        weight: float = 1.0,
        frequencies=None,
        embedding_layer: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(
                "Received an invalid value for argument `epsilon`, expected "
                f"a positive float, got {epsilon!r}."
            )
        if not weight > 0:
            raise ValueError(
                "Received an invalid value for argument `weight`, expected "
                f"a positive float, got {weight!r}."
            )
        self.epsilon = float(epsilon)
        self.weight = float(weight)
        embedding = _find_embedding(classifier, embedding_layer)
        self.embedding_dim = int(embedding.output_dim)
        if frequencies is not None:
            frequencies = np.asarray(frequencies, dtype="float64")
            if frequencies.shape != (embedding.input_dim,) or not (
                np.all(frequencies >= 0) and frequencies.sum() > 0
            ):
                raise ValueError(
                    "Received an invalid value for argument `frequencies`, "
                    f"expected ({embedding.input_dim},) non-negative counts "
                    "with a positive sum (one per embedding row), got shape "
                    f"{frequencies.shape}."
                )
            frequencies = (frequencies / frequencies.sum()).astype("float32")
        self._frequencies = frequencies
        # Not tracked: its layers are the perturbable copy's layers.
        object.__setattr__(self, "classifier", classifier)
        object.__setattr__(self, "_embedding", embedding)
        self._hook = _EmbeddingPerturbation(name="embedding_perturbation")
        self.perturbable = _perturbable_copy(classifier, embedding, self._hook)
        if classifier.built:  # its variables are all this model has
            self.built = True
        # Logged beside `loss` (the clean loss) as `adversarial_loss`.
        self.adversarial_loss_tracker = keras.metrics.Mean(
            name="adversarial_loss"
        )

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def _perturbed_call(self, x, delta, training):
        with self._hook.perturbed(delta):
            return self.perturbable(x, training=training)

    def _zero_delta(self, x):
        shape = ops.shape(x)
        return ops.zeros((shape[0], shape[1], self.embedding_dim))

    def _scale(self, embeddings=None):
        if self._frequencies is None:
            return None
        if embeddings is None:
            embeddings = self._embedding.embeddings
        return frequency_scale(
            ops.cast(embeddings, "float32"), self._frequencies
        )

    def perturbation(self, x, y, sample_weight=None, training=False):
        """`r_adv` for a batch, `(batch, steps, dim)` (no update)."""
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            delta = self._zero_delta(x)
            with tf.GradientTape() as tape:
                tape.watch(delta)
                y_pred = self._perturbed_call(x, delta, training)
                loss = self.compute_loss(x, y, y_pred, sample_weight)
            gradient = tape.gradient(loss, delta)
        elif backend == "jax":
            import jax

            def loss_of(delta):
                y_pred = self._perturbed_call(x, delta, training)
                return self.compute_loss(x, y, y_pred, sample_weight)

            gradient = jax.grad(loss_of)(self._zero_delta(x))
        else:
            raise NotImplementedError(_backend_message(backend))
        return adversarial_perturbation(gradient, self.epsilon, self._scale())

    def test_step(self, *args):
        result = super().test_step(*args)
        # The adversarial loss is a training quantity: not evaluated.
        logs = result[0] if isinstance(result, tuple) else result
        logs.pop(self.adversarial_loss_tracker.name, None)
        return result

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            return self._tensorflow_train_step(*args)
        if backend == "jax":
            return self._jax_train_step(*args)
        raise NotImplementedError(_backend_message(backend))

    def _tensorflow_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        delta = self._zero_delta(x)
        with tf.GradientTape() as tape:
            tape.watch(delta)
            y_pred = self._perturbed_call(x, delta, True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        *gradients, embedding_gradient = tape.gradient(
            loss, [*variables, delta]
        )
        r_adv = adversarial_perturbation(
            embedding_gradient, self.epsilon, self._scale()
        )
        with tf.GradientTape() as tape:
            adversarial_pred = self._perturbed_call(x, r_adv, True)
            adversarial_loss = self.compute_loss(
                x, y, adversarial_pred, sample_weight
            )
        adversarial_gradients = tape.gradient(adversarial_loss, variables)
        gradients = [
            _combine(g, a, self.weight)
            for g, a in zip(gradients, adversarial_gradients, strict=True)
        ]
        self.optimizer.apply(gradients, variables)
        # Under a strategy each replica's loss is its share of the mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        _keras_private.loss_tracker(self).update_state(
            loss * replicas, sample_weight=tf.shape(x)[0]
        )
        self.adversarial_loss_tracker.update_state(adversarial_loss * replicas)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def _jax_train_step(self, state, data):
        import jax

        (trainable, non_trainable, optimizer_variables, metrics_variables) = (
            state
        )
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        embeddings = _current_value(
            self._embedding.embeddings,
            [*zip(self.trainable_variables, trainable, strict=True)]
            + [*zip(self.non_trainable_variables, non_trainable, strict=True)],
        )

        def loss_of(trainable, non_trainable, metrics_variables, delta):
            mapping = [
                *zip(self.trainable_variables, trainable, strict=True),
                *zip(self.non_trainable_variables, non_trainable, strict=True),
            ]
            with keras.StatelessScope(state_mapping=mapping) as scope:
                y_pred = self._perturbed_call(x, delta, True)
            # Dropout seed generators advance.
            non_trainable = [
                scope.get_current_value(v) for v in self.non_trainable_variables
            ]
            loss, (_, _, metrics_variables) = self.stateless_compute_loss(
                trainable,
                non_trainable,
                metrics_variables,
                x=x,
                y=y,
                y_pred=y_pred,
                sample_weight=sample_weight,
                training=True,
            )
            return loss, (y_pred, non_trainable, metrics_variables)

        gradient_of = jax.value_and_grad(loss_of, argnums=(0, 3), has_aux=True)
        (loss, (y_pred, non_trainable, metrics_variables)), grads = gradient_of(
            trainable, non_trainable, metrics_variables, self._zero_delta(x)
        )
        gradients, embedding_gradient = grads
        r_adv = adversarial_perturbation(
            embedding_gradient,
            self.epsilon,
            self._scale(embeddings),
        )
        (adversarial_loss, (_, non_trainable, metrics_variables)), adv = (
            jax.value_and_grad(loss_of, has_aux=True)(
                trainable, non_trainable, metrics_variables, r_adv
            )
        )
        gradients = [
            _combine(g, a, self.weight)
            for g, a in zip(gradients, adv, strict=True)
        ]
        trainable, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable
        )
        mapping = list(
            zip(self.metrics_variables, metrics_variables, strict=True)
        )
        with keras.StatelessScope(state_mapping=mapping) as scope:
            _keras_private.loss_tracker(self).update_state(
                loss, sample_weight=ops.shape(x)[0]
            )
            self.adversarial_loss_tracker.update_state(adversarial_loss)
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_variables = [
            scope.get_current_value(v) for v in self.metrics_variables
        ]
        return logs, (
            trainable,
            non_trainable,
            optimizer_variables,
            metrics_variables,
        )


def _combine(gradient, adversarial, weight):
    """`gradient + weight * adversarial`, either of them None or (under
    TensorFlow, for an embedding) `tf.IndexedSlices`."""
    if adversarial is None:
        return gradient
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(adversarial, tf.IndexedSlices):
            adversarial = tf.IndexedSlices(
                adversarial.values * weight,
                adversarial.indices,
                adversarial.dense_shape,
            )
            if gradient is None:
                return adversarial
            if isinstance(gradient, tf.IndexedSlices):
                return tf.IndexedSlices(
                    tf.concat([gradient.values, adversarial.values], 0),
                    tf.concat([gradient.indices, adversarial.indices], 0),
                    gradient.dense_shape,
                )
            return gradient + tf.convert_to_tensor(adversarial)
    if gradient is None:
        return weight * adversarial
    return gradient + weight * adversarial


def _current_value(variable, pairs):
    """The value that `(variable, value)` pairs give `variable`."""
    for candidate, value in pairs:
        if candidate is variable:
            return value
    raise ValueError(f"{variable.path} is not a variable of this model.")


def _backend_message(backend: str) -> str:
    return (
        f"AdversarialTraining runs on the TensorFlow and JAX backends, not "
        f"{backend!r}: set KERAS_BACKEND=tensorflow or jax."
    )


def _find_embedding(classifier, name):
    if not isinstance(classifier, keras.Model) or not hasattr(
        classifier, "inputs"
    ):
        raise ValueError(
            "AdversarialTraining needs a Functional keras.Model (built with "
            f"keras.Input), got {type(classifier).__name__}."
        )
    if name is not None:
        layer = classifier.get_layer(name)
        if not isinstance(layer, keras.layers.Embedding):
            raise ValueError(
                f"Layer {name!r} is a {type(layer).__name__}, not an "
                "Embedding: pass the name of the embedding to perturb."
            )
        return layer
    found = [
        layer
        for layer in classifier.layers
        if isinstance(layer, keras.layers.Embedding)
    ]
    if len(found) != 1:
        raise ValueError(
            f"The classifier has {len(found)} Embedding layers; pass "
            "`embedding_layer=` with the name of the one to perturb."
        )
    return found[0]


def _perturbable_copy(classifier, embedding, hook):
    """`classifier` with `hook` after `embedding`; every other layer is
    shared with `classifier`, so both read and train the same weights."""

    def call_function(layer, *args, **kwargs):
        outputs = layer(*args, **kwargs)
        return hook(outputs) if layer is embedding else outputs

    return keras.models.clone_model(
        classifier,
        clone_function=lambda layer: layer,
        call_function=call_function,
    )
