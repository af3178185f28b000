"""Fashion-MNIST loader on small idx(.gz) files written here in the real format."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from tinyalex.data import DataError, load_dataset
from tinyalex.data import fashion_mnist as fm


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An idx file: big-endian magic and dims, then the uint8 values in row-major order."""
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


def write_set(folder: Path, rng, n_train=12, n_val=5, gz=True) -> dict:
    """Write the four files; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_val, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_val, dtype=np.uint8),
    }
    for name, a in arrays.items():
        data = idx_bytes(a, fm.IMAGES_MAGIC if a.ndim == 3 else fm.LABELS_MAGIC)
        if gz:
            (folder / name).write_bytes(gzip.compress(data))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(data)
    return arrays


@pytest.fixture(autouse=True)
def no_debian(monkeypatch, tmp_path):
    """Hide the system's Debian copy, so each test sees only its own files."""
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")


def load(data_dir, tmp_path, **kw):
    kw.setdefault("download", False)
    return load_dataset("fashion-mnist", data_dir=data_dir, cache_dir=tmp_path / "cache", **kw)


@pytest.mark.parametrize("gz", [True, False])
def test_decodes_what_was_written(tmp_path, rng, gz):
    a = write_set(tmp_path / "fm", rng, gz=gz)
    d = load(tmp_path / "fm", tmp_path)
    assert d.train_x.shape == (12, 3, 28, 28) and d.train_x.dtype == np.uint8
    for c in range(3):  # grey repeated in 3 channels, rows and columns in place
        assert np.array_equal(d.train_x[:, c], a["train-images-idx3-ubyte.gz"])
        assert np.array_equal(d.val_x[:, c], a["t10k-images-idx3-ubyte.gz"])
    assert d.train_y.dtype == np.int64
    assert np.array_equal(d.train_y, a["train-labels-idx1-ubyte.gz"])
    assert np.array_equal(d.val_y, a["t10k-labels-idx1-ubyte.gz"])
    assert d.classes[0] == "T-shirt/top" and d.classes[9] == "Ankle boot"


def test_resize_and_limit(tmp_path, rng):
    write_set(tmp_path / "fm", rng)
    d = load(tmp_path / "fm", tmp_path, size=14, limit=4)
    assert d.train_x.shape == (4, 3, 14, 14) and d.val_x.shape == (5, 3, 14, 14)
    assert len(d.train_y) == 4
    assert np.array_equal(d.train_x[:, 0], d.train_x[:, 2])


def test_resize_keeps_a_constant_image_constant(tmp_path, rng):
    a = write_set(tmp_path / "fm", rng)
    a["train-images-idx3-ubyte.gz"][:] = 77
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(a["train-images-idx3-ubyte.gz"], 2051)))
    d = load(tmp_path / "fm", tmp_path, size=56)
    assert (d.train_x == 77).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: gzip.compress(b"\0\0\x08\x04" + gzip.decompress(b)[4:]), "magic number"),
        (lambda b: gzip.compress(gzip.decompress(b)[:-10]), "bytes"),
        (lambda b: b[: len(b) // 2], "truncated or corrupt"),
        (lambda b: b"not a gzip file at all", "truncated or corrupt"),
        (lambda b: gzip.compress(b"\0\0"), "truncated"),
    ],
)
def test_damaged_files_raise_data_error(tmp_path, rng, damage, message):
    write_set(tmp_path / "fm", rng)
    path = tmp_path / "fm" / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message) as e:
        load(tmp_path / "fm", tmp_path)
    assert "train-images" in str(e.value) and "\n" not in str(e.value)


def test_label_count_mismatch(tmp_path, rng):
    write_set(tmp_path / "fm", rng)
    labels = np.zeros(11, dtype=np.uint8)
    (tmp_path / "fm" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(labels, 2049))
    )
    with pytest.raises(DataError, match="12 images but 11 labels"):
        load(tmp_path / "fm", tmp_path)


def test_missing_files_say_where_it_looked(tmp_path):
    with pytest.raises(DataError) as e:
        load(tmp_path / "empty", tmp_path)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz not found" in msg
    for place in (tmp_path / "empty", tmp_path / "no-debian", tmp_path / "cache"):
        assert str(place) in msg
    assert "dataset-fashion-mnist" in msg and "--data-dir" in msg


def test_download_checks_md5_and_caches(tmp_path, rng, monkeypatch):
    a = write_set(tmp_path / "server", rng)
    monkeypatch.setattr(fm, "URL", (tmp_path / "server").as_uri() + "/")
    md5s = {n: hashlib.md5((tmp_path / "server" / n).read_bytes()).hexdigest() for n in a}
    monkeypatch.setattr(fm, "FILES", md5s)
    d = load(None, tmp_path, download=True)
    assert np.array_equal(d.train_y, a["train-labels-idx1-ubyte.gz"])
    assert sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir()) == sorted(a)
    # the cached copies are now found without downloading
    assert np.array_equal(load(None, tmp_path).val_y, a["t10k-labels-idx1-ubyte.gz"])

    # a cached file that no longer matches its MD5 is refused
    (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"bad")
    with pytest.raises(DataError, match="MD5"):
        load(None, tmp_path)


def test_download_with_wrong_md5_raises(tmp_path, rng, monkeypatch):
    write_set(tmp_path / "server", rng)
    monkeypatch.setattr(fm, "URL", (tmp_path / "server").as_uri() + "/")
    with pytest.raises(DataError, match="not found in .* md5"):
        load(None, tmp_path, download=True)  # the real MD5s do not match these files


@pytest.mark.skipif(
    not (Path("/usr/share/datasets/fashion-mnist") / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_debian_copy_loads(monkeypatch, tmp_path):
    monkeypatch.setattr(fm, "DEBIAN_DIR", Path("/usr/share/datasets/fashion-mnist"))
    d = load(None, tmp_path)
    assert d.train_x.shape == (60000, 3, 28, 28) and d.val_x.shape == (10000, 3, 28, 28)
    assert np.array_equal(np.bincount(d.train_y), np.full(10, 6000))
