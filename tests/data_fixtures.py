"""Small datasets in the real published formats, written by the tests."""

import io
import os
import pathlib
import random
import tarfile
import zipfile

# The real datasets (see ../shared/data/SOURCES.md): $TOOLKIT_DATA_DIR, as
# .ci/run sets it, else the shared folder beside the checkout. Tests that use
# them skip when they are absent.
SHARED_DATA = pathlib.Path(
    os.environ.get("TOOLKIT_DATA_DIR")
    or pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
)

# (split, label) -> list of (id, rating, text)
MINI_IMDB = {
    ("train", "pos"): [
        (0, 9, "A wonderful film.<br /><br />Loved it."),
        (1, 7, "Good acting, great plot."),
        (2, 10, "Best movie ever made, wonderful."),
        (3, 8, "Enjoyable and moving."),
    ],
    ("train", "neg"): [
        (0, 3, "Terrible.<br />Awful plot."),
        (1, 1, "Worst film, boring."),
        (2, 4, "Not good, dull acting."),
        (3, 2, "Awful, awful, awful."),
    ],
    ("train", "unsup"): [
        (0, 0, "Some unlabelled review."),
        (1, 0, "Another one, with <br /> a tag."),
    ],
    ("test", "pos"): [
        (0, 10, "Superb zyzzyva performance."),
        (1, 7, "Pretty good."),
    ],
    ("test", "neg"): [
        (0, 2, "Bad."),
        (1, 4, "Meh, weak."),
    ],
}


def movie_of(label: str, review_id: int) -> int:
    """The fixtures' movie of a training review: two or three reviews per
    movie, positive and negative movies apart, as in the real archive."""
    return 1000 + review_id // 2 if label == "pos" else 2000 + review_id // 3


def urls_text(reviews, label: str) -> str:
    """`train/urls_<label>.txt`: line i is review id i's movie page."""
    count = max(i for i, _, _ in reviews[("train", label)]) + 1
    return "".join(
        f"http://www.imdb.com/title/tt{movie_of(label, i):07d}/usercomments\n"
        for i in range(count)
    )


def write_imdb_tree(root: pathlib.Path, reviews=MINI_IMDB) -> pathlib.Path:
    """An `aclImdb/` tree under `root` with README and urls files too."""
    base = root / "aclImdb"
    for (split, label), items in reviews.items():
        folder = base / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for review_id, rating, text in items:
            (folder / f"{review_id}_{rating}.txt").write_text(
                text, encoding="utf-8"
            )
    (base / "README").write_text("Large Movie Review Dataset v1.0\n")
    (base / "imdb.vocab").write_text("the\nand\n")
    for label in ("pos", "neg"):
        (base / "train" / f"urls_{label}.txt").write_text(
            urls_text(reviews, label)
        )
    return base


def write_imdb_archive(
    path: pathlib.Path, reviews=MINI_IMDB, urls: bool = True
) -> pathlib.Path:
    """An `aclImdb_v1.tar.gz`-style archive of the same tree (with the
    training `urls_*.txt` files unless `urls=False`)."""
    with tarfile.open(path, "w:gz") as archive:
        for label in ("pos", "neg") if urls else ():
            data = urls_text(reviews, label).encode()
            info = tarfile.TarInfo(f"aclImdb/train/urls_{label}.txt")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for (split, label), items in reviews.items():
            for review_id, rating, text in items:
                data = text.encode("utf-8")
                info = tarfile.TarInfo(
                    f"aclImdb/{split}/{label}/{review_id}_{rating}.txt"
                )
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def add_tar_member(path: pathlib.Path, info: tarfile.TarInfo, data=b""):
    """A gzipped tar with one crafted member (for the safety tests)."""
    with tarfile.open(path, "w:gz") as archive:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data) if data else None)
    return path


def write_text8(path: pathlib.Path, text: str, as_zip: bool = False):
    if as_zip:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("text8", text)
    else:
        path.write_text(text, encoding="ascii")
    return path


POSITIVE_WORDS = ["great", "wonderful", "superb", "loved", "moving", "best"]
NEGATIVE_WORDS = ["awful", "boring", "worst", "dull", "terrible", "waste"]
FILLER_WORDS = ["the", "film", "plot", "actor", "scene", "story", "and", "a"]


def synthetic_imdb(train_per_class=48, test_per_class=24, seed=0):
    """Reviews in MINI_IMDB's structure whose label follows from their
    words, so a model can learn them in a few steps."""
    import random

    rng = random.Random(seed)

    def review(words):
        body = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(4, 20))]
        for _ in range(rng.randint(1, 3)):
            body.insert(rng.randrange(len(body) + 1), rng.choice(words))
        return " ".join(body).capitalize() + ".<br /><br />The end."

    reviews = {}
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        reviews[(split, "pos")] = [
            (i, rng.randint(7, 10), review(POSITIVE_WORDS))
            for i in range(count)
        ]
        reviews[(split, "neg")] = [
            (i, rng.randint(1, 4), review(NEGATIVE_WORDS)) for i in range(count)
        ]
    reviews[("train", "unsup")] = [
        (i, 0, review(FILLER_WORDS)) for i in range(6)
    ]
    return reviews


WORDS = ["the", "king", "shall", "not", "be", "my", "lord", "and", "good"]


def play_text(lines=400, seed=0):
    """Shakespeare-format text: speaker names, verse, punctuation."""
    rng = random.Random(seed)
    parts = []
    for _ in range(lines):
        speaker = rng.choice(["KING HENRY", "LADY ANNE", "First Lord"])
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
        parts.append(f"{speaker}:\n{' '.join(words).capitalize()}!\n")
    return "\n".join(parts)
