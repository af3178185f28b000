"""Element-wise nonlinearities: the paper's ReLU, and tanh for its comparison (P §3.1, Fig. 1).

ReLU: y = max(x, 0),   dx = dy * [x > 0]
Tanh: y = tanh(x),     dx = dy * (1 - y^2)
Any shape in, the same shape out.
"""

from __future__ import annotations

from ..backend import array_module
from .base import Layer


class ReLU(Layer):
    """Rectified linear unit. The gradient at exactly 0 is taken as 0."""

    def forward(self, x, train: bool = True):
        y = array_module(x).maximum(x, 0)
        self._cache = y if train else None
        return y

    def backward(self, dy):
        y = self._take_cache()
        return dy * (y > 0)


class Tanh(Layer):
    """Hyperbolic tangent, the saturating unit ReLU replaced."""

    def forward(self, x, train: bool = True):
        y = array_module(x).tanh(x)
        self._cache = y if train else None
        return y

    def backward(self, dy):
        y = self._take_cache()
        return dy * (1 - y * y)
