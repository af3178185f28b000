"""The in-memory dataset every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    """Images and labels, already split into training and validation sets.

    Attributes:
        name: the dataset's name as given to ``load_dataset`` (e.g. ``"cifar10"``).
        train_x: uint8 (N, 3, H, W), NCHW, RGB, 0..255; H == W.
        train_y: int64 (N,), class indices 0..num_classes-1.
        val_x: uint8 (M, 3, H, W), same layout as ``train_x``.
        val_y: int64 (M,).
        classes: class names; ``classes[k]`` is the name of label ``k``.
        description: one line for logs, e.g. "cifar10 (from /data): 50000 train / ...".

    Images stay uint8 (a quarter of float32's memory); the training code casts each batch
    to float32 first and then subtracts the mean image, in float32 (docs/conventions.md §5).
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    classes: list[str]
    description: str

    @classmethod
    def build(cls, name: str, source: str, train_x, train_y, val_x, val_y, classes) -> Dataset:
        """A Dataset whose description is made from its arrays; ``source`` says where from."""
        classes = list(classes)
        description = summary(name, source, train_x, val_x, len(classes))
        return cls(name, train_x, train_y, val_x, val_y, classes, description)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Side of the square images in pixels (H == W)."""
        return int(self.train_x.shape[-1])


def summary(name: str, source: str, train_x, val_x, num_classes: int) -> str:
    """The one-line ``Dataset.description`` shared by all loaders."""
    size = train_x.shape[-1]
    return (
        f"{name} ({source}): {len(train_x)} train / {len(val_x)} val, "
        f"{num_classes} classes, {size}x{size}"
    )
