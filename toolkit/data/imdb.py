"""The IMDB Large Movie Review Dataset (Maas et al., ACL 2011).

`load_imdb` reads the dataset's own published format: an `aclImdb/` tree or
an `aclImdb_v1.tar.gz`-style archive (read in one streaming pass, never
unpacked), with labels from the `pos`/`neg` folder names and ratings from the
`ID_RATING.txt` file names. The copy in this project's shared data folder is
a rebuilt archive without the `*.feat` files, so the loader validates the
structure (folders, names, counts, rating ranges, balance) rather than a
checksum; the checksum guards only what the loader downloads itself.

Each labelled training review's movie comes from the archive's
`train/urls_pos.txt` and `train/urls_neg.txt` (line i is the IMDB page of
review id i), so validation can be carved by movie: a model is then
validated on movies it never trained on, as it is tested (the official test
movies are disjoint from the training movies).

The tensorflow-datasets `imdb_reviews` build is a second source with the same
API (`source="tfds"`); it carries no ids, ratings or movies (all -1), so it
supports only the random split.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import pathlib
import re

import numpy as np

from toolkit.data.files import (
    CorruptDataError,
    DataNotFoundError,
    RemoteFile,
    dataset_path,
    iter_tar_files,
)

# Size and sha256 as published in tensorflow-datasets' checksums for
# imdb_reviews (datasets/imdb_reviews/checksums.tsv).
IMDB_ARCHIVE = RemoteFile(
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    filename="aclImdb_v1.tar.gz",
    size=84_125_825,
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
)
# Where the loader looks inside the data directory, in order.
IMDB_CANDIDATES = (
    "aclImdb",
    "aclImdb_v1.tar.gz",
    "imdb/aclImdb",
    "imdb/aclImdb_v1.tar.gz",
    "imdb/aclImdb_v1_nofeat.tar.gz",
    "aclImdb_v1_nofeat.tar.gz",
)
# The published counts of every folder of aclImdb v1.
PUBLISHED_COUNTS = {
    ("train", "pos"): 12_500,
    ("train", "neg"): 12_500,
    ("train", "unsup"): 50_000,
    ("test", "pos"): 12_500,
    ("test", "neg"): 12_500,
}
_REVIEW_NAME = re.compile(
    r"^(?:.*/)?aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$"
)
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_URLS_NAME = re.compile(r"^(?:.*/)?aclImdb/train/urls_(pos|neg)\.txt$")
_MOVIE_URL = re.compile(r"/title/tt(\d+)")
SPLITS_BY = ("movie", "random")


@dataclasses.dataclass
class TextSplit:
    """One split of reviews, in a fixed order (sorted by label, then id).

    Attributes:
        texts: review texts with `<br />` tags replaced by spaces.
        labels: `(n,)` int32, 1 positive, 0 negative, -1 unlabelled.
        ratings: `(n,)` int32 star ratings 1-10 (0 unlabelled, -1 unknown).
        ids: `(n,)` int32 review ids within their folder (-1 unknown).
        movies: `(n,)` int64 IMDB title numbers (the 453418 of
            tt0453418), -1 where unknown (test, unlabelled, tfds).
    """

    texts: list[str]
    labels: np.ndarray
    ratings: np.ndarray
    ids: np.ndarray
    movies: np.ndarray | None = None

    def __post_init__(self):
        if self.movies is None:
            self.movies = np.full(len(self.texts), -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> TextSplit:
        indices = np.asarray(indices)
        return TextSplit(
            [self.texts[i] for i in indices],
            self.labels[indices],
            self.ratings[indices],
            self.ids[indices],
            self.movies[indices],
        )


@dataclasses.dataclass
class ImdbData:
    """The IMDB splits and where they came from.

    `train` and `validation` partition the official training set (the
    validation part is carved with a fixed seed, by movie or stratified by
    label);
    `test` is the official test set; `unsup` the 50,000 unlabelled reviews.
    """

    train: TextSplit
    validation: TextSplit
    test: TextSplit
    unsup: TextSplit
    source: str
    metadata: dict

    def split(self, name: str) -> TextSplit:
        if name not in ("train", "validation", "test", "unsup"):
            raise ValueError(
                "Received an invalid value for argument `name`, expected one "
                "of 'train', 'validation', 'test', 'unsup', got "
                f"{name!r}."
            )
        return getattr(self, name)


def clean_review(text: str) -> str:
    """Replace the `<br />` line-break tags of the raw reviews by spaces."""
    return _BREAK_TAG.sub(" ", text)


def _iter_tree(root: pathlib.Path):
    for split, label in PUBLISHED_COUNTS:
        folder = root / split / label
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = f"aclImdb/{split}/{label}/{path.name}"
            if path.suffix == ".txt":
                yield name, path.read_bytes()


def _find_tree_root(path: pathlib.Path) -> pathlib.Path:
    if (path / "train").is_dir() or (path / "test").is_dir():
        return path
    if (path / "aclImdb").is_dir():
        return path / "aclImdb"
    raise DataNotFoundError(
        f"{path} is not an aclImdb folder: expected train/ and test/ in it "
        "(or an aclImdb/ folder holding them)."
    )


def _iter_tree_urls(root: pathlib.Path):
    for label in ("pos", "neg"):
        path = root / "train" / f"urls_{label}.txt"
        if path.is_file():
            yield f"aclImdb/train/{path.name}", path.read_bytes()


def _parse_movies(name: str, contents: bytes) -> np.ndarray:
    """Title numbers, one per line of a `urls_*.txt` file."""
    lines = contents.decode("utf-8", errors="replace").splitlines()
    movies = np.full(len(lines), -1, dtype=np.int64)
    for index, line in enumerate(lines):
        match = _MOVIE_URL.search(line)
        if match is None:
            raise CorruptDataError(
                f"{name}, line {index + 1}: {line[:80]!r} is not an IMDB "
                "title URL (expected .../title/tt<number>/...)."
            )
        movies[index] = int(match.group(1))
    return movies


def _read_reviews(path: pathlib.Path):
    """`({(split, label): {id: (rating, text)}}, {label: movies})` from a
    tree or archive; `movies[i]` is the title number of training review
    id i of that label (from `train/urls_<label>.txt`, when present)."""
    if path.is_dir():
        root = _find_tree_root(path)
        files = itertools.chain(_iter_tree(root), _iter_tree_urls(root))
    else:
        files = iter_tar_files(path)
    folders: dict[tuple[str, str], dict[int, tuple[int, str]]] = {
        key: {} for key in PUBLISHED_COUNTS
    }
    movies: dict[str, np.ndarray] = {}
    for name, contents in files:
        urls = _URLS_NAME.match(name)
        if urls is not None:
            movies[urls.group(1)] = _parse_movies(name, contents)
            continue
        match = _REVIEW_NAME.match(name)
        if match is None:
            continue  # README, imdb.vocab, other urls_*.txt, *.feat, ...
        split, label, review_id, rating = match.groups()
        review_id, rating = int(review_id), int(rating)
        folder = folders[(split, label)]
        if review_id in folder:
            raise CorruptDataError(
                f"{path}: review id {review_id} appears twice in "
                f"{split}/{label}."
            )
        try:
            text = contents.decode("utf-8")
        except UnicodeDecodeError as error:
            raise CorruptDataError(
                f"{path}: {name} is not valid UTF-8 ({error})."
            ) from error
        folder[review_id] = (rating, clean_review(text))
    return folders, movies


def _validate(folders, path: pathlib.Path, strict: bool) -> None:
    rules = {"pos": range(7, 11), "neg": range(1, 5), "unsup": range(0, 1)}
    for (split, label), reviews in folders.items():
        bad = [
            r
            for r, (rating, _) in reviews.items()
            if rating not in rules[label]
        ]
        if bad:
            rating = reviews[bad[0]][0]
            raise CorruptDataError(
                f"{path}: {split}/{label}/{bad[0]}_{rating}.txt has rating "
                f"{rating}, outside {rules[label].start}-"
                f"{rules[label].stop - 1} for '{label}' reviews."
            )
    for split in ("train", "test"):
        pos, neg = len(folders[(split, "pos")]), len(folders[(split, "neg")])
        if pos == 0 or pos != neg:
            raise CorruptDataError(
                f"{path}: {split} has {pos} positive and {neg} negative "
                "reviews; aclImdb splits are non-empty and balanced. The "
                "tree or archive is incomplete."
            )
    if strict:
        wrong = {
            f"{split}/{label}": (len(folders[(split, label)]), count)
            for (split, label), count in PUBLISHED_COUNTS.items()
            if len(folders[(split, label)]) != count
        }
        if wrong:
            details = ", ".join(
                f"{name}: {got:,} files (expected {want:,})"
                for name, (got, want) in wrong.items()
            )
            raise CorruptDataError(
                f"{path} does not hold the full aclImdb v1 dataset: "
                f"{details}. Pass strict=False to load a partial copy on "
                "purpose."
            )


def _to_split(
    folder: dict[int, tuple[int, str]],
    label: int,
    movies: np.ndarray | None = None,
) -> TextSplit:
    ids = np.array(sorted(folder), dtype=np.int32)
    known = np.full(len(ids), -1, dtype=np.int64)
    if movies is not None:
        inside = ids < len(movies)
        known[inside] = movies[ids[inside]]
    return TextSplit(
        [folder[i][1] for i in ids],
        np.full(len(ids), label, dtype=np.int32),
        np.array([folder[i][0] for i in ids], dtype=np.int32),
        ids,
        known,
    )


def _concat(*splits: TextSplit) -> TextSplit:
    return TextSplit(
        [t for s in splits for t in s.texts],
        np.concatenate([s.labels for s in splits]),
        np.concatenate([s.ratings for s in splits]),
        np.concatenate([s.ids for s in splits]),
        np.concatenate([s.movies for s in splits]),
    )


def carve_validation(
    train: TextSplit, fraction: float, seed: int
) -> tuple[TextSplit, TextSplit]:
    """Split `train` into (train, validation), stratified by label, with a
    fixed seed: the same call always returns the same partition."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            "Received an invalid value for argument `validation_split`, "
            f"expected a float in [0, 1), got {fraction!r}."
        )
    rng = np.random.default_rng(seed)
    validation_indices = []
    for label in np.unique(train.labels):
        members = np.flatnonzero(train.labels == label)
        count = int(round(fraction * len(members)))
        validation_indices.append(rng.permutation(members)[:count])
    validation_indices = np.sort(np.concatenate(validation_indices))
    keep = np.setdiff1d(np.arange(len(train)), validation_indices)
    return train.subset(keep), train.subset(validation_indices)


def balanced_subsample(split: TextSplit, count: int, seed: int) -> TextSplit:
    """`count` reviews of `split`, half of each label (as near as the
    labels allow), drawn with `seed` and kept in `split`'s order."""
    rng = np.random.default_rng(seed)
    labels = np.unique(split.labels)
    chosen = []
    for position, label in enumerate(labels):
        members = np.flatnonzero(split.labels == label)
        share = count // len(labels) + (position < count % len(labels))
        chosen.append(rng.permutation(members)[:share])
    return split.subset(np.sort(np.concatenate(chosen)))


def carve_validation_by_movie(
    train: TextSplit, fraction: float, seed: int
) -> tuple[TextSplit, TextSplit]:
    """Split `train` into (train, validation) so that no movie is in both:
    whole movies, in a seeded random order, go to validation until it holds
    `fraction` of the reviews (to within one movie's reviews).

    Raises:
        DataNotFoundError: some reviews have no known movie (the archive's
            `train/urls_pos.txt` or `urls_neg.txt` is missing or short).
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            "Received an invalid value for argument `validation_split`, "
            f"expected a float in (0, 1), got {fraction!r}."
        )
    unknown = int(np.sum(train.movies < 0))
    if unknown:
        raise DataNotFoundError(
            f"{unknown:,} of {len(train):,} training reviews have no movie: "
            "a movie-disjoint validation split needs the dataset's "
            "train/urls_pos.txt and train/urls_neg.txt (line i names review "
            "i's movie). Use the full aclImdb archive, or "
            "validation_by='random'."
        )
    movies, counts = np.unique(train.movies, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(movies))
    target = fraction * len(train)
    chosen, total = [], 0
    for index in order:
        if total >= target:
            break
        chosen.append(movies[index])
        total += counts[index]
    in_validation = np.isin(train.movies, chosen)
    return (
        train.subset(np.flatnonzero(~in_validation)),
        train.subset(np.flatnonzero(in_validation)),
    )


def load_imdb(
    path: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    validation_split: float = 0.1,
    seed: int = 1337,
    source: str = "files",
    strict: bool = True,
    download: bool = True,
    validation_by: str = "random",
) -> ImdbData:
    """Load IMDB reviews with labels and ratings.

    Args:
        path: an `aclImdb/` folder (or its parent) or an
            `aclImdb_v1.tar.gz`-style archive. Default: look in the data
            directory (see `toolkit.data.files`) for the names in
            `IMDB_CANDIDATES`, downloading the official archive if none is
            there.
        data_dir: the data directory to search and download into.
        validation_split: fraction of the official training set held out as
            validation. Never taken from test.
        validation_by: `"random"` (stratified by label) or `"movie"`
            (whole movies, so that no movie is in both train and
            validation; see `carve_validation_by_movie`).
        seed: seed of the validation split.
        source: `"files"` (the dataset's own format) or `"tfds"` (the
            tensorflow-datasets `imdb_reviews` build in `data_dir`).
        strict: require the published counts (12,500 per labelled folder,
            50,000 unlabelled). With `False`, any balanced non-empty copy
            loads (for subsets and test fixtures).
        download: allow downloading when nothing is found.

    Returns:
        An `ImdbData` whose `metadata` records the source path and the size of
        every split.
    """
    if validation_by not in SPLITS_BY:
        raise ValueError(
            "Received an invalid value for argument `validation_by`, "
            f"expected one of {SPLITS_BY}, got {validation_by!r}."
        )
    if source == "tfds":
        if validation_by == "movie":
            raise ValueError(
                "The tensorflow-datasets imdb_reviews build has no movie "
                "of each review; use validation_by='random' with "
                "source='tfds', or source='files' for the movie split."
            )
        return _load_from_tfds(data_dir, validation_split, seed, download)
    if source != "files":
        raise ValueError(
            "Received an invalid value for argument `source`, expected "
            f"'files' or 'tfds', got {source!r}."
        )
    path = dataset_path(
        path,
        IMDB_ARCHIVE,
        IMDB_CANDIDATES,
        data_dir,
        download,
        what="an aclImdb/ folder or an aclImdb_v1.tar.gz archive",
    )
    folders, movies = _read_reviews(path)
    _validate(folders, path, strict)
    full_train = _concat(
        _to_split(folders[("train", "neg")], 0, movies.get("neg")),
        _to_split(folders[("train", "pos")], 1, movies.get("pos")),
    )
    carve = (
        carve_validation_by_movie
        if validation_by == "movie"
        else carve_validation
    )
    train, validation = carve(full_train, validation_split, seed)
    test = _concat(
        _to_split(folders[("test", "neg")], 0),
        _to_split(folders[("test", "pos")], 1),
    )
    unsup = _to_split(folders[("train", "unsup")], -1)
    return _package(
        train,
        validation,
        test,
        unsup,
        str(path),
        "files",
        validation_split,
        seed,
        validation_by,
    )


def _package(
    train, validation, test, unsup, source, kind, fraction, seed, by="random"
):
    metadata = {
        "dataset": "imdb",
        "source": source,
        "source_kind": kind,
        "validation_split": fraction,
        "validation_by": by,
        "seed": seed,
        "sizes": {
            "train": len(train),
            "validation": len(validation),
            "test": len(test),
            "unsup": len(unsup),
        },
    }
    if np.all(train.movies >= 0) and np.all(validation.movies >= 0):
        train_movies = set(train.movies.tolist())
        validation_movies = set(validation.movies.tolist())
        metadata["movies"] = {
            "train": len(train_movies),
            "validation": len(validation_movies),
            "in_both": len(train_movies & validation_movies),
        }
    return ImdbData(train, validation, test, unsup, source, metadata)


def _load_from_tfds(data_dir, validation_split, seed, download):
    import tensorflow_datasets as tfds

    splits = {}
    for name in ("train", "test", "unsupervised"):
        try:
            dataset = tfds.load(
                "imdb_reviews",
                split=name,
                data_dir=data_dir,
                download=download,
            )
        except Exception as error:  # tfds raises several types here.
            raise DataNotFoundError(
                "tensorflow-datasets could not provide imdb_reviews "
                f"(data_dir={data_dir!r}, download={download}): {error}. "
                "Prepare it with `tfds build imdb_reviews`, or use "
                "source='files' with the aclImdb archive."
            ) from error
        texts, labels = [], []
        for example in tfds.as_numpy(dataset):
            texts.append(clean_review(example["text"].decode("utf-8")))
            labels.append(int(example["label"]))
        count = len(texts)
        labels = np.array(labels, dtype=np.int32)
        if name == "unsupervised":
            labels = np.full(count, -1, dtype=np.int32)
        unknown = np.full(count, -1, dtype=np.int32)
        splits[name] = TextSplit(texts, labels, unknown.copy(), unknown)
    train, validation = carve_validation(
        splits["train"], validation_split, seed
    )
    return _package(
        train,
        validation,
        splits["test"],
        splits["unsupervised"],
        "tfds:imdb_reviews",
        "tfds",
        validation_split,
        seed,
    )
