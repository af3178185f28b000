"""An ImageNet-style folder of images: ``root/train/<class>/*.jpg``, ``root/val/<class>/*``.

Each image is decoded with Pillow, its shorter side resized to ``size`` and the centre
``size`` x ``size`` square cut out, as the paper does for ImageNet (P §2, 256 pixels).
Decoding thousands of JPEGs takes a while, so the result is cached as uint8 arrays in an
``.npz`` file under the cache folder, named after a hash of the root, the size, the limit
and every file's name, byte size and modification time; a later load with the same
settings and unchanged files just reads that file, and an image replaced under the same
name makes a new one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_file
from .dataset import Dataset
from .errors import DataError
from .paths import cache_root

NAME = "folder"
NATIVE_SIZE = 256
EXTENSIONS = {".jpg", ".jpeg", ".png"}
ORDER_SEED = 0  # the fixed shuffle that makes "the first N training images" a mix of classes


def _pillow_image():
    try:
        from PIL import Image
    except ImportError as e:
        raise DataError("the folder dataset needs Pillow: pip install pillow") from e
    return Image


def list_split(root: Path, split: str, classes: list[str] | None = None):
    """The image files of ``root/split`` and their class folders' names, sorted.

    Returns (classes, files, labels): the class names (sorted subfolder names when
    ``classes`` is None), file paths and int64 labels."""
    folder = root / split
    if not folder.is_dir():
        raise DataError(
            f"{NAME}: {folder} not found (expected {root}/train/<class>/*.jpg and "
            f"{root}/val/<class>/*.jpg)"
        )
    names = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if classes is None:
        classes = names
        if len(classes) < 2:
            raise DataError(
                f"{NAME}: {folder} has {len(classes)} class folder(s); a classifier needs at "
                "least two (train/<class>/*.jpg, one folder per class)"
            )
    elif unknown := sorted(set(names) - set(classes)):
        raise DataError(f"{NAME}: {folder} has classes {unknown} that train/ does not have")
    files, labels = [], []
    for name in names:
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() in EXTENSIONS:
                files.append(path)
                labels.append(classes.index(name))
    if not files:
        raise DataError(f"{NAME}: no .jpg/.jpeg/.png images in {folder}/<class>/")
    return classes, files, np.array(labels, dtype=np.int64)


def resize_and_crop(image, size: int) -> np.ndarray:
    """A PIL image -> uint8 (3, size, size): shorter side to ``size``, then the centre square."""
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), _pillow_image().BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode(files: list[Path], size: int) -> np.ndarray:
    """uint8 (len(files), 3, size, size); DataError naming the first file Pillow cannot read."""
    Image = _pillow_image()
    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                out[i] = resize_and_crop(image, size)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # Pillow reports some broken files as SyntaxError
            raise DataError(f"{NAME}: cannot decode image {path}: {e}") from e
    return out


def _cache_file(root: Path, size: int, limit, files: list[Path], cache_dir) -> Path:
    key = hashlib.sha1(f"{root.resolve()}|{size}|{limit}".encode())
    for path in files:  # a new, removed, renamed or rewritten image makes a new cache file
        try:
            stat = path.stat()
        except OSError as e:
            raise DataError(f"{NAME}: cannot read {path}: {e.strerror or e}") from e
        key.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return cache_root(cache_dir) / NAME / f"{root.name}-{size}-{key.hexdigest()[:16]}.npz"


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file, then rename: an interrupted save leaves no bad cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)


def load_folder(*, data_dir=None, size=None, limit=None, cache_dir=None) -> Dataset:
    """The images under ``data_dir`` as a ``Dataset`` of uint8 (N, 3, size, size) RGB.

    Classes are the sorted subfolder names of ``train/``. The training images are kept
    in a fixed shuffled order, so that ``limit`` keeps a mix of all classes.
    """
    if data_dir is None:
        raise DataError(f"{NAME}: pass --data-dir, a folder with train/<class>/ and val/<class>/")
    root = Path(data_dir).expanduser()
    size = NATIVE_SIZE if size is None else int(size)
    classes, train_files, train_y = list_split(root, "train")
    _, val_files, val_y = list_split(root, "val", classes)
    keep = np.random.default_rng(ORDER_SEED).permutation(len(train_files))[:limit]
    train_files, train_y = [train_files[i] for i in keep], train_y[keep]

    cache = _cache_file(root, size, limit, train_files + val_files, cache_dir)
    arrays = None
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as f:
                arrays = {key: f[key] for key in ("train_x", "val_x")}
        except (OSError, ValueError, KeyError):
            arrays = None  # damaged cache: decode again and overwrite it
    if arrays is None:
        arrays = {"train_x": decode(train_files, size), "val_x": decode(val_files, size)}
        try:
            _save(cache, arrays)
        except OSError:
            pass  # a read-only cache only costs speed next time
    train_x, val_x = arrays["train_x"], arrays["val_x"]
    return Dataset.build(NAME, f"from {root}", train_x, train_y, val_x, val_y, classes)
