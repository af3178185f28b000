"""Datasets for tinyalex, as uint8 NCHW RGB arrays in memory.

    data = load_dataset("synthetic")          # embedded: nothing to install or download
    data = load_dataset("fashion-mnist")      # Debian package, --data-dir, or download
    data = load_dataset("cifar10", data_dir="~/cifar-10-batches-bin")
    data = load_dataset("folder", data_dir="~/imagenet-subset", size=256)

    mean = mean_image(data.train_x)           # float32 (3, H, W), subtracted per batch
    for xb, yb in BatchLoader(data.train_x, data.train_y, 128, seed=0, epoch=0):
        ...

Anything wrong with the data on disk raises ``DataError`` with a one-line message.
"""

from __future__ import annotations

from .cifar10 import load_cifar10
from .dataset import Dataset
from .errors import DataError
from .fashion_mnist import load_fashion_mnist
from .folder import load_folder
from .loader import BatchLoader
from .normalize import channel_stats, mean_image
from .synthetic import load_synthetic

DATASETS = ("synthetic", "fashion-mnist", "cifar10", "folder")

__all__ = [
    "DATASETS",
    "BatchLoader",
    "DataError",
    "Dataset",
    "channel_stats",
    "load_dataset",
    "mean_image",
]


def load_dataset(
    name: str,
    *,
    data_dir=None,
    size: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    download: bool = True,
    cache_dir=None,
) -> Dataset:
    """Load one of ``DATASETS`` as a ``Dataset`` of uint8 (N, 3, size, size) RGB images.

    Args:
        name: "synthetic", "fashion-mnist", "cifar10" or "folder".
        data_dir: where the files are (required for "folder"; else looked up first).
        size: square side the images are stored at; None keeps the native size
            (synthetic 32, fashion-mnist 28, cifar10 32, folder 256).
        limit: keep only the first ``limit`` training images (validation is untouched).
        seed: the synthetic dataset's seed (the others are fixed files).
        download: fetch missing fashion-mnist / cifar10 files into the cache.
        cache_dir: the cache folder (default ``$TINYALEX_CACHE`` or ``~/.cache/tinyalex``).
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be a positive number of images, got {limit}")
    if size is not None and size < 1:
        raise DataError(f"size must be a positive number of pixels, got {size}")
    if name == "synthetic":
        return load_synthetic(size=size, limit=limit, seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(
            data_dir=data_dir, size=size, limit=limit, download=download, cache_dir=cache_dir
        )
    if name == "cifar10":
        return load_cifar10(
            data_dir=data_dir, size=size, limit=limit, download=download, cache_dir=cache_dir
        )
    if name == "folder":
        return load_folder(data_dir=data_dir, size=size, limit=limit, cache_dir=cache_dir)
    raise DataError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
