"""text8 and Tiny Shakespeare loaders, the character vocabulary and the
language-model pipelines, on generated files in the real formats."""

import numpy as np
import pytest

from data_fixtures import SHARED_DATA, write_text8
from toolkit.data import (
    TEXT8_VOCABULARY,
    CharVocabulary,
    CorruptDataError,
    DataNotFoundError,
    load_shakespeare,
    load_text8,
    normalize_text8,
    tbptt_arrays,
    tbptt_dataset,
    window_dataset,
)

TEXT8_SAMPLE = normalize_text8(
    "The quick brown fox jumps over 13 lazy dogs. " * 50
)


@pytest.mark.parametrize("as_zip", [False, True], ids=["text8", "zip"])
def test_text8_loads_with_27_symbols_and_90_5_5_split(tmp_path, as_zip):
    name = "text8.zip" if as_zip else "text8"
    path = write_text8(tmp_path / name, TEXT8_SAMPLE, as_zip=as_zip)
    corpus = load_text8(path, strict=False)
    assert corpus.vocabulary == TEXT8_VOCABULARY
    assert len(corpus.vocabulary) == 27
    assert corpus.vocabulary.chars[0] == " "
    n = len(TEXT8_SAMPLE)
    sizes = corpus.metadata["sizes"]
    assert sizes == {
        "train": int(0.9 * n),
        "validation": int(0.95 * n + 1e-6) - int(0.9 * n),
        "test": n - int(0.95 * n + 1e-6),
    }
    joined = "".join(
        corpus.vocabulary.decode(corpus.splits[k])
        for k in ("train", "validation", "test")
    )
    assert joined == TEXT8_SAMPLE
    assert corpus.metadata["source"] == str(path)


def test_text8_found_in_data_dir_and_max_chars(tmp_path):
    write_text8(tmp_path / "text8.zip", TEXT8_SAMPLE, as_zip=True)
    corpus = load_text8(
        data_dir=tmp_path, strict=False, max_chars=1000, download=False
    )
    assert sum(len(v) for v in corpus.splits.values()) == 1000
    assert corpus.metadata["sizes"]["train"] == 900


def test_text8_strict_length_and_alphabet_checks(tmp_path):
    path = write_text8(tmp_path / "text8", TEXT8_SAMPLE)
    with pytest.raises(CorruptDataError, match="exactly 100,000,000"):
        load_text8(path)
    bad = write_text8(tmp_path / "bad", "hello World 42")
    with pytest.raises(CorruptDataError, match=r"\['2', '4', 'W'\]"):
        load_text8(bad, strict=False)


def test_text8_zip_with_other_members_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "text8.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(CorruptDataError, match="one member named 'text8'"):
        load_text8(path, strict=False)


def test_text8_missing_says_where_and_how(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_text8(data_dir=tmp_path, download=False)
    assert "http://mattmahoney.net/dc/text8.zip" in str(error.value)
    assert str(tmp_path) in str(error.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world "),
        ("Année 2024", "ann e two zero two four "),
        ("  many   spaces\tand\nlines  ", "many spaces and lines "),
        ("x7y", "x seven y"),
        ("", ""),
    ],
)
def test_normalize_text8(raw, expected):
    normalized = normalize_text8(raw)
    assert normalized == expected
    assert set(normalized) <= set(TEXT8_VOCABULARY.chars)
    assert "  " not in normalized


def test_shakespeare_split_matches_nanogpt(tmp_path):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    path = tmp_path / "input.txt"
    path.write_text(text * 10, encoding="utf-8")
    corpus = load_shakespeare(path)
    n = len(text) * 10
    assert corpus.metadata["sizes"] == {
        "train": int(n * 0.9),
        "validation": n - int(n * 0.9),
    }
    assert corpus.vocabulary.chars == tuple(sorted(set(text)))
    assert (
        corpus.vocabulary.decode(corpus.splits["validation"])
        == ((text * 10)[int(n * 0.9) :])
    )
    from_dir = load_shakespeare(data_dir=tmp_path, download=False)
    assert from_dir.metadata["sizes"] == corpus.metadata["sizes"]


def test_shakespeare_missing_and_not_utf8(tmp_path):
    with pytest.raises(DataNotFoundError, match="input.txt"):
        load_shakespeare(data_dir=tmp_path, download=False)
    bad = tmp_path / "input.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(CorruptDataError, match="not UTF-8"):
        load_shakespeare(bad)


def test_vocabulary_round_trip_and_unknown_characters():
    vocabulary = CharVocabulary.from_text("hello world")
    assert vocabulary.chars == (" ", "d", "e", "h", "l", "o", "r", "w")
    ids = vocabulary.encode("hello")
    assert ids.dtype == np.int32
    assert vocabulary.decode(ids) == "hello"
    assert CharVocabulary.from_json(vocabulary.to_json()) == vocabulary
    with pytest.raises(ValueError, match=r"2 character\(s\).*\['!', 'H'\]"):
        vocabulary.encode("Hello!")


def test_tbptt_batches_continue_each_other():
    ids = np.arange(1000, dtype=np.int32)
    inputs, targets = tbptt_arrays(ids, batch_size=4, sequence_length=7)
    row_length = 999 // 4
    assert inputs.shape == (row_length // 7, 4, 7)
    np.testing.assert_array_equal(targets, inputs + 1)
    for k in range(inputs.shape[0] - 1):
        # Row b of batch k+1 starts right where row b of batch k ended.
        np.testing.assert_array_equal(inputs[k + 1, :, 0], inputs[k, :, -1] + 1)
    np.testing.assert_array_equal(inputs[0, :, 0], np.arange(4) * row_length)
    batches = list(tbptt_dataset(ids, 4, 7).as_numpy_iterator())
    assert len(batches) == inputs.shape[0]
    np.testing.assert_array_equal(batches[3][0], inputs[3])


def test_tbptt_too_short_split_is_a_clear_error():
    with pytest.raises(ValueError, match="too short"):
        tbptt_arrays(np.arange(20), batch_size=4, sequence_length=8)


def test_window_dataset_shapes_targets_and_shuffling():
    ids = np.arange(200, dtype=np.int32)
    dataset = window_dataset(ids, batch_size=5, sequence_length=9, seed=0)
    first = [x for x, _ in dataset.as_numpy_iterator()]
    second = [x for x, _ in dataset.as_numpy_iterator()]
    for x, y in dataset.as_numpy_iterator():
        assert x.shape[1] == 9
        np.testing.assert_array_equal(y, x + 1)
        np.testing.assert_array_equal(x[:, 0] % 9, 0)
    assert sum(len(x) for x in first) == 199 // 9
    # The same order on every iteration (a distribution strategy iterates
    # twice); another seed gives another order.
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = window_dataset(ids, batch_size=5, sequence_length=9, seed=1)
    third = [x for x, _ in other.as_numpy_iterator()]
    assert not all(
        np.array_equal(a, b) for a, b in zip(first, third, strict=True)
    )


REAL_SHAKESPEARE = SHARED_DATA / "tinyshakespeare" / "input.txt"


@pytest.mark.skipif(
    not REAL_SHAKESPEARE.exists(),
    reason=f"Tiny Shakespeare not found at {REAL_SHAKESPEARE}",
)
def test_real_tiny_shakespeare():
    corpus = load_shakespeare(REAL_SHAKESPEARE)
    assert corpus.metadata["characters"] == 1_115_394
    assert len(corpus.vocabulary) == 65
    assert corpus.metadata["sizes"] == {
        "train": 1_003_854,
        "validation": 111_540,
    }
