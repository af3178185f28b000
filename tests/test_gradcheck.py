"""Float64 central-difference gradient checks on settings that expose bugs (docs/style.md §3).

A correct layer gives relative errors around 1e-7 or below; the threshold 1e-5 leaves
room for rounding while any real mistake (a wrong window, a missing term) gives > 1e-3.
"""

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck, gradcheck_report
from tinyalex.layers import (
    LRN,
    Conv2D,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    Tanh,
)

TOL = 1e-5


def f64(xp, layer):
    for sub in getattr(layer, "layers", [layer]):
        for key in sub.params:
            sub.params[key] = sub.params[key].astype(np.float64)
    return layer.to("cupy" if xp is not np else "numpy")


@pytest.mark.parametrize(
    "c,o,k,s,p,g,h,w",
    [
        (4, 4, 3, 2, 1, 2, 7, 6),
        (6, 3, 3, 1, 1, 3, 5, 5),
        (3, 2, 5, 3, 2, 1, 9, 8),
        (2, 2, 1, 1, 0, 2, 3, 3),
    ],
)
def test_conv(xp, rng, c, o, k, s, p, g, h, w):
    layer = f64(xp, Conv2D(c, o, k, stride=s, padding=p, groups=g, rng=rng))
    layer.params["b"] = xp.asarray(rng.standard_normal(o))
    report = gradcheck_report(layer, xp.asarray(rng.standard_normal((2, c, h, w))))
    assert set(report) == {"x", "W", "b"}
    assert max(report.values()) < TOL, report


def test_linear(xp, rng):
    assert gradcheck(f64(xp, Linear(7, 3, rng=rng)), xp.asarray(rng.standard_normal((4, 7)))) < TOL


@pytest.mark.parametrize(
    "size,alpha,beta,k,c,divided",
    [
        (5, 0.9, 0.75, 1.0, 4, False),
        (3, 1.0, 0.5, 0.5, 6, False),
        (4, 0.8, 0.75, 2.0, 5, True),
        (9, 0.7, 0.75, 1.0, 3, False),
    ],
)
def test_lrn(xp, rng, size, alpha, beta, k, c, divided):
    layer = LRN(size, alpha, beta, k, alpha_divided_by_size=divided)
    assert gradcheck(layer, xp.asarray(rng.standard_normal((2, c, 3, 3)))) < TOL


@pytest.mark.parametrize(
    "z,s,h,w,p", [(3, 2, 7, 7, 0), (3, 2, 8, 8, 0), (2, 2, 5, 4, 0), (3, 1, 4, 5, 1)]
)
def test_maxpool(xp, rng, z, s, h, w, p):
    assert gradcheck(MaxPool2D(z, s, p), xp.asarray(rng.standard_normal((2, 3, h, w)))) < TOL


@pytest.mark.parametrize(
    "layer", [ReLU(), Tanh(), Flatten(), Dropout(0.4, rng=0), Dropout(0.5, inverted=False)]
)
def test_parameterless(xp, rng, layer):
    assert gradcheck(layer, xp.asarray(rng.standard_normal((3, 2, 4, 3)))) < TOL


def test_small_network_through_the_loss(xp, rng):
    """conv(groups 2), ReLU, LRN, pool 3/2, conv, flatten, fc, tanh, dropout, fc."""
    model = f64(
        xp,
        Sequential(
            Conv2D(4, 6, 3, padding=1, groups=2, rng=rng),
            ReLU(),
            LRN(5, alpha=0.5, k=1.0),
            MaxPool2D(3, 2),
            Conv2D(6, 4, 2, groups=2, rng=rng),
            Flatten(),
            Linear(16, 8, rng=rng),
            Tanh(),
            Dropout(0.5, rng=1),
            Linear(8, 5, rng=rng),
        ),
    )
    x = xp.asarray(rng.standard_normal((3, 4, 7, 7)))
    report = gradcheck_report(model, x, labels=xp.asarray([0, 4, 2]))
    assert len(report) == 1 + 8  # x and W, b of four parametrised layers
    assert max(report.values()) < TOL, report


def test_gradcheck_catches_a_wrong_backward(rng):
    """The check itself can fail: a ReLU whose backward forgets the mask is caught."""

    class LeakyBug(ReLU):
        def backward(self, dy, input_grad=True):
            return dy

    assert gradcheck(LeakyBug(), rng.standard_normal((2, 3, 4, 4))) > 0.1


def test_gradcheck_refuses_float32(rng):
    with pytest.raises(ValueError, match="float64"):
        gradcheck(ReLU(), rng.standard_normal((2, 2)).astype(np.float32))
