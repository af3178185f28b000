"""Horizontal flip (P §4.1): a mirrored photo is still a photo of the same class.

Flipping reverses the column axis: out[n, c, y, x] = in[n, c, y, W-1-x] for the chosen images.
Shapes: (N, C, H, W) -> (N, C, H, W).
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


def hflip(batch):
    """Mirror every image left-right."""
    return batch[..., ::-1]


class RandomFlip:
    """Mirror each image left-right with probability ``p`` (one coin per image, drawn on host)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def coins(self, n: int, rng) -> np.ndarray:
        """(N,) bool, True where the image is mirrored (the one draw ``__call__`` makes)."""
        return rng.random(n) < self.p

    def __call__(self, batch, rng):
        xp = array_module(batch)
        picked = xp.asarray(np.flatnonzero(self.coins(batch.shape[0], rng)))
        out = batch.copy()  # only the flipped images are rewritten (half the work of a where)
        out[picked] = hflip(batch[picked])
        return out

    def __repr__(self):
        return f"RandomFlip(p={self.p:g})"
