"""fetch(): cached, checksummed downloads, tested on file:// URLs (no network)."""

import hashlib

import pytest

from tinyalex.data import DataError
from tinyalex.data.download import fetch


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source" / "blob.bin"
    path.parent.mkdir()
    path.write_bytes(b"tinyalex test payload" * 100)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_fetch_downloads_then_uses_cache(tmp_path, source):
    path, md5 = source
    dest = tmp_path / "cache" / "blob.bin"
    assert fetch(path.as_uri(), dest, md5) == dest
    assert dest.read_bytes() == path.read_bytes()
    path.unlink()  # the source is gone: the second call must use the cached copy
    assert fetch(path.as_uri(), dest, md5) == dest
    assert list(dest.parent.iterdir()) == [dest]  # no temporary files left behind


def test_wrong_md5_raises_and_leaves_nothing(tmp_path, source):
    path, _ = source
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="md5"):
        fetch(path.as_uri(), cache / "blob.bin", "0" * 32)
    assert list(cache.iterdir()) == []


def test_unreachable_url_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError, match="could not download .*--data-dir") as e:
        fetch((tmp_path / "missing.bin").as_uri(), tmp_path / "cache" / "x.bin", "0" * 32)
    assert "\n" not in str(e.value)


def test_damaged_cached_copy_is_replaced(tmp_path, source):
    path, md5 = source
    dest = tmp_path / "cache" / "blob.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"stale")
    fetch(path.as_uri(), dest, md5)
    assert dest.read_bytes() == path.read_bytes()
