"""Dataset loaders and tf.data pipelines.

Loaders read each dataset's own published format from a data directory
(argument, else `$TOOLKIT_DATA_DIR`, else `~/.cache/toolkit/data`), download
from the canonical source only when nothing is there, and fail with a message
that says which file was expected where and how to get it.
"""

from toolkit.data.char_lm import (
    CharCorpus,
    CharVocabulary,
    batches_per_pass,
    tbptt_arrays,
    tbptt_dataset,
    window_dataset,
)
from toolkit.data.files import (
    CorruptDataError,
    DataNotFoundError,
    resolve_data_dir,
    safe_extract,
)
from toolkit.data.imdb import (
    ImdbData,
    TextSplit,
    balanced_subsample,
    load_imdb,
)
from toolkit.data.pipelines import (
    make_vectorizer,
    read_vocabulary,
    text_dataset,
    token_dataset,
    tokenize,
    write_vocabulary,
)
from toolkit.data.shakespeare import load_shakespeare
from toolkit.data.text8 import TEXT8_VOCABULARY, load_text8, normalize_text8
from toolkit.data.text_corpus import imdb_unsup_text8, load_text_corpus

__all__ = [
    "TEXT8_VOCABULARY",
    "CharCorpus",
    "CharVocabulary",
    "CorruptDataError",
    "DataNotFoundError",
    "ImdbData",
    "TextSplit",
    "balanced_subsample",
    "imdb_unsup_text8",
    "load_imdb",
    "load_shakespeare",
    "load_text8",
    "load_text_corpus",
    "make_vectorizer",
    "normalize_text8",
    "read_vocabulary",
    "resolve_data_dir",
    "safe_extract",
    "tbptt_arrays",
    "batches_per_pass",
    "tbptt_dataset",
    "text_dataset",
    "token_dataset",
    "tokenize",
    "window_dataset",
    "write_vocabulary",
]
