"""``warp_affine``: every geometric transform (shift, rotate, scale, shear) is one 3x3 matrix.

A matrix ``M`` maps an *input* pixel position to where it lands in the *output*
(homogeneous coordinates, ``x`` = column, ``y`` = row, pixel centres on integers)::

    [x_out, y_out, 1]^T = M [x_in, y_in, 1]^T

To draw the output we go the other way (inverse mapping): each output pixel asks where it came
from, ``[xs, ys, 1]^T = M^-1 [x_out, y_out, 1]^T``, and reads the input there with bilinear
interpolation (``sample.py``). Going this way leaves no holes: every output pixel gets a value.

Composing transforms is a matrix product (``M = M2 @ M1`` does M1 first), so a chain of
rotate/scale/shear/shift costs one warp and blurs once.

Shapes: batch (N, C, H, W) float32; matrices (N, 2, 3) or (N, 3, 3) as host NumPy arrays (one per
image); output (N, C, H, W). The 3x3 inverses are taken on the host (tiny); the per-pixel work
happens on the batch's device.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from .sample import sample_bilinear


def as_3x3(matrices) -> np.ndarray:
    """(N, 2, 3) or (N, 3, 3) -> (N, 3, 3) float64 with the bottom row [0, 0, 1]."""
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 3 or m.shape[1:] not in ((2, 3), (3, 3)):
        raise ValueError(f"matrices must be (N, 2, 3) or (N, 3, 3); got {m.shape}")
    if m.shape[1] == 2:
        bottom = np.broadcast_to([0.0, 0.0, 1.0], (m.shape[0], 1, 3))
        m = np.concatenate([m, bottom], axis=1)
    return m


def source_grid(batch, matrices):
    """Source positions ``xs, ys`` (N, H, W) for every output pixel: ``M^-1 [x, y, 1]``."""
    xp = array_module(batch)
    n, _, h, w = batch.shape
    m = as_3x3(matrices)
    if m.shape[0] != n:
        raise ValueError(f"{m.shape[0]} matrices for a batch of {n} images")
    inv = np.linalg.inv(m)[:, :2, :]  # (N, 2, 3): rows give xs and ys
    # Snap round-off (cos 90 deg = 6e-17) so whole-pixel moves read pixels exactly.
    inv = np.where(np.abs(inv - np.round(inv)) < 1e-9, np.round(inv), inv)
    a = xp.asarray(inv.astype(np.float32))[:, :, :, None, None]  # (N, 2, 3, 1, 1)
    y = xp.arange(h, dtype=xp.float32)[:, None]  # (H, 1)
    x = xp.arange(w, dtype=xp.float32)[None, :]  # (1, W)
    xs = a[:, 0, 0] * x + a[:, 0, 1] * y + a[:, 0, 2]
    ys = a[:, 1, 0] * x + a[:, 1, 1] * y + a[:, 1, 2]
    return xs, ys


def warp_affine(batch, matrices, mode: str = "constant", fill: float = 0.0):
    """Apply one affine map per image: out[n] = input[n] moved by ``matrices[n]`` (see module doc).

    batch (N, C, H, W) float32, matrices (N, 2, 3) | (N, 3, 3) -> (N, C, H, W) float32.
    ``mode`` is "constant" (outside reads ``fill``), "edge" or "reflect".
    """
    xs, ys = source_grid(batch, matrices)
    return sample_bilinear(batch, xs, ys, mode=mode, fill=fill)
