"""CPU fast paths: numba kernels for the loops NumPy cannot express in one pass.

Each kernel computes exactly what the plain NumPy code in ``tinyalex/layers`` computes
(tests/test_kernels.py holds them equal), in one pass over memory and on all cores:

- ``im2col`` / ``col2im``: conv's patch matrix and its adjoint. im2col is a strided view
  of the zero-padded input copied by NumPy, split over threads (faster than a numba loop
  for its short rows); col2im is a numba kernel with the padding in the index arithmetic,
  writing NCHW directly (no transpose).
- ``maxpool_forward`` / ``maxpool_backward``: one pass per plane, any window and stride
  (the paper's overlapping 3/2 included); the argmax is stored as the offset ``i*z + j``.
- ``lrn_forward`` / ``lrn_backward``: the window sum over channels as a running sum
  (add the channel entering the window, subtract the one leaving it), fused with the
  power and the products, so each element is read once.
- ``conv_patches``: Conv2D's patch matrix, channels last (one patch per row: the faster copy
  and the faster GEMM here).
- ``relu_*``, ``bias_to_nchw``, ``nchw_to_rows``: the element-wise glue around conv's GEMM.

Only float32 and float64 C-contiguous arrays come here (the callers check), so numba
compiles at most two specialisations of each kernel, cached on disk (``cache=True``).
Importing this module imports numba (about a second), so the layers import it lazily.
"""

from __future__ import annotations

import math
import os

# libgomp (numba's OpenMP threading layer) reads this when it loads, on the first parallel
# kernel. Its default lets a worker spin-wait after each kernel, holding a core that the
# next BLAS call on our GEMM threads needs; on 2 shared cores that cost a quarter of a
# cifar step (measured: CPU time per step 630 -> 455 ms, wall 900 -> 620 ms, under load).
# Passive workers sleep instead. setdefault: a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402

from . import gemm, reuse  # noqa: E402

_pjit = numba.njit(cache=True, nogil=True, parallel=True)

# Below this many elements a kernel runs on the calling thread alone: waking the other
# threads costs more than the work, and on a busy machine a sleeping worker can take a
# scheduler slice (milliseconds) to wake. Gradient checks call kernels on tiny arrays
# thousands of times. 2**17 float32 elements is half a megabyte, well under a millisecond
# on one core (measured: at 2**15 the (128, 384) ReLU of cifar's fc3 took 8-12 ms on a
# busy machine, waiting for the second thread).
SMALL_WORK = 1 << 17


def _launch(kernel, work: int, *args):
    """kernel(*args), single-threaded when ``work`` (elements touched) is small."""
    if work >= SMALL_WORK:
        return kernel(*args)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


# --------------------------------------------------------------------------- im2col / col2im
def im2col(x, k: int, stride: int, padding: int, oh: int, ow: int, out=None):
    """(N, C, H, W) -> cols (C, k, k, N, OH, OW); ``out`` is reused when it fits.

    Not a numba loop: every cols[c, i, j, n] is an (OH, OW) window grid of one zero-padded
    input plane, so cols is a strided *view* of the padded input (``as_strided``; strides
    only, no data) and one ``numpy.copyto`` per thread (channels split over threads, NumPy
    releases the GIL) writes it. NumPy's copy loops move the short OW-long rows about
    twice as fast as a numba loop did here (measured: cifar conv2, 118 MB of cols).
    """
    n, c, h, w = x.shape
    shape = (c, k, k, n, oh, ow)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != x.dtype:
        out = np.empty(shape, dtype=x.dtype)
    if padding:
        xpad = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=x.dtype)
        xpad[:, :, padding : padding + h, padding : padding + w] = x
    else:
        xpad = x
    sn, sc, sh, sw = xpad.strides
    view = np.lib.stride_tricks.as_strided(
        xpad, shape, (sc, sh, sw, sn, stride * sh, stride * sw), writeable=False
    )
    parts = min(c, numba.get_num_threads()) if out.size >= SMALL_WORK * 8 else 1
    step = -(-c // parts)
    _threads(
        [
            (lambda lo=lo: np.copyto(out[lo : lo + step], view[lo : lo + step]))
            for lo in range(0, c, step)
        ]
    )
    return out


def _threads(tasks) -> None:
    """Run callables that release the GIL, the first here and the rest on the pool."""
    if not tasks:
        return
    if len(tasks) == 1:
        tasks[0]()
        return
    futures = [gemm.thread_pool(len(tasks) - 1).submit(task) for task in tasks[1:]]
    tasks[0]()
    for fut in futures:
        fut.result()


_COL2IM_BLOCK = 8  # images per col2im task


@_pjit
def _col2im(cols, k, s, pad, dx):
    # dx[n, c, s*p + i - pad, s*q + j - pad] += cols[c, i, j, n, p, q]. One task per channel
    # c and block of images: it owns dx[n0:n1, c] (no two threads write one pixel) and reads
    # cols[c, i, j, n0:n1] as contiguous stretches, the big array streamed front to back.
    n_, c_, h, w = dx.shape
    oh, ow = cols.shape[4], cols.shape[5]
    nblocks = (n_ + _COL2IM_BLOCK - 1) // _COL2IM_BLOCK
    for t in numba.prange(c_ * nblocks):
        c = t // nblocks
        n0 = (t % nblocks) * _COL2IM_BLOCK
        n1 = min(n_, n0 + _COL2IM_BLOCK)
        for n in range(n0, n1):
            dx[n, c] = 0
        for i in range(k):
            for j in range(k):
                q_lo = min(ow, max(0, (pad - j + s - 1) // s))
                q_hi = max(q_lo, min(ow, (w - 1 + pad - j) // s + 1))
                off = j - pad
                for n in range(n0, n1):
                    plane = dx[n, c]
                    for p in range(oh):
                        r = s * p + i - pad
                        if r < 0 or r >= h:
                            continue
                        src = cols[c, i, j, n, p]
                        dst = plane[r]
                        if s == 1:
                            for q in range(q_lo, q_hi):
                                dst[q + off] += src[q]
                        else:
                            for q in range(q_lo, q_hi):
                                dst[s * q + off] += src[q]


def col2im(cols, x_shape, k: int, stride: int, padding: int):
    """The adjoint of im2col: cols (C, k, k, N, OH, OW) summed into a new (N, C, H, W)."""
    dx = np.empty(x_shape, dtype=cols.dtype)
    _launch(_col2im, cols.size, cols, k, stride, padding, dx)
    return dx


# --------------------------------------------------------------------------- conv glue
@_pjit
def _bias_to_nchw(rows, b, y):
    # y[n, o, :] = rows[o, n, :] + b[o]: the GEMM's (O, N*OH*OW) result back to NCHW.
    n_, o_, hw = y.shape
    for t in numba.prange(n_ * o_):
        n = t // o_
        o = t % o_
        src = rows[o, n]
        dst = y[n, o]
        bo = b[o]
        for e in range(hw):
            dst[e] = src[e] + bo


def bias_to_nchw(rows, b, n: int, o: int, oh: int, ow: int):
    """rows (O, N*OH*OW) + b (O,) -> y (N, O, OH, OW), one pass."""
    y = np.empty((n, o, oh, ow), dtype=rows.dtype)
    _launch(_bias_to_nchw, y.size, rows.reshape(o, n, oh * ow), b, y.reshape(n, o, oh * ow))
    return y


@_pjit
def _nchw_to_rows(dy, rows, db):
    # rows[o, n, :] = dy[n, o, :] and db[o] = sum over n and pixels (accumulated in float64).
    n_, o_, hw = dy.shape
    for o in numba.prange(o_):
        acc = 0.0
        for n in range(n_):
            src = dy[n, o]
            dst = rows[o, n]
            for e in range(hw):
                v = src[e]
                dst[e] = v
                acc += v
        db[o] = acc


def nchw_to_rows(dy):
    """dy (N, O, OH, OW) -> (rows (O, N*OH*OW), db (O,) = sum of dy over N, OH, OW)."""
    n, o, oh, ow = dy.shape
    rows = np.empty((o, n * oh * ow), dtype=dy.dtype)
    db = np.empty(o, dtype=dy.dtype)
    _launch(_nchw_to_rows, dy.size, dy.reshape(n, o, oh * ow), rows.reshape(o, n, oh * ow), db)
    return rows, db


# --------------------------------------------------------------------------- conv's steps
# Conv2D keeps each layer's im2col until backward on the CPU (layers/conv.py, keep_cols):
# computing it again costs a copy of the whole patch matrix per layer per step (cifar's conv2
# at batch 128: 118 MB, tens of ms on 2 cores), and host memory is rarely what runs out.
KEEP_COLS = True


# Conv2D's fast path calls these by the names of its equations (layers/conv.py); the choices
# between variants are made here: the patch matrix's layout (below), the GEMMs split over
# threads (gemm.py), and a stride-1 dx computed as a convolution of dy with the flipped kernel
# instead of dcols + col2im.
#
# The layout. im2col writes the patch matrix as the equations read it, (C, k, k, N, OH, OW),
# and the products have the O/G rows of W and N*OH*OW columns. The fast path writes the same
# numbers channels last instead (CHANNELS_LAST; False gives im2col's layout, for comparison),
#
#     cols[n, p, q, g, i, j, c'] = xpad[n, g*C/G + c', s*p + i, s*q + j]   (N, OH, OW, G, k, k, C/G)
#
# one patch per row, its entries in the order (i, j, c'), and the forward product per group
# becomes (N*OH*OW, k*k*C/G) @ (k*k*C/G, O/G), W's entries reordered to match. Measured on
# this project's 2-core Xeon (AVX-512), cifar's conv2 at batch 128: the copy moves runs of
# k*C contiguous floats instead of OW (im2col 22 against 33 ms) and OpenBLAS runs the product
# in this orientation faster (forward GEMM 51 against 70 ms; dx by convolution 61 against 97);
# dW took the same time either way. It won or tied on every layer of both networks, the
# 3-channel conv1s included (alexnet's, at batch 32: patch matrix 35 against 63 ms, forward
# GEMM 110 against 121, dW 100 against 103), so every conv takes it.
CHANNELS_LAST = True


def _channels_last(cols) -> bool:
    """Whether a patch matrix from :func:`conv_patches` is channels last (7-D) or im2col's."""
    return cols.ndim == 7


def conv_patches(x, k: int, stride: int, padding: int, groups: int, oh: int, ow: int, out=None):
    """Conv2D's patch matrix for x (N, C, H, W): channels last, (N, OH, OW, G, k, k, C/G)
    (or, with CHANNELS_LAST off, im2col's as (G, C/G*k*k, N*OH*OW)). ``out``: a contiguous
    buffer of the same size and dtype to write into (else a new array)."""
    n, c, h, w = x.shape
    x = np.ascontiguousarray(x)
    if not CHANNELS_LAST:
        cols = im2col(x, k, stride, padding, oh, ow, reuse(out, (c, k, k, n, oh, ow), x.dtype))
        return cols.reshape(groups, c // groups * k * k, n * oh * ow)
    cg = c // groups
    shape = (n, oh, ow, groups, k, k, cg)
    out = reuse(out, shape, x.dtype)
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    # x as NHWC, zero-padded; cols is a strided view of it, copied one block of images per thread
    hp, wp = h + 2 * padding, w + 2 * padding
    xpad = (np.zeros if padding else np.empty)((n, hp, wp, c), dtype=x.dtype)
    sn, sh, sw, sc = xpad.strides
    view = np.lib.stride_tricks.as_strided(
        xpad, shape, (sn, stride * sh, stride * sw, cg * sc, sh, sw, sc), writeable=False
    )

    def block(lo, hi):
        def run():
            xpad[lo:hi, padding : padding + h, padding : padding + w] = x[lo:hi].transpose(
                0, 2, 3, 1
            )
            np.copyto(out[lo:hi], view[lo:hi])

        return run

    parts = min(n, numba.get_num_threads()) if out.size >= SMALL_WORK * 8 else 1
    step = max(1, -(-n // parts))
    _threads([block(lo, min(n, lo + step)) for lo in range(0, n, step)])
    return out


def _weights_channels_last(Wg, k: int):
    """Wg (G, O/G, C/G*k*k) in the order (c', i, j) -> (G, k*k*C/G, O/G) in the order (i, j, c'),
    the right-hand factor of the channels-last product."""
    g, og, ckk = Wg.shape
    w5 = Wg.reshape(g, og, ckk // (k * k), k, k).transpose(0, 3, 4, 2, 1)
    return np.ascontiguousarray(w5).reshape(g, ckk, og)


@_pjit
def _rows_to_nchw(rows, b, y):
    # y[n, g*O/G + o, e] = rows[g, n*HW + e, o] + b[g*O/G + o]: the channels-last product
    # (one row per output pixel) back to NCHW.
    g_, _, og = rows.shape
    n_, _, hw = y.shape
    for t in numba.prange(n_ * g_):
        n = t // g_
        g = t % g_
        src = rows[g, n * hw : (n + 1) * hw]
        for o in range(og):
            dst = y[n, g * og + o]
            bo = b[g * og + o]
            for e in range(hw):
                dst[e] = src[e, o] + bo


def conv_y(Wg, b, cols, oh: int, ow: int):
    """y = W_g . cols_g + b, as (N, O, OH, OW). Wg (G, O/G, C/G*k*k); cols from
    :func:`conv_patches` (either layout); b (O,). The GEMM is split over threads."""
    g, og, ckk = Wg.shape
    o = g * og
    if not _channels_last(cols):
        n = cols.shape[2] // (oh * ow)
        return bias_to_nchw(gemm.matmul_cols(Wg, cols).reshape(o, -1), b, n, o, oh, ow)
    n, k = cols.shape[0], cols.shape[4]
    a = cols.reshape(n * oh * ow, g, ckk).transpose(1, 0, 2)  # (G, N*OH*OW, k*k*C/G), a view
    rows = gemm.matmul_rows(a, _weights_channels_last(Wg, k))  # (G, N*OH*OW, O/G)
    y = np.empty((n, o, oh, ow), dtype=rows.dtype)
    _launch(_rows_to_nchw, y.size, rows, b.astype(rows.dtype, copy=False), y.reshape(n, o, oh * ow))
    return y


def winograd_applies(k: int, stride: int, padding: int) -> bool:
    """Never on the CPU: Winograd's F(2x2, 3x3) in its NumPy form (kernels/winograd.py) took
    300-430 ms against 66-89 ms for the channels-last GEMM path on alexnet's conv3-5 forward
    (batch 32, float32, 2-core Xeon, 2026-11-28). The GPU's choice is kernels/cuda.py's."""
    return False


def conv_dW(dyg, cols):
    """dW_g = dy_g . cols_g^T: (G, O/G, NHW) @ (G, NHW, CKK), the long sum split over threads.
    cols in either layout of :func:`conv_patches`; dW (G, O/G, C/G*k*k) in W's order."""
    if not _channels_last(cols):
        return gemm.matmul_sum(dyg, cols.transpose(0, 2, 1))
    n, oh, ow, g, k, _, cg = cols.shape
    a = cols.reshape(n * oh * ow, g, k * k * cg).transpose(1, 0, 2)  # (G, N*OH*OW, k*k*C/G)
    dW = gemm.matmul_sum(dyg, a)  # (G, O/G, k*k*C/G), the order (i, j, c')
    og = dyg.shape[1]
    return dW.reshape(g, og, k, k, cg).transpose(0, 1, 4, 2, 3).reshape(g, og, cg * k * k)


def conv_dx(
    dy,
    dyg,
    Wg,
    x_shape,
    k: int,
    stride: int,
    padding: int,
    *,
    by_convolution=True,
    buffers=None,
    spent=None,
):
    """dx for conv's backward: dcols_g = W_g^T . dy_g, dx = col2im(dcols).

    With stride 1, ``padding <= k - 1`` and no more outputs than inputs (O <= C; and
    ``by_convolution``) the same sums are taken as a convolution of dy with the flipped
    kernel (:func:`conv_dx_by_convolution`), whose patch matrix of dy is then no larger than
    dcols. Where O > C it would be larger, and dcols + col2im ran faster (measured on the
    Xeon: alexnet's conv2 at batch 32, 280 against 326 ms; conv3, 115 against 146), while
    the convolution won at O = C (cifar's conv2: 75 against 127 ms; alexnet's conv4).
    dy (N, O, OH, OW); dyg its rows (G, O/G, N*OH*OW); Wg (G, O/G, C/G*k*k).
    ``spent``: the forward's patch matrix, no longer needed (dW is taken): dcols, or dy's
    patch matrix, is written over it where it fits. ``buffers``: the layer's dict of arrays
    kept between steps, where dy's patch matrix goes when ``spent`` is too small (None: a
    new array).
    """
    n, c = x_shape[:2]
    o = dy.shape[1]
    if by_convolution and stride == 1 and padding <= k - 1 and o <= c:
        return conv_dx_by_convolution(dy, Wg, x_shape, k, padding, buffers, spent)
    oh, ow = dy.shape[2:]
    g, _, ckk = Wg.shape
    out = reuse(spent, (g, ckk, n * oh * ow), dyg.dtype)
    dcols = gemm.matmul_cols(Wg.transpose(0, 2, 1), dyg, out=out)  # (G, C/G*k*k, N*OH*OW)
    return col2im(dcols.reshape(c, k, k, n, oh, ow), tuple(x_shape), k, stride, padding)


def conv_dx_by_convolution(dy, Wg, x_shape, k: int, padding: int, buffers=None, spent=None):
    """Stride 1: dx is a convolution of dy with the kernel flipped in space and transposed
    in channels, dy padded by k-1-p:

        dx[n, c, y, x] = sum_{o, i, j} W[o, c, k-1-i, k-1-j] dypad[n, o, y + i, x + j]

    The same sums as W^T . dy followed by col2im, taken as a forward convolution
    (:func:`conv_patches` of dy, then :func:`conv_y`), with no scatter-add. dy's patch matrix
    has O*k*k entries per pixel where the forward's had C*k*k: it is written over the
    forward's (``spent``) where it fits, else into ``buffers["dy_cols"]``, kept for the next
    step.
    """
    n, c, h, w = x_shape
    g = Wg.shape[0]
    o = dy.shape[1]
    Wf = Wg.reshape(g, o // g, c // g, k, k)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    Wf = np.ascontiguousarray(Wf).reshape(g, c // g, o // g * k * k)
    size = o * k * k * n * h * w
    if (
        spent is not None
        and spent.size >= size
        and spent.dtype == dy.dtype
        and spent.flags.c_contiguous
    ):
        buf = spent.reshape(-1)  # a view
    else:
        buffers = {} if buffers is None else buffers
        buf = buffers.get("dy_cols")
        if buf is None or buf.size < size or buf.dtype != dy.dtype:
            buf = buffers["dy_cols"] = np.empty(size, dtype=dy.dtype)  # reused next step
    dcols = conv_patches(dy, k, 1, k - 1 - padding, g, h, w, out=buf[:size])
    return conv_y(Wf, np.zeros(c, dy.dtype), dcols, h, w)


def matmul2d(a, b):
    """a (M, K) @ b (K, N), the columns split over threads (Linear's three products)."""
    return gemm.matmul2d(a, b)


# --------------------------------------------------------------------------- max pooling
@_pjit
def _maxpool_forward(x, z, s, pad, y, arg):
    # y = max over the window, arg = offset i*z + j of the first maximum in row-major
    # order. Padding counts as -inf, exactly as the plain version's -inf padded copy.
    n_, c_, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for t in numba.prange(n_ * c_):
        n = t // c_
        c = t % c_
        src = x[n, c]
        for p in range(oh):
            r0 = s * p - pad
            inside_rows = r0 >= 0 and r0 + z <= h
            for q in range(ow):
                c0 = s * q - pad
                if inside_rows and c0 >= 0 and c0 + z <= w:
                    # the common case: the whole window in the image, no bounds tests
                    best = src[r0, c0]
                    where = 0
                    for i in range(z):
                        for j in range(z):
                            v = src[r0 + i, c0 + j]
                            if v > best:  # strict: the first maximum keeps the gradient
                                best = v
                                where = i * z + j
                    y[n, c, p, q] = best
                    arg[n, c, p, q] = where
                    continue
                best = -np.inf
                if r0 >= 0 and c0 >= 0:
                    best = src[r0, c0]
                where = 0
                for i in range(z):
                    r = r0 + i
                    if r < 0 or r >= h:
                        continue
                    for j in range(z):
                        cc = c0 + j
                        if cc < 0 or cc >= w:
                            continue
                        v = src[r, cc]
                        if v > best:
                            best = v
                            where = i * z + j
                y[n, c, p, q] = best
                arg[n, c, p, q] = where


def maxpool_forward(x, z: int, stride: int, padding: int, oh: int, ow: int):
    """(N, C, H, W) -> (y (N, C, OH, OW), arg int8 (N, C, OH, OW))."""
    n, c = x.shape[:2]
    y = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=np.int8)
    _launch(_maxpool_forward, y.size * z * z, x, z, stride, padding, y, arg)
    return y, arg


@_pjit
def _maxpool_backward(dy, arg, z, s, pad, dx):
    # Each window sends its gradient to its recorded maximum; a pixel shared by
    # overlapping windows adds up. One task per (n, c) plane, so no write races.
    n_, c_, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for t in numba.prange(n_ * c_):
        n = t // c_
        c = t % c_
        plane = dx[n, c]
        plane[:] = 0
        for p in range(oh):
            for q in range(ow):
                a = arg[n, c, p, q]
                r = s * p - pad + a // z
                cc = s * q - pad + a % z
                if 0 <= r < h and 0 <= cc < w:
                    plane[r, cc] += dy[n, c, p, q]


def maxpool_backward(dy, arg, x_shape, z: int, stride: int, padding: int):
    dx = np.empty(x_shape, dtype=dy.dtype)
    _launch(_maxpool_backward, dx.size, dy, arg, z, stride, padding, dx)
    return dx


# --------------------------------------------------------------------------- LRN
@_pjit
def _lrn_forward(x, before, after, k, alpha, beta, y, scale, pw):
    # S[i] = sum_{j=i-before}^{i+after} x[j]^2 kept as a running sum over channels:
    # add the channel entering the window, subtract the one leaving it. Vectorised
    # over the pixels of one image (contiguous in NCHW).
    n_, c_, hw = x.shape
    for n in numba.prange(n_):
        xn = x[n]
        acc = np.zeros(hw, dtype=np.float64)  # float64: the subtractions cancel cleanly
        for j in range(min(after, c_)):
            for e in range(hw):
                acc[e] += xn[j, e] * xn[j, e]
        for i in range(c_):
            jin = i + after
            jout = i - before - 1
            if jin < c_:
                for e in range(hw):
                    acc[e] += xn[jin, e] * xn[jin, e]
            if jout >= 0:
                for e in range(hw):
                    acc[e] -= xn[jout, e] * xn[jout, e]
            # Three simple loops over the row rather than one with a call and a branch
            # inside: the compiler vectorises these (measured: 2.8x on alexnet's lrn1).
            sci, pwi, yi, xi = scale[n, i], pw[n, i], y[n, i], xn[i]
            if beta == 0.75:  # v ** -0.75 by two square roots, far cheaper than pow
                for e in range(hw):
                    sc = k + alpha * max(acc[e], 0.0)
                    sci[e] = sc
                    r = 1.0 / math.sqrt(sc)
                    pwi[e] = r * math.sqrt(r)
            else:
                for e in range(hw):
                    sc = k + alpha * max(acc[e], 0.0)
                    sci[e] = sc
                    pwi[e] = sc**-beta
            for e in range(hw):
                yi[e] = xi[e] * pwi[e]


def lrn_forward(x, size: int, alpha: float, beta: float, k: float):
    """(N, C, H, W) -> (y, saved): y (N, C, H, W) and what backward needs besides x, here
    (scale, scale**-beta), both (N, C, H, W); alpha as the paper's.

    The CPU keeps scale**-beta rather than taking it again in backward (as the GPU does):
    the kernels here ran faster that way (measured: alexnet's lrn1 at batch 32, 74 against
    84 ms forward + backward), and host memory is rarely what runs out.
    """
    n, c, h, w = x.shape
    y, scale, pw = (np.empty(x.shape, dtype=x.dtype) for _ in range(3))
    flat = (n, c, h * w)
    _launch(
        _lrn_forward,
        x.size,
        x.reshape(flat),
        size // 2,
        (size - 1) // 2,
        float(k),
        float(alpha),
        float(beta),
        y.reshape(flat),
        scale.reshape(flat),
        pw.reshape(flat),
    )
    return y, (scale, pw)


@_pjit
def _lrn_backward(dy, x, scale, pw, before, after, coef, dx):
    # dx[j] = dy[j] pw[j] - coef x[j] T[j],  T[j] = sum_{i=j-after}^{j+before} t[i],
    # t[i] = dy[i] y[i] / scale[i] = dy[i] x[i] pw[i] / scale[i]: the forward window
    # mirrored, again as a running sum over channels.
    n_, c_, hw = x.shape
    for n in numba.prange(n_):
        t = np.empty((c_, hw), dtype=np.float64)
        for i in range(c_):
            for e in range(hw):
                t[i, e] = dy[n, i, e] * x[n, i, e] * pw[n, i, e] / scale[n, i, e]
        acc = np.zeros(hw, dtype=np.float64)
        for i in range(min(before, c_)):
            for e in range(hw):
                acc[e] += t[i, e]
        for j in range(c_):
            jin = j + before
            jout = j - after - 1
            if jin < c_:
                for e in range(hw):
                    acc[e] += t[jin, e]
            if jout >= 0:
                for e in range(hw):
                    acc[e] -= t[jout, e]
            for e in range(hw):
                dx[n, j, e] = dy[n, j, e] * pw[n, j, e] - coef * x[n, j, e] * acc[e]


def lrn_backward(dy, x, saved, size: int, alpha: float, beta: float):
    """dx for LRN; ``saved``: the (scale, scale**-beta) that lrn_forward returned."""
    scale, pw = saved
    n, c, h, w = x.shape
    dx = np.empty(x.shape, dtype=dy.dtype)
    flat = (n, c, h * w)
    _launch(
        _lrn_backward,
        x.size,
        dy.reshape(flat),
        x.reshape(flat),
        scale.reshape(flat),
        pw.reshape(flat),
        size // 2,
        (size - 1) // 2,
        float(2.0 * alpha * beta),
        dx.reshape(flat),
    )
    return dx


# --------------------------------------------------------------------------- ReLU
@_pjit
def _relu_forward(x, y):
    for e in numba.prange(x.size):
        v = x[e]
        y[e] = 0 if v <= 0 else v  # written so NaN passes through, as np.maximum does


@_pjit
def _relu_backward(dy, y, dx):
    for e in numba.prange(y.size):
        dx[e] = dy[e] if y[e] > 0 else 0


def relu_forward(x):
    y = np.empty_like(x)
    _launch(_relu_forward, x.size, x.reshape(-1), y.reshape(-1))
    return y


def relu_backward(dy, y):
    dx = np.empty_like(y)
    _launch(_relu_backward, y.size, dy.reshape(-1), y.reshape(-1), dx.reshape(-1))
    return dx


# --------------------------------------------------------------------------- SGD
@_pjit
def _sgd_update(g, m, wdlr, lr, v, w):
    # The paper's rule, in the order the plain optim.SGD rounds it:
    # v <- ((m v) - (wd lr) w) - lr g ;  w <- w + v. The scalars come in the arrays' dtype,
    # so float32 parameters are updated in float32 arithmetic as NumPy does.
    for e in numba.prange(w.size):
        t = m * v[e]
        t = t - wdlr * w[e]
        t = t - lr * g[e]
        v[e] = t
        w[e] = w[e] + t


def sgd_update(w, v, g, momentum: float, wd_lr: float, lr: float) -> None:
    """In place, one pass: v = momentum v - wd_lr w - lr g; w += v (C-contiguous, one dtype)."""
    T = w.dtype.type
    _launch(
        _sgd_update,
        w.size,
        g.reshape(-1),
        T(momentum),
        T(wd_lr),
        T(lr),
        v.reshape(-1),
        w.reshape(-1),
    )
