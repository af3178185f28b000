"""Normalisation: what the network sees is the picture minus what is typical.

- ``SubtractMean``: the paper's preprocessing (P §2): subtract the mean image of the training set,
  per pixel (C, H, W) at the stored size, or one value per channel (C,).
- ``Standardize``: per channel (x - mean_c) / std_c, the torchvision-era habit.
- ``PerImageStandardization``: TensorFlow's ``tf.image.per_image_standardization``, each image
  on its own over all its pixels and channels::

      out = (x - mean) / max(std, 1 / sqrt(num_elements)),   num_elements = C * H * W

  (std is the population std; the floor keeps a flat image finite: it becomes all zeros).

All map (N, C, H, W) float32 -> same shape, and accept (and ignore) ``rng`` so every step of a
pipeline is called the same way.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


class _HostConstant:
    """A host array copied once to each backend that asks for it (no transfer per batch)."""

    def __init__(self, value):
        self.host = np.asarray(value, dtype=np.float32)
        self._copies = {}

    def on(self, xp):
        if xp not in self._copies:
            self._copies[xp] = xp.asarray(self.host)
        return self._copies[xp]


def _channel_shape(v, c):
    if v.shape not in ((c,), (c, 1, 1)):
        raise ValueError(f"expected a per-channel array of shape ({c},); got {v.shape}")
    return v.reshape(c, 1, 1)


class SubtractMean:
    """x - mean, with mean (C, H, W) (the per-pixel mean image) or (C,) (one value per channel)."""

    def __init__(self, mean):
        self.mean = _HostConstant(mean)
        if self.mean.host.ndim not in (1, 3):
            raise ValueError(f"mean must be (C,) or (C, H, W); got {self.mean.host.shape}")

    def __call__(self, batch, rng=None):
        mean = self.mean.on(array_module(batch))
        if mean.ndim == 1:
            mean = _channel_shape(mean, batch.shape[1])
        elif mean.shape != batch.shape[1:]:
            raise ValueError(f"mean image {mean.shape} does not match images {batch.shape[1:]}")
        return batch - mean

    def __repr__(self):
        kind = "image" if self.mean.host.ndim == 3 else "per-channel"
        return f"SubtractMean({kind} {self.mean.host.shape})"


class Standardize:
    """(x - mean_c) / std_c per channel; mean, std (C,)."""

    def __init__(self, mean, std):
        self.mean, self.std = _HostConstant(mean), _HostConstant(std)

    def __call__(self, batch, rng=None):
        xp, c = array_module(batch), batch.shape[1]
        mean = _channel_shape(self.mean.on(xp), c)
        return (batch - mean) / _channel_shape(self.std.on(xp), c)

    def __repr__(self):
        return "Standardize(per channel)"


def per_image_standardization(batch):
    """(x - mean) / max(std, 1/sqrt(C*H*W)) per image, as tf.image.per_image_standardization."""
    xp = array_module(batch)
    num_elements = int(np.prod(batch.shape[1:]))
    mean = batch.mean(axis=(1, 2, 3), keepdims=True)
    std = batch.std(axis=(1, 2, 3), keepdims=True)
    floor = xp.float32(1.0 / np.sqrt(num_elements))
    return (batch - mean) / xp.maximum(std, floor)


class PerImageStandardization:
    """Each image to zero mean and unit std over all its pixels and channels (TF's definition)."""

    def __call__(self, batch, rng=None):
        return per_image_standardization(batch)

    def __repr__(self):
        return "PerImageStandardization()"
