"""Colour and normalisation: brightness, contrast, PCA colour, per-image standardisation."""

import numpy as np

from tinyalex import augment as A
from tinyalex.backend import to_numpy


def _batch(xp, n=4, c=3, h=8, w=8, seed=0):
    return xp.asarray(np.random.default_rng(seed).uniform(0, 255, (n, c, h, w)).astype(np.float32))


def test_identity_brightness_and_contrast(xp):
    x = _batch(xp)
    np.testing.assert_array_equal(to_numpy(A.adjust_brightness(x, np.zeros(4))), to_numpy(x))
    np.testing.assert_allclose(to_numpy(A.adjust_contrast(x, np.ones(4))), to_numpy(x), atol=1e-3)


def test_brightness_and_contrast_formulas(xp):
    x = _batch(xp)
    h = to_numpy(x).astype(np.float64)
    delta, f = np.array([-63.0, 0.5, 10.0, 63.0]), np.array([0.2, 1.0, 1.5, 1.8])
    want = h + delta[:, None, None, None]
    np.testing.assert_allclose(to_numpy(A.adjust_brightness(x, delta)), want, atol=1e-3)
    m = h.mean(axis=(2, 3), keepdims=True)  # per image, per channel
    want = (h - m) * f[:, None, None, None] + m
    np.testing.assert_allclose(to_numpy(A.adjust_contrast(x, f)), want, atol=1e-3)


def test_random_brightness_contrast_ranges(xp):
    x = _batch(xp, n=200, h=2, w=2)
    out = to_numpy(A.RandomBrightness(63)(x, np.random.default_rng(0)))
    delta = (out - to_numpy(x)).reshape(200, -1)
    assert np.allclose(delta, delta[:, :1], atol=1e-3)  # one delta per image
    assert -63 <= delta.min() and delta.max() <= 63 and delta.std() > 25


def test_per_image_standardization_matches_definition(xp):
    x = _batch(xp, n=3, h=5, w=7)
    h = to_numpy(x).astype(np.float64)
    n = 3 * 5 * 7
    mean = h.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(h.std(axis=(1, 2, 3), keepdims=True), 1 / np.sqrt(n))
    out = to_numpy(A.PerImageStandardization()(x, None))
    np.testing.assert_allclose(out, (h - mean) / std, atol=1e-4)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-4)


def test_per_image_standardization_tiny_variance(xp):
    """A flat image becomes zeros; a nearly flat one is divided by 1/sqrt(n), not by its std."""
    x = np.full((2, 3, 4, 4), 77.0, np.float32)
    x[1, 0, 0, 0] += 0.01  # std ~ 0.0014 < 1/sqrt(48) ~ 0.144
    out = to_numpy(A.per_image_standardization(xp.asarray(x)))
    np.testing.assert_array_equal(out[0], 0.0)
    want = (x[1].astype(np.float64) - x[1].mean()) * np.sqrt(48)
    np.testing.assert_allclose(out[1], want, atol=1e-4)


def test_subtract_mean_and_standardize(xp):
    x = _batch(xp)
    image = np.random.default_rng(1).uniform(0, 255, (3, 8, 8)).astype(np.float32)
    out = to_numpy(A.SubtractMean(image)(x, None))
    np.testing.assert_allclose(out, to_numpy(x) - image, atol=1e-4)
    rgb = np.array([120.0, 110.0, 100.0], np.float32)
    out = to_numpy(A.SubtractMean(rgb)(x, None))
    np.testing.assert_allclose(out, to_numpy(x) - rgb[:, None, None], atol=1e-4)
    std = np.array([50.0, 60.0, 70.0], np.float32)
    out = to_numpy(A.Standardize(rgb, std)(x, None))
    np.testing.assert_allclose(out, (to_numpy(x) - rgb[:, None, None]) / std[:, None, None], 1e-5)


def _random_basis(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q


def test_pca_colour_shift_lies_along_eigvecs_with_right_spread(xp):
    vecs = _random_basis()
    eigvals = np.array([900.0, 100.0, 16.0])  # s = sqrt: 30, 10, 4
    n = 20000
    x = xp.zeros((n, 3, 2, 2), dtype=xp.float32)
    for sqrt_eigvals, s in ((True, np.sqrt(eigvals)), (False, eigvals)):
        t = A.PCAColour(eigvals, vecs, std=0.1, sqrt_eigvals=sqrt_eigvals)
        out = to_numpy(t(x, np.random.default_rng(0)))
        assert out.dtype == np.float32
        shift = out[:, :, 0, 0]
        np.testing.assert_allclose(out, shift[:, :, None, None] + 0 * out)  # same for all pixels
        proj = shift @ vecs  # coordinates along each eigenvector
        np.testing.assert_allclose(proj.std(axis=0), 0.1 * s, rtol=0.03)
        np.testing.assert_allclose(np.corrcoef(proj.T), np.eye(3), atol=0.03)


def test_pca_colour_stats_recovers_known_covariance():
    vecs = _random_basis(3)
    sd = np.array([40.0, 15.0, 5.0])
    cov = vecs @ np.diag(sd**2) @ vecs.T
    rng = np.random.default_rng(0)
    pixels = rng.multivariate_normal([128, 120, 110], cov, size=200 * 16 * 16)
    x = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    x = x.reshape(200, 16, 16, 3).transpose(0, 3, 1, 2)
    for max_pixels in (10**6, 20000):  # all pixels, and a sample
        eigvals, eigvecs = A.pca_colour_stats(x, max_pixels=max_pixels)
        assert eigvals.shape == (3,) and eigvecs.shape == (3, 3)
        assert np.all(np.diff(eigvals) < 0)
        np.testing.assert_allclose(eigvals, sd**2 + 1 / 12, rtol=0.05)  # + rounding's 1/12
        np.testing.assert_allclose(np.abs(eigvecs.T @ vecs), np.eye(3), atol=0.03)
        np.testing.assert_allclose(eigvecs @ np.diag(eigvals) @ eigvecs.T, cov, atol=0.05 * 1600)


def test_pca_colour_on_grey_images_stays_finite_and_grey():
    """Grey images (Fashion-MNIST as RGB) have a rank-1 colour covariance."""
    from tinyalex.augment import PCAColour, pca_colour_stats

    grey = np.random.default_rng(0).integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    eigvals, eigvecs = pca_colour_stats(np.repeat(grey, 3, axis=1))
    assert np.all(eigvals >= 0) and eigvals[0] > 100 * max(eigvals[1], 1e-9)
    out = PCAColour(eigvals, eigvecs)(np.zeros((5, 3, 2, 2), np.float32), np.random.default_rng(1))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 0], out[:, 1], atol=1e-4)  # the same shift in R, G, B
    np.testing.assert_allclose(out[:, 1], out[:, 2], atol=1e-4)
