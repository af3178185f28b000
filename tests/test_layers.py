"""Each layer against its naive loop reference (tinyalex/reference.py), on every backend."""

import numpy as np
import pytest

from tinyalex import reference as ref
from tinyalex.backend import to_numpy
from tinyalex.layers import (
    LRN,
    Conv2D,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=tol, atol=tol)


def on(xp, layer):
    """The layer, float64, on xp's backend."""
    for key in layer.params:
        layer.params[key] = layer.params[key].astype(np.float64)
    return layer.to("cupy" if xp is not np else "numpy")


CONV_CASES = [
    # (C, O, k, stride, padding, groups, H, W)
    (3, 4, 3, 1, 0, 1, 5, 5),
    (4, 6, 3, 2, 1, 2, 7, 6),  # groups=2, stride != kernel, padding, odd/even sizes
    (6, 3, 2, 3, 2, 3, 8, 9),  # groups=3, stride > kernel, more padding than kernel
    (2, 4, 5, 1, 2, 2, 5, 5),  # conv2's shape: 5x5, pad 2, groups 2
    (3, 2, 4, 4, 0, 1, 11, 11),  # conv1's flavour: stride 4 with an 11-wide input
]


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_conv_matches_reference(xp, rng, c, o, k, s, p, g, h, w):
    layer = on(xp, Conv2D(c, o, k, stride=s, padding=p, groups=g, rng=rng))
    layer.params["b"] = xp.asarray(rng.standard_normal(o))
    x = rng.standard_normal((2, c, h, w))
    y = layer.forward(xp.asarray(x))
    W, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    close(y, ref.conv_forward(x, W, b, s, p, g))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(xp.asarray(dy))
    rdx, rdW, rdb = ref.conv_backward(dy, x, W, s, p, g)
    close(dx, rdx)
    close(layer.grads["W"], rdW)
    close(layer.grads["b"], rdb)


def test_linear_matches_reference(xp, rng):
    layer = on(xp, Linear(5, 3, rng=rng))
    layer.params["b"] = xp.asarray(rng.standard_normal(3))
    x = rng.standard_normal((4, 5))
    y = layer.forward(xp.asarray(x))
    W, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    close(y, ref.linear_forward(x, W, b))
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(xp.asarray(dy))
    rdx, rdW, rdb = ref.linear_backward(dy, x, W)
    close(dx, rdx)
    close(layer.grads["W"], rdW)
    close(layer.grads["b"], rdb)


@pytest.mark.parametrize(
    "size,alpha,beta,k,c",
    [
        (5, 1e-4, 0.75, 2.0, 7),
        (5, 0.9, 0.75, 1.0, 4),
        (7, 1.0, 0.6, 1.5, 3),
        (4, 0.5, 0.75, 2.0, 6),
    ],
)
def test_lrn_matches_reference(xp, rng, size, alpha, beta, k, c):
    """alpha near 1 and windows wider than the channels expose off-by-one windows."""
    layer = LRN(size, alpha, beta, k)
    x = rng.standard_normal((2, c, 3, 2)) * 2
    y = layer.forward(xp.asarray(x))
    close(y, ref.lrn_forward(x, size, alpha, beta, k))
    dy = rng.standard_normal(x.shape)
    close(layer.backward(xp.asarray(dy)), ref.lrn_backward(dy, x, size, alpha, beta, k))


def test_lrn_alpha_divided_by_size_is_the_paper_formula_with_alpha_over_n(xp, rng):
    x = xp.asarray(rng.standard_normal((2, 6, 3, 3)))
    caffe = LRN(5, alpha=5e-4, alpha_divided_by_size=True).forward(x)
    paper = LRN(5, alpha=1e-4).forward(x)
    close(caffe, paper, 1e-12)
    assert not np.allclose(to_numpy(LRN(5, alpha=5e-4).forward(x)), to_numpy(paper))


@pytest.mark.parametrize(
    "z,s,h,w", [(3, 2, 7, 7), (3, 2, 8, 6), (2, 2, 6, 5), (3, 1, 5, 4), (2, 3, 8, 8)]
)
def test_maxpool_matches_reference(xp, rng, z, s, h, w):
    x = rng.standard_normal((2, 3, h, w))
    layer = MaxPool2D(z, s)
    y = layer.forward(xp.asarray(x))
    close(y, ref.maxpool_forward(x, z, s)[0])
    dy = rng.standard_normal(y.shape)
    close(layer.backward(xp.asarray(dy)), ref.maxpool_backward(dy, x, z, s))


def test_maxpool_ties_send_gradient_to_one_maximum(xp):
    x = xp.ones((1, 1, 5, 5))
    layer = MaxPool2D(3, 2)
    layer.forward(x)
    dx = to_numpy(layer.backward(xp.ones((1, 1, 2, 2))))
    expected = np.zeros((1, 1, 5, 5))
    expected[0, 0, ::2, ::2][:2, :2] = 1  # each window's first (top-left) maximum, once
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(
        dx, ref.maxpool_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 5, 5)))
    )


def test_maxpool_padding_never_wins(xp):
    x = -xp.ones((1, 1, 4, 4))
    y = MaxPool2D(3, 2, padding=1).forward(x)
    assert to_numpy(y).max() == -1


def test_relu_tanh_flatten(xp, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    dy = rng.standard_normal(x.shape)
    relu = ReLU()
    close(relu.forward(xp.asarray(x)), np.maximum(x, 0))
    close(relu.backward(xp.asarray(dy)), dy * (x > 0))
    tanh = Tanh()
    close(tanh.forward(xp.asarray(x)), np.tanh(x))
    close(tanh.backward(xp.asarray(dy)), dy / np.cosh(x) ** 2)
    flat = Flatten()
    close(flat.forward(xp.asarray(x)), x.reshape(2, 60))
    close(flat.backward(xp.asarray(dy.reshape(2, 60))), dy)


@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_forms(xp, inverted):
    x = xp.ones((400, 500))
    layer = Dropout(0.5, inverted=inverted, rng=3)
    y = to_numpy(layer.forward(x, train=True))
    kept = y != 0
    assert abs(kept.mean() - 0.5) < 0.01
    assert np.all(y[kept] == (2.0 if inverted else 1.0))
    dx = to_numpy(layer.backward(xp.full(x.shape, 3.0)))
    np.testing.assert_array_equal(dx, 3.0 * y)  # backward reuses the forward mask
    test = to_numpy(layer.forward(x, train=False))
    assert np.all(test == (1.0 if inverted else 0.5))  # same expectation at test time


def test_dropout_seeded_masks_repeat(xp):
    x = xp.ones((8, 100))
    a = to_numpy(Dropout(rng=7).forward(x))
    b = to_numpy(Dropout(rng=7).forward(x))
    c = to_numpy(Dropout(rng=8).forward(x))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_softmax_cross_entropy_matches_reference(xp, rng):
    logits = rng.standard_normal((5, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2])
    ce = SoftmaxCrossEntropy()
    loss = ce.forward(xp.asarray(logits), xp.asarray(labels))
    rloss, rd = ref.softmax_cross_entropy(logits, labels)
    close(loss, rloss)
    close(ce.backward(), rd)


def test_softmax_cross_entropy_is_stable_for_huge_logits(xp):
    logits = xp.asarray([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype=xp.float32)
    ce = SoftmaxCrossEntropy()
    loss = float(ce.forward(logits, xp.asarray([0, 2])))
    assert np.isfinite(loss) and abs(loss - (0 + 1.3132616) / 2) < 1e-4
    assert np.all(np.isfinite(to_numpy(ce.backward())))


def test_sequential_params_are_dotted_and_shared(xp, rng):
    conv = Conv2D(3, 4, 3, rng=rng)
    conv.name = "conv1"
    model = Sequential(conv, ReLU(), Flatten(), Linear(4, 2, rng=rng)).to(
        "cupy" if xp is not np else "numpy"
    )
    assert list(model.params) == ["conv1.W", "conv1.b", "3.W", "3.b"]
    assert model.params["conv1.W"] is conv.params["W"]
    assert set(model.grads) == set(model.params)
    model.params["3.b"][...] = 5.0  # in-place writes reach the layer, as an optimiser needs
    assert float(to_numpy(model[3].params["b"]).min()) == 5.0


def test_dtype_float32_default_and_float64_kept(xp, rng):
    layer = Conv2D(3, 2, 3, rng=rng).to("cupy" if xp is not np else "numpy")
    assert layer.params["W"].dtype == np.float32
    assert layer.forward(xp.zeros((1, 3, 4, 4), dtype=xp.float32)).dtype == np.float32
    assert layer.forward(xp.zeros((1, 3, 4, 4), dtype=xp.float64)).dtype == np.float64
    for lay in (ReLU(), LRN(), MaxPool2D(), Dropout(rng=0)):
        assert lay.forward(xp.zeros((1, 3, 5, 5), dtype=xp.float32)).dtype == np.float32


def test_constructor_arguments_are_attributes():
    conv = Conv2D(6, 4, 5, stride=2, padding=1, groups=2)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (6, 4, 5)
    assert (conv.stride, conv.padding, conv.groups) == (2, 1, 2)
    assert conv.params["W"].shape == (4, 3, 5, 5) and conv.params["b"].shape == (4,)
    lrn = LRN(3, 0.1, 0.5, 1.0, alpha_divided_by_size=True)
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.alpha_divided_by_size) == (
        3,
        0.1,
        0.5,
        1.0,
        True,
    )
    pool = MaxPool2D(3, 2)
    assert (pool.kernel_size, pool.stride) == (3, 2)
    assert Dropout(0.3).p == 0.3 and Linear(4, 5).out_features == 5
