"""Brightness and contrast jitter, as in TensorFlow's CIFAR-10 tutorial (``distorted_inputs``).

Pixel units: 0-255 (the tutorial casts uint8 to float32 without rescaling, so its
``max_delta=63`` is a quarter of the range). Both draw one factor per image on the host.

    brightness:  out = x + delta,                          delta ~ U(-max_delta, max_delta)
    contrast:    out = (x - m) * f + m,  m = mean over (H, W) per image per channel,
                                         f ~ U(lower, upper)

Shapes: (N, C, H, W) -> (N, C, H, W). No clipping: like the tutorial, the values may leave 0-255
and per-image standardisation follows.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


def _per_image(xp, values):
    """(N,) host values -> (N, 1, 1, 1) float32 on the batch's device, for broadcasting."""
    return xp.asarray(np.asarray(values, dtype=np.float32))[:, None, None, None]


def adjust_brightness(batch, delta):
    """Add ``delta[n]`` to every pixel and channel of image n."""
    return batch + _per_image(array_module(batch), delta)


def adjust_contrast(batch, factor):
    """Scale each image's deviations from its per-channel mean by ``factor[n]``."""
    mean = batch.mean(axis=(2, 3), keepdims=True)
    return (batch - mean) * _per_image(array_module(batch), factor) + mean


class RandomBrightness:
    """Add delta ~ U(-max_delta, max_delta) per image (0-255 scale; tf: max_delta=63)."""

    def __init__(self, max_delta: float = 63.0):
        self.max_delta = max_delta

    def __call__(self, batch, rng):
        return adjust_brightness(batch, rng.uniform(-self.max_delta, self.max_delta, len(batch)))

    def __repr__(self):
        return f"RandomBrightness(±{self.max_delta:g})"


class RandomContrast:
    """Contrast factor f ~ U(lower, upper) per image around its per-channel mean."""

    def __init__(self, lower: float = 0.2, upper: float = 1.8):
        self.lower, self.upper = lower, upper

    def __call__(self, batch, rng):
        return adjust_contrast(batch, rng.uniform(self.lower, self.upper, len(batch)))

    def __repr__(self):
        return f"RandomContrast(f∈[{self.lower:g},{self.upper:g}])"
