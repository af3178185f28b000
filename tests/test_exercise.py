"""The lessons' checkers (tinyalex/exercise.py) pass right answers and fail wrong ones.

Each wrong answer is a mistake learners make: an LRN backward without its cross-channel
term, a convolution's dx with the kernel not flipped, softmax cross-entropy's p - y without
the 1/N, a Linear dW transposed, max-pool gradient sent to every tied maximum.
"""

import numpy as np
import pytest

from tinyalex import reference
from tinyalex.exercise import check_backward, check_layer, cmp, expect_fail
from tinyalex.layers import LRN


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# cmp ----------------------------------------------------------------------------------------


def test_cmp_passes_equal_and_nearly_equal(capsys):
    a = np.arange(6.0).reshape(2, 3)
    cmp("same", a, a.copy())
    cmp("rounded", a + 1e-12, a)
    out = capsys.readouterr().out
    assert "exact: True" in out and "exact: False" in out and out.count("PASS") == 2


def test_cmp_fails_on_wrong_values_shape_none_nan(capsys):
    a = np.arange(6.0).reshape(2, 3)
    with pytest.raises(AssertionError, match="max difference"):
        cmp("off", a + 1e-3, a)
    with pytest.raises(AssertionError, match="shape"):
        cmp("transposed", a.T, a)
    with pytest.raises(AssertionError, match="None"):
        cmp("nothing", None, a)
    with pytest.raises(AssertionError, match="NaN"):
        cmp("nan", a * np.nan, a)
    assert "FAIL" in capsys.readouterr().out


def test_cmp_catches_a_conv_forward_that_is_a_convolution_not_a_correlation(rng):
    x, W, b = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), np.zeros(3)
    flipped = reference.conv_forward(x, W[:, :, ::-1, ::-1].copy(), b)
    with pytest.raises(AssertionError):
        cmp("conv forward", flipped, reference.conv_forward(x, W, b))


# check_backward: the reference passes, each wrong answer fails ----------------------------


def conv_fwd(x, W, b):
    return reference.conv_forward(x, W, b, stride=1, padding=1)


def conv_bwd(dy, x, W, b):
    return reference.conv_backward(dy, x, W, stride=1, padding=1)


def conv_bwd_kernel_not_flipped(dy, x, W, b):
    """dx as a full convolution of dy, but with W as it is instead of flipped."""
    _, dW, db = conv_bwd(dy, x, W, b)
    Wt = W.transpose(1, 0, 2, 3)  # channels swapped, as they should be...
    k = W.shape[2]
    dx = reference.conv_forward(dy, Wt, np.zeros(x.shape[1]), padding=k - 1 - 1)  # ...not flipped
    return dx, dW, db


def test_conv_backward_right_and_unflipped(rng, capsys):
    inputs = {
        "x": rng.standard_normal((2, 2, 5, 5)),
        "W": rng.standard_normal((3, 2, 3, 3)),
        "b": rng.standard_normal(3),
    }
    errors = check_backward("conv", conv_fwd, conv_bwd, inputs)
    assert max(errors.values()) < 1e-7
    with pytest.raises(AssertionError, match="dx"):
        check_backward("conv", conv_fwd, conv_bwd_kernel_not_flipped, inputs)
    assert "FAIL" in capsys.readouterr().out


def softmax_ce(z, labels):
    return reference.softmax_cross_entropy(z, labels)[0]


def test_softmax_cross_entropy_without_one_over_n(rng):
    labels = np.array([1, 0, 3, 3])
    inputs = {"z": rng.standard_normal((4, 5))}

    def forward(z):
        return softmax_ce(z, labels)

    def right(dy, z):
        return dy * reference.softmax_cross_entropy(z, labels)[1]

    def no_mean(dy, z):
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p[np.arange(4), labels] -= 1
        return dy * p  # p - y, the 1/N forgotten

    check_backward("softmax CE", forward, right, inputs)
    with pytest.raises(AssertionError):
        check_backward("softmax CE", forward, no_mean, inputs)


def test_linear_dW_transposed_fails(rng):
    inputs = {"x": rng.standard_normal((3, 4)), "W": rng.standard_normal((4, 4))}

    def forward(x, W):
        return x @ W

    def transposed(dy, x, W):
        return dy @ W.T, dy.T @ x  # dW should be x.T @ dy

    with pytest.raises(AssertionError, match="dW"):
        check_backward("linear", forward, transposed, inputs)
    check_backward("linear", forward, lambda dy, x, W: (dy @ W.T, x.T @ dy), inputs)


def lrn_without_cross_channel(dy, x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    c = x.shape[1]
    scale = np.empty_like(x)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c - 1, i + (size - 1) // 2)
        scale[:, i] = k + alpha * (x[:, lo : hi + 1] ** 2).sum(axis=1)
    return dy * scale**-beta


@pytest.mark.parametrize("alpha", [1e-4, 0.9])
def test_lrn_missing_cross_channel_term_fails_even_at_paper_alpha(rng, alpha):
    """The broken LRN of lesson 05: caught with the paper's alpha too (k=1 keeps it visible)."""
    inputs = {"x": rng.standard_normal((2, 6, 3, 3))}
    kw = {"size": 5, "alpha": alpha, "beta": 0.75, "k": 1.0}

    def forward(x):
        return reference.lrn_forward(x, **kw)

    check_backward("LRN", forward, lambda dy, x: reference.lrn_backward(dy, x, **kw), inputs)
    with pytest.raises(AssertionError):
        check_backward("LRN", forward, lambda dy, x: lrn_without_cross_channel(dy, x, **kw), inputs)


def test_maxpool_gradient_to_every_tied_maximum_fails():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0  # the centre wins all four windows; elsewhere ties of zeros
    x += np.arange(25).reshape(1, 1, 5, 5) * 1e-3  # break ties so central differences are fair

    def forward(x):
        return reference.maxpool_forward(x, 3, 2)[0]

    def to_all_within_tolerance(dy, x):
        dx = np.zeros_like(x)
        y = forward(x)
        for p in range(2):
            for q in range(2):
                win = x[0, 0, 2 * p : 2 * p + 3, 2 * q : 2 * q + 3]
                mask = np.abs(win - y[0, 0, p, q]) < 0.01  # "ties" by a loose tolerance
                dx[0, 0, 2 * p : 2 * p + 3, 2 * q : 2 * q + 3] += dy[0, 0, p, q] * mask
        return dx

    check_backward("pool", forward, lambda dy, x: reference.maxpool_backward(dy, x), {"x": x})
    x2 = x.copy()
    x2[0, 0, 2, 3] = x2[0, 0, 2, 2] - 0.005  # a near-tie the wrong version also rewards
    with pytest.raises(AssertionError):
        check_backward("pool", forward, to_all_within_tolerance, {"x": x2})


def test_check_backward_rejects_float32_and_wrong_shapes(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(ValueError, match="float64"):
        check_backward("f32", lambda x: x, lambda dy, x: dy, {"x": x.astype(np.float32)})
    with pytest.raises(AssertionError, match="shape"):
        check_backward("shape", lambda x: x, lambda dy, x: dy.T, {"x": x})
    with pytest.raises(AssertionError, match="None"):
        check_backward("none", lambda x: x, lambda dy, x: None, {"x": x})
    with pytest.raises(AssertionError, match="2 gradients"):
        check_backward("count", lambda x: x, lambda dy, x: (dy, dy), {"x": x})


# check_layer ------------------------------------------------------------------------------


class ForgetfulLRN(LRN):
    """LRN whose backward keeps dy * scale^-beta and forgets the cross-channel term."""

    def backward(self, dy):
        _, x, y, scale = self._take_cache()
        return dy * scale**-self.beta


def test_check_layer_passes_lrn_and_fails_the_forgetful_one(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    check_layer("LRN", LRN(5, alpha=0.9, k=1.0), x)
    broken = ForgetfulLRN(5, alpha=0.9, k=1.0)
    broken.fast = False  # the plain path, whose cache the override reads
    with pytest.raises(AssertionError, match="dx"):
        check_layer("LRN", broken, x)
    assert "dx" in expect_fail(check_layer, "LRN", broken, x)


def test_expect_fail_raises_when_the_check_passes(rng):
    x = rng.standard_normal((2, 6, 3, 3))
    with pytest.raises(AssertionError, match="passed a wrong answer"):
        expect_fail(check_layer, "LRN", LRN(5, alpha=0.9, k=1.0), x)
