"""Character corpora from any UTF-8 text file, and the text8-format corpus
made from IMDB's unlabelled reviews (a stand-in where text8 itself cannot be
had; it is not text8)."""

from __future__ import annotations

import os
import pathlib

from toolkit.data.char_lm import CharCorpus, corpus_from_text
from toolkit.data.files import CorruptDataError, DataNotFoundError
from toolkit.data.text8 import (
    TEXT8_FRACTIONS,
    TEXT8_VOCABULARY,
    normalize_text8,
)


def load_text_corpus(
    path: str | os.PathLike,
    text8_format: bool = False,
    fractions: dict[str, float] | None = None,
    max_chars: int | None = None,
) -> CharCorpus:
    """A UTF-8 text file as a `CharCorpus`, split into consecutive parts.

    Args:
        path: the file.
        text8_format: convert the text with `normalize_text8` and use the
            27-symbol text8 vocabulary; otherwise the vocabulary is the
            sorted set of the file's characters.
        fractions: split proportions, in order. Default: text8's
            train/validation/test 90/5/5.
        max_chars: keep only the first `max_chars` characters (after any
            conversion).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"No text file at {path}"
            + (" (it is a folder)" if path.is_dir() else "")
            + ". Pass the path of a UTF-8 text file as the corpus."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CorruptDataError(
            f"{path} is not UTF-8 text ({error}). Convert it first, e.g. "
            f"`iconv -t utf-8 {path.name}`."
        ) from error
    return _corpus(
        text, path.stem, str(path), text8_format, fractions, max_chars
    )


def imdb_unsup_text8(
    data_dir: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
    max_chars: int | None = None,
    strict: bool = True,
    download: bool = True,
) -> CharCorpus:
    """IMDB's 50,000 unlabelled reviews, joined in id order with spaces,
    converted with `normalize_text8` and split 90/5/5 as text8 is.

    This is a text8-format corpus of movie reviews, not text8: its numbers
    are not comparable with published text8 results. `path`, `data_dir`,
    `strict` and `download` are as in `load_imdb`.
    """
    from toolkit.data.imdb import load_imdb

    imdb = load_imdb(path, data_dir, strict=strict, download=download)
    text = " ".join(imdb.unsup.texts)
    corpus = _corpus(
        text, "imdb-unsup-text8", imdb.source, True, None, max_chars
    )
    corpus.metadata["note"] = (
        "IMDB unlabelled reviews in text8 format (normalize_text8); not text8"
    )
    return corpus


def _corpus(text, name, source, text8_format, fractions, max_chars):
    vocabulary = None
    if text8_format:
        text = normalize_text8(text)
        vocabulary = TEXT8_VOCABULARY
    if max_chars is not None:
        text = text[:max_chars]
    fractions = dict(fractions or TEXT8_FRACTIONS)
    if len(text) < 2 * len(fractions):
        raise CorruptDataError(
            f"{source} holds {len(text)} characters: too few to split into "
            f"{list(fractions)}."
        )
    corpus = corpus_from_text(text, name, source, vocabulary, fractions)
    corpus.metadata["text8_format"] = bool(text8_format)
    return corpus
