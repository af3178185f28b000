"""Element-wise nonlinearities: the paper's ReLU, and tanh for its comparison (P §3.1, Fig. 1).

ReLU: y = max(x, 0),   dx = dy * [x > 0]
Tanh: y = tanh(x),     dx = dy * (1 - y^2)
Any shape in, the same shape out.

Versions (docs/style.md §2): no loop reference (an element-wise expression is its own
specification); plain path, the array expressions below; fast path for ReLU,
``kern.relu_forward`` / ``relu_backward`` (one kernel pass each way, numba on the CPU, CUDA on
CuPy; ``kern = kernels.for_array(x)``, unless ``layer.fast = False`` or ``TINYALEX_KERNELS=0``):
the plain backward makes a boolean mask and then multiplies (two passes and a temporary); the
kernel does it in one. Tanh has no fast path.
"""

from __future__ import annotations

from .. import kernels
from ..backend import array_module
from .base import Layer


class ReLU(Layer):
    """Rectified linear unit. The gradient at exactly 0 is taken as 0."""

    def __init__(self):
        super().__init__()
        self.fast: bool | None = None  # None: kernels where they run; False: plain path

    def forward(self, x, train: bool = True):
        xp = array_module(x)
        kern = kernels.for_array(x, self.fast)
        y = kern.relu_forward(xp.ascontiguousarray(x)) if kern else xp.maximum(x, 0)
        self._cache = (y, kern) if train else None
        return y

    def backward(self, dy, input_grad: bool = True):
        y, kern = self._take_cache()
        if not input_grad:
            return None
        if kern is not None and dy.dtype == y.dtype and dy.shape == y.shape:
            return kern.relu_backward(array_module(dy).ascontiguousarray(dy), y)
        return dy * (y > 0)


class Tanh(Layer):
    """Hyperbolic tangent, the saturating unit ReLU replaced."""

    def forward(self, x, train: bool = True):
        y = array_module(x).tanh(x)
        self._cache = y if train else None
        return y

    def backward(self, dy, input_grad: bool = True):
        y = self._take_cache()
        if not input_grad:
            return None
        return dy * (1 - y * y)
