"""Flatten: (N, C, H, W) -> (N, C*H*W), in C-order (as PyTorch's flatten, so weights transfer)."""

from __future__ import annotations

from .base import Layer


class Flatten(Layer):
    def forward(self, x, train: bool = True):
        if x.ndim < 2:
            raise ValueError(f"Flatten expects at least (N, ...) input, got shape {tuple(x.shape)}")
        self._cache = x.shape if train else None
        return x.reshape(x.shape[0], -1)

    def output_shape(self, in_shape: tuple) -> tuple:
        size = 1
        for d in in_shape[1:]:
            size *= d
        return (in_shape[0], size)

    def backward(self, dy, input_grad: bool = True):
        shape = self._take_cache()
        return dy.reshape(shape) if input_grad else None
