"""CUDA kernels (placeholder while being written)."""

from ..backend import cupy_available


def available() -> bool:
    return cupy_available()
