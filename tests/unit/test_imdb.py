"""IMDB loader and pipelines on mini fixtures in the real formats, plus the
real archive when the shared data folder is present."""

import tarfile

import numpy as np
import pytest

from data_fixtures import (
    MINI_IMDB,
    SHARED_DATA,
    movie_of,
    synthetic_imdb,
    write_imdb_archive,
    write_imdb_tree,
)
from toolkit.data import (
    CorruptDataError,
    DataNotFoundError,
    load_imdb,
    make_vectorizer,
    read_vocabulary,
    text_dataset,
    token_dataset,
    tokenize,
    write_vocabulary,
)


@pytest.fixture(params=["tree", "archive", "data_dir"])
def imdb(request, tmp_path):
    if request.param == "tree":
        return load_imdb(
            write_imdb_tree(tmp_path), validation_split=0.25, strict=False
        )
    if request.param == "archive":
        archive = write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
        return load_imdb(archive, validation_split=0.25, strict=False)
    write_imdb_archive(tmp_path / "aclImdb_v1.tar.gz")
    return load_imdb(
        data_dir=tmp_path, validation_split=0.25, strict=False, download=False
    )


def test_counts_labels_ratings_and_text(imdb):
    assert imdb.metadata["sizes"] == {
        "train": 6,
        "validation": 2,
        "test": 4,
        "unsup": 2,
    }
    everything = {}
    for split in (imdb.train, imdb.validation):
        for text, label, rating, review_id in zip(
            split.texts, split.labels, split.ratings, split.ids, strict=True
        ):
            everything[("pos" if label else "neg", int(review_id))] = (
                int(rating),
                text,
            )
    expected = {
        (label, review_id): (rating, text.replace("<br />", " "))
        for (split, label), items in MINI_IMDB.items()
        if split == "train" and label != "unsup"
        for review_id, rating, text in items
    }
    assert everything == expected
    assert imdb.test.labels.tolist() == [0, 0, 1, 1]
    assert imdb.test.ratings.tolist() == [2, 4, 10, 7]
    assert imdb.unsup.labels.tolist() == [-1, -1]
    assert all("<br" not in t for t in imdb.unsup.texts)


def test_validation_is_carved_from_train_stratified_and_reproducible(
    tmp_path,
):
    root = write_imdb_tree(tmp_path)
    first = load_imdb(root, validation_split=0.5, seed=3, strict=False)
    again = load_imdb(root, validation_split=0.5, seed=3, strict=False)
    other = load_imdb(root, validation_split=0.5, seed=4, strict=False)
    assert first.validation.texts == again.validation.texts
    assert sorted(first.validation.labels.tolist()) == [0, 0, 1, 1]
    train_keys = set(zip(first.train.labels, first.train.ids, strict=True))
    validation_keys = set(
        zip(first.validation.labels, first.validation.ids, strict=True)
    )
    assert not train_keys & validation_keys
    assert len(train_keys | validation_keys) == 8
    assert not set(first.validation.texts) & set(first.test.texts)
    seeds_differ = [
        first.validation.texts != other.validation.texts for other in [other]
    ]
    assert any(seeds_differ)


@pytest.mark.parametrize("form", ["tree", "archive"])
def test_movie_split_keeps_every_movie_on_one_side(tmp_path, form):
    reviews = synthetic_imdb(train_per_class=30, test_per_class=2)
    path = (
        write_imdb_tree(tmp_path, reviews)
        if form == "tree"
        else write_imdb_archive(tmp_path / "imdb.tar.gz", reviews)
    )
    data = load_imdb(
        path,
        validation_split=0.2,
        seed=5,
        strict=False,
        validation_by="movie",
    )
    for split in (data.train, data.validation):
        expected = [
            movie_of("pos" if label else "neg", int(review_id))
            for label, review_id in zip(split.labels, split.ids, strict=True)
        ]
        assert split.movies.tolist() == expected
    train_movies = set(data.train.movies.tolist())
    validation_movies = set(data.validation.movies.tolist())
    assert validation_movies and not train_movies & validation_movies
    assert len(data.train) + len(data.validation) == 60
    # Whole movies (at most 3 reviews each) until 20% of 60 is reached.
    assert 12 <= len(data.validation) < 12 + 3
    assert data.metadata["validation_by"] == "movie"
    assert data.metadata["movies"]["in_both"] == 0
    again = load_imdb(
        path,
        validation_split=0.2,
        seed=5,
        strict=False,
        validation_by="movie",
    )
    assert again.validation.texts == data.validation.texts
    other = load_imdb(
        path,
        validation_split=0.2,
        seed=6,
        strict=False,
        validation_by="movie",
    )
    assert other.validation.texts != data.validation.texts


def test_movie_split_without_urls_files_is_a_clear_error(tmp_path):
    archive = write_imdb_archive(tmp_path / "imdb.tar.gz", urls=False)
    with pytest.raises(DataNotFoundError, match="urls_pos.txt"):
        load_imdb(
            archive, validation_split=0.25, strict=False, validation_by="movie"
        )
    random_split = load_imdb(archive, validation_split=0.25, strict=False)
    assert len(random_split.validation) == 2
    with pytest.raises(ValueError, match="validation_by"):
        load_imdb(
            archive, validation_split=0.25, strict=False, validation_by="film"
        )


def test_strict_mode_requires_the_published_counts(tmp_path):
    with pytest.raises(CorruptDataError, match="train/pos: 4 files"):
        load_imdb(write_imdb_tree(tmp_path))


def test_unbalanced_split_is_refused(tmp_path):
    reviews = dict(MINI_IMDB)
    reviews[("test", "neg")] = MINI_IMDB[("test", "neg")][:1]
    root = write_imdb_tree(tmp_path, reviews)
    with pytest.raises(CorruptDataError, match="test has 2 positive and 1"):
        load_imdb(root, strict=False)


def test_rating_outside_label_range_is_refused(tmp_path):
    reviews = dict(MINI_IMDB)
    reviews[("train", "pos")] = MINI_IMDB[("train", "pos")][:3] + [
        (3, 2, "mislabelled")
    ]
    with pytest.raises(CorruptDataError, match="3_2.txt has rating 2"):
        load_imdb(write_imdb_tree(tmp_path, reviews), strict=False)


def test_missing_data_names_the_folder_and_url(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_imdb(data_dir=tmp_path, download=False)
    text = str(error.value)
    assert str(tmp_path) in text and "aclImdb_v1.tar.gz" in text
    assert "https://ai.stanford.edu/~amaas/data/sentiment/" in text
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_imdb(tmp_path / "nowhere.tar.gz")


def test_truncated_archive_is_a_clear_error(tmp_path):
    archive = write_imdb_archive(tmp_path / "full.tar.gz")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(CorruptDataError, match="damaged or incomplete"):
        load_imdb(truncated, strict=False)


def test_archive_with_escaping_member_is_refused(tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as archive:
        archive.addfile(tarfile.TarInfo("../aclImdb/train/pos/9_9.txt"))
    with pytest.raises(CorruptDataError, match="outside the target"):
        load_imdb(evil, strict=False)


def test_unknown_source_and_bad_split_fraction(tmp_path):
    root = write_imdb_tree(tmp_path)
    with pytest.raises(ValueError, match="`source`.*'kaggle'"):
        load_imdb(root, source="kaggle")
    with pytest.raises(ValueError, match="`validation_split`.*1.5"):
        load_imdb(root, validation_split=1.5, strict=False)


def test_tfds_source_without_prepared_data_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="imdb_reviews"):
        load_imdb(source="tfds", data_dir=tmp_path, download=False)


def test_text_and_token_pipelines(tmp_path):
    data = load_imdb(
        write_imdb_tree(tmp_path), validation_split=0.25, strict=False
    )
    texts, labels = next(iter(text_dataset(data.test, batch_size=3)))
    assert texts.shape == (3,) and labels.shape == (3,)
    assert texts.dtype.name == "string"

    vectorizer = make_vectorizer(data.train.texts, vocab_size=50)
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"]
    # Adapted on train only: a word that appears only in test is unknown.
    assert "zyzzyva" not in vocabulary
    assert "wonderful" in vocabulary or "awful" in vocabulary

    tokens = tokenize(data.test.texts + [""], vectorizer, max_length=3)
    assert tokens.shape[0] == 5
    assert tokens.row_lengths().numpy().tolist() == [1, 2, 3, 2, 1]
    assert tokens[4].numpy().tolist() == [0]  # empty text: one padding id
    batches = list(token_dataset(tokens[:4], data.test.labels, batch_size=2))
    assert [tuple(ids.shape) for ids, _ in batches] == [(2, 2), (2, 3)]
    superb = tokens[2].numpy().tolist()  # "Superb zyzzyva performance."
    assert superb[1] == 1  # zyzzyva is out of vocabulary


def test_token_pipeline_bucketing_and_seeded_order(tmp_path):
    data = load_imdb(
        write_imdb_tree(tmp_path), validation_split=0.25, strict=False
    )
    vectorizer = make_vectorizer(data.train.texts, vocab_size=100)
    tokens = tokenize(data.train.texts, vectorizer, max_length=10)

    def batches(seed):
        dataset = token_dataset(
            tokens,
            data.train.labels,
            batch_size=2,
            shuffle=True,
            seed=seed,
            bucket_boundaries=[4],
        )
        return [(ids.numpy(), y.numpy()) for ids, y in dataset]

    first = batches(seed=5)
    for ids, _ in first:
        lengths = np.count_nonzero(ids, axis=1)
        assert (lengths < 4).all() or (lengths >= 4).all()
    assert sum(len(y) for _, y in first) == len(data.train)
    # The order depends on the seed alone: a rebuilt dataset repeats it.
    again = batches(seed=5)
    assert all(
        np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True)
    )


REAL_ARCHIVE = SHARED_DATA / "imdb" / "aclImdb_v1_nofeat.tar.gz"


@pytest.mark.skipif(
    not REAL_ARCHIVE.exists(),
    reason=f"real IMDB archive not found at {REAL_ARCHIVE}",
)
@pytest.mark.slow
def test_real_archive_loads_with_published_counts():
    data = load_imdb(REAL_ARCHIVE)
    assert data.metadata["sizes"] == {
        "train": 22_500,
        "validation": 2_500,
        "test": 25_000,
        "unsup": 50_000,
    }
    assert (data.train.labels == 1).sum() == 11_250
    assert (data.test.labels == 1).sum() == 12_500
    texts = {
        (int(label), int(review_id)): text
        for split in (data.train, data.validation)
        for text, label, review_id in zip(
            split.texts, split.labels, split.ids, strict=True
        )
    }
    assert texts[(0, 0)].startswith("Story of a man who has unnatural")
    assert texts[(1, 0)].startswith("Bromwell High is a cartoon comedy.")
    assert not any("<br" in t for t in data.test.texts[:2000])
    assert set(np.unique(data.test.ratings)) == {1, 2, 3, 4, 7, 8, 9, 10}
    assert (
        set(data.train.movies.tolist()).isdisjoint(
            data.validation.movies.tolist()
        )
        is False
    )  # the random split shares movies: why "movie" exists
    by_movie = load_imdb(REAL_ARCHIVE, validation_by="movie")
    assert not set(by_movie.train.movies.tolist()) & set(
        by_movie.validation.movies.tolist()
    )
    assert by_movie.metadata["movies"]["in_both"] == 0
    assert 2_500 <= len(by_movie.validation) < 2_600
    assert len(by_movie.train) + len(by_movie.validation) == 25_000


def test_vocabulary_file_round_trips_words_that_splitlines_breaks(tmp_path):
    # IMDB's vocabulary holds U+0085 (a Windows-1252 ellipsis in the raw
    # reviews); str.splitlines breaks lines at it and at U+2028 and "\r".
    vectorizer = make_vectorizer(
        ["good\x85 film \u2028 fine\rly", "a \x85 b", "good film"],
        vocab_size=20,
    )
    vocabulary = vectorizer.get_vocabulary()
    assert "\x85" in vocabulary and "good\x85" in vocabulary
    assert len("\n".join(vocabulary).splitlines()) > len(vocabulary)
    path = tmp_path / "vocabulary.txt"
    write_vocabulary(path, vocabulary)
    assert read_vocabulary(path) == vocabulary
    path.write_bytes(path.read_bytes()[:-1])  # the last line cut off
    with pytest.raises(ValueError, match="not a complete vocabulary file"):
        read_vocabulary(path)
