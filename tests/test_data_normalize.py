"""Mean image and channel statistics, chunked, against float64 NumPy."""

import numpy as np

from tinyalex.data import channel_stats, mean_image


def test_mean_image_equals_float64_mean(rng):
    x = rng.integers(0, 256, (23, 3, 5, 4), dtype=np.uint8)
    m = mean_image(x, chunk=7)  # 7 does not divide 23: the last chunk is short
    assert m.shape == (3, 5, 4) and m.dtype == np.float32
    np.testing.assert_allclose(m, x.astype(np.float64).mean(0), rtol=1e-6)


def test_channel_stats_equal_float64(rng):
    x = rng.integers(0, 256, (23, 3, 6, 6), dtype=np.uint8)
    x[:, 1] //= 4  # channels with different statistics
    mean, std = channel_stats(x, chunk=5)
    assert mean.shape == std.shape == (3,) and mean.dtype == std.dtype == np.float32
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean((0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std, ref.std((0, 2, 3)), rtol=1e-5)
