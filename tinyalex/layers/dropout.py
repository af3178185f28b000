"""Dropout (P §4.2): each unit is zeroed with probability p during training.

Inverted (default):  train y = x * m / (1 - p),  test y = x
Paper's form:        train y = x * m,            test y = x * (1 - p)
with m ~ Bernoulli(1 - p) per unit. Both give the same expected activation at test
time. Backward reuses the forward mask: dx = dy * m (/ (1 - p) when inverted).
Shapes: any; y and dx have x's shape. Versions: the plain path only (one multiply each way;
no loop reference, no kernel).

Masks come from the layer's own seeded NumPy Generator (``rng``), so runs repeat. On CuPy
each forward draws one 64-bit key from it and the device computes the mask from (key,
element index) alone (:func:`hashed_uniform`): the generator's state, which the checkpoint
keeps, then fixes every later mask, and a resumed GPU run draws exactly the masks it would
have drawn (a CuPy generator's state lives on the device and would be lost).
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from .base import Layer, make_rng

# splitmix64's output function (Steele, Lea, Flood 2014), applied to key + i * golden ratio.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def hashed_uniform(key: int, shape, xp):
    """float32 uniforms in [0, 1), one per element of ``shape``, each a function of (key,
    flat index) alone: the top 24 bits of a 64-bit hash, times 2**-24 (exact in float32).

    Plain uint64 array arithmetic, so NumPy and CuPy give the same numbers bit for bit.
    """
    count = int(np.prod(shape))
    h = xp.arange(count, dtype=xp.uint64) * _GOLDEN + np.uint64(key)
    h ^= h >> np.uint64(30)
    h *= _MIX1
    h ^= h >> np.uint64(27)
    h *= _MIX2
    h ^= h >> np.uint64(31)
    return ((h >> np.uint64(40)).astype(xp.float32) * np.float32(2.0**-24)).reshape(shape)


class Dropout(Layer):
    def __init__(self, p: float = 0.5, *, inverted: bool = True, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p}")
        self.p, self.inverted = p, inverted
        self.rng = make_rng(rng)

    def _repr_args(self):
        return ("p", "inverted")

    def reseed(self, seed) -> None:
        """Restart the mask stream (gradient checks need the same mask every forward)."""
        self.rng = make_rng(seed)

    def _keep_mask(self, x):
        xp = array_module(x)
        if xp is np:
            return self.rng.random(x.shape) >= self.p
        key = int(self.rng.integers(2**63))  # one host draw per forward (module doc)
        return hashed_uniform(key, x.shape, xp) >= np.float32(self.p)

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
