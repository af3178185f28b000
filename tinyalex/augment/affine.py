"""Random shift, rotation, scaling and shear: each draws one 3x3 matrix per image, then warps.

Matrices map input positions to output positions (``warp.py``); ``x`` = column, ``y`` = row, with
``y`` pointing *down* the screen. Rotation, scaling and shear act about the image centre
``c = ((W-1)/2, (H-1)/2)``: ``M = T(c) A T(-c)``. With ``d = p - c``:

    rotation(theta):   d' = [[cos, sin], [-sin, cos]] d   positive theta = counter-clockwise on
                                                           screen (np.rot90's direction, PIL's,
                                                           torchvision's)
    scaling(sx, sy):   d' = [[sx, 0], [0, sy]] d          sx != sy stretches; > 1 zooms in
    shear(phi):        d' = [[1, tan phi], [0, 1]] d      rows slide sideways; rows stay rows
    translation(t):    p' = p + t                         t = (tx, ty) in pixels, +ty moves down

Parameters are drawn on the host from ``rng`` (a numpy Generator), one per image, so a seed
gives the same batch on NumPy and CuPy. ``RandomAffine`` multiplies several parts into one
matrix, so the image is interpolated (blurred) once, not once per part.
"""

from __future__ import annotations

import numpy as np

from .warp import warp_affine


def _stack(a, b, c, d, e, f):
    """Per-image 3x3 matrices [[a, b, c], [d, e, f], [0, 0, 1]] from (N,) arrays."""
    a = np.asarray(a, dtype=np.float64)
    m = np.zeros(a.shape + (3, 3))
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = a, b, c
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = d, e, f
    m[..., 2, 2] = 1.0
    return m


def about_centre(m, h: int, w: int) -> np.ndarray:
    """T(c) M T(-c): apply the linear part of ``m`` (N, 3, 3) about the image centre."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    one, zero = np.ones(len(m)), np.zeros(len(m))
    return _stack(one, zero, cx, zero, one, cy) @ m @ _stack(one, zero, -cx, zero, one, -cy)


def translation(tx, ty) -> np.ndarray:
    """(N,) shifts in pixels -> (N, 3, 3); +tx moves content right, +ty moves it down."""
    tx = np.asarray(tx, dtype=np.float64)
    one, zero = np.ones_like(tx), np.zeros_like(tx)
    return _stack(one, zero, tx, zero, one, ty)


def rotation(degrees, h: int, w: int) -> np.ndarray:
    """(N,) angles -> (N, 3, 3) about the centre; positive = counter-clockwise on screen."""
    t = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    cos, sin, zero = np.cos(t), np.sin(t), np.zeros_like(t)
    return about_centre(_stack(cos, sin, zero, -sin, cos, zero), h, w)


def scaling(sx, sy, h: int, w: int) -> np.ndarray:
    """(N,) factors -> (N, 3, 3) about the centre; sx widens, sy heightens (> 1 = zoom in)."""
    sx = np.asarray(sx, dtype=np.float64)
    zero = np.zeros_like(sx)
    return about_centre(_stack(sx, zero, zero, zero, sy, zero), h, w)


def shear(degrees, h: int, w: int) -> np.ndarray:
    """(N,) shear angles -> (N, 3, 3): x' = x + tan(phi) (y - cy), y' = y (horizontal shear)."""
    k = np.tan(np.deg2rad(np.asarray(degrees, dtype=np.float64)))
    one, zero = np.ones_like(k), np.zeros_like(k)
    return about_centre(_stack(one, k, zero, zero, one, zero), h, w)


class RandomWarp:
    """Base: ``draw`` makes (N, 3, 3) matrices from rng; ``__call__`` warps the batch with them."""

    def __init__(self, mode: str = "constant", fill: float = 0.0):
        self.mode, self.fill = mode, fill

    def draw(self, n: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, batch, rng):
        n, _, h, w = batch.shape
        return warp_affine(batch, self.draw(n, h, w, rng), mode=self.mode, fill=self.fill)


class RandomTranslate(RandomWarp):
    """Shift by tx ~ U(-max_dx, max_dx) * W and ty ~ U(-max_dy, max_dy) * H pixels (fractions)."""

    def __init__(self, max_dx: float = 0.1, max_dy: float = 0.1, **kw):
        super().__init__(**kw)
        self.max_dx, self.max_dy = max_dx, max_dy

    def draw(self, n, h, w, rng):
        tx = rng.uniform(-self.max_dx, self.max_dx, n) * w
        ty = rng.uniform(-self.max_dy, self.max_dy, n) * h
        return translation(tx, ty)

    def __repr__(self):
        return f"RandomTranslate(dx=±{self.max_dx:g}W, dy=±{self.max_dy:g}H)"


class RandomRotate(RandomWarp):
    """Rotate by theta ~ U(-max_degrees, max_degrees) about the centre (+ = counter-clockwise)."""

    def __init__(self, max_degrees: float = 15.0, **kw):
        super().__init__(**kw)
        self.max_degrees = max_degrees

    def draw(self, n, h, w, rng):
        return rotation(rng.uniform(-self.max_degrees, self.max_degrees, n), h, w)

    def __repr__(self):
        return f"RandomRotate(±{self.max_degrees:g}°)"


class RandomScale(RandomWarp):
    """Stretch by sx ~ U(*x_range) and sy ~ U(*y_range), drawn separately (aspect changes)."""

    def __init__(self, x_range=(0.9, 1.1), y_range=(0.9, 1.1), **kw):
        super().__init__(**kw)
        self.x_range, self.y_range = tuple(x_range), tuple(y_range)

    def draw(self, n, h, w, rng):
        sx = rng.uniform(*self.x_range, n)
        sy = rng.uniform(*self.y_range, n)
        return scaling(sx, sy, h, w)

    def __repr__(self):
        (a, b), (c, d) = self.x_range, self.y_range
        return f"RandomScale(sx∈[{a:g},{b:g}], sy∈[{c:g},{d:g}])"


class RandomShear(RandomWarp):
    """Horizontal shear by phi ~ U(-max_degrees, max_degrees): x' = x + tan(phi) (y - cy)."""

    def __init__(self, max_degrees: float = 10.0, **kw):
        super().__init__(**kw)
        self.max_degrees = max_degrees

    def draw(self, n, h, w, rng):
        return shear(rng.uniform(-self.max_degrees, self.max_degrees, n), h, w)

    def __repr__(self):
        return f"RandomShear(±{self.max_degrees:g}°)"


class RandomAffine(RandomWarp):
    """Several RandomWarps fused into one matrix per image (first part applied first): one warp."""

    def __init__(self, parts, **kw):
        super().__init__(**kw)
        self.parts = list(parts)

    def draw(self, n, h, w, rng):
        m = np.broadcast_to(np.eye(3), (n, 3, 3))
        for part in self.parts:
            m = part.draw(n, h, w, rng) @ m
        return m

    def __repr__(self):
        return "RandomAffine(" + " → ".join(repr(p) for p in self.parts) + ")"
