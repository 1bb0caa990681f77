"""Character-LM library pieces: one-step inference, TBPTT batching, whole
split scoring, and the SavedModel export."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import run_script
from toolkit.data import CharVocabulary, tbptt_arrays, tbptt_dataset
from toolkit.deep import DeepRNN
from toolkit.serving import export
from toolkit.text import evaluation, models, sampling
from toolkit.text.encoder import EncoderSpec

VOCABULARY = CharVocabulary(tuple("abcdefgh \n"))


def lm(stateful=False, batch_size=None, **kwargs):
    settings = dict(embedding_dim=8, units=[16, 16])
    settings.update(kwargs)
    encoder = EncoderSpec(len(VOCABULARY), **settings)
    return models.build_char_lm(
        encoder, stateful=stateful, batch_size=batch_size, seed=0
    )


def random_ids(count, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, len(VOCABULARY), count).astype("int32")


@pytest.mark.parametrize(
    "cell, units, residual",
    [("lstm", [16, 16], False), ("vanilla", [12, 12, 12], True)],
)
def test_step_by_step_equals_the_whole_sequence(rng, cell, units, residual):
    """One timestep at a time through `initial_state` / `return_state`
    gives what one call on the whole sequence gives."""
    stack = DeepRNN.from_spec(
        units,
        cell=cell,
        residual=residual,
        return_sequences=True,
        return_state=True,
    )
    x = rng.standard_normal((3, 9, 5)).astype("float32")
    whole, *final = stack(x)
    states = stack.get_initial_state(3)
    steps = []
    for t in range(9):
        y, *states = stack(x[:, t : t + 1], initial_state=states)
        steps.append(np.asarray(y)[:, 0])
    np.testing.assert_allclose(np.stack(steps, 1), whole, atol=1e-6)
    for got, expected in zip(states, final, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_state_runner_needs_a_one_way_stack():
    from toolkit.stepping import StateRunner

    both = DeepRNN.from_spec([4, 4], bidirectional=True, return_sequences=True)
    embedding = keras.layers.Embedding(5, 2)
    with pytest.raises(ValueError, match="bidirectional"):
        StateRunner(embedding, both)


def test_tbptt_dataset_offsets_and_wraps_like_the_arrays():
    ids = np.arange(500, dtype=np.int32)
    inputs, targets = tbptt_arrays(ids[3:], batch_size=4, sequence_length=6)
    total = len(inputs)
    batches = list(
        tbptt_dataset(
            ids, 4, 6, offset=3, first_batch=total - 2, num_batches=5
        ).as_numpy_iterator()
    )
    assert len(batches) == 5
    for k, (x, y) in enumerate(batches):
        index = (total - 2 + k) % total
        np.testing.assert_array_equal(x, inputs[index])
        np.testing.assert_array_equal(y, targets[index])


def test_stateful_tbptt_loss_equals_the_loss_of_whole_sequences():
    """The training path (a stateful model over consecutive TBPTT batches)
    scores exactly what the stateless model scores on each stream read at
    once, with the same weights."""
    ids = random_ids(2 * 40 + 1)
    stateful = lm(stateful=True, batch_size=2)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    stateful.compile(loss=loss)
    losses = [
        stateful.test_on_batch(x, y)
        for x, y in tbptt_dataset(ids, 2, 8).as_numpy_iterator()
    ]
    stateless = lm()
    stateless.set_weights(stateful.get_weights())
    inputs, targets = tbptt_arrays(ids, 2, 40)
    whole = loss(targets[0], stateless.predict_on_batch(inputs[0]))
    assert len(losses) == 5
    np.testing.assert_allclose(np.mean(losses), float(whole), rtol=1e-5)


def test_bits_per_character_of_a_fixed_model_equal_a_hand_computation():
    """With zero output weights the logits are the bias b at every step, so
    the cross-entropy is the mean of -log softmax(b)[next char]."""
    model = lm(units=[8])
    head = model.get_layer("logits")
    bias = np.linspace(-1.0, 2.0, len(VOCABULARY)).astype("float32")
    head.set_weights([np.zeros_like(head.get_weights()[0]), bias])
    ids = VOCABULARY.encode("a cab\nbad head\n" * 7)
    log_probs = bias - np.log(np.sum(np.exp(bias.astype(np.float64))))
    nats = -np.mean(log_probs[ids[1:]])
    result = evaluation.char_lm_cross_entropy(model, ids, 3, 10)
    assert result["characters"] == len(ids) - 1
    np.testing.assert_allclose(result["nats"], nats, rtol=1e-6)
    np.testing.assert_allclose(result["bits"], nats / np.log(2), rtol=1e-6)


def test_parallel_streams_score_every_character_once():
    """Three streams (the last one padded) give the mean of scoring each
    stream on its own from a zero state."""
    model = lm()
    ids = random_ids(100)
    result = evaluation.char_lm_cross_entropy(model, ids, 3, 7)
    stream = -(-99 // 3)
    total = 0.0
    for b in range(3):
        part = ids[b * stream : (b + 1) * stream + 1]
        alone = evaluation.char_lm_cross_entropy(model, part, 1, 7)
        total += alone["nats"] * alone["characters"]
    assert result["characters"] == 99
    np.testing.assert_allclose(result["nats"], total / 99, rtol=1e-5)


def test_validation_callback_logs_nats_and_bits():
    model = lm()
    ids = random_ids(60)
    callback = evaluation.CharLMValidation(ids, 2, 8)
    callback.set_model(model)
    logs = {"loss": 2.0}
    callback.on_epoch_end(0, logs)
    expected = evaluation.char_lm_cross_entropy(model, ids, 2, 8)["nats"]
    np.testing.assert_allclose(logs["val_loss"], expected, rtol=1e-6)
    np.testing.assert_allclose(logs["val_bpc"], expected / np.log(2))
    np.testing.assert_allclose(logs["bpc"], 2.0 / np.log(2))


def test_sample_writer_writes_one_sample_per_temperature(tmp_path):
    model = lm()
    writer = sampling.SampleWriter(
        tmp_path / "samples", VOCABULARY, "ab", (0.0, 1.0), 20, seed=3
    )
    writer.set_model(model)
    writer.on_epoch_end(1)
    text = (tmp_path / "samples" / "epoch_002.txt").read_text()
    greedy = sampling.generate(model, VOCABULARY, "ab", 20, temperature=0.0)
    assert f"--- temperature 0 ---\nab{greedy}\n" in text
    assert "--- temperature 1 ---\nab" in text


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = lm(units=[16, 16], residual=True)
    # Sharpen the output so greedy decoding is not decided by round-off.
    head = model.get_layer("logits")
    head.set_weights([w * 4 for w in head.get_weights()])
    path = export.export_char_lm(
        model, VOCABULARY, tmp_path_factory.mktemp("export") / "lm"
    )
    return model, path


def call_generate(loaded, prime, length, temperature, seed):
    return (
        loaded.generate(
            tf.constant(prime),
            tf.constant(length, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(seed, tf.int64),
        )
        .numpy()
        .decode()
    )


def test_exported_greedy_generation_and_probabilities_match_the_model(
    exported,
):
    model, path = exported
    loaded = tf.saved_model.load(str(path))
    greedy = call_generate(loaded, "bad ", 25, 0.0, 0)
    assert greedy == sampling.generate(
        model, VOCABULARY, "bad ", 25, temperature=0.0
    )
    outputs = loaded.next_char_probs(tf.constant("cab"))
    logits = model.predict_on_batch(VOCABULARY.encode("cab")[None])[0, -1]
    np.testing.assert_allclose(
        outputs["probabilities"].numpy(),
        tf.nn.softmax(logits).numpy(),
        atol=1e-6,
    )
    characters = [c.decode() for c in outputs["characters"].numpy()]
    assert characters == list(VOCABULARY.chars)


def test_exported_sampling_is_seeded_and_checks_its_prime(exported):
    _, path = exported
    loaded = tf.saved_model.load(str(path))
    first = call_generate(loaded, "a", 40, 1.0, 11)
    assert first == call_generate(loaded, "a", 40, 1.0, 11)
    assert first != call_generate(loaded, "a", 40, 1.0, 12)
    assert len(first) == 40 and set(first) <= set(VOCABULARY.chars)
    assert call_generate(loaded, "a", 0, 1.0, 11) == ""
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        call_generate(loaded, "abZ", 5, 1.0, 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty"):
        call_generate(loaded, "", 5, 1.0, 0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature"):
        call_generate(loaded, "a", 5, -1.0, 0)


@pytest.mark.slow
def test_exported_generate_runs_without_toolkit(exported):
    _, path = exported
    script = f"""
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load({str(path)!r})
text = loaded.generate(prime=tf.constant("head"), length=tf.constant(30),
    temperature=tf.constant(0.8), seed=tf.constant(5, tf.int64))
probs = loaded.next_char_probs(prime=tf.constant("head"))["probabilities"]
print(json.dumps({{
    "text": text.numpy().decode(),
    "sum": float(tf.reduce_sum(probs)),
    "toolkit": any(m.split(".")[0] == "toolkit" for m in sys.modules),
    "keras": "keras" in sys.modules,
}}))
"""
    result = json.loads(run_script(script).strip().splitlines()[-1])
    assert not result["toolkit"]
    assert len(result["text"]) == 30
    np.testing.assert_allclose(result["sum"], 1.0, rtol=1e-5)
    loaded = tf.saved_model.load(str(path))
    assert result["text"] == call_generate(loaded, "head", 30, 0.8, 5)


def test_a_preset_time_cap_is_lifted_for_another_corpus():
    """The `shakespeare` preset's 130 s cap is planned for Tiny
    Shakespeare: a user's --corpus trains its planned passes, unless
    --max-train-seconds is given too."""
    from recipes.char_lm import uncap_other_corpus
    from recipes.configs.char_lm import PRESETS
    from toolkit.training import config as config_lib

    def parsed(*argv):
        preset, config = config_lib.parse_config(PRESETS, argv, "shakespeare")
        return uncap_other_corpus(preset, config, list(argv))

    assert parsed().max_train_seconds == 130
    assert parsed("--corpus=my_book.txt").max_train_seconds is None
    book = parsed("--corpus=my_book.txt", "--max-train-seconds=60")
    assert book.max_train_seconds == 60
    same = parsed("--preset=shakespeare-layernorm", "--corpus=shakespeare")
    assert same.max_train_seconds == 130
