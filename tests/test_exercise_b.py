"""Lessons 07-12: each exercise's automatic check passes the right answer and FAILS a wrong one.

Every test runs a check exactly as its lesson calls it (same checker, same reference, same
tolerances), once with a correct implementation and once with a typical mistake; the
mistake must raise AssertionError. The solved notebooks (run by nbmake) show the lesson's own
solution passing.
"""

import numpy as np
import pytest

from tinyalex.augment import PCAColour, pca_colour_stats, ten_crop
from tinyalex.exercise import check_backward, check_layer, cmp
from tinyalex.layers import Conv2D, Dropout, Linear, ReLU, Sequential, SoftmaxCrossEntropy
from tinyalex.optim import SGD
from tinyalex.step import train_step


# ---------------------------------------------------------------- 07 dropout
def dropout_forward(x, p, rng, train=True, inverted=True, scale=True):
    if not train:
        return (x if inverted else x * (1.0 - p)), None
    mask = (rng.random(x.shape) >= p).astype(x.dtype)
    if inverted and scale:
        mask /= 1.0 - p
    return x * mask, mask


def test_07_dropout_forward_check_fails_without_the_scale():
    x = np.random.default_rng(0).standard_normal((4, 6))
    ref = Dropout(0.5, rng=7).forward(x, train=True)
    cmp("right", dropout_forward(x, 0.5, np.random.default_rng(7))[0], ref)
    with pytest.raises(AssertionError):
        cmp("no 1/(1-p)", dropout_forward(x, 0.5, np.random.default_rng(7), scale=False)[0], ref)


def test_07_dropout_forward_check_fails_with_the_mask_inverted():
    x = np.random.default_rng(0).standard_normal((4, 6))
    ref = Dropout(0.5, rng=7).forward(x, train=True)
    keep_below = (np.random.default_rng(7).random(x.shape) < 0.5) / 0.5
    with pytest.raises(AssertionError):
        cmp("keep where u < p", x * keep_below, ref)


def test_07_dropout_test_time_check_fails_for_the_papers_form_without_the_half():
    x = np.random.default_rng(0).standard_normal((4, 6))
    ref = Dropout(0.5, inverted=False).forward(x, train=False)
    cmp("right", dropout_forward(x, 0.5, None, train=False, inverted=False)[0], ref)
    with pytest.raises(AssertionError):
        cmp("paper's form, no x0.5", x, ref)


def test_07_dropout_backward_check_fails_with_a_fresh_mask():
    x = np.random.default_rng(0).standard_normal((4, 6))

    def forward(x):
        return dropout_forward(x, 0.5, np.random.default_rng(3))[0]

    def right(dy, x):
        return (dy * dropout_forward(x, 0.5, np.random.default_rng(3))[1],)

    def fresh_mask(dy, x):
        return (dy * dropout_forward(x, 0.5, np.random.default_rng(4))[1],)

    check_backward("dropout", forward, right, {"x": x.copy()})
    with pytest.raises(AssertionError):
        check_backward("dropout, new mask", forward, fresh_mask, {"x": x.copy()})


# ---------------------------------------------------------------- 08 SGD
def _small_net():
    rng = np.random.default_rng(0)
    net = Sequential(
        Linear(6, 8, dtype=np.float64, rng=rng), ReLU(), Linear(8, 3, dtype=np.float64, rng=rng)
    )
    for p in net.params.values():
        if p.ndim == 1:
            p[...] = 1.0
    return net


def _run_against_sgd(step_fn):
    """Lesson 08's check: 20 steps, rate / 10 after 10, against optim.SGD."""
    reference, mine = _small_net(), _small_net()
    opt = SGD(reference, lr=0.1, momentum=0.9, weight_decay=0.05)
    velocity = {k: np.zeros_like(p) for k, p in mine.params.items()}
    loss_fn, data = SoftmaxCrossEntropy(), np.random.default_rng(1)
    for step in range(20):
        if step == 10:
            opt.lr *= 0.1
        x, y = data.standard_normal((16, 6)), data.integers(0, 3, 16)
        for model in (reference, mine):
            loss_fn.forward(model.forward(x), y)
            model.backward(loss_fn.backward())
        opt.step()
        step_fn(mine.params, mine.grads, velocity, opt.lr, 0.9, 0.05)
    for name in reference.params:
        cmp(name, mine.params[name], reference.params[name], rtol=1e-12, atol=1e-14)


def _paper_step(params, grads, velocity, lr, momentum, wd, decay_biases=False):
    for name, w in params.items():
        g = grads[name] + (wd * w if (w.ndim > 1 or decay_biases) else 0.0)
        velocity[name] *= momentum
        velocity[name] -= lr * g
        w += velocity[name]


def test_08_sgd_check_passes_the_papers_rule():
    _run_against_sgd(_paper_step)


def test_08_sgd_check_fails_when_biases_are_decayed():
    with pytest.raises(AssertionError):
        _run_against_sgd(lambda *a: _paper_step(*a, decay_biases=True))


def test_08_sgd_check_fails_for_pytorchs_rule_across_the_rate_drop():
    def torch_step(params, grads, buffers, lr, momentum, wd):
        for name, w in params.items():
            g = grads[name] + (wd * w if w.ndim > 1 else 0.0)
            buffers[name] *= momentum
            buffers[name] += g
            w -= lr * buffers[name]

    with pytest.raises(AssertionError):
        _run_against_sgd(torch_step)


def test_08_l2_gradient_check_fails_for_two_lambda_w():
    w = np.random.default_rng(0).standard_normal((5, 4))

    def penalty(w):
        return 0.5 * 0.3 * np.sum(w * w)

    check_backward("L2", penalty, lambda dy, w: (dy * 0.3 * w,), {"w": w.copy()})
    with pytest.raises(AssertionError):
        check_backward("L2 2x", penalty, lambda dy, w: (2 * dy * 0.3 * w,), {"w": w.copy()})


# ---------------------------------------------------------------- 09 augmentation
def _photos():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (4, 1, 16, 16))
    tint = rng.uniform(0.5, 1.5, (4, 3, 1, 1))
    return (base * tint + rng.normal(0, 10, (4, 3, 16, 16))).astype(np.float32)


def test_09_colour_pca_check_fails_for_ascending_order():
    photos = _photos()
    eigvals, eigvecs = pca_colour_stats(photos)
    pixels = photos.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    vals, vecs = np.linalg.eigh(np.cov(pixels, rowvar=False))  # ascending: not reversed
    cmp("covariance", vecs * vals @ vecs.T, eigvecs * eigvals @ eigvecs.T, rtol=1e-8)
    with pytest.raises(AssertionError):
        cmp("eigenvalues", vals, eigvals, rtol=1e-8)


def test_09_colour_pca_check_fails_for_pixels_taken_in_the_wrong_layout():
    photos = _photos()
    eigvals, eigvecs = pca_colour_stats(photos)
    wrong = photos.reshape(-1, 3).astype(np.float64)  # NCHW memory cut into threes
    vals, vecs = np.linalg.eigh(np.cov(wrong, rowvar=False))
    with pytest.raises(AssertionError):
        cmp("eigenvalues", vals[::-1], eigvals, rtol=1e-8)


def test_09_colour_shift_check_fails_for_lambda_instead_of_its_root():
    eigvals, eigvecs = pca_colour_stats(_photos())
    alpha = np.random.default_rng(0).normal(0.0, 0.1, size=(5, 3))
    expected = PCAColour(eigvals, eigvecs, std=0.1).shifts(5, np.random.default_rng(0))
    cmp("shifts", (alpha * np.sqrt(eigvals)) @ eigvecs.T, expected)
    with pytest.raises(AssertionError):
        cmp("shifts with lambda", (alpha * eigvals) @ eigvecs.T, expected)


def _ten_crops(batch, size, centre_round_up=False):
    h, w = batch.shape[-2:]
    cy, cx = ((h - size + 1) // 2, (w - size + 1) // 2) if centre_round_up else (
        (h - size) // 2, (w - size) // 2)  # fmt: skip
    corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (cy, cx)]
    views = np.stack([batch[..., y : y + size, x : x + size] for y, x in corners])
    return np.concatenate([views, views[..., ::-1]])


def test_09_ten_crop_check_fails_for_a_centre_rounded_up_or_an_upside_down_flip():
    odd = np.random.default_rng(0).standard_normal((2, 3, 13, 11))
    cmp("ten crops", _ten_crops(odd, 8), ten_crop(odd, 8), rtol=0, atol=0)
    with pytest.raises(AssertionError):
        cmp("centre up", _ten_crops(odd, 8, True), ten_crop(odd, 8), rtol=0, atol=0)
    views = _ten_crops(odd, 8)
    views[5:] = views[:5, ..., ::-1, :]  # flipped top to bottom instead of left to right
    with pytest.raises(AssertionError):
        cmp("vertical flip", views, ten_crop(odd, 8), rtol=0, atol=0)


# ---------------------------------------------------------------- 10 training
def _compare_steps(step_fn):
    """Lesson 10's check 1: three steps against tinyalex.step.train_step, same weights."""
    from tinyalex.models import cifar_alexnet

    rng = np.random.default_rng(0)
    batches = [
        (rng.standard_normal((4, 3, 24, 24), dtype=np.float32) * 50, rng.integers(0, 10, 4))
        for _ in range(2)
    ]
    mine, ref = cifar_alexnet(seed=1), cifar_alexnet(seed=1)
    mine_opt, ref_opt = SGD(mine, lr=0.002), SGD(ref, lr=0.002)
    loss_fn = SoftmaxCrossEntropy()
    for x, y in batches:
        step_fn(mine, loss_fn, mine_opt, x, y)
        train_step(ref, loss_fn, ref_opt, x, y)
    for name in ("conv1.W", "fc5.W"):
        cmp(name, mine.params[name], ref.params[name], rtol=1e-5, atol=1e-7)


def test_10_train_step_check_passes_the_four_lines():
    def step(model, loss_fn, opt, x, y):
        logits = model.forward(x, train=True)
        loss = loss_fn.forward(logits, y)
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
        return loss, logits

    _compare_steps(step)


def test_10_train_step_check_fails_without_the_update_or_with_a_sign_error():
    def no_update(model, loss_fn, opt, x, y):
        logits = model.forward(x, train=True)
        loss_fn.forward(logits, y)
        model.backward(loss_fn.backward(), input_grad=False)

    def ascent(model, loss_fn, opt, x, y):
        logits = model.forward(x, train=True)
        loss_fn.forward(logits, y)
        model.backward(-loss_fn.backward(), input_grad=False)
        opt.step()

    for wrong in (no_update, ascent):
        with pytest.raises(AssertionError):
            _compare_steps(wrong)


def test_10_gradient_check_of_the_mini_network_fails_for_a_broken_layer():
    class LeakyBackwardReLU(ReLU):
        def backward(self, dy, input_grad=True):
            return dy  # forgets the mask

    r = np.random.default_rng(0)
    x, labels = r.standard_normal((2, 6)), np.array([1, 3])
    mini = Sequential(
        Linear(6, 7, dtype=np.float64, rng=r), LeakyBackwardReLU(), Linear(7, 5, dtype=np.float64)
    )
    with pytest.raises(AssertionError):
        check_layer("broken relu", mini, x, labels=labels, max_checks=30)


# ---------------------------------------------------------------- 11 going fast
def test_11_fused_update_check_fails_without_weight_decay():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((30, 20), dtype=np.float32)
    g = rng.standard_normal((30, 20), dtype=np.float32)

    class One:
        params, grads = {"W": w0.copy()}, {"W": g}

    opt = SGD(One, lr=0.01, momentum=0.9, weight_decay=5e-4)
    w, v, w_bad, v_bad = w0.copy(), np.zeros_like(w0), w0.copy(), np.zeros_like(w0)
    f32 = np.float32
    for _ in range(3):
        opt.step(fast=False)
        for ww, vv, wdlr in ((w, v, f32(5e-6)), (w_bad, v_bad, f32(0.0))):
            t = f32(0.9) * vv
            t = t - wdlr * ww
            t = t - f32(0.01) * g
            vv[...] = t
            ww += t
    cmp("weights", w, One.params["W"], rtol=1e-6, atol=1e-7)
    with pytest.raises(AssertionError):
        cmp("weights, no decay", w_bad, One.params["W"], rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- 12 two GPUs
def _tower_conv(W, b):
    layer = Conv2D(W.shape[1], W.shape[0], W.shape[2], 1, 1, dtype=np.float64)
    layer.params.update(W=W, b=b)
    return layer


def _towers(x, W, b, swap=False):
    xs, Ws, bs = np.split(x, 2, axis=1), np.split(W, 2, axis=0), np.split(b, 2)
    if swap:  # each tower reads the other tower's maps
        xs = xs[::-1]
    return np.concatenate(
        [_tower_conv(Wg, bg).forward(xg) for xg, Wg, bg in zip(xs, Ws, bs, strict=True)], axis=1
    )


def test_12_two_tower_check_fails_when_the_towers_read_each_others_maps():
    rng = np.random.default_rng(0)
    grouped = Conv2D(6, 4, 3, 1, 1, groups=2, dtype=np.float64, rng=rng)
    W, b = grouped.params["W"], grouped.params["b"]
    x = rng.standard_normal((2, 6, 5, 5))
    cmp("y", _towers(x, W, b), grouped.forward(x))
    with pytest.raises(AssertionError):
        cmp("y, swapped inputs", _towers(x, W, b, swap=True), grouped.forward(x))


def test_12_two_tower_gradient_check_fails_for_a_backward_that_swaps_halves():
    rng = np.random.default_rng(0)
    grouped = Conv2D(6, 4, 3, 1, 1, groups=2, dtype=np.float64, rng=rng)
    W, b = grouped.params["W"], grouped.params["b"]
    x = rng.standard_normal((2, 6, 5, 5))

    def backward(dy, x, W, b, swap=False):
        dys = np.split(dy, 2, axis=1)
        dys = dys[::-1] if swap else dys
        out = [[], [], []]
        for xg, Wg, bg, dyg in zip(
            np.split(x, 2, axis=1), np.split(W, 2), np.split(b, 2), dys, strict=True
        ):
            t = _tower_conv(Wg, bg)
            t.forward(xg)
            out[0].append(t.backward(dyg))
            out[1].append(t.grads["W"])
            out[2].append(t.grads["b"])
        return np.concatenate(out[0], axis=1), np.concatenate(out[1]), np.concatenate(out[2])

    inputs = {"x": x.copy(), "W": W.copy(), "b": b.copy()}
    check_backward("towers", _towers, backward, inputs, max_checks=40)
    with pytest.raises(AssertionError):
        check_backward(
            "towers, swapped", _towers, lambda *a, **k: backward(*a, **k, swap=True), inputs,
            max_checks=40,
        )  # fmt: skip
