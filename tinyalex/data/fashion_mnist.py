"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from its idx files.

Four files, each gzip-compressed "idx" arrays (http://yann.lecun.com/exdb/mnist/ format)::

    magic (big-endian uint32)  = 2051 for images, 2049 for labels
    dims  (big-endian uint32s) = N, 28, 28 for images; N for labels
    data  (uint8)              = row-major pixels (0 = background) or labels 0..9

Looked up in order: ``data_dir``, Debian's ``/usr/share/datasets/fashion-mnist``
(package ``dataset-fashion-mnist``), the cache, else downloaded into the cache.
The Debian files hold the same idx data, but were gzipped without the original file
name in the gzip header, so their MD5s differ from the official ones: files found
locally are validated by their headers and sizes, downloads by MD5.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .download import fetch, md5sum
from .errors import DataError
from .paths import cache_root
from .resize import resize_images

NAME = "fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
# file name -> official MD5 of the .gz
FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def parse_idx(data: bytes, magic: int, ndim: int, where: str) -> np.ndarray:
    """The uint8 array stored in an idx file's bytes; DataError if they do not fit the header."""
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{NAME}: {where} is truncated ({len(data)} bytes, no idx header)")
    got_magic, *dims = struct.unpack(f">{1 + ndim}I", data[:header])
    if got_magic != magic:
        raise DataError(
            f"{NAME}: {where} has magic number {got_magic}, expected {magic} "
            f"(not an idx file of this kind)"
        )
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DataError(
            f"{NAME}: {where} has {len(data)} bytes, its header {dims} says {expected} "
            f"(truncated or corrupt; delete it and fetch it again)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read an idx file, gzip-compressed (``.gz``) or not."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{NAME}: cannot read {path}: {e} (truncated or corrupt; delete it and fetch it again)"
        ) from e
    return parse_idx(data, magic, ndim, str(path))


def _find_in(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder``, also accepting the uncompressed file (name without .gz)."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate_files(data_dir, cache_dir, download: bool) -> dict[str, Path]:
    """Path of each of the four files: from the first local folder holding all of them,
    else from the cache (checked against the official MD5s), downloading what is missing."""
    local = ([Path(data_dir).expanduser()] if data_dir is not None else []) + [DEBIAN_DIR]
    for folder in local:
        found = {name: _find_in(folder, name) for name in FILES}
        if all(found.values()):
            return found

    cache = cache_root(cache_dir) / NAME
    searched = ", ".join(str(p) for p in local) + f" or {cache}"
    paths = {}
    for name, md5 in FILES.items():
        path = cache / name
        if download:
            try:
                paths[name] = fetch(URL + name, path, md5)
            except DataError as e:
                raise DataError(f"{NAME}: {name} not found in {searched}, and {e}") from e
        elif not path.is_file():
            raise DataError(
                f"{NAME}: {name} not found in {searched} (install the Debian package "
                f"dataset-fashion-mnist, pass --data-dir, or allow download)"
            )
        elif md5sum(path) != md5:
            raise DataError(f"{NAME}: {path} fails its MD5 check; delete it and download again")
        else:
            paths[name] = path
    return paths


def _images_and_labels(paths, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], IMAGES_MAGIC, 3)
    labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], LABELS_MAGIC, 1)
    if len(images) != len(labels):
        raise DataError(f"{NAME}: {prefix} set has {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{NAME}: {prefix} labels go up to {labels.max()}, expected 0..9")
    return images, labels.astype(np.int64)


def _to_rgb(grey: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 (N, H, W) grey -> uint8 (N, 3, size, size): resized, then 3 equal channels
    (AlexNet's first layer expects RGB)."""
    x = grey[:, None]
    if size is not None:
        x = resize_images(x, size)  # resize one plane, not three
    return np.repeat(x, 3, axis=1)


def load_fashion_mnist(
    *, data_dir=None, size=None, limit=None, download=True, cache_dir=None
) -> Dataset:
    """Fashion-MNIST as a ``Dataset``: 60000 train / 10000 val (the test set), 28x28
    (or ``size``), uint8 (N, 3, H, W) with the three channels equal."""
    paths = locate_files(data_dir, cache_dir, download)
    train_x, train_y = _images_and_labels(paths, "train")
    val_x, val_y = _images_and_labels(paths, "t10k")
    if limit is not None:
        train_x, train_y = train_x[:limit], train_y[:limit]
    train_x, val_x = _to_rgb(train_x, size), _to_rgb(val_x, size)
    source = f"from {next(iter(paths.values())).parent}"
    return Dataset.build(NAME, source, train_x, train_y, val_x, val_y, CLASSES)
