"""Winograd's F(2x2, 3x3) (tinyalex/kernels/winograd.py), the NumPy twin of the GPU's kernels:
a 3x3 stride-1 convolution and its input gradient equal the plain path's in float64.

The CUDA kernels themselves run in tests/test_cuda_on_host.py (the "Winograd" cases), where
every 3x3 stride-1 layer takes them and is held to the plain path and gradient-checked.
"""

import numpy as np
import pytest

from tinyalex.kernels import winograd
from tinyalex.layers import Conv2D

CASES = [
    # (C, O, groups, H, W, padding)
    (4, 6, 2, 7, 6, 1),  # groups 2, odd and even sizes: a half tile on one side
    (3, 5, 1, 5, 5, 0),  # no padding
    (6, 6, 3, 13, 13, 2),  # padding 2, groups 3, alexnet's 13 px (7x7 tiles, one half)
    (2, 4, 2, 3, 4, 1),
    (2, 2, 1, 1, 1, 1),  # one pixel: one tile, three quarters of it unused
    (384, 8, 2, 4, 4, 1),  # many channels: long sums
]


@pytest.mark.parametrize("c,o,g,h,w,p", CASES)
def test_winograd_equals_the_plain_conv_and_its_input_gradient(c, o, g, h, w, p):
    rng = np.random.default_rng(c + o + h)
    layer = Conv2D(c, o, 3, 1, p, groups=g, dtype=np.float64, rng=rng)
    layer.fast = False
    layer.params["b"] = rng.standard_normal(o)
    x = rng.standard_normal((2, c, h, w))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    Wg = layer.params["W"].reshape(g, o // g, -1)
    np.testing.assert_allclose(winograd.conv(x, Wg, layer.params["b"], p), y, rtol=0, atol=1e-12)
    dx_w = winograd.conv(dy, winograd.dx_weights(Wg), np.zeros(c), 2 - p)
    np.testing.assert_allclose(dx_w, dx, rtol=0, atol=1e-12)


def test_transforms_are_lavins_f2x2_3x3():
    """One tile by hand: A^T [(G g G^T) * (B^T d B)] A is the 2x2 correlation of d with g."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    tile = winograd.AT @ ((winograd.G @ g @ winograd.G.T) * (winograd.BT @ d @ winograd.BT.T))
    tile = tile @ winograd.AT.T
    direct = [[(d[i : i + 3, j : j + 3] * g).sum() for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(tile, direct, atol=1e-14)


@pytest.mark.parametrize(
    "k,s,p,ok",
    [
        (3, 1, 1, True),
        (3, 1, 0, True),
        (3, 1, 2, True),
        (3, 1, 3, False),
        (3, 2, 1, False),
        (5, 1, 2, False),
    ],
)
def test_applies_only_to_3x3_stride_1(k, s, p, ok):
    assert winograd.applies(k, s, p) is ok


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("c,o,g,h,w,p", CASES[:3])
def test_cupy_winograd_conv_equals_plain(monkeypatch, dtype, tol, c, o, g, h, w, p):
    """On a GPU, Conv2D with cuda.WINOGRAD on (y by F(2x2, 3x3) from x, dW by the GEMM, dx by
    F(2x2, 3x3)) equals the plain path; float32 to Winograd's extra roundings."""
    from tinyalex import backend
    from tinyalex.kernels import cuda

    if not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    cp = backend.cupy
    monkeypatch.setattr(cuda, "WINOGRAD", True)
    rng = np.random.default_rng(1)
    layer = Conv2D(c, o, 3, 1, p, groups=g, dtype=dtype, rng=rng).to("cupy")
    x = cp.asarray(rng.standard_normal((3, c, h, w)).astype(dtype))
    outs = []
    for fast in (True, False):
        layer.fast = fast
        y = layer.forward(x)
        dx = layer.backward(cp.ones_like(y))
        outs.append([cp.asnumpy(a) for a in (y, dx, layer.grads["W"])])
    for fast_a, plain_a in zip(*outs, strict=True):
        scale = np.abs(plain_a).max()
        np.testing.assert_allclose(fast_a, plain_a, rtol=0, atol=tol * scale)
