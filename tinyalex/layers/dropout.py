"""Dropout (P §4.2): each unit is zeroed with probability p during training.

Inverted (default):  train y = x * m / (1 - p),  test y = x
Paper's form:        train y = x * m,            test y = x * (1 - p)
with m ~ Bernoulli(1 - p) per unit. Both give the same expected activation at test
time. Backward reuses the forward mask: dx = dy * m (/ (1 - p) when inverted).
Shapes: any; y and dx have x's shape. Versions: the plain path only (one multiply each way;
no loop reference, no kernel).

Masks come from the layer's own seeded NumPy Generator (``rng``), so runs repeat;
on CuPy the mask is drawn on the device by a CuPy generator seeded from it.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from .base import Layer, make_rng


class Dropout(Layer):
    def __init__(self, p: float = 0.5, *, inverted: bool = True, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p, self.inverted = p, inverted
        self.rng = make_rng(rng)
        self._device_rng = None

    def _repr_args(self):
        return ("p", "inverted")

    def reseed(self, seed) -> None:
        """Restart the mask stream (gradient checks need the same mask every forward)."""
        self.rng = make_rng(seed)
        self._device_rng = None

    def _keep_mask(self, x):
        xp = array_module(x)
        if xp is np:
            return self.rng.random(x.shape) >= self.p
        if self._device_rng is None:
            self._device_rng = xp.random.default_rng(int(self.rng.integers(2**63)))
        return self._device_rng.random(x.shape, dtype=xp.float32) >= self.p

    def forward(self, x, train: bool = True):
        if not train:
            self._cache = None
            return x if self.inverted else x * (1.0 - self.p)
        if self.p == 0.0:
            self._cache = 1.0
            return x
        mask = self._keep_mask(x).astype(x.dtype)
        if self.inverted:
            mask /= 1.0 - self.p
        self._cache = mask
        return x * mask

    def backward(self, dy, input_grad: bool = True):
        mask = self._take_cache()
        return dy * mask if input_grad else None
