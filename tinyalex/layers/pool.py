"""Max pooling, overlapping as in the paper (z=3, s=2; P §3.4).

    y[n, c, p, q] = max_{0<=i,j<z} xpad[n, c, s*p + i, s*q + j]

Shapes: x (N, C, H, W) -> y (N, C, OH, OW), OH = (H + 2*pad - z) // s + 1 (floor, as Caffe's
and PyTorch's default). Padding, if asked, is -inf so it never wins.
Backward: each window's gradient goes to one maximum, the first in row-major order on ties.

Versions (docs/style.md §2):

- reference: ``reference.maxpool_forward`` / ``maxpool_backward``, loops over every output.
- plain path (below): both directions loop over the z*z window offsets with strided slices
  (9 for the paper), never over pixels.
- fast path: ``kern.maxpool_forward`` / ``maxpool_backward`` (``kern = kernels.for_array(x)``,
  unless ``layer.fast = False`` or ``TINYALEX_KERNELS=0``): one kernel pass each way, numba on
  the CPU, CUDA on CuPy, with the same cache (the int8 offset i*z + j of each window's
  maximum), so the overlapping case costs one read of the input and one write of the output.
"""

from __future__ import annotations

from .. import kernels
from ..backend import array_module
from .base import Layer, check_4d
from .conv import conv_output_size


class MaxPool2D(Layer):
    def __init__(self, kernel_size: int = 3, stride: int = 2, padding: int = 0):
        super().__init__()
        if padding * 2 > kernel_size:
            raise ValueError(f"MaxPool2D: padding {padding} exceeds half of kernel {kernel_size}")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.fast: bool | None = None  # None: kernels where they run; False: plain path

    def _repr_args(self):
        return ("kernel_size", "stride", "padding")

    def output_shape(self, in_shape: tuple) -> tuple:
        n, c, h, w = in_shape
        z, s, p = self.kernel_size, self.stride, self.padding
        return (n, c, conv_output_size(h, z, s, p), conv_output_size(w, z, s, p))

    def forward(self, x, train: bool = True):
        check_4d(self, x)
        xp = array_module(x)
        z, s, p = self.kernel_size, self.stride, self.padding
        _, _, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise ValueError(f"MaxPool2D: input {x.shape[2:]} is smaller than the window {z}")
        kern = kernels.for_array(x, self.fast)
        if kern:
            y, arg = kern.maxpool_forward(xp.ascontiguousarray(x), z, s, p, oh, ow)
            self._cache = (arg, x.shape, kern) if train else None
            return y
        xpad = x
        if p:
            xpad = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-xp.inf)
        y = xpad[:, :, 0 : s * oh : s, 0 : s * ow : s].copy()
        arg = xp.zeros(y.shape, dtype=xp.int8)  # which offset i*z+j holds the max
        for i in range(z):
            for j in range(z):
                if i == j == 0:
                    continue
                v = xpad[:, :, i : i + s * oh : s, j : j + s * ow : s]
                better = v > y  # strict: the first maximum keeps the gradient
                y = xp.where(better, v, y)
                arg[better] = i * z + j
        self._cache = (arg, x.shape, None) if train else None
        return y

    def backward(self, dy, input_grad: bool = True):
        arg, x_shape, kern = self._take_cache()
        if not input_grad:
            return None
        xp = array_module(dy)
        z, s, p = self.kernel_size, self.stride, self.padding
        if kern is not None:
            return kern.maxpool_backward(xp.ascontiguousarray(dy), arg, x_shape, z, s, p)
        n, c, h, w = x_shape
        oh, ow = dy.shape[2:]
        dx = xp.zeros((n, c, h + 2 * p, w + 2 * p), dtype=dy.dtype)
        for i in range(z):
            for j in range(z):
                dx[:, :, i : i + s * oh : s, j : j + s * ow : s] += dy * (arg == i * z + j)
        return dx[:, :, p : p + h, p : p + w]
