"""Linear (fully connected): y = x @ W + b.

Shapes: x (N, in_features); W (in_features, out_features); b (out_features,); y (N, out_features).
Backward: dW = x^T @ dy, db = sum_n dy, dx = dy @ W^T.

Versions (docs/style.md §2):

- reference: ``reference.linear_forward`` / ``linear_backward``, loops over every sum.
- plain path: the three ``@`` products.
- fast path: ``kern.matmul2d`` (``kern = kernels.for_array(x)``, unless ``layer.fast = False``
  or ``TINYALEX_KERNELS=0``). On the CPU each product is split over threads along its output
  columns with single-threaded BLAS calls (tinyalex/kernels/gemm.py, as conv's GEMMs); on the
  GPU it is one cuBLAS GEMM. The numbers are the same products either way; only who runs
  which columns changes.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import array_module
from .base import Layer, make_rng, normal


class Linear(Layer):
    """Fully connected layer (the paper's fc6, fc7, fc8).

    Init: W ~ N(0, weight_std^2), He normal (std sqrt(2 / in_features)) by default; biases 0.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        dtype=np.float32,
        rng=None,
        weight_std: float | None = None,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.dtype = np.dtype(dtype)
        std = np.sqrt(2.0 / in_features) if weight_std is None else weight_std
        w = normal(make_rng(rng), std, (in_features, out_features), dtype)
        self.params = {"W": w, "b": np.zeros(out_features, self.dtype)}
        self.zero_grads()
        self.fast: bool | None = None  # None: split GEMMs where they run; False: plain @

    def _repr_args(self):
        return ("in_features", "out_features")

    def output_shape(self, in_shape: tuple) -> tuple:
        return (in_shape[0], self.out_features)

    def forward(self, x, train: bool = True):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Linear expects (N, {self.in_features}) input, got shape {tuple(x.shape)}"
                + (" (add a Flatten before it)" if x.ndim == 4 else "")
            )
        W = self.params["W"].astype(x.dtype, copy=False)
        matmul = self._matmul(x)
        self._cache = (x, matmul) if train else None
        y = matmul(x, W)
        y += self.params["b"].astype(x.dtype, copy=False)  # in place: no second (N, out) array
        return y

    def backward(self, dy, input_grad: bool = True):
        """Fills grads W and b; returns dx, or None with ``input_grad=False``."""
        x, matmul = self._take_cache()
        W = self.params["W"]
        self.grads["W"] = matmul(x.T, dy).astype(W.dtype, copy=False)
        self.grads["b"] = dy.sum(axis=0).astype(W.dtype, copy=False)
        if not input_grad:
            return None
        return matmul(dy, W.astype(dy.dtype, copy=False).T)

    def _matmul(self, x):
        """a @ b: the fast path's ``matmul2d``, or the plain path's ``matmul``."""
        kern = kernels.for_array(x, self.fast)
        return kern.matmul2d if kern else array_module(x).matmul
