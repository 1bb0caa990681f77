"""Small exports to serve in tests: a text classifier and a character LM,
with tight `ServingLimits` so that each bound is cheap to reach."""

import pathlib

import keras

from toolkit.data import CharVocabulary, make_vectorizer
from toolkit.serving import export
from toolkit.text import models
from toolkit.text.encoder import EncoderSpec

LIMITS = export.ServingLimits(
    max_texts=12, max_text_chars=500, max_prime_chars=20, max_generate_length=50
)
VOCABULARY = CharVocabulary(tuple("abcdefgh \n"))
TRAIN_TEXTS = ["a great film superb acting", "dull awful waste", "great"]


def small_classifier(seed: int = 3):
    """(model, vectorizer): a 2-layer bidirectional LSTM classifier."""
    keras.utils.set_random_seed(seed)
    vectorizer = make_vectorizer(TRAIN_TEXTS, 30)
    encoder = EncoderSpec(
        vectorizer.vocabulary_size(), 8, units=[6, 6], bidirectional=True
    )
    model = models.build_text_classifier(encoder, seed=1)
    return model, vectorizer


def export_small_classifier(path: pathlib.Path, **kwargs) -> pathlib.Path:
    model, vectorizer = small_classifier()
    kwargs = {"max_length": 40, "limits": LIMITS, **kwargs}
    return export.export_text_classifier(model, vectorizer, path, **kwargs)


def small_char_lm(seed: int = 5):
    keras.utils.set_random_seed(seed)
    return models.build_char_lm(
        EncoderSpec(len(VOCABULARY), embedding_dim=4, units=[8]), seed=0
    )


def export_small_char_lm(path: pathlib.Path) -> pathlib.Path:
    return export.export_char_lm(small_char_lm(), VOCABULARY, path, LIMITS)
