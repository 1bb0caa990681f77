"""Tiny Shakespeare (char-rnn / nanoGPT `shakespeare_char`): 1,115,394
characters of plain text, 65 distinct characters. The usual split is the
first 90% for training and the last 10% for validation."""

from __future__ import annotations

import os

from toolkit.data.char_lm import CharCorpus, corpus_from_text
from toolkit.data.files import (
    CorruptDataError,
    DataNotFoundError,
    RemoteFile,
    dataset_path,
)

# Size and sha256 as in tensorflow-datasets' checksums for tiny_shakespeare.
SHAKESPEARE_FILE = RemoteFile(
    url=(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
        "tinyshakespeare/input.txt"
    ),
    filename="input.txt",
    size=1_115_394,
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
)
SHAKESPEARE_CANDIDATES = (
    "tinyshakespeare/input.txt",
    "tiny_shakespeare/input.txt",
    "input.txt",
)
SHAKESPEARE_FRACTIONS = {"train": 0.9, "validation": 0.1}


def load_shakespeare(
    path: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> CharCorpus:
    """Load Tiny Shakespeare (or any UTF-8 text file in its format) as a
    `CharCorpus` with the sorted character set of the whole file as its
    vocabulary, split 90% / 10%.

    Args:
        path: an `input.txt`-style file. Default: look in the data directory
            for `SHAKESPEARE_CANDIDATES`, downloading the char-rnn file when
            none is there (into `tinyshakespeare/` is not assumed: it is
            saved as `input.txt`).
        data_dir: the data directory to search and download into.
        download: allow downloading when nothing is found.
    """
    path = dataset_path(
        path,
        SHAKESPEARE_FILE,
        SHAKESPEARE_CANDIDATES,
        data_dir,
        download,
        what="Tiny Shakespeare's input.txt",
    )
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} is a folder; pass the input.txt in it."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CorruptDataError(
            f"{path} is not UTF-8 text ({error})."
        ) from error
    if len(text) < 2:
        raise CorruptDataError(f"{path} holds no text to model.")
    return corpus_from_text(
        text, "tinyshakespeare", str(path), None, SHAKESPEARE_FRACTIONS
    )
