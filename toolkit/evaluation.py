"""Evaluation of binary classifiers, and the TF-IDF baseline every
sentiment run is compared with."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn import metrics
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression


def binary_report(labels, probabilities, threshold: float = 0.5) -> dict:
    """Accuracy, ROC AUC, precision, recall, F1 and the confusion matrix
    (`[[tn, fp], [fn, tp]]`) of positive-class probabilities."""
    labels = np.asarray(labels).astype(int).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    if labels.shape != probabilities.shape:
        raise ValueError(
            f"Got {labels.size} labels but {probabilities.size} probabilities."
        )
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("Some probabilities are NaN or infinite.")
    predictions = (probabilities >= threshold).astype(int)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        labels, predictions, average="binary", zero_division=0
    )
    return {
        "examples": int(labels.size),
        "accuracy": float(metrics.accuracy_score(labels, predictions)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "confusion_matrix": metrics.confusion_matrix(
            labels, predictions, labels=[0, 1]
        ).tolist(),
    }


def predict_dataset(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """`(labels, probabilities)` over a dataset of `(inputs, labels)`
    batches, kept aligned whatever order the dataset yields them in."""
    labels, probabilities = [], []
    for inputs, batch_labels in dataset:
        probabilities.append(np.asarray(model.predict_on_batch(inputs)).ravel())
        labels.append(np.asarray(batch_labels).ravel())
    return np.concatenate(labels), np.concatenate(probabilities)


def char_lm_cross_entropy(
    model,
    ids: np.ndarray,
    batch_size: int = 1,
    sequence_length: int = 256,
) -> dict:
    """Mean cross-entropy of a character LM over a whole split, in nats and
    bits per character.

    A stateful copy of `model` reads the split as `batch_size` contiguous
    streams in chunks of `sequence_length`, carrying its state from chunk to
    chunk, so every prediction sees all the text before it in its stream.
    With `batch_size=1` every character but the first is scored; larger
    batches drop the tail that does not fill a whole batch (fewer than
    `batch_size * sequence_length` characters).
    """
    from toolkit.data.char_lm import tbptt_arrays
    from toolkit.sampling import stateful_copy

    inputs, targets = tbptt_arrays(ids, batch_size, sequence_length)
    runner = stateful_copy(model, batch_size)
    total = 0.0
    for chunk, chunk_targets in zip(inputs, targets, strict=True):
        logits = np.asarray(runner.predict_on_batch(chunk), np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=-1))
        picked = np.take_along_axis(shifted, chunk_targets[..., None], -1)
        total += float(np.sum(log_norm - picked[..., 0]))
    count = int(targets.size)
    nats = total / count
    return {"nats": nats, "bits": nats / np.log(2.0), "characters": count}


def tfidf_bigram_baseline(
    train_texts: Sequence[str],
    train_labels,
    test_texts: Sequence[str],
    test_labels,
    C: float = 10.0,
) -> dict:
    """TF-IDF of word unigrams and bigrams (sublinear tf, min_df 2) with
    logistic regression, trained on `train_texts` and scored on
    `test_texts`. Returns `binary_report` plus `seconds`."""
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, lowercase=True
    )
    features = vectorizer.fit_transform(train_texts)
    classifier = LogisticRegression(C=C, max_iter=2000)
    classifier.fit(features, np.asarray(train_labels))
    probabilities = classifier.predict_proba(vectorizer.transform(test_texts))[
        :, 1
    ]
    report = binary_report(test_labels, probabilities)
    report["seconds"] = time.perf_counter() - start
    report["model"] = (
        "TF-IDF word 1-2-grams (sublinear tf, min_df=2) + logistic "
        f"regression (C={C})"
    )
    return report
