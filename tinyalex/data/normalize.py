"""Statistics of the training images for input normalisation (docs/conventions.md §5)."""

from __future__ import annotations

import numpy as np


def mean_image(x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The paper's per-pixel mean: float32 (3, H, W), the average of uint8 x (N, 3, H, W).

    "We did not pre-process the images in any other way, except for subtracting the mean
    activity over the training set from each pixel" (P §2). Summed ``chunk`` images at a
    time in float64, so that no float copy of the whole training set is ever made.
    """
    total = np.zeros(x.shape[1:], dtype=np.float64)
    for start in range(0, len(x), chunk):
        total += x[start : start + chunk].sum(axis=0, dtype=np.float64)
    return (total / len(x)).astype(np.float32)


def channel_stats(x: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each colour channel over all pixels of uint8
    x (N, 3, H, W): two float32 (3,) arrays, in 0..255 pixel units.

    Sums of x and x**2 in float64, chunk by chunk; exact enough for uint8 data
    (float64 holds 255**2 * 1e9 pixels without rounding to speak of).
    """
    total = np.zeros(x.shape[1], dtype=np.float64)
    total_sq = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].astype(np.float64)
        total += part.sum(axis=(0, 2, 3))
        total_sq += np.square(part).sum(axis=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    var = np.maximum(total_sq / count - mean**2, 0)  # rounding can dip just below 0
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)
