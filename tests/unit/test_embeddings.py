"""PPMI-SVD word vectors on a tiny corpus with known structure."""

import numpy as np
import pytest

from toolkit.text.embeddings import (
    cooccurrence_counts,
    ppmi,
    ppmi_svd_embeddings,
)


def test_cooccurrence_counts_by_hand():
    # ids 0, 1 are padding / OOV and never counted.
    counts = cooccurrence_counts(
        [np.array([2, 3, 4]), np.array([3, 1, 2])], vocab_size=5, window=2
    )
    dense = counts.toarray()
    np.testing.assert_allclose(dense, dense.T)
    # Adjacent in doc 1 (1.0), two apart across the OOV in doc 2 (0.5).
    assert dense[2, 3] == 1.5
    assert dense[2, 4] == 0.5  # two apart in doc 1
    assert dense[3, 4] == 1.0
    assert dense[0].sum() == dense[1].sum() == 0
    # Documents do not run into each other: 4 (end of doc 1) and 3 (start of
    # doc 2) co-occur only inside doc 1.
    assert dense[4, 3] == 1.0


def test_ppmi_is_positive_and_zero_for_independent_pairs():
    counts = cooccurrence_counts(
        [np.array([2, 3, 2, 3, 2, 3]), np.array([4, 5, 4, 5])], 6, window=1
    )
    matrix = ppmi(counts, context_power=1.0).toarray()
    assert (matrix >= 0).all()
    assert matrix[2, 3] > 0 and matrix[2, 4] == 0


def test_words_in_the_same_contexts_get_similar_vectors():
    rng = np.random.default_rng(0)
    # Words 2 and 3 appear with contexts 6-9; words 4 and 5 with 10-13.
    docs = []
    for _ in range(400):
        a, b = rng.choice([2, 3]), rng.choice([4, 5])
        docs.append(np.array([a, rng.integers(6, 10), a]))
        docs.append(np.array([b, rng.integers(10, 14), b]))
    vectors = ppmi_svd_embeddings(docs, vocab_size=16, dim=4, window=2)
    assert vectors.shape == (16, 4) and vectors.dtype == np.float32
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[2] @ unit[3] > 0.9
    assert unit[2] @ unit[4] < unit[2] @ unit[3] - 0.5
    np.testing.assert_allclose(
        np.linalg.norm(vectors[2:6], axis=1), 0.05 * np.sqrt(4), rtol=1e-5
    )
    assert np.abs(vectors[14:]).max() <= 0.05  # unseen words: small random


def test_dimension_must_fit_the_vocabulary():
    with pytest.raises(ValueError, match="`dim`=8"):
        ppmi_svd_embeddings([np.array([2, 3, 2])], vocab_size=4, dim=8)
