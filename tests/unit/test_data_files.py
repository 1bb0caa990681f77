"""Data plumbing: directory resolution, verified atomic downloads, safe
archive handling, and the errors a user sees."""

import hashlib
import io
import pathlib
import tarfile
import urllib.error
import zipfile

import pytest

from data_fixtures import add_tar_member
from toolkit.data import files
from toolkit.data.files import (
    CorruptDataError,
    DataNotFoundError,
    RemoteFile,
    download,
    locate_or_download,
    resolve_data_dir,
    safe_extract,
)

PAYLOAD = b"some dataset bytes" * 1000


def remote(**overrides):
    values = {
        "url": "https://example.invalid/data.bin",
        "filename": "data.bin",
        "size": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    values.update(overrides)
    return RemoteFile(**values)


def serving(payload):
    def opener(url, timeout):
        return io.BytesIO(payload)

    return opener


def test_resolve_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("TOOLKIT_DATA_DIR")
    assert resolve_data_dir() == files.DEFAULT_CACHE
    assert files.DEFAULT_CACHE.is_relative_to(pathlib.Path.home())


def test_download_verifies_and_renames_atomically(tmp_path):
    path = download(remote(), tmp_path, progress=False, opener=serving(PAYLOAD))
    assert path == tmp_path / "data.bin"
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (PAYLOAD[:-10], "truncated"),
        (PAYLOAD[:-1] + b"X", "sha256"),
    ],
    ids=["short", "altered"],
)
def test_bad_download_leaves_nothing_behind(tmp_path, payload, message):
    with pytest.raises(CorruptDataError, match=message):
        download(remote(), tmp_path, progress=False, opener=serving(payload))
    assert list(tmp_path.iterdir()) == []


def test_offline_download_names_the_url_and_target(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("no network")

    with pytest.raises(DataNotFoundError) as error:
        download(remote(), tmp_path, progress=False, opener=offline)
    text = str(error.value)
    assert "https://example.invalid/data.bin" in text
    assert str(tmp_path / "data.bin") in text
    assert list(tmp_path.iterdir()) == []


def test_missing_without_download_says_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        locate_or_download(
            remote(),
            ["a/data.bin", "data.bin"],
            tmp_path,
            download_if_missing=False,
            what="the test data",
        )
    text = str(error.value)
    assert str(tmp_path) in text and "a/data.bin" in text
    assert "https://example.invalid/data.bin" in text


def test_locate_prefers_an_existing_file(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"local")
    found = locate_or_download(remote(), ["data.bin"], tmp_path)
    assert found.read_bytes() == b"local"


def test_safe_extract_tar_and_zip(tmp_path):
    tar_path = tmp_path / "ok.tar.gz"
    info = tarfile.TarInfo("folder/file.txt")
    add_tar_member(tar_path, info, b"hello")
    out = safe_extract(tar_path, tmp_path / "tar_out")
    assert (out / "folder" / "file.txt").read_bytes() == b"hello"

    zip_path = tmp_path / "ok.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("folder/file.txt", "hi")
    out = safe_extract(zip_path, tmp_path / "zip_out")
    assert (out / "folder" / "file.txt").read_text() == "hi"


@pytest.mark.parametrize(
    "name", ["../escape.txt", "/etc/evil.txt", "a/../../escape.txt"]
)
def test_safe_extract_refuses_escaping_members(tmp_path, name):
    archive = add_tar_member(
        tmp_path / "bad.tar.gz", tarfile.TarInfo(name), b"x"
    )
    with pytest.raises(CorruptDataError, match="outside the target"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()

    zip_path = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path, "w") as handle:
        handle.writestr(name, "x")
    with pytest.raises(CorruptDataError, match="outside the target"):
        safe_extract(zip_path, tmp_path / "zip_out")
    assert not (tmp_path / "zip_out").exists()


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE]
)
def test_safe_extract_refuses_links_and_devices(tmp_path, kind):
    info = tarfile.TarInfo("innocent")
    info.type = kind
    info.linkname = "/etc/passwd"
    archive = add_tar_member(tmp_path / "link.tar.gz", info)
    with pytest.raises(CorruptDataError, match="link or a special file"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_archive_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(CorruptDataError, match="damaged or incomplete"):
        list(files.iter_tar_files(broken))


def test_safe_extract_refuses_zip_symlinks(tmp_path):
    zip_path = tmp_path / "link.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        info = zipfile.ZipInfo("innocent")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(CorruptDataError, match="link or a special file"):
        safe_extract(zip_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
