"""The paper's SGD rule against hand-computed steps, and the schedules."""

import numpy as np
import pytest

from tinyalex.layers import Linear, Sequential
from tinyalex.optim import SGD, ReduceOnPlateau, StepSchedule


def one_linear():
    layer = Linear(2, 1, dtype=np.float64, rng=0)
    layer.name = "fc"
    layer.params["W"][...] = [[1.0], [-2.0]]
    layer.params["b"][...] = [0.5]
    return Sequential(layer)


def test_paper_update_by_hand_across_a_learning_rate_drop():
    model = one_linear()
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=0.5)
    g = {"fc.W": np.array([[0.2], [0.4]]), "fc.b": np.array([1.0])}
    w, b = np.array([[1.0], [-2.0]]), np.array([0.5])
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    for step, lr in enumerate([0.1, 0.1, 0.01, 0.01]):
        opt.lr = lr
        model["fc"].grads.update({k[3:]: v.copy() for k, v in g.items()})
        opt.step()
        # v <- 0.9 v - 0.5 * lr * w - lr * g ; w <- w + v   (bias: no decay)
        vw = 0.9 * vw - 0.5 * lr * w - lr * g["fc.W"]
        w = w + vw
        vb = 0.9 * vb - lr * g["fc.b"]
        b = b + vb
        np.testing.assert_allclose(model.params["fc.W"], w, rtol=1e-14, err_msg=f"step {step}")
        np.testing.assert_allclose(model.params["fc.b"], b, rtol=1e-14)
    # one concrete value, worked out on paper for the first step:
    # vW = -0.5*0.1*[1,-2] - 0.1*[0.2,0.4] = [-0.07, 0.06]
    model2 = one_linear()
    opt2 = SGD(model2, lr=0.1, momentum=0.9, weight_decay=0.5)
    model2["fc"].grads.update({"W": g["fc.W"].copy(), "b": g["fc.b"].copy()})
    opt2.step()
    np.testing.assert_allclose(model2.params["fc.W"].ravel(), [0.93, -1.94])


def test_differs_from_pytorch_form_after_a_drop():
    """PyTorch: v <- m v + g; w <- w - lr v. Same at a constant rate, different after a drop."""
    model = one_linear()
    opt = SGD(model, lr=0.1, momentum=0.9, weight_decay=0.0)
    w_torch, v_torch = np.array([1.0, -2.0]), np.zeros(2)
    g = np.array([0.2, 0.4])
    gaps = []
    for lr in [0.1, 0.1, 0.01]:
        opt.lr = lr
        model["fc"].grads.update({"W": g[:, None].copy(), "b": np.zeros(1)})
        opt.step()
        v_torch = 0.9 * v_torch + g
        w_torch = w_torch - lr * v_torch
        gaps.append(np.abs(model.params["fc.W"].ravel() - w_torch).max())
    assert gaps[0] < 1e-14 and gaps[1] < 1e-14 and gaps[2] > 1e-3


def test_decay_biases_option():
    model = one_linear()
    opt = SGD(model, lr=0.1, momentum=0.0, weight_decay=1.0, decay_biases=True)
    model.zero_grads()
    opt.step()
    assert model.params["fc.b"][0] == pytest.approx(0.5 - 0.1 * 0.5)


def test_state_roundtrip():
    model = one_linear()
    opt = SGD(model, lr=0.1)
    model["fc"].grads.update({"W": np.ones((2, 1)), "b": np.ones(1)})
    opt.step()
    state = opt.state_dict()
    other = SGD(one_linear(), lr=1.0)
    other.load_state_dict(state)
    assert other.lr == 0.1
    np.testing.assert_array_equal(other.velocity["fc.W"], opt.velocity["fc.W"])


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="lr > 0"):
        SGD(one_linear(), lr=0.0)


def test_plateau_divides_by_ten_at_most_n_times():
    opt = SGD(one_linear(), lr=0.01)
    sched = ReduceOnPlateau(opt, patience=2, max_drops=3)
    errors = [0.5, 0.4, 0.4, 0.41, 0.3, 0.3, 0.3] + [0.3] * 10
    drops = [sched.step(e) for e in errors]
    assert drops[:7] == [False, False, False, True, False, False, True]
    assert sum(drops) == 3
    assert opt.lr == pytest.approx(1e-5)
    state = sched.state_dict()
    fresh = ReduceOnPlateau(SGD(one_linear(), lr=1.0))
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state


def test_step_schedule():
    opt = SGD(one_linear(), lr=1.0)
    sched = StepSchedule(opt, milestones=[2, 4])
    for epoch in range(1, 6):
        sched.step(epoch=epoch)
    assert opt.lr == pytest.approx(0.01)
