"""Finding, downloading, verifying and safely unpacking dataset files.

Every loader looks for its files in a data directory first: the `data_dir`
argument, else the `TOOLKIT_DATA_DIR` environment variable, else
`~/.cache/toolkit/data`. It downloads from the dataset's canonical URL only
when nothing is found, into a temporary file that is verified (size, and
sha256 where one is published) and then renamed into place, so a half-written
file is never mistaken for data. Archives are read or unpacked only after
every member has been checked: no absolute paths, no `..`, no links or
devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import os
import pathlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence

ENV_VAR = "TOOLKIT_DATA_DIR"
DEFAULT_CACHE = pathlib.Path.home() / ".cache" / "toolkit" / "data"


class DataNotFoundError(FileNotFoundError):
    """A dataset file is missing and could not be downloaded."""


class CorruptDataError(ValueError):
    """A dataset file exists but is not what the loader expects."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """A file published at a canonical URL.

    Attributes:
        url: where to download it from.
        filename: the name it is stored under in the data directory.
        size: its size in bytes.
        sha256: its sha256 hex digest, where one is published.
    """

    url: str
    filename: str
    size: int
    sha256: str | None = None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The data directory: `data_dir`, else `$TOOLKIT_DATA_DIR`, else
    `~/.cache/toolkit/data`."""
    if data_dir is not None:
        return pathlib.Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return pathlib.Path(os.environ[ENV_VAR]).expanduser()
    return DEFAULT_CACHE


def find_first(
    directory: pathlib.Path, candidates: Sequence[str]
) -> pathlib.Path | None:
    """The first of `candidates` (relative paths) that exists in
    `directory`."""
    for candidate in candidates:
        path = directory / candidate
        if path.exists():
            return path
    return None


def sha256_of(path: pathlib.Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: pathlib.Path, remote: RemoteFile) -> None:
    """Raise `CorruptDataError` unless `path` has the published size and
    sha256."""
    size = path.stat().st_size
    if size != remote.size:
        raise CorruptDataError(
            f"{path} has {size:,} bytes, but {remote.url} has "
            f"{remote.size:,}. The file is truncated or a different file; "
            "delete it and run again to download it afresh."
        )
    if remote.sha256 is not None:
        digest = sha256_of(path)
        if digest != remote.sha256:
            raise CorruptDataError(
                f"{path} has sha256 {digest}, but {remote.url} has "
                f"{remote.sha256}. Delete it and run again to download it "
                "afresh."
            )


def _progress_bar(total: int):
    import keras  # Progress output only; keep import-time light.

    return keras.utils.Progbar(total, unit_name="byte")


def download(
    remote: RemoteFile,
    directory: pathlib.Path,
    progress: bool = True,
    opener=urllib.request.urlopen,
) -> pathlib.Path:
    """Download `remote` into `directory`, verify it and return its path.

    The bytes go to a temporary file in `directory`, which is renamed to
    `remote.filename` only after verification; on any failure it is removed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / remote.filename
    handle, temporary = tempfile.mkstemp(
        prefix=f".{remote.filename}.", suffix=".part", dir=directory
    )
    temporary = pathlib.Path(temporary)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                response = opener(remote.url, timeout=60)
            except (urllib.error.URLError, OSError) as error:
                raise DataNotFoundError(
                    f"Could not download {remote.url} ({error}). Download it "
                    f"by hand and save it as {target}, or point "
                    f"`data_dir` / ${ENV_VAR} at a folder that holds it."
                ) from error
            with response:
                bar = _progress_bar(remote.size) if progress else None
                received = 0
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(min(received, remote.size))
        verify(temporary, remote)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def locate_or_download(
    remote: RemoteFile,
    candidates: Sequence[str],
    data_dir: str | os.PathLike | None = None,
    download_if_missing: bool = True,
    what: str = "the dataset",
) -> pathlib.Path:
    """Find one of `candidates` in the data directory, else download
    `remote` there (verified), else raise `DataNotFoundError` saying what
    was expected where and how to get it."""
    directory = resolve_data_dir(data_dir)
    found = find_first(directory, candidates)
    if found is not None:
        return found
    if not download_if_missing:
        raise DataNotFoundError(
            f"Could not find {what} in {directory}: looked for "
            f"{', '.join(candidates)}. Download {remote.url} into that "
            f"folder, pass its location explicitly, or set `data_dir` / "
            f"${ENV_VAR} to the folder that holds it."
        )
    return download(remote, directory)


def dataset_path(
    path: str | os.PathLike | None,
    remote: RemoteFile,
    candidates: Sequence[str],
    data_dir: str | os.PathLike | None,
    download_if_missing: bool,
    what: str,
) -> pathlib.Path:
    """The file or folder a loader reads: `path` when given (it must
    exist), else what `locate_or_download` finds or fetches."""
    if path is None:
        return locate_or_download(
            remote, candidates, data_dir, download_if_missing, what=what
        )
    path = pathlib.Path(path)
    if not path.exists():
        raise DataNotFoundError(
            f"{path} does not exist. Pass {what} (from {remote.url}), or "
            "leave the path out to search the data directory."
        )
    return path


def _check_member_name(name: str, archive: pathlib.Path) -> None:
    path = pathlib.PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("\\"):
        raise CorruptDataError(
            f"Refusing {archive}: member {name!r} would be written outside "
            "the target folder."
        )


def checked_tar_members(
    archive: tarfile.TarFile, archive_path: pathlib.Path
) -> Iterator[tarfile.TarInfo]:
    """Yield the regular-file members of an open tar archive after checking
    each member's name and type; refuse links, devices and escaping paths."""
    for member in archive:
        _check_member_name(member.name, archive_path)
        if member.isdir():
            continue
        if not member.isfile():
            raise CorruptDataError(
                f"Refusing {archive_path}: member {member.name!r} is a link "
                "or a special file, which a dataset archive never holds."
            )
        yield member


def iter_tar_files(
    archive_path: pathlib.Path,
) -> Iterator[tuple[str, bytes]]:
    """Stream `(name, contents)` for every regular file of a (gzipped) tar
    archive, checking every member, without unpacking it to disk."""
    try:
        with contextlib.ExitStack() as stack:
            raw = open(archive_path, "rb")
            stack.enter_context(raw)
            if raw.read(2) == b"\x1f\x8b":
                # gzip's own reader, unlike tarfile's stream, reports a
                # truncated file (EOFError) instead of ending early.
                raw = stack.enter_context(gzip.open(archive_path, "rb"))
            else:
                raw.seek(0)
            archive = stack.enter_context(tarfile.open(fileobj=raw, mode="r|"))
            for member in checked_tar_members(archive, archive_path):
                handle = archive.extractfile(member)
                yield member.name, handle.read()
            while raw.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CorruptDataError(
            f"Could not read {archive_path} as a tar archive ({error}). The "
            "file is damaged or incomplete; delete it and fetch it again."
        ) from error


def safe_extract(
    archive_path: pathlib.Path, target: pathlib.Path
) -> pathlib.Path:
    """Unpack a tar or zip archive into `target` after checking every
    member. Unpacks into a temporary sibling folder first and renames it, so
    `target` either holds the whole archive or does not exist."""
    if target.exists():
        raise FileExistsError(f"{target} already exists; not overwriting it.")
    staging = pathlib.Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)
    )
    try:
        if zipfile.is_zipfile(archive_path):
            with zipfile.ZipFile(archive_path) as archive:
                for info in archive.infolist():
                    _check_member_name(info.filename, archive_path)
                    # Unix file-type bits, when the zip records them: 0
                    # (none), regular file or folder are fine.
                    file_type = (info.external_attr >> 16) & 0o170000
                    if file_type not in (0, 0o100000, 0o040000):
                        raise CorruptDataError(
                            f"Refusing {archive_path}: member "
                            f"{info.filename!r} is a link or a special file."
                        )
                archive.extractall(staging)
        else:
            try:
                with tarfile.open(archive_path, mode="r:*") as archive:
                    members = list(checked_tar_members(archive, archive_path))
                    archive.extractall(staging, members=members, filter="data")
            except (tarfile.TarError, EOFError) as error:
                raise CorruptDataError(
                    f"Could not read {archive_path} as a tar or zip archive "
                    f"({error}); delete it and fetch it again."
                ) from error
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target
