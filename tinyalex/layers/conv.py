"""Conv2D: 2-D cross-correlation with groups, by im2col and matrix products.

    y[n, o, p, q] = b[o] + sum_{c in group(o), i, j} W[o, c, i, j] * xpad[n, c, s*p + i, s*q + j]

Shapes: x (N, C, H, W); W (O, C/G, k, k); b (O,); y (N, O, OH, OW) with
OH = (H + 2*pad - k) // s + 1 (likewise OW).

im2col lays the input patches out as a matrix ``cols`` of shape
(G, C/G*k*k, N*OH*OW) so the whole layer is G matrix products, done as one
batched ``matmul``: y_g = W_g @ cols_g. Groups are the paper's two-GPU split:
conv2, conv4 and conv5 only see the maps of their own GPU (groups=2).

Fast paths (tinyalex/kernels): the plain im2col/col2im below are the reference; the
layer uses a numba kernel (NumPy arrays) or a CUDA kernel (CuPy arrays) for im2col,
col2im and the (O, N*OH*OW) <-> NCHW reshuffles around the GEMM, unless
``layer.fast = False`` or ``TINYALEX_KERNELS=0``. The GEMMs are the same either way.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import array_module, is_cupy_array
from .base import Layer, check_4d, make_rng

# CPU fast path, stride 1: dx as a convolution of dy (Conv2D._dx_as_convolution) instead of
# W^T @ dy and col2im. A switch so tests and benchmarks can compare the two.
DX_BY_CONVOLUTION = True


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _kernels_for(x):
    """The kernel module for x's backend (numba for NumPy, CUDA for CuPy)."""
    return kernels.cuda_kernels() if is_cupy_array(x) else kernels.numba_kernels()


def im2col(x, k: int, stride: int, padding: int, *, fast: bool | None = None, out=None):
    """(N, C, H, W) -> cols (C, k, k, N, OH, OW): cols[c, i, j, n, p, q] = xpad[n, c, s*p+i, s*q+j].

    Plain path: one strided slice copy per kernel offset (k*k of them), never a loop over
    pixels. Fast path (``fast``, see tinyalex.kernels.use_fast): one kernel pass with the
    padding in the index arithmetic, writing into ``out`` when its shape fits (a
    workspace the layer keeps between steps).
    """
    xp = array_module(x)
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
    if kernels.use_fast(x, fast):
        return _kernels_for(x).im2col(xp.ascontiguousarray(x), k, stride, padding, oh, ow, out)
    if padding:
        x = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    xt = x.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp): a view; the slices below copy
    cols = xp.empty((c, k, k, n, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xt[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
    return cols


def col2im(cols, x_shape, k: int, stride: int, padding: int, *, fast: bool | None = None):
    """The adjoint of im2col: scatter-add cols (C, k, k, N, OH, OW) back to (N, C, H, W).

    Overlapping windows add up. Plain path: one strided-slice ``+=`` per kernel offset
    (within one offset the target pixels are distinct, so no ``np.add.at`` is needed),
    then a transpose. Fast path: one kernel writing NCHW directly, one (n, c) plane per
    task on the CPU, one pixel per thread (summing the windows that cover it) on the GPU.
    """
    xp = array_module(cols)
    if kernels.use_fast(cols, fast):
        return _kernels_for(cols).col2im(
            xp.ascontiguousarray(cols), tuple(x_shape), k, stride, padding
        )
    n, c, h, w = x_shape
    oh, ow = cols.shape[4], cols.shape[5]
    dx = xp.zeros((c, n, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(k):
        for j in range(k):
            dx[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += cols[:, i, j]
    dx = dx[:, :, padding : padding + h, padding : padding + w]
    return dx.transpose(1, 0, 2, 3)


class Conv2D(Layer):
    """Grouped 2-D convolution (cross-correlation, as PyTorch and the paper's code compute it).

    Params: ``W`` (out_channels, in_channels/groups, k, k), ``b`` (out_channels,).
    Default init: He normal (std sqrt(2 / fan_in)), biases 0; models set the paper's init.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        *,
        dtype=np.float32,
        rng=None,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2D: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must both be divisible by groups ({groups})"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.groups = (
            kernel_size,
            stride,
            padding,
            groups,
        )
        self.dtype = np.dtype(dtype)
        fan_in = in_channels // groups * kernel_size * kernel_size
        w = make_rng(rng).normal(0.0, np.sqrt(2.0 / fan_in), self.weight_shape)
        self.params = {"W": w.astype(self.dtype), "b": np.zeros(out_channels, self.dtype)}
        self.zero_grads()
        self.fast: bool | None = None  # None: kernels where they run; False: plain path
        self._workspace = None  # the fast path's im2col buffer, reused between steps
        self._dworkspace = None  # the same for dy's im2col in backward (stride 1, CPU)

    @property
    def weight_shape(self) -> tuple:
        k = self.kernel_size
        return (self.out_channels, self.in_channels // self.groups, k, k)

    def _repr_args(self):
        return ("in_channels", "out_channels", "kernel_size", "stride", "padding", "groups")

    def output_shape(self, in_shape: tuple) -> tuple:
        n, _, h, w = in_shape
        k, s, p = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels, conv_output_size(h, k, s, p), conv_output_size(w, k, s, p))

    def forward(self, x, train: bool = True):
        check_4d(self, x, self.in_channels)
        k, s, p, g = self.kernel_size, self.stride, self.padding, self.groups
        n, c, h, w = x.shape
        _, o, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise ValueError(
                f"Conv2D: input {h}x{w} is smaller than the kernel {k}x{k} (padding {p})"
            )
        W = self.params["W"].astype(x.dtype, copy=False)
        b = self.params["b"].astype(x.dtype, copy=False)
        fast = kernels.use_fast(x, self.fast)
        # The fast path reuses last step's cols buffer: only this layer's cache holds it,
        # and the cache is replaced by this very call.
        cols = im2col(x, k, s, p, fast=fast, out=self._workspace if fast else None)
        self._workspace = cols if fast else None
        cols = cols.reshape(g, c // g * k * k, n * oh * ow)
        if fast and not is_cupy_array(x):  # split over threads by us (kernels/gemm.py)
            y = kernels.gemm_kernels().matmul_cols(W.reshape(g, o // g, -1), cols)
        else:
            y = W.reshape(g, o // g, -1) @ cols  # (G, O/G, N*OH*OW): one batched GEMM
        if fast:  # bias added while (O, N, OH*OW) is rewritten as NCHW, in one pass
            y = _kernels_for(x).bias_to_nchw(y.reshape(o, n * oh * ow), b, n, o, oh, ow)
        else:
            y = y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3) + b.reshape(1, o, 1, 1)
        self._cache = (cols, x.shape, fast) if train else None
        return y

    def backward(self, dy, input_grad: bool = True):
        """Fills grads W and b; returns dx, or None with ``input_grad=False`` (conv1 on
        images: the dx GEMM and col2im are skipped, see Sequential.backward)."""
        cols, x_shape, fast = self._take_cache()
        xp = array_module(dy)
        k, s, p, g = self.kernel_size, self.stride, self.padding, self.groups
        n, c = x_shape[:2]
        o, oh, ow = dy.shape[1:]
        W = self.params["W"]
        dy = dy.astype(cols.dtype, copy=False)
        if fast:  # (O, N*OH*OW) rows and the bias gradient in one pass over dy
            rows, db = _kernels_for(dy).nchw_to_rows(xp.ascontiguousarray(dy))
            dyg = rows.reshape(g, o // g, n * oh * ow)
        else:
            dyg = dy.transpose(1, 0, 2, 3).reshape(g, o // g, n * oh * ow)
            db = dy.sum(axis=(0, 2, 3))
        Wg = W.astype(dy.dtype, copy=False).reshape(g, o // g, -1)
        split = fast and xp is np  # CPU GEMMs split over threads by us (kernels/gemm.py)
        gemm = kernels.gemm_kernels() if split else None
        dW = (
            gemm.matmul_sum(dyg, cols.transpose(0, 2, 1))
            if split
            else dyg @ cols.transpose(0, 2, 1)
        )
        self.grads["W"] = dW.reshape(W.shape).astype(W.dtype, copy=False)
        self.grads["b"] = db.astype(W.dtype, copy=False)
        if not input_grad:
            return None
        if split and s == 1 and p <= k - 1 and DX_BY_CONVOLUTION:
            return self._dx_as_convolution(dy, Wg, x_shape)
        if split:
            dcols = gemm.matmul_cols(Wg.transpose(0, 2, 1), dyg)
        else:
            dcols = xp.matmul(Wg.transpose(0, 2, 1), dyg)  # (G, C/G*k*k, N*OH*OW)
        return col2im(dcols.reshape(c, k, k, n, oh, ow), x_shape, k, s, p, fast=fast)

    def _dx_as_convolution(self, dy, Wg, x_shape):
        """Stride 1 on the CPU: dx is a convolution of dy with the kernel flipped in space
        and transposed in channels, padded k-1-p:

            dx[n, c, y, x] = sum_{o, i, j} W[o, c, k-1-i, k-1-j] dypad[n, o, y + i, x + j]

        The same sums as W^T @ dy followed by col2im, arranged as im2col + one GEMM with
        the wide (C, O*k*k) @ (O*k*k, N*H*W) shape BLAS runs fastest, and no scatter-add.
        dy's patch matrix has O*k*k rows where the forward's had C*k*k: where O > C (alexnet's
        conv2 and conv3) the images go in chunks, so its buffer is never larger.
        """
        k, p, g = self.kernel_size, self.padding, self.groups
        n, c, h, w = x_shape
        o = dy.shape[1]
        Wf = Wg.reshape(g, o // g, c // g, k, k)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
        Wf = np.ascontiguousarray(Wf).reshape(g, c // g, o // g * k * k)
        kern, gemm = kernels.numba_kernels(), kernels.gemm_kernels()
        step = max(1, n * c // o) if o > c else n  # images per chunk
        size = o * k * k * step * h * w
        if (
            self._dworkspace is None
            or self._dworkspace.size < size
            or (self._dworkspace.dtype != dy.dtype)
        ):
            self._dworkspace = np.empty(size, dtype=dy.dtype)  # reused next step
        zeros = np.zeros(c, dy.dtype)
        parts = []
        for lo in range(0, n, step):
            m = min(step, n - lo)
            shape = (o, k, k, m, h, w)
            buf = self._dworkspace[: o * k * k * m * h * w].reshape(shape)
            dcols = kern.im2col(dy[lo : lo + m], k, 1, k - 1 - p, h, w, out=buf)
            rows = gemm.matmul_cols(Wf, dcols.reshape(g, o // g * k * k, m * h * w))
            parts.append(kern.bias_to_nchw(rows.reshape(c, m * h * w), zeros, m, c, h, w))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
