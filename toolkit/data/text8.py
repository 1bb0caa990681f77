"""text8 (Mahoney): the first 10^8 characters of an English Wikipedia dump,
lowercased, digits spelled out, everything else turned into single spaces.

The standard character-LM split is the first 90,000,000 characters for
training, the next 5,000,000 for validation and the last 5,000,000 for test.
`max_chars` keeps only the first `max_chars` characters and splits them in
the same 90/5/5 proportions.
"""

from __future__ import annotations

import os
import pathlib
import re
import zipfile

from toolkit.data.char_lm import CharCorpus, CharVocabulary, corpus_from_text
from toolkit.data.files import (
    CorruptDataError,
    RemoteFile,
    dataset_path,
)

# text8.zip's size is the one the word2vec tutorials check; no sha256 is
# published, so the content checks below (alphabet, length) guard it too.
TEXT8_ARCHIVE = RemoteFile(
    url="http://mattmahoney.net/dc/text8.zip",
    filename="text8.zip",
    size=31_344_016,
)
TEXT8_CANDIDATES = ("text8", "text8.zip", "text8/text8", "text8/text8.zip")
TEXT8_LENGTH = 100_000_000
TEXT8_ALPHABET = " abcdefghijklmnopqrstuvwxyz"
TEXT8_VOCABULARY = CharVocabulary(tuple(TEXT8_ALPHABET))
TEXT8_FRACTIONS = {"train": 0.9, "validation": 0.05, "test": 0.05}
_DIGIT_WORDS = {
    "0": " zero ",
    "1": " one ",
    "2": " two ",
    "3": " three ",
    "4": " four ",
    "5": " five ",
    "6": " six ",
    "7": " seven ",
    "8": " eight ",
    "9": " nine ",
}
_NOT_LETTER = re.compile(r"[^a-z]+")


def normalize_text8(text: str) -> str:
    """Turn any text into text8 format, as Mahoney's wikifil does for its
    last steps: lowercase, spell out digits, turn every run of other
    characters into one space.

    >>> normalize_text8("In 1984, Orwell's <b>Big</b> Brother!")
    'in one nine eight four orwell s b big b brother '
    """
    text = text.lower()
    for digit, word in _DIGIT_WORDS.items():
        text = text.replace(digit, word)
    text = _NOT_LETTER.sub(" ", text)
    return text.lstrip(" ")


def _read_text8(path: pathlib.Path) -> str:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            if names != ["text8"]:
                raise CorruptDataError(
                    f"{path} should hold one member named 'text8', holds "
                    f"{names[:5]!r}."
                )
            raw = archive.read("text8")
    else:
        raw = path.read_bytes()
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as error:
        raise CorruptDataError(
            f"{path} is not text8: byte {error.start} is not ASCII."
        ) from error


def check_text8_alphabet(text: str, source: str) -> None:
    extra = sorted(set(text) - set(TEXT8_ALPHABET))
    if extra:
        raise CorruptDataError(
            f"{source} is not in text8 format: it has characters outside a-z "
            f"and space, e.g. {extra[:10]!r}. Use "
            "toolkit.data.normalize_text8 to convert other text."
        )


def load_text8(
    path: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    max_chars: int | None = None,
    strict: bool = True,
    download: bool = True,
) -> CharCorpus:
    """Load text8 (or any text8-format file) as a 27-symbol `CharCorpus`.

    Args:
        path: a `text8` file or `text8.zip`. Default: look in the data
            directory for `TEXT8_CANDIDATES`, downloading `text8.zip` when
            none is there.
        data_dir: the data directory to search and download into.
        max_chars: use only the first `max_chars` characters.
        strict: require exactly 100,000,000 characters, as the published
            file has. Use `False` for text8-format corpora of other sizes.
        download: allow downloading when nothing is found.
    """
    path = dataset_path(
        path,
        TEXT8_ARCHIVE,
        TEXT8_CANDIDATES,
        data_dir,
        download,
        what="a text8 file or text8.zip",
    )
    text = _read_text8(path)
    if strict and len(text) != TEXT8_LENGTH:
        raise CorruptDataError(
            f"{path} has {len(text):,} characters; text8 has exactly "
            f"{TEXT8_LENGTH:,}. Pass strict=False for a text8-format corpus "
            "of another size."
        )
    check_text8_alphabet(text, str(path))
    if max_chars is not None:
        if max_chars <= 0:
            raise ValueError(
                "Received an invalid value for argument `max_chars`, "
                f"expected a positive integer, got {max_chars!r}."
            )
        text = text[:max_chars]
    return corpus_from_text(
        text, "text8", str(path), TEXT8_VOCABULARY, TEXT8_FRACTIONS
    )
