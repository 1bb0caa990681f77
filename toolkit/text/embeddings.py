"""Word vectors from unlabelled text: truncated SVD of the positive
pointwise mutual information (PPMI) matrix of word co-occurrences.

Counting-based vectors (Levy, Goldberg & Dagan, TACL 2015) take a minute on
a CPU for a 20,000-word vocabulary and ~20M tokens, and give a recurrent
classifier a start that knows which words behave alike, learned from text
it is not evaluated on (for IMDB: the training and unlabelled reviews).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD

from toolkit import _checks


def ragged_rows(tokens) -> list[np.ndarray]:
    """The rows of a `tf.RaggedTensor` of token ids as numpy arrays."""
    values = tokens.flat_values.numpy()
    splits = tokens.row_splits.numpy()
    return [values[a:b] for a, b in zip(splits[:-1], splits[1:], strict=True)]


def cooccurrence_counts(
    documents: Iterable[np.ndarray],
    vocab_size: int,
    window: int = 5,
    first_word_id: int = 2,
) -> sparse.csr_matrix:
    """Symmetric `(vocab_size, vocab_size)` counts of word pairs at most
    `window` positions apart within a document, weighted 1/distance. Ids
    below `first_word_id` (padding, out-of-vocabulary) are not counted."""
    window = _checks.check_positive_int("window", window)
    counts = sparse.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    # One stream with `window` separators between documents, so no pair
    # crosses a document boundary.
    separator = np.full(window, -1, dtype=np.int64)
    pieces = []
    for ids in documents:
        pieces.append(np.asarray(ids, dtype=np.int64))
        pieces.append(separator)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    for distance in range(1, window + 1):
        left, right = stream[:-distance], stream[distance:]
        keep = (left >= first_word_id) & (right >= first_word_id)
        counts = counts + sparse.csr_matrix(
            (np.full(keep.sum(), 1.0 / distance), (left[keep], right[keep])),
            shape=(vocab_size, vocab_size),
        )
    return (counts + counts.T).tocsr()


def ppmi(counts: sparse.csr_matrix, context_power: float = 0.75):
    """Positive PMI of a co-occurrence matrix, with context counts raised to
    `context_power` (smoothing that keeps rare contexts from dominating)."""
    counts = counts.tocoo()
    total = counts.sum()
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context_totals = np.asarray(counts.sum(axis=0)).ravel() ** context_power
    context_totals = context_totals / context_totals.sum()
    pmi = np.log(
        counts.data
        * 1.0
        / (word_totals[counts.row] / total)
        / context_totals[counts.col]
        / total
    )
    keep = pmi > 0
    return sparse.csr_matrix(
        (pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape
    )


def ppmi_svd_embeddings(
    documents: Iterable[np.ndarray],
    vocab_size: int,
    dim: int,
    window: int = 5,
    scale: float = 0.05,
    seed: int = 0,
) -> np.ndarray:
    """`(vocab_size, dim)` float32 vectors: the rank-`dim` SVD of the PPMI
    matrix (U * sqrt(S)), each row scaled to norm `scale * sqrt(dim)` (the
    size of a default Keras embedding row). Words never seen in `documents`
    and ids 0 and 1 get small random vectors."""
    dim = _checks.check_positive_int("dim", dim)
    matrix = ppmi(cooccurrence_counts(documents, vocab_size, window))
    if dim >= min(matrix.shape):
        raise ValueError(
            f"Received `dim`={dim}, which needs a vocabulary larger than "
            f"{dim}; got {vocab_size} words."
        )
    svd = TruncatedSVD(
        n_components=dim, algorithm="randomized", n_iter=5, random_state=seed
    )
    vectors = svd.fit_transform(matrix) / np.sqrt(svd.singular_values_)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    random_rows = rng.uniform(-scale, scale, vectors.shape)
    seen = norms[:, 0] > 0
    vectors[seen] = vectors[seen] / norms[seen] * scale * np.sqrt(dim)
    vectors[~seen] = random_rows[~seen]
    vectors[:2] = random_rows[:2]
    return vectors.astype(np.float32)


def vectorizer_embeddings(texts, vectorizer, dim: int, seed: int = 0):
    """`ppmi_svd_embeddings` of `texts` over the vocabulary of a
    `TextVectorization` (ids as it assigns them), whole texts counted."""
    from toolkit.data.pipelines import tokenize

    rows = ragged_rows(tokenize(texts, vectorizer, max_length=1_000_000))
    return ppmi_svd_embeddings(
        rows, vectorizer.vocabulary_size(), dim, seed=seed
    )
