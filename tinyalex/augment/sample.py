"""Bilinear sampling: the one piece every geometric transform shares.

A geometric transform is written as *inverse mapping*: for every output pixel ``(x, y)`` we say
where in the input it comes from, ``(xs, ys)``, and read the input there. Reading between pixel
centres uses bilinear interpolation::

    x0 = floor(xs), y0 = floor(ys), wx = xs - x0, wy = ys - y0
    out = (1-wy)(1-wx) I[y0, x0] + (1-wy) wx I[y0, x0+1]
        + wy (1-wx) I[y0+1, x0] + wy wx I[y0+1, x0+1]

Coordinates: ``x`` is the column index, ``y`` the row index, pixel centres sit on integers, so the
image covers ``[0, W-1] x [0, H-1]``. Where a neighbour falls outside the image, ``mode`` decides:

- ``"constant"``: it reads ``fill`` (after mean subtraction, 0 is the mean colour);
- ``"edge"``: the coordinate is clamped to the border (the border pixels are repeated);
- ``"reflect"``: the image is mirrored about its border pixels (``d c b | a b c d | c b a``).

Shapes: ``batch`` (N, C, H, W) float32; ``xs``, ``ys`` (N, Ho, Wo) float32 on the same backend;
output (N, C, Ho, Wo) float32. All images are sampled at once with fancy indexing, so the same
code runs on NumPy and CuPy. On NumPy a numba kernel does the same arithmetic about 10x faster
(fancy indexing builds four index arrays per output value; the kernel reads four pixels in place).
"""

from __future__ import annotations

import numba
import numpy as np

from ..backend import array_module

MODES = ("constant", "edge", "reflect")


def _reflect(coord, size, xp):
    """Fold coordinates into [0, size-1] by mirroring about the border pixel centres."""
    if size == 1:
        return xp.zeros_like(coord)
    period = 2 * (size - 1)
    coord = xp.abs(coord) % period
    return xp.where(coord > size - 1, period - coord, coord)


def sample_bilinear(batch, xs, ys, mode: str = "constant", fill: float = 0.0):
    """Read ``batch`` at the (fractional) source positions ``xs``, ``ys``, one grid per image.

    batch (N, C, H, W), xs/ys (N, Ho, Wo) -> (N, C, Ho, Wo), all float32 on one backend.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    xp = array_module(batch)
    n, c, h, w = batch.shape
    xs = xs.astype(xp.float32, copy=False)
    ys = ys.astype(xp.float32, copy=False)
    if xp is np:
        out = np.empty((n, c) + xs.shape[1:], dtype=np.float32)
        _sample_numba(
            np.ascontiguousarray(batch, dtype=np.float32),
            np.ascontiguousarray(xs),
            np.ascontiguousarray(ys),
            MODES.index(mode),
            np.float32(fill),
            out,
        )
        return out
    return _sample_xp(batch, xs, ys, mode, fill)


def _sample_xp(batch, xs, ys, mode, fill):
    """The array-op version (CuPy's path; NumPy's reference, held equal to the kernel by a test)."""
    xp = array_module(batch)
    n, c, h, w = batch.shape
    if mode == "edge":
        xs, ys = xp.clip(xs, 0, w - 1), xp.clip(ys, 0, h - 1)
    elif mode == "reflect":
        xs, ys = _reflect(xs, w, xp), _reflect(ys, h, xp)
    x0f, y0f = xp.floor(xs), xp.floor(ys)
    wx, wy = (xs - x0f)[:, None], (ys - y0f)[:, None]  # (N, 1, Ho, Wo): broadcast over channels
    x0, y0 = x0f.astype(xp.int32), y0f.astype(xp.int32)

    flat = batch.reshape(n, c, h * w)
    img = xp.arange(n)[:, None, None]
    chan = xp.arange(c)[None, :, None]
    out = xp.zeros((n, c) + xs.shape[1:], dtype=xp.float32)
    for dy, dx, weight in (
        (0, 0, (1 - wy) * (1 - wx)),
        (0, 1, (1 - wy) * wx),
        (1, 0, wy * (1 - wx)),
        (1, 1, wy * wx),
    ):
        yy, xx = y0 + dy, x0 + dx
        # Clamped indices are always safe to read; "constant" then overwrites the outside reads.
        idx = xp.clip(yy, 0, h - 1) * w + xp.clip(xx, 0, w - 1)
        val = flat[img, chan, idx.reshape(n, 1, -1)].reshape(out.shape)
        if mode == "constant":
            inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))[:, None]
            val = xp.where(inside, val, xp.float32(fill))
        out += weight * val
    return out


@numba.njit(cache=True, nogil=True)
def _fold(v, size, mode):
    if mode == 1:  # edge
        return min(max(v, 0.0), size - 1.0)
    if mode == 2:  # reflect
        if size == 1:
            return 0.0
        period = 2.0 * (size - 1)
        v = abs(v) % period
        return period - v if v > size - 1 else v
    return v


@numba.njit(cache=True, nogil=True)
def _sample_numba(batch, xs, ys, mode, fill, out):
    n, c, h, w = batch.shape
    _, ho, wo = xs.shape
    for i in range(n):
        for oy in range(ho):
            for ox in range(wo):
                sx = _fold(xs[i, oy, ox], w, mode)
                sy = _fold(ys[i, oy, ox], h, mode)
                x0f, y0f = np.floor(sx), np.floor(sy)
                wx, wy = sx - x0f, sy - y0f
                x0, y0 = int(x0f), int(y0f)
                for ch in range(c):
                    acc = 0.0
                    for dy in range(2):
                        yy = y0 + dy
                        wgt_y = wy if dy else 1.0 - wy
                        for dx in range(2):
                            xx = x0 + dx
                            wgt = wgt_y * (wx if dx else 1.0 - wx)
                            if 0 <= yy < h and 0 <= xx < w:
                                acc += wgt * batch[i, ch, yy, xx]
                            elif mode == 0:
                                acc += wgt * fill
                            else:  # edge/reflect: only a zero-weight neighbour can fall outside
                                acc += wgt * batch[i, ch, min(yy, h - 1), min(xx, w - 1)]
                    out[i, ch, oy, ox] = acc
    return out
