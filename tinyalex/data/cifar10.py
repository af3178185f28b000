"""CIFAR-10 (Krizhevsky 2009), the paper's own small benchmark (docs/conventions.md §6), binary.

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/`` with ``data_batch_1..5.bin``
(50000 train), ``test_batch.bin`` (10000 val) and ``batches.meta.txt`` (class names).
Each record is 3073 bytes::

    1 label byte (0..9), then 1024 R, 1024 G, 1024 B bytes (row-major 32x32 planes)

so a file reshapes straight into NCHW. The Python version of CIFAR-10 is a pickle, and
unpickling runs arbitrary code; this loader reads only the binary one.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from .dataset import Dataset
from .download import fetch
from .errors import DataError
from .paths import cache_root
from .resize import resize_images

NAME = "cifar10"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
VAL_FILES = ["test_batch.bin"]
META = "batches.meta.txt"
CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
RECORD = 1 + 3 * 32 * 32


def parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 3, 32, 32) images and int64 (N,) labels from one ``*.bin`` file's bytes."""
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(
            f"{NAME}: {where} has {len(data)} bytes, not a whole number of {RECORD}-byte "
            f"records (truncated or not the binary version; fetch it again)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise DataError(f"{NAME}: {where} has label {labels.max()}, expected 0..9 (corrupt)")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def _read_folder(folder: Path) -> dict[str, bytes]:
    """The batch files (and the class names, if there) from an extracted folder."""
    files = {}
    for name in TRAIN_FILES + VAL_FILES + [META]:
        path = folder / name
        if path.is_file():
            files[name] = path.read_bytes()
    return files


def _read_archive(archive: Path) -> dict[str, bytes]:
    """The same files, read straight out of the tar.gz.

    Only members named ``cifar-10-batches-bin/<expected name>`` are read, into memory,
    and nothing is written to disk: a malicious archive cannot place files anywhere
    (no path traversal), and there is no extracted copy to go stale.
    """
    wanted = {f"{FOLDER}/{name}": name for name in TRAIN_FILES + VAL_FILES + [META]}
    files = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name in wanted:
                    files[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(
            f"{NAME}: cannot read {archive}: {e} (truncated or corrupt; delete it and fetch "
            f"it again)"
        ) from e
    return files


def _candidates(data_dir) -> list[Path]:
    """Where a user-given ``data_dir`` may hold the data: the archive, the extracted
    folder, or a folder holding either."""
    root = Path(data_dir).expanduser()
    return [root, root / FOLDER, root / ARCHIVE]


def _read_any(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return _read_archive(path)
    if path.is_dir():
        return _read_folder(path)
    return {}


def _complete(files: dict[str, bytes]) -> bool:
    return all(name in files for name in TRAIN_FILES + VAL_FILES)


def locate_files(data_dir, cache_dir, download: bool) -> tuple[dict[str, bytes], Path]:
    """The CIFAR-10 files' bytes and where they came from: ``data_dir`` first, then the
    archive in the cache, downloading it there if allowed."""
    looked = []
    if data_dir is not None:
        for path in _candidates(data_dir):
            files = _read_any(path)
            if _complete(files):
                return files, path
        looked.append(str(Path(data_dir).expanduser()))
    archive = cache_root(cache_dir) / NAME / ARCHIVE
    looked.append(str(archive))
    if archive.is_file() or download:
        try:
            fetch(URL, archive, MD5)  # uses the cached copy when its MD5 is right
        except DataError as e:
            raise DataError(f"{NAME}: not found in {' or '.join(looked)}, and {e}") from e
        files = _read_archive(archive)
        if _complete(files):
            return files, archive
        raise DataError(f"{NAME}: {archive} lacks some of {TRAIN_FILES + VAL_FILES}")
    raise DataError(
        f"{NAME}: {FOLDER}/ or {ARCHIVE} not found in {' or '.join(looked)} "
        f"(pass --data-dir with the binary version, or allow download)"
    )


def _class_names(files: dict[str, bytes]) -> list[str]:
    """Names from ``batches.meta.txt`` when present, else the standard list."""
    if META in files:
        names = [line.strip() for line in files[META].decode("ascii", "replace").splitlines()]
        names = [n for n in names if n]
        if len(names) == len(CLASSES):
            return names
    return list(CLASSES)


def _join(files, names) -> tuple[np.ndarray, np.ndarray]:
    parts = [parse_batch(files[name], name) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_cifar10(*, data_dir=None, size=None, limit=None, download=True, cache_dir=None) -> Dataset:
    """CIFAR-10 as a ``Dataset``: 50000 train / 10000 val (the test batch), uint8
    (N, 3, 32, 32) RGB, or resized to ``size``."""
    files, source = locate_files(data_dir, cache_dir, download)
    train_x, train_y = _join(files, TRAIN_FILES)
    val_x, val_y = _join(files, VAL_FILES)
    if limit is not None:
        train_x, train_y = train_x[:limit], train_y[:limit]
    if size is not None:
        train_x, val_x = resize_images(train_x, size), resize_images(val_x, size)
    classes = _class_names(files)
    return Dataset.build(NAME, f"from {source}", train_x, train_y, val_x, val_y, classes)
