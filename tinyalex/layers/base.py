"""The layer contract every tinyalex layer follows (docs/style.md §8).

    y  = layer.forward(x, train=True)               # caches what backward needs
    dx = layer.backward(dy, input_grad=True)        # returns dL/dx, fills layer.grads

``input_grad=False`` asks a layer not to compute dL/dx (its input is a batch of images, say):
it still fills its grads, and returns None. ``Sequential.backward(dy, input_grad=False)``
uses it on the first layer with parameters (see Sequential.backward_steps).

``layer.params`` and ``layer.grads`` are dicts name -> array with the same keys
and shapes (empty for layers without parameters). Arrays are NCHW.

The loss (layers/loss.py) has its own smaller contract: ``forward(logits, labels) -> loss``,
``backward() -> dlogits``.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module, to_device


def make_rng(rng) -> np.random.Generator:
    """A NumPy Generator from None (fresh entropy), an int seed, or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def normal(rng: np.random.Generator, std: float, shape: tuple, dtype) -> np.ndarray:
    """N(0, std^2) samples drawn directly in ``dtype`` (float32 draws are twice as fast)."""
    dtype = np.dtype(dtype)
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    w = rng.standard_normal(shape, dtype=draw_dtype)
    w *= draw_dtype.type(std)
    return w.astype(dtype, copy=False)


class Layer:
    """Base class: parameter dicts, the cache, and moving between backends."""

    name: str | None = None

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self._cache = None

    def forward(self, x, train: bool = True):
        raise NotImplementedError

    def backward(self, dy, input_grad: bool = True):
        raise NotImplementedError

    def __call__(self, x, train: bool = True):
        return self.forward(x, train=train)

    def _take_cache(self):
        """The forward cache, or a clear error when backward comes first."""
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(x, train=True)"
            )
        return self._cache

    def zero_grads(self) -> None:
        for key, p in self.params.items():
            self.grads[key] = array_module(p).zeros_like(p)

    def to(self, backend: str):
        """Move parameters (and gradients) to 'numpy' or 'cupy'; returns self."""
        self.params.update({k: to_device(v, backend) for k, v in self.params.items()})
        self.grads.update({k: to_device(v, backend) for k, v in self.grads.items()})
        self._cache = None
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._repr_args())
        return f"{type(self).__name__}({args})"

    def _repr_args(self) -> tuple:
        return ()


def check_4d(layer: Layer, x, channels: int | None = None) -> None:
    """One-line errors for the mistakes people make with NCHW inputs."""
    if x.ndim != 4:
        raise ValueError(
            f"{type(layer).__name__} expects a 4-D (N, C, H, W) array, got shape {tuple(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{type(layer).__name__} expects {channels} input channels, "
            f"got {x.shape[1]} (input shape {tuple(x.shape)})"
        )
