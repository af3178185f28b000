"""Putting transforms together, in the spirit of torchvision's Compose and imgaug's Sometimes.

The one calling convention: every transform is ``t(batch, rng) -> batch`` with ``batch``
(N, C, H, W) float32 on NumPy or CuPy and ``rng`` a ``numpy.random.Generator``. Deterministic
transforms (CenterCrop, SubtractMean, ...) accept ``rng`` and ignore it.

Random decisions are made per image on the host, then applied to the chosen images in one
vectorised step: ``Sometimes`` transforms only the selected subset (gather, transform, scatter),
so unselected images cost nothing.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


class Compose:
    """Apply transforms in order: Compose([a, b])(x, rng) == b(a(x, rng), rng)."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, batch, rng=None):
        for t in self.transforms:
            batch = t(batch, rng)
        return batch

    def __repr__(self):
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


def _apply_to(batch, picked, transform, rng, out):
    """out[picked] = transform(batch[picked]); transform must keep the image shape."""
    if picked.size == 0:
        return out
    xp = array_module(batch)
    idx = xp.asarray(picked)
    result = transform(batch[idx], rng)
    if result.shape[1:] != batch.shape[1:]:
        raise ValueError(f"{transform!r} changes the image shape; it cannot act on a subset")
    out[idx] = result
    return out


class Sometimes:
    """Apply ``transform`` to each image independently with probability ``p``."""

    def __init__(self, p: float, transform):
        self.p, self.transform = p, transform

    def __call__(self, batch, rng):
        picked = np.flatnonzero(rng.random(batch.shape[0]) < self.p)
        return _apply_to(batch, picked, self.transform, rng, batch.copy())

    def __repr__(self):
        return f"Sometimes({self.p:g}, {self.transform!r})"


class OneOf:
    """Apply exactly one of ``transforms`` to each image, chosen per image (weights ``p``)."""

    def __init__(self, transforms, p=None):
        self.transforms = list(transforms)
        self.p = None if p is None else np.asarray(p, dtype=np.float64) / np.sum(p)

    def __call__(self, batch, rng):
        choice = rng.choice(len(self.transforms), size=batch.shape[0], p=self.p)
        out = batch.copy()
        for k, t in enumerate(self.transforms):
            _apply_to(batch, np.flatnonzero(choice == k), t, rng, out)
        return out

    def __repr__(self):
        return "OneOf([" + ", ".join(repr(t) for t in self.transforms) + "])"
