"""Radial lens distortion (barrel / pincushion), the polynomial model of Brown (1966)::

    r_d = r (1 + k1 r^2 + k2 r^4)

``r`` is an output pixel's distance from the image centre, normalised so the corners sit at
``r = 1`` (r = |p - c| / |c|, c = ((W-1)/2, (H-1)/2)). By inverse mapping, the output pixel at
radius ``r`` shows the input at radius ``r_d``, along the same ray from the centre.

- ``k1 > 0``: ``r_d > r``, far content is squeezed towards the centre: **barrel** (a fisheye look;
  the picture bulges out, the corners read outside the image and get ``fill``).
- ``k1 < 0``: ``r_d < r``, the centre is magnified outwards: **pincushion**.
- ``k1 = k2 = 0``: identity.

The distortion depends only on the radius, so it commutes with rotations about the centre.
Shapes: batch (N, C, H, W) -> (N, C, H, W); k1, k2 one per image, drawn on the host.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from .sample import sample_bilinear


def lens_grid(batch, k1, k2):
    """Source positions ``xs, ys`` (N, H, W) for per-image coefficients k1, k2 (N,)."""
    xp = array_module(batch)
    n, _, h, w = batch.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    norm = max(np.hypot(cx, cy), 1.0)  # corner radius: r = 1 there (1 for a 1x1 image)
    dx = (xp.arange(w, dtype=xp.float32) - cx)[None, None, :] / norm  # (1, 1, W)
    dy = (xp.arange(h, dtype=xp.float32) - cy)[None, :, None] / norm  # (1, H, 1)
    r2 = dx * dx + dy * dy  # (1, H, W)
    k1 = xp.asarray(np.asarray(k1, dtype=np.float32)).reshape(n, 1, 1)
    k2 = xp.asarray(np.asarray(k2, dtype=np.float32)).reshape(n, 1, 1)
    factor = 1 + k1 * r2 + k2 * r2 * r2  # r_d / r, (N, H, W)
    return cx + dx * norm * factor, cy + dy * norm * factor


def lens_distort(batch, k1, k2, mode: str = "constant", fill: float = 0.0):
    """Distort each image with its own k1[n], k2[n] (see module doc for the sign convention)."""
    xs, ys = lens_grid(batch, k1, k2)
    return sample_bilinear(batch, xs, ys, mode=mode, fill=fill)


class RandomLensDistortion:
    """k1 ~ U(*k1_range), k2 ~ U(*k2_range) per image; k1 > 0 barrel, k1 < 0 pincushion."""

    def __init__(self, k1_range=(-0.2, 0.2), k2_range=(0.0, 0.0), mode="constant", fill=0.0):
        self.k1_range, self.k2_range = tuple(k1_range), tuple(k2_range)
        self.mode, self.fill = mode, fill

    def __call__(self, batch, rng):
        n = batch.shape[0]
        k1 = rng.uniform(*self.k1_range, n)
        k2 = rng.uniform(*self.k2_range, n)
        return lens_distort(batch, k1, k2, mode=self.mode, fill=self.fill)

    def __repr__(self):
        (a, b), (c, d) = self.k1_range, self.k2_range
        return f"RandomLensDistortion(k1∈[{a:g},{b:g}], k2∈[{c:g},{d:g}])"
