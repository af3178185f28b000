"""Linear (fully connected): y = x @ W + b.

Shapes: x (N, in_features); W (in_features, out_features); b (out_features,); y (N, out_features).
Backward: dW = x^T @ dy, db = sum_n dy, dx = dy @ W^T.
"""

from __future__ import annotations

import numpy as np

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
        self._cache = x if train else None
        return x @ W + self.params["b"].astype(x.dtype, copy=False)

    def backward(self, dy):
        x = self._take_cache()
        W = self.params["W"]
        self.grads["W"] = (x.T @ dy).astype(W.dtype, copy=False)
        self.grads["b"] = dy.sum(axis=0).astype(W.dtype, copy=False)
        return dy @ W.astype(dy.dtype, copy=False).T
