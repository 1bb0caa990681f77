"""Encoder pretraining: the fingerprint cache, resume after a kill, the
classifier starting from exactly the LM's weights, and mismatches refused
with their differences."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from data_fixtures import synthetic_imdb
from toolkit import data
from toolkit.text import encoder_cache, models, pretraining
from toolkit.text.encoder import EncoderSpec
from toolkit.text.word_lm import WordLanguageModel
from toolkit.training import resumable


@pytest.fixture(scope="module")
def corpus():
    reviews = synthetic_imdb(train_per_class=60, test_per_class=1, seed=3)
    texts = [
        text
        for (split, _), items in reviews.items()
        if split == "train"
        for _, _, text in items
    ]
    vectorizer = data.make_vectorizer(texts, 40)
    return vectorizer, texts[:100], texts[100:]


def tiny_config(vectorizer, dropout=0.1, **changes):
    config = pretraining.PretrainConfig(
        EncoderSpec(
            vectorizer.vocabulary_size(),
            embedding_dim=8,
            units=(12,),
            dropout=dropout,
        ),
        optimizer=dataclasses.replace(
            pretraining.default_lm_optimizer(), warmup_steps=5
        ),
        num_sampled=10,
        batch_size=4,
        sequence_length=10,
        epochs=2,
        eval_batch_size=2,
        seed=0,
    )
    return dataclasses.replace(config, **changes)


def pretrain(corpus, cache, config=None, log=None, **kwargs):
    vectorizer, train_texts, heldout_texts = corpus
    return pretraining.pretrain_encoder(
        config or tiny_config(vectorizer),
        vectorizer,
        train_texts,
        heldout_texts,
        cache,
        log=log or (lambda message: None),
        verbose=0,
        **kwargs,
    )


def test_a_second_run_reuses_the_cached_encoder(corpus, tmp_path, monkeypatch):
    first = pretrain(corpus, tmp_path)
    assert first.info["epochs_run"] == 2
    assert len(first.info["history"]) == 2
    assert all(
        np.isfinite(row["val_perplexity"]) for row in first.info["history"]
    )

    def no_training(*args, **kwargs):
        raise AssertionError("the cached encoder was trained again")

    monkeypatch.setattr(resumable, "train_with_resume", no_training)
    messages = []
    second = pretrain(corpus, tmp_path, log=messages.append)
    assert second.path == first.path
    assert "Reusing the pretrained encoder" in messages[0]
    for name in encoder_cache.ENCODER_LAYERS:
        for a, b in zip(first.weights[name], second.weights[name], strict=True):
            np.testing.assert_array_equal(a, b)
    monkeypatch.undo()

    vectorizer = corpus[0]
    changed = pretrain(
        corpus, tmp_path, tiny_config(vectorizer, dropout=0.2), messages.append
    )
    assert changed.path != first.path
    assert any("Pretraining the encoder" in m for m in messages[1:])
    assert not np.array_equal(
        changed.weights["deep_rnn"][0], first.weights["deep_rnn"][0]
    )
    other_texts = pretraining.fingerprint(
        tiny_config(vectorizer),
        vectorizer.get_vocabulary(),
        corpus[1][:-1],
        corpus[2],
    )
    assert other_texts != first.info["fingerprint"]


@pytest.mark.slow
def test_a_killed_pretraining_resumes_to_the_same_encoder(
    corpus, tmp_path, monkeypatch
):
    straight = pretrain(corpus, tmp_path / "straight")

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                raise KeyboardInterrupt("simulated kill")

    original = resumable.train_with_resume

    def with_kill(*args, callbacks=(), **kwargs):
        return original(*args, callbacks=[*callbacks, Kill()], **kwargs)

    monkeypatch.setattr(resumable, "train_with_resume", with_kill)
    with pytest.raises(KeyboardInterrupt):
        pretrain(corpus, tmp_path / "resumed")
    folder = next((tmp_path / "resumed").iterdir())
    assert not (folder / encoder_cache.ENCODER_FILE).exists()
    state = json.loads((folder / "train_state.json").read_text())
    assert state["epochs_done"] == 1
    monkeypatch.undo()
    resumed = pretrain(corpus, tmp_path / "resumed")
    for name in encoder_cache.ENCODER_LAYERS:
        for a, b in zip(
            straight.weights[name], resumed.weights[name], strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        resumed.info["heldout_perplexity"],
        straight.info["heldout_perplexity"],
        rtol=1e-5,
    )


def test_the_classifier_starts_from_exactly_the_lm_weights(corpus, tmp_path):
    vectorizer = corpus[0]
    config = tiny_config(vectorizer)
    encoder = pretrain(corpus, tmp_path)
    # The LM as it was saved (its best epoch), rebuilt from the checkpoint.
    lm = WordLanguageModel(config.encoder, num_sampled=config.num_sampled)
    lm.build((None, None))
    lm.load_weights(encoder.path / "checkpoints" / "best.weights.h5")
    classifier = models.build_text_classifier(
        config.encoder, pooling="last_mean_max"
    )
    encoder_cache.check_encoder(
        encoder, config.encoder.shape(), vectorizer.get_vocabulary()
    )
    encoder_cache.apply_encoder(classifier, encoder)
    for name, layer in lm.encoder_layers().items():
        ours = classifier.get_layer(name).weights
        assert len(ours) == len(layer.weights) > 0
        for a, b in zip(ours, layer.weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_mismatched_encoder_is_refused_with_the_differences(corpus, tmp_path):
    vectorizer = corpus[0]
    config = tiny_config(vectorizer)
    encoder = pretrain(corpus, tmp_path)
    wanted = {**config.encoder.shape(), "units": [16], "cell": "vanilla"}
    vocabulary = vectorizer.get_vocabulary()
    with pytest.raises(encoder_cache.EncoderMismatchError) as caught:
        encoder_cache.check_encoder(encoder, wanted, vocabulary[:-1] + ["zzz"])
    message = str(caught.value)
    assert "units: encoder [12] != classifier [16]" in message
    assert "cell: encoder 'lstm' != classifier 'vanilla'" in message
    assert "vocabulary: the encoder was trained with other word ids" in message
    assert "embedding_dim" not in message
    wider = models.build_text_classifier(
        dataclasses.replace(config.encoder, units=(16,))
    )
    with pytest.raises(encoder_cache.EncoderMismatchError, match="deep_rnn"):
        encoder_cache.apply_encoder(wider, encoder)
    with pytest.raises(encoder_cache.EncoderMismatchError, match="no encoder"):
        encoder_cache.load_encoder(tmp_path)


def test_lm_reviews_never_hold_out_labelled_text():
    labelled = [f"labelled {i}" for i in range(10)]
    unlabelled = [f"unlabelled {i}" for i in range(20)]
    train, heldout = pretraining.lm_reviews(labelled, unlabelled, 5, seed=1)
    assert len(heldout) == 5 and all(t.startswith("un") for t in heldout)
    assert sorted(train + heldout) == sorted(labelled + unlabelled)
    again = pretraining.lm_reviews(labelled, unlabelled, 5, seed=1)
    assert again == (train, heldout)
    capped, same_heldout = pretraining.lm_reviews(
        labelled, unlabelled, 5, max_reviews=8, seed=1
    )
    assert len(capped) == 8 and set(capped) <= set(train)
    assert same_heldout == heldout
    with pytest.raises(ValueError, match="hold out at least one"):
        pretraining.lm_reviews(labelled, unlabelled, 20)


def test_the_cache_is_one_absolute_folder_whatever_the_working_folder(
    corpus, tmp_path, monkeypatch
):
    home_cache = encoder_cache.DEFAULT_CACHE
    assert home_cache.is_absolute()
    assert home_cache.parts[-3:] == (".cache", "toolkit", "encoders")
    monkeypatch.delenv(encoder_cache.CACHE_ENV_VAR, raising=False)
    assert encoder_cache.encoder_cache_dir() == home_cache.resolve()
    monkeypatch.setenv(encoder_cache.CACHE_ENV_VAR, str(tmp_path / "shared"))
    assert encoder_cache.encoder_cache_dir() == tmp_path / "shared"
    # A relative setting is resolved once, against the folder of the run
    # that names it, and logged as an absolute path.
    monkeypatch.chdir(tmp_path)
    assert encoder_cache.encoder_cache_dir("here") == tmp_path / "here"

    messages = []
    first = pretrain(corpus, None, log=messages.append)
    assert first.path.parent == tmp_path / "shared"
    assert f"word LM in {tmp_path / 'shared'}/" in messages[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    messages.clear()
    assert pretrain(corpus, None, log=messages.append).path == first.path
    assert messages[0].startswith(
        f"Reusing the pretrained encoder in {first.path} "
    )


def test_windows_batching_is_cached_apart_and_streams_cannot_be_split(
    corpus,
):
    vectorizer, train_texts, heldout_texts = corpus
    vocabulary = vectorizer.get_vocabulary()
    streams = tiny_config(vectorizer)
    windows = dataclasses.replace(streams, batching="windows")
    key = pretraining.fingerprint(
        streams, vocabulary, train_texts, heldout_texts
    )
    assert key != pretraining.fingerprint(
        windows, vocabulary, train_texts, heldout_texts
    )
    # Settings added later are left out at their neutral values, so the
    # fingerprints (cache folders) of earlier encoders do not change.
    # The settings as toolkit 0.1 spelled them: flat, without the later
    # ones.
    settings = {
        "vocab_size": len(vocabulary),
        "embedding_dim": 8,
        "units": [12],
        "cell": "lstm",
        "residual": False,
        "dropout": 0.1,
        "embedding_dropout": 0.1,
        "num_sampled": 10,
        "batch_size": 4,
        "sequence_length": 10,
        "epochs": 2,
        "optimizer": "adam",
        "learning_rate": 2e-3,
        "warmup_steps": 5,
        "clipnorm": 1.0,
        "max_train_seconds": None,
        "eval_batch_size": 2,
        "seed": 0,
    }
    legacy = encoder_cache.digest(
        [
            json.dumps(settings, sort_keys=True),
            encoder_cache.digest(vocabulary),
            encoder_cache.digest(train_texts),
            encoder_cache.digest(heldout_texts),
        ]
    )
    assert key == legacy

    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(encoder_cache.EncoderMismatchError, match="windows"):
        pretraining.pretrain_encoder(
            streams,
            vectorizer,
            train_texts,
            heldout_texts,
            "unused",
            strategy=TwoReplicas(),
        )


def test_an_awd_regularised_lm_pretrains_into_its_own_cache_entry(
    corpus, tmp_path
):
    vectorizer = corpus[0]
    plain = pretrain(corpus, tmp_path)
    awd = pretrain(
        corpus,
        tmp_path,
        config=tiny_config(
            vectorizer,
            word_type_dropout=0.1,
            recurrent_weight_dropout=0.3,
            locked_dropout=True,
        ),
    )
    assert awd.path != plain.path
    assert awd.info["config"]["recurrent_weight_dropout"] == 0.3
    assert all(np.isfinite(r["val_perplexity"]) for r in awd.info["history"])
    # The same shapes: either encoder starts the same classifier.
    for name in encoder_cache.ENCODER_LAYERS:
        assert [w.shape for w in awd.weights[name]] == [
            w.shape for w in plain.weights[name]
        ]


def test_a_backward_stream_reads_each_review_reversed(corpus):
    vectorizer, train_texts, _ = corpus
    texts = train_texts[:3]
    forward = pretraining.token_stream(texts, vectorizer, seed=0)
    backward = pretraining.token_stream(texts, vectorizer, seed=0, reverse=True)
    # Same reviews in the same order, each followed by its end marker (0).
    ends = np.flatnonzero(forward == 0)
    np.testing.assert_array_equal(ends, np.flatnonzero(backward == 0))
    starts = np.concatenate([[0], ends[:-1] + 1])
    for start, end in zip(starts, ends, strict=True):
        np.testing.assert_array_equal(
            backward[start:end], forward[start:end][::-1]
        )


def test_encoders_cached_by_toolkit_0_1_are_found_again():
    """The fingerprint (the cache entry's name) of the same settings is the
    one toolkit 0.1 computed from its flat settings, so a cache filled
    before the settings became specs is still used."""
    vocabulary = ["", "[UNK]", "the", "movie"]
    texts, heldout = ["the movie", "movie"], ["the"]
    encoder = EncoderSpec(4, 256, units=(256,), dropout=0.1)
    defaults = pretraining.PretrainConfig(encoder)
    awd_backward = pretraining.PretrainConfig(
        EncoderSpec(
            4, 256, units=(8, 8), cell="vanilla", residual=True, dropout=0.1
        ),
        optimizer=dataclasses.replace(
            pretraining.default_lm_optimizer(),
            name="sgd",
            warmup_steps=5,
            clipnorm=0.5,
        ),
        batching="windows",
        word_type_dropout=0.1,
        recurrent_weight_dropout=0.2,
        locked_dropout=True,
        reverse=True,
    )
    # Computed by toolkit 0.1 (PretrainConfig(vocab_size=4) and the same
    # settings spelled flat).
    expected = {
        "2ef57a77fc0e6c9d94f7187e148a69efe05805c5d626269ddb0db61631fba395": (
            defaults
        ),
        "0a032edc0be9d7477edc1b82176d80bac8f18f012eb081468327827d6bb21f2e": (
            awd_backward
        ),
    }
    for digest, config in expected.items():
        assert (
            pretraining.fingerprint(config, vocabulary, texts, heldout)
            == digest
        )
    # and a setting the specs added changes it
    sloped = dataclasses.replace(
        defaults,
        optimizer=dataclasses.replace(defaults.optimizer, schedule="slanted"),
    )
    assert pretraining.fingerprint(sloped, vocabulary, texts, heldout) not in (
        expected
    )
