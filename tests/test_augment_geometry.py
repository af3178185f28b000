"""Geometric transforms: affine warp, lens distortion and the bilinear sampler behind them."""

import numpy as np
import pytest

from tinyalex import augment as A
from tinyalex.augment.sample import _sample_xp
from tinyalex.backend import to_numpy


def _batch(xp, n=3, c=3, h=16, w=16, seed=0):
    return xp.asarray(np.random.default_rng(seed).uniform(0, 255, (n, c, h, w)).astype(np.float32))


def _smooth(xp, n=2, h=48, w=48):
    """Low-frequency images: bilinear interpolation is nearly exact on them."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    imgs = [np.stack([np.sin(x / 7 + k) * np.cos(y / 9), x / w, y / h]) * 100 for k in range(n)]
    return xp.asarray(np.stack(imgs).astype(np.float32))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_identity_warp_returns_input(xp, mode):
    x = _batch(xp)
    for m in (np.tile(np.eye(3), (3, 1, 1)), np.tile(np.eye(3)[:2], (3, 1, 1))):
        np.testing.assert_array_equal(to_numpy(A.warp_affine(x, m, mode=mode)), to_numpy(x))


def test_identity_lens_returns_input(xp):
    x = _batch(xp, h=15, w=21)
    out = A.lens_distort(x, np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(to_numpy(out), to_numpy(x), atol=1e-3)


def test_rotation_by_90_is_rot90_counter_clockwise(xp):
    """+90 degrees = np.rot90(k=1) on the (H, W) axes: counter-clockwise on screen."""
    x = _batch(xp, h=17, w=17)
    out = to_numpy(A.warp_affine(x, A.rotation(np.full(3, 90.0), 17, 17)))
    np.testing.assert_allclose(out, np.rot90(to_numpy(x), 1, axes=(2, 3)), atol=1e-3)
    out = to_numpy(A.warp_affine(x, A.rotation(np.full(3, -90.0), 17, 17)))
    np.testing.assert_allclose(out, np.rot90(to_numpy(x), -1, axes=(2, 3)), atol=1e-3)


def test_whole_pixel_shift_is_slicing_with_fill(xp):
    x = _batch(xp, h=12, w=10)
    out = to_numpy(A.warp_affine(x, A.translation(np.full(3, 3.0), np.full(3, -2.0)), fill=7.0))
    want = np.full_like(to_numpy(x), 7.0)  # content moves 3 right and 2 up
    want[:, :, 0:10, 3:10] = to_numpy(x)[:, :, 2:12, 0:7]
    np.testing.assert_allclose(out, want, atol=1e-3)


def test_edge_and_reflect_modes_read_the_right_pixels(xp):
    x = xp.asarray(np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5))
    xs = xp.asarray(np.array([[[-2.0, -1.0, 4.0, 5.0, 6.0]]], dtype=np.float32))
    ys = xp.zeros_like(xs)
    reflect = to_numpy(A.sample_bilinear(x, xs, ys, mode="reflect"))
    edge = to_numpy(A.sample_bilinear(x, xs, ys, mode="edge"))
    const = to_numpy(A.sample_bilinear(x, xs, ys, mode="constant", fill=-1.0))
    np.testing.assert_allclose(reflect.ravel(), [2, 1, 4, 3, 2])
    np.testing.assert_allclose(edge.ravel(), [0, 0, 4, 4, 4])
    np.testing.assert_allclose(const.ravel(), [-1, -1, 4, -1, -1])


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_numba_kernel_matches_array_reference(mode):
    """On NumPy the sampler runs a numba kernel; it must equal the array-op (CuPy) path."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (2, 3, 9, 11)).astype(np.float32)
    xs = rng.uniform(-6, 16, (2, 7, 8)).astype(np.float32)
    ys = rng.uniform(-6, 14, (2, 7, 8)).astype(np.float32)
    fast = A.sample_bilinear(x, xs, ys, mode=mode, fill=3.0)
    np.testing.assert_allclose(fast, _sample_xp(x, xs, ys, mode, 3.0), rtol=1e-5, atol=1e-3)


def test_scale_then_inverse_scale_is_close_to_identity(xp):
    x = _smooth(xp)
    m = A.scaling(np.array([1.3, 0.8]), np.array([0.8, 1.25]), 48, 48)
    back = A.scaling(np.array([1 / 1.3, 1 / 0.8]), np.array([1 / 0.8, 1 / 1.25]), 48, 48)
    twice = to_numpy(A.warp_affine(A.warp_affine(x, m), back))
    inner = (slice(None), slice(None), slice(12, 36), slice(12, 36))
    np.testing.assert_allclose(twice[inner], to_numpy(x)[inner], atol=1.5)
    once = to_numpy(A.warp_affine(x, back @ m))  # fused: one warp, exact
    np.testing.assert_allclose(once, to_numpy(x), atol=1e-3)


def test_shear_keeps_horizontal_lines_horizontal(xp):
    x = np.zeros((2, 1, 20, 20), np.float32)
    x[:, :, 13, 2:18] = 100.0
    out = to_numpy(A.warp_affine(xp.asarray(x), A.shear(np.array([20.0, -30.0]), 20, 20)))
    rows = np.flatnonzero(np.abs(out).sum(axis=(0, 1, 3)) > 1e-3)
    assert rows.tolist() == [13]
    assert not np.allclose(out, x)  # ... but the line has slid sideways


def test_lens_is_radially_symmetric(xp):
    """Depends on the radius only: commutes with transposition and with a 90-degree turn."""
    x = _batch(xp, n=2, h=21, w=21)
    k1, k2 = np.array([0.3, -0.25]), np.array([0.1, 0.05])
    out = to_numpy(A.lens_distort(x, k1, k2))
    xt = xp.asarray(np.ascontiguousarray(to_numpy(x).transpose(0, 1, 3, 2)))
    np.testing.assert_allclose(
        to_numpy(A.lens_distort(xt, k1, k2)), out.transpose(0, 1, 3, 2), atol=1e-2
    )
    xr = xp.asarray(np.ascontiguousarray(np.rot90(to_numpy(x), 1, axes=(2, 3))))
    np.testing.assert_allclose(
        to_numpy(A.lens_distort(xr, k1, k2)), np.rot90(out, 1, axes=(2, 3)), atol=1e-2
    )


def test_lens_sign_barrel_pulls_content_inwards(xp):
    """k1 > 0: an off-centre output pixel shows content from further out (barrel)."""
    cols = np.tile(np.arange(21, dtype=np.float32), (21, 1))[None, None]  # pixel value = column
    x = xp.asarray(np.concatenate([cols, cols]))
    out = to_numpy(A.lens_distort(x, np.array([0.3, -0.3]), np.zeros(2)))
    assert out[0, 0, 10, 18] > 18.5  # barrel: the source lies further out than column 18
    assert out[1, 0, 10, 18] < 17.5  # pincushion: the source lies nearer the centre
    np.testing.assert_allclose(out[:, 0, 10, 10], 10, atol=1e-4)  # the centre stays


@pytest.mark.parametrize(
    "t",
    [
        A.RandomTranslate(0.2, 0.2),
        A.RandomRotate(20),
        A.RandomScale((0.8, 1.2), (0.7, 1.3)),
        A.RandomShear(15),
        A.RandomLensDistortion((-0.3, 0.3), (-0.1, 0.1)),
    ],
    ids=repr,
)
def test_random_warps_are_seeded(xp, t):
    x = _batch(xp, n=4)
    a = to_numpy(t(x, np.random.default_rng(5)))
    b = to_numpy(t(x, np.random.default_rng(5)))
    c = to_numpy(t(x, np.random.default_rng(6)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == x.shape and a.dtype == np.float32
    assert not np.allclose(a[0], a[1])  # parameters differ from image to image
