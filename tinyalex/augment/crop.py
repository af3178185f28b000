"""Crops: the paper's random 224 (here ``size``) crops for training, centre/ten crops for testing.

AlexNet (P §4.1) trains on random ``size x size`` patches of the 256 x 256 images, which makes
(256 - 224 + 1)^2 = 1089 positions per image (x2 with flips), and tests on ten patches:
the four corners and the centre, each also mirrored, averaging the ten softmax outputs.

Shapes: batch (N, C, H, W) with H, W >= size -> (N, C, size, size). Offsets ``(oy, ox)`` are the
top-left corner of the crop, ``0 <= oy <= H - size``, ``0 <= ox <= W - size``.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


def _check(batch, size):
    h, w = batch.shape[-2:]
    if not 0 < size <= min(h, w):
        raise ValueError(f"crop size {size} does not fit images of {h}x{w}")
    return h, w


def crop_at(batch, oy, ox, size: int):
    """Per-image crops: out[n] = batch[n, :, oy[n]:oy[n]+size, ox[n]:ox[n]+size].

    oy, ox: (N,) host integer arrays. One gather for the whole batch (no loop over images).
    CuPy: row (N, size) and column (N, size) index arrays broadcast to (N, C, size, size).
    NumPy: the same gather copies 4 index lookups per value; a window view does it ~6x faster:
    ``windows[n, c, oy, ox]`` is the (size, size) patch at (oy, ox), and fancy indexing on
    (n, oy, ox) copies whole patches.
    """
    oy, ox = np.asarray(oy), np.asarray(ox)
    if array_module(batch) is np:
        windows = np.lib.stride_tricks.sliding_window_view(batch, (size, size), axis=(2, 3))
        return windows[
            np.arange(len(batch)), :, oy, ox
        ]  # (N, C, size, size): advanced axes go first
    return _crop_gather(batch, oy, ox, size)


def _crop_gather(batch, oy, ox, size):
    """The index-array gather (CuPy's path; a test holds it equal to the window view)."""
    xp = array_module(batch)
    n, c = batch.shape[:2]
    step = xp.arange(size)
    rows = xp.asarray(oy)[:, None] + step  # (N, size)
    cols = xp.asarray(ox)[:, None] + step  # (N, size)
    return batch[
        xp.arange(n)[:, None, None, None],
        xp.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


class RandomCrop:
    """A ``size x size`` patch at a uniform random offset per image (both ends included)."""

    def __init__(self, size: int):
        self.size = int(size)

    def offsets(self, n: int, h: int, w: int, rng):
        """(oy, ox), (N,) each: the draws ``__call__`` makes (augment/device.py draws alike)."""
        oy = rng.integers(0, h - self.size + 1, n)
        ox = rng.integers(0, w - self.size + 1, n)
        return oy, ox

    def __call__(self, batch, rng):
        h, w = _check(batch, self.size)
        oy, ox = self.offsets(batch.shape[0], h, w, rng)
        return crop_at(batch, oy, ox, self.size)

    def __repr__(self):
        return f"RandomCrop({self.size})"


def centre_offsets(h: int, w: int, size: int) -> tuple[int, int]:
    """Top-left corner of the centre crop; an odd margin puts the extra pixel bottom/right."""
    return (h - size) // 2, (w - size) // 2


class CenterCrop:
    """The middle ``size x size`` patch (deterministic; ``rng`` accepted and ignored)."""

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, batch, rng=None):
        h, w = _check(batch, self.size)
        oy, ox = centre_offsets(h, w, self.size)
        return batch[..., oy : oy + self.size, ox : ox + self.size]

    def __repr__(self):
        return f"CenterCrop({self.size})"


TEN_CROP_ORDER = (
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "centre",
    "top-left flipped",
    "top-right flipped",
    "bottom-left flipped",
    "bottom-right flipped",
    "centre flipped",
)


def ten_crop(batch, size: int):
    """The paper's test-time views: (N, C, H, W) -> (10, N, C, size, size), in TEN_CROP_ORDER.

    Views 0-4 are the four corners (TL, TR, BL, BR) and the centre; views 5-9 are the same
    patches mirrored left-right. Average the softmax over axis 0 to get the paper's prediction.
    """
    xp = array_module(batch)
    h, w = _check(batch, size)
    cy, cx = centre_offsets(h, w, size)
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (cy, cx)]
    views = xp.stack([batch[..., y : y + size, x : x + size] for y, x in corners])
    return xp.concatenate([views, views[..., ::-1]])
