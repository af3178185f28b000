"""Conv2D: 2-D cross-correlation with groups, by im2col and matrix products.

Forward, for output channel o in group g (G groups of C/G inputs and O/G outputs):

    y[n, o, p, q] = b[o] + sum_{c in group(o), i, j} W[o, c, i, j] * xpad[n, c, s*p + i, s*q + j]

im2col lays the input patches out as a matrix ``cols`` of shape (G, C/G*k*k, N*OH*OW), so the
layer is one matrix product per group, done as one batched ``matmul``:

    y_g = W_g . cols_g              W_g (O/G, C/G*k*k), y_g (O/G, N*OH*OW)

Backward, with dy_g the rows of dy for group g (O/G, N*OH*OW):

    (1) db      = sum over n, p, q of dy                                      (O,)
    (2) dW_g    = dy_g . cols_g^T                                             (O/G, C/G*k*k)
    (3) dcols_g = W_g^T . dy_g                                                (C/G*k*k, N*OH*OW)
    (4) dx      = col2im(dcols)   (each patch entry added back to its pixel)  (N, C, H, W)

For stride 1 (and p <= k-1), (3) and (4) together are a convolution of dy, padded by k-1-p,
with the kernel flipped in space and transposed in channels:

        dx[n, c, y, x] = sum_{o in group(c), i, j} W[o, c, k-1-i, k-1-j] * dypad[n, o, y+i, x+j]

Shapes: x (N, C, H, W); W (O, C/G, k, k); b (O,); y (N, O, OH, OW) with
OH = (H + 2*pad - k) // s + 1 (likewise OW). Groups are the paper's two-GPU split: conv2,
conv4 and conv5 only see the maps of their own GPU (groups=2).

Versions (docs/style.md §2):

- reference: ``reference.conv_forward`` / ``conv_backward``, loops over every pixel.
- plain path: :func:`im2col`, :func:`col2im` and the ``@`` products below.
- fast path (``kern = kernels.for_array(x)``, unless ``layer.fast = False`` or
  ``TINYALEX_KERNELS=0``): ``kern.conv_patches`` writes the patch matrix, ``kern.conv_y``
  takes the forward product and adds b while writing NCHW, ``kern.conv_dW`` and
  ``kern.conv_dx`` take (2) and (3)-(4); numba (CPU) or CUDA (CuPy) kernels do the copies
  and reshuffles. On the CPU the patch matrix is channels last (the same numbers, one
  patch per row), each GEMM is split over threads, and a stride-1 dx is taken in its
  flipped-kernel form (``layer.dx_by_convolution = False`` turns that off); the choices
  are made in tinyalex/kernels/cpu.py. On the GPU, 3x3 stride-1 layers can take
  Winograd's F(2x2, 3x3) instead (``kern.winograd_applies``, ``kern.conv_winograd``:
  y from x with no patch matrix, and dx in the flipped-kernel form; tinyalex/kernels/
  winograd.py), off until timed against the GEMMs.

Memory: the forward's ``cols`` is the largest array a convolution makes (alexnet's conv2 at
batch 128: 2400 x 93,312 floats, 896 MB), and backward's step (2) needs it again. On the
fast path a layer either keeps it until backward (``keep_cols=True``: no second im2col, one
patch matrix per layer held at the peak) or writes it into the workspace every layer shares
(``kernels.workspace``) and computes it again from x in backward (``keep_cols=False``: an
extra im2col per layer, and only the largest layer's patch matrix held). ``None`` takes the
backend's choice, ``KEEP_COLS`` in tinyalex/kernels/cpu.py and cuda.py. The plain path
always keeps it. Either way, once (2) is taken ``cols`` is spent, and the fast dx writes
its own large array (dcols on the GPU, dy's patch matrix on the CPU) over it.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..backend import array_module
from .base import Layer, check_4d, make_rng


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, k: int, stride: int, padding: int, *, fast: bool | None = None, out=None):
    """(N, C, H, W) -> cols (C, k, k, N, OH, OW): cols[c, i, j, n, p, q] = xpad[n, c, s*p+i, s*q+j].

    Plain path: one strided slice copy per kernel offset (k*k of them), never a loop over
    pixels. Fast path (``fast``, see tinyalex.kernels.for_array): one kernel pass with the
    padding in the index arithmetic, writing into ``out`` when its shape fits (a
    workspace the layer keeps between steps).
    """
    xp = array_module(x)
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, k, stride, padding), conv_output_size(w, k, stride, padding)
    kern = kernels.for_array(x, fast)
    if kern:
        return kern.im2col(xp.ascontiguousarray(x), k, stride, padding, oh, ow, out)
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
    kern = kernels.for_array(cols, fast)
    if kern:
        return kern.col2im(xp.ascontiguousarray(cols), tuple(x_shape), k, stride, padding)
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
    ``fast``: None (kernels where they run) or False (the plain path).
    ``dx_by_convolution``: on the CPU fast path, take a stride-1 dx as a convolution of dy
    with the flipped kernel (True, the default) or as dcols and col2im (False).
    ``keep_cols``: on the fast path, keep the forward's im2col for backward (True), or write
    it into the shared workspace and compute it again in backward (False); None (the
    default): the backend's choice (see the module docstring).
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
        self.dx_by_convolution = True
        self.keep_cols: bool | None = None  # None: the backend's choice (kern.KEEP_COLS)
        # The fast path's buffers, reused between steps: "cols" (the forward's patch matrix)
        # and, only where that is too small to hold it, "dy_cols" (dy's patch matrix for a
        # stride-1 dx on the CPU). See kept_buffers().
        self._buffers: dict = {}

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

    def keeps_cols(self, kern) -> bool:
        """Whether a forward on kernel module ``kern`` (None: the plain path) keeps its
        im2col for backward, or leaves it in the shared workspace to be computed again."""
        if kern is None:
            return True
        return kern.KEEP_COLS if self.keep_cols is None else bool(self.keep_cols)

    def kept_buffers(self) -> list:
        """The arrays this layer keeps between steps (the fast path's im2col workspaces)."""
        return [self._buffers[key] for key in sorted(self._buffers)]

    def to(self, backend: str):
        self._buffers = {}
        return super().to(backend)

    def forward(self, x, train: bool = True):
        check_4d(self, x, self.in_channels)
        k, s, p, g = self.kernel_size, self.stride, self.padding, self.groups
        n, c, h, w = x.shape
        _, o, oh, ow = self.output_shape(x.shape)
        if oh < 1 or ow < 1:
            raise ValueError(
                f"Conv2D: input {h}x{w} is smaller than the kernel {k}x{k} (padding {p})"
            )
        Wg = self.params["W"].astype(x.dtype, copy=False).reshape(g, o // g, -1)
        b = self.params["b"].astype(x.dtype, copy=False)
        kern = kernels.for_array(x, self.fast)
        keep = self.keeps_cols(kern)
        last = self._buffers.pop("cols", None)  # last step's patch matrix: refilled or dropped
        if kern is None:
            # cols (G, C/G*k*k, N*OH*OW); y_g = W_g . cols_g + b, then (O, N, OH, OW) -> NCHW
            cols = im2col(x, k, s, p, fast=False).reshape(g, c // g * k * k, n * oh * ow)
            y = (Wg @ cols).reshape(o, n, oh, ow).transpose(1, 0, 2, 3) + b.reshape(1, o, 1, 1)
        elif not keep and kern.winograd_applies(k, s, p):
            # 3x3, stride 1, where the backend takes Winograd's F(2x2, 3x3) (the GPU, when
            # asked: kernels/winograd.py): y straight from x, no patch matrix in forward;
            # backward makes it from x for dW, as it does whenever cols is not kept
            y = kern.conv_winograd(x, Wg, b, p)
        else:
            # The same patch matrix, in the layout the kernels pick (kernels/cpu.py: channels
            # last, one patch per row), written into last step's buffer (only this layer's
            # cache holds it, and this call replaces the cache) when it is kept, else into
            # the workspace all layers share (backward computes it again).
            out = last if keep else kernels.workspace(x, (c, k, k, n, oh, ow))
            cols = kern.conv_patches(x, k, s, p, g, oh, ow, out=out)
            if keep:
                self._buffers["cols"] = cols
            y = kern.conv_y(Wg, b, cols, oh, ow)  # the GEMM, then + b written as NCHW
        if not train:
            self._cache = None
        else:  # (cols, None) when kept, else (None, x) to compute cols again from
            self._cache = (cols, None, x.shape, kern) if keep else (None, x, x.shape, kern)
        return y

    def backward(self, dy, input_grad: bool = True):
        """Steps (1)-(4) of the module docstring. Fills grads W and b; returns dx, or None
        with ``input_grad=False`` (the first layer, on images: (3) and (4) are skipped)."""
        cols, x, x_shape, kern = self._take_cache()
        k, s, p, g = self.kernel_size, self.stride, self.padding, self.groups
        (n, c), (o, oh, ow) = x_shape[:2], dy.shape[1:]
        buffers = self._buffers
        if cols is None:  # not kept: the patch matrix again, into the shared workspace
            out = kernels.workspace(x, (c, k, k, n, oh, ow))
            cols = kern.conv_patches(x, k, s, p, g, oh, ow, out=out)
            buffers = None  # and nothing kept for dx either
        W = self.params["W"]
        dy = dy.astype(cols.dtype, copy=False)
        Wg = W.astype(dy.dtype, copy=False).reshape(g, o // g, -1)  # (G, O/G, C/G*k*k)
        # (1) db = sum of dy over n, p, q; and dy as rows dy_g (G, O/G, N*OH*OW)
        if kern:  # both in one pass over dy
            rows, db = kern.nchw_to_rows(array_module(dy).ascontiguousarray(dy))
        else:
            rows, db = dy.transpose(1, 0, 2, 3).reshape(o, -1), dy.sum(axis=(0, 2, 3))
        dyg = rows.reshape(g, o // g, n * oh * ow)
        # (2) dW_g = dy_g . cols_g^T
        dW = kern.conv_dW(dyg, cols) if kern else dyg @ cols.transpose(0, 2, 1)
        self.grads["W"] = dW.reshape(W.shape).astype(W.dtype, copy=False)
        self.grads["b"] = db.astype(W.dtype, copy=False)
        if not input_grad:
            return None
        if kern:  # (3) and (4) together, by whichever variant kernels/ picks; once dW is
            # taken, cols is spent, and dx's own large array may be written over it
            by_conv = self.dx_by_convolution
            return kern.conv_dx(
                dy, dyg, Wg, x_shape, k, s, p, by_convolution=by_conv, buffers=buffers, spent=cols
            )
        # (3) dcols_g = W_g^T . dy_g
        dcols = Wg.transpose(0, 2, 1) @ dyg  # (G, C/G*k*k, N*OH*OW)
        # (4) dx = col2im(dcols)
        return col2im(dcols.reshape(c, k, k, n, oh, ow), x_shape, k, s, p, fast=False)
