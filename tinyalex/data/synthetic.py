"""Synthetic shapes: the embedded default dataset (nothing installed or downloaded).

Ten classes, one object per image: six outlines (disc, ring, square, triangle, cross,
star) and four textures (horizontal stripes, vertical stripes, checkerboard, dots) that
fill a disc- or square-shaped patch, so the patch's outline says nothing about its class.
Each object has a random colour, position, size and rotation (stripes are only tilted a
little: rotating horizontal stripes by 90 degrees would make them vertical). Everything is
symmetric under a horizontal flip, so flips are a valid augmentation, as in the paper.

The background is a smooth random colour field (a coarse grid of random colours, smoothly
upsampled: gradients and blobs), plus finer colour variation, plus clutter blobs of other
colours, plus per-pixel noise. Class means are therefore nearly equal grey-brown fields:
the class lives in the object's shape, not in its colour or position.

Rendering is vectorised over a chunk of images: every shape is a *signed distance* d(u, v)
on the object's own coordinate grid (negative inside, in units of the object's radius),
and its anti-aliased coverage is ``clip(0.5 - d * radius_in_pixels, 0, 1)`` -- a one-pixel
soft edge at any resolution. Scene parameters are drawn in resolution-free units, so the
same seed and count give the same scenes at 32 or 256 pixels (only the pixel noise differs).
"""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

NAME = "synthetic"
CLASSES = [
    "disc", "ring", "square", "triangle", "cross", "star",
    "horizontal stripes", "vertical stripes", "checkerboard", "dots",
]  # fmt: skip
NATIVE_SIZE = 32
TRAIN_STREAM, VAL_STREAM = 0, 1  # seeds [seed, stream]: train and val never share scenes
PIXELS_PER_CHUNK = 1 << 18  # images rendered together: ~3 MB per float32 RGB array, cache-sized


# --- shapes: signed distance on the object's grid (u, v), radius 1, negative inside ------


def _col(a):
    """Per-image values (B,) -> (B, 1, 1), to broadcast over a (B, H, W) grid."""
    return a[:, None, None]


def _disc(u, v, p):
    return np.sqrt(u * u + v * v) - 1


def _ring(u, v, p):
    width = _col(p["thickness"])
    return np.abs(np.sqrt(u * u + v * v) - (1 - width)) - width


def _square(u, v, p):
    return np.maximum(np.abs(u), np.abs(v)) - 0.85


def _triangle(u, v, p):
    # equilateral: inside all three half-planes whose normals are 120 degrees apart
    angles = np.pi / 2 + 2 * np.pi / 3 * np.arange(3)
    sides = [u * np.cos(a) + v * np.sin(a) for a in angles]
    return np.maximum(np.maximum(sides[0], sides[1]), sides[2]) - 0.5


def _cross(u, v, p):
    half_width = _col(p["thickness"])
    au, av = np.abs(u), np.abs(v)
    horizontal_bar = np.maximum(av - half_width, au - 1)
    vertical_bar = np.maximum(au - half_width, av - 1)
    return np.minimum(horizontal_bar, vertical_bar)


def _star(u, v, p):
    # five points: the radius of the outline zigzags between 0.45 (notch) and 1 (tip)
    turn = (np.arctan2(v, u) * (5 / (2 * np.pi))) % 1
    return np.sqrt(u * u + v * v) - (0.45 + 0.55 * np.abs(2 * turn - 1))


def _patch(u, v, p):
    """The outline a texture fills: a disc or a square, at random."""
    square = np.maximum(np.abs(u), np.abs(v)) - 0.85
    return np.where(_col(p["square_patch"]), square, np.sqrt(u * u + v * v) - 1)


def _stripes(w, p, period):
    """Bands across coordinate ``w``, half of each ``period`` inside."""
    phase = (w / period + _col(p["phase"])) % 1
    return (np.abs(phase - 0.5) - 0.25) * period


def _horizontal_stripes(u, v, p):
    return np.maximum(_patch(u, v, p), _stripes(v, p, _col(p["period"])))


def _vertical_stripes(u, v, p):
    return np.maximum(_patch(u, v, p), _stripes(u, p, _col(p["period"])))


def _checkerboard(u, v, p):
    cell = _col(p["period"])  # one square of the board is a stripe period wide
    a = (u / (2 * cell) + _col(p["phase"])) % 1 - 0.5
    b = (v / (2 * cell) + _col(p["phase"])) % 1 - 0.5
    inside = np.where(a * b > 0, -1, 1)  # the squares where a and b have the same sign
    return np.maximum(_patch(u, v, p), inside * np.minimum(np.abs(a), np.abs(b)) * 2 * cell)


def _dots(u, v, p):
    spacing = 1.4 * _col(p["period"])
    a = (u / spacing + _col(p["phase"])) % 1 - 0.5
    b = (v / spacing + _col(p["phase"])) % 1 - 0.5
    return np.maximum(_patch(u, v, p), (np.sqrt(a * a + b * b) - 0.3) * spacing)


SHAPES = [
    _disc, _ring, _square, _triangle, _cross, _star,
    _horizontal_stripes, _vertical_stripes, _checkerboard, _dots,
]  # fmt: skip
SLIGHTLY_TILTED = (6, 7)  # stripes: rotated by at most TILT so they keep their direction
TILT = 0.2  # radians


# --- scenes: every random number, drawn in resolution-free units ------------------------


def draw_scenes(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random parameters of ``n`` scenes; positions and sizes in image half-widths."""
    s = {"label": rng.permutation(np.arange(n) % len(CLASSES))}  # exactly balanced
    s["background"] = rng.random((n, 3, 3, 3), dtype=np.float32)  # colours on a 3x3 grid
    s["detail"] = rng.uniform(-1, 1, (n, 3, 8, 8)).astype(np.float32)  # finer, on 8x8
    s["detail_amount"] = rng.uniform(0.05, 0.2, n)
    s["clutter"] = rng.random((n, 2, 6, 6), dtype=np.float32)  # two blob layers
    s["clutter_level"] = rng.uniform(0.65, 0.9, (n, 2))  # higher: fewer, smaller blobs
    s["clutter_colour"] = rng.random((n, 2, 3))
    s["radius"] = rng.uniform(0.45, 0.8, n)
    s["centre"] = rng.uniform(-1, 1, (n, 2)) * (1 - 0.8 * s["radius"])[:, None]
    s["angle"] = rng.uniform(0, 2 * np.pi, n)
    tilted = np.isin(s["label"], SLIGHTLY_TILTED)
    s["angle"][tilted] = rng.uniform(-TILT, TILT, tilted.sum())
    s["thickness"] = rng.uniform(0.2, 0.35, n)
    s["period"] = rng.uniform(0.22, 0.34, n) / s["radius"]  # 0.22..0.34 of a half-width
    s["phase"] = rng.random(n)
    s["square_patch"] = rng.random(n) < 0.5
    # object colour: a random direction away from the mean background colour, so it
    # usually stands out, but sometimes only a little (clipping to 0..1 can shrink it)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    mean_background = s["background"].mean(axis=(2, 3))
    s["colour"] = np.clip(mean_background + direction * rng.uniform(0.4, 0.9, (n, 1)), 0, 1)
    s["noise"] = rng.uniform(0.02, 0.1, n)
    return s


# --- rendering ----------------------------------------------------------------------------


def smooth_upsampling(grid: int, size: int) -> np.ndarray:
    """float32 (size, grid) matrix M with M @ coarse @ M.T: a coarse (grid, grid) field
    smoothly interpolated to (size, size) (smoothstep weights: no visible grid lines)."""
    t = (np.arange(size) + 0.5) / size * (grid - 1)
    left = np.minimum(t.astype(int), grid - 2)
    f = t - left
    w = f * f * (3 - 2 * f)
    m = np.zeros((size, grid), dtype=np.float32)
    m[np.arange(size), left] = 1 - w
    m[np.arange(size), left + 1] = w
    return m


def _upsample(coarse, size):
    """(B, C, g, g) -> (B, C, size, size), i.e. M @ coarse @ M.T for each image.

    einsum, not ``@``: these are thousands of tiny matrix products, and multithreaded
    BLAS on such small products can run 30x slower when other processes share the CPUs."""
    m = smooth_upsampling(coarse.shape[-1], size)
    rows = np.einsum("bcij,xj->bcix", coarse, m)
    return np.einsum("yi,bcix->bcyx", m, rows)


def _paint(image, coverage, colour):
    """Alpha-blend ``colour`` (B, 3) into ``image`` (B, 3, H, W) where ``coverage`` (B, H, W)
    is 1 (in place: these arrays are the bulk of the rendering time)."""
    blend = colour[:, :, None, None].astype(np.float32) - image
    blend *= coverage[:, None]
    image += blend


def render(s: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the scenes ``s`` (from ``draw_scenes``) as uint8 (B, 3, size, size) RGB."""
    image = _upsample(s["background"], size)
    detail = _upsample(s["detail"], size)
    detail *= _col(s["detail_amount"])[..., None].astype(np.float32)
    image += detail

    # clutter: where a smooth random field rises above a level, a blob of another colour
    fields = _upsample(s["clutter"], size)
    edge = size / 8  # steepness that gives blob edges about a pixel wide
    for k in range(fields.shape[1]):
        coverage = fields[:, k] - _col(s["clutter_level"][:, k]).astype(np.float32)
        coverage *= edge
        _paint(image, np.clip(coverage, 0, 1, out=coverage), s["clutter_colour"][:, k])

    # the object, on its own grid: centred, rotated, in units of its radius
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    radius = _col(s["radius"]).astype(np.float32)
    dx = grid[None, None, :] - _col(s["centre"][:, 0]).astype(np.float32)
    dy = grid[None, :, None] - _col(s["centre"][:, 1]).astype(np.float32)
    cos, sin = (_col(f(s["angle"])).astype(np.float32) for f in (np.cos, np.sin))
    u = (cos * dx + sin * dy) / radius
    v = (cos * dy - sin * dx) / radius
    distance = np.empty_like(u)
    for label, shape in enumerate(SHAPES):
        mine = s["label"] == label
        if mine.any():
            p = {key: value[mine] for key, value in s.items()}
            distance[mine] = shape(u[mine], v[mine], p)
    distance *= -radius * (size / 2)  # now in pixels, positive inside
    distance += 0.5
    _paint(image, np.clip(distance, 0, 1, out=distance), s["colour"])

    # uniform noise in [-amount, amount], then to 0..255
    noise = rng.random(image.shape, dtype=np.float32)
    amount = _col(s["noise"])[..., None].astype(np.float32)
    noise *= 2 * amount
    image += noise
    image -= amount
    image *= 255
    np.clip(image, 0, 255, out=image)
    return np.rint(image, out=image).astype(np.uint8)


def make_images(
    n: int, size: int = NATIVE_SIZE, seed: int = 0, stream: int = TRAIN_STREAM, *, keep=None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic images, uint8 (n, 3, size, size), and int64 (n,) labels.

    Deterministic in (seed, stream, size); rendered a chunk at a time to bound memory.
    ``keep`` renders only the first ``keep`` of the ``n`` scenes: the same images as the
    start of the full set (drawing all the scene parameters is cheap, rendering is not).
    """
    scenes = draw_scenes(n, np.random.default_rng([seed, stream]))
    if keep is not None:
        scenes = {key: value[:keep] for key, value in scenes.items()}
        n = len(scenes["label"])
    noise_rng = np.random.default_rng([seed, stream, size])
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    chunk = max(1, PIXELS_PER_CHUNK // (size * size))
    for start in range(0, n, chunk):
        part = {key: value[start : start + chunk] for key, value in scenes.items()}
        images[start : start + chunk] = render(part, size, noise_rng)
    return images, scenes["label"].astype(np.int64)


def load_synthetic(
    *, size=None, limit=None, seed=0, n_train: int = 6000, n_val: int = 1000
) -> Dataset:
    """The synthetic-shapes ``Dataset``: ``n_train`` / ``n_val`` images of ``size`` pixels
    (32 by default; any size from 32 to 256 renders natively)."""
    size = NATIVE_SIZE if size is None else int(size)
    train_x, train_y = make_images(n_train, size, seed, TRAIN_STREAM, keep=limit)
    val_x, val_y = make_images(n_val, size, seed, VAL_STREAM)
    return Dataset.build(
        NAME, "embedded, nothing downloaded", train_x, train_y, val_x, val_y, CLASSES
    )
