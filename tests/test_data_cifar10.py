"""CIFAR-10 binary loader on small batch files written here in the real format."""

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tinyalex.data import DataError, cifar10, load_dataset

NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def record_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Records as the format says: a label byte, then the R, G and B planes, each 32x32
    row-major (written plane by plane here, not by reshaping, to spell the layout out)."""
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out += bytes([label]) + image[0].tobytes() + image[1].tobytes() + image[2].tobytes()
    return bytes(out)


def write_folder(folder: Path, rng, per_batch=3, n_val=4) -> dict:
    """cifar-10-batches-bin/ with five small training batches and a test batch."""
    folder.mkdir(parents=True)
    written = {}
    for name in cifar10.TRAIN_FILES + cifar10.VAL_FILES:
        n = n_val if name == "test_batch.bin" else per_batch
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        (folder / name).write_bytes(record_bytes(images, labels))
        written[name] = images, labels
    (folder / "batches.meta.txt").write_text("\n".join(NAMES) + "\n\n")
    return written


def write_archive(folder: Path, archive: Path, extra: dict | None = None) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-bin")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def load(data_dir, tmp_path, **kw):
    kw.setdefault("download", False)
    return load_dataset("cifar10", data_dir=data_dir, cache_dir=tmp_path / "cache", **kw)


def expected(written):
    train = [written[n] for n in cifar10.TRAIN_FILES]
    train_x = np.concatenate([t[0] for t in train])
    train_y = np.concatenate([t[1] for t in train])
    return train_x, train_y, *written["test_batch.bin"]


def test_decodes_folder_exactly(tmp_path, rng):
    written = write_folder(tmp_path / "cifar-10-batches-bin", rng)
    train_x, train_y, val_x, val_y = expected(written)
    for data_dir in (tmp_path, tmp_path / "cifar-10-batches-bin"):  # parent or folder itself
        d = load(data_dir, tmp_path)
        assert d.train_x.shape == (15, 3, 32, 32) and d.train_x.dtype == np.uint8
        assert np.array_equal(d.train_x, train_x) and np.array_equal(d.val_x, val_x)
        assert np.array_equal(d.train_y, train_y) and d.train_y.dtype == np.int64
        assert np.array_equal(d.val_y, val_y)
        assert d.classes == NAMES  # read from batches.meta.txt


def test_channel_planes_and_pixel_order(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    planes = np.zeros((3, 32, 32), dtype=np.uint8)
    planes[0, 0, 1] = 200  # red, row 0 column 1
    planes[2, 5, 0] = 100  # blue, row 5 column 0
    data = bytes([7]) + planes.tobytes()
    for name in cifar10.TRAIN_FILES + cifar10.VAL_FILES:
        (folder / name).write_bytes(data)
    d = load(folder, tmp_path)
    image = d.train_x[0]
    assert image[0, 0, 1] == 200 and image[2, 5, 0] == 100
    assert image.sum() == 300 and d.train_y[0] == 7
    assert d.classes == cifar10.CLASSES  # no meta file: the standard names


def test_archive_with_resize_and_limit(tmp_path, rng):
    written = write_folder(tmp_path / "src" / "cifar-10-batches-bin", rng)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    write_archive(tmp_path / "src" / "cifar-10-batches-bin", archive)
    for data_dir in (archive, tmp_path):  # the archive, or a folder holding it
        d = load(data_dir, tmp_path, size=16, limit=5)
        assert d.train_x.shape == (5, 3, 16, 16) and d.val_x.shape == (4, 3, 16, 16)
        assert np.array_equal(d.train_y, expected(written)[1][:5])


def test_archive_members_outside_the_folder_are_never_written(tmp_path, rng):
    write_folder(tmp_path / "src" / "cifar-10-batches-bin", rng)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    evil = {"../escaped.txt": b"x", "/tmp/tinyalex-escaped.txt": b"x"}
    write_archive(tmp_path / "src" / "cifar-10-batches-bin", archive, evil)
    load(archive, tmp_path)
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not Path("/tmp/tinyalex-escaped.txt").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-1], "not a whole number"),
        (lambda b: b"", "not a whole number"),
        (lambda b: bytes([10]) + b[1:], "label 10"),
    ],
)
def test_bad_batch_raises_data_error(tmp_path, rng, damage, message):
    write_folder(tmp_path / "cifar-10-batches-bin", rng)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path, tmp_path)
    assert "data_batch_3.bin" in str(e.value)


def test_truncated_archive_raises_data_error(tmp_path, rng):
    write_folder(tmp_path / "src" / "cifar-10-batches-bin", rng)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    write_archive(tmp_path / "src" / "cifar-10-batches-bin", archive)
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load(archive, tmp_path)


def test_missing_says_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        load(tmp_path / "nowhere", tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and str(tmp_path / "cache") in msg
    assert "--data-dir" in msg and "\n" not in msg


def test_download_into_cache(tmp_path, rng, monkeypatch):
    written = write_folder(tmp_path / "src" / "cifar-10-batches-bin", rng)
    archive = tmp_path / "server.tar.gz"
    write_archive(tmp_path / "src" / "cifar-10-batches-bin", archive)
    monkeypatch.setattr(cifar10, "URL", archive.as_uri())
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    d = load(None, tmp_path, download=True)
    assert np.array_equal(d.val_x, written["test_batch.bin"][0])
    archive.unlink()  # served from the cache from now on, even without download
    assert np.array_equal(load(None, tmp_path).val_y, written["test_batch.bin"][1])


def test_download_with_wrong_md5_raises(tmp_path, rng, monkeypatch):
    write_folder(tmp_path / "src" / "cifar-10-batches-bin", rng)
    archive = tmp_path / "server.tar.gz"
    write_archive(tmp_path / "src" / "cifar-10-batches-bin", archive)
    monkeypatch.setattr(cifar10, "URL", archive.as_uri())
    with pytest.raises(DataError, match="md5"):
        load(None, tmp_path, download=True)
    assert not (tmp_path / "cache" / "cifar10" / "cifar-10-binary.tar.gz").exists()
