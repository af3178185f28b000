"""Numerical gradient checks by central differences.

    dL/dv ~= (L(v + eps) - L(v - eps)) / (2 eps)          for each element v

compared with the layer's analytic backward pass by the relative error

    rel = |analytic - numeric| / max(|analytic| + |numeric|, 1e-3 * max|numeric|)

maximised over the checked elements (the floor keeps elements whose true gradient is
nearly zero from turning rounding noise into a large ratio). In float64 with eps = 1e-6
a correct layer gives about 1e-7 or less (often 1e-10); a wrong one gives 1e-2 to 1.
Float32 cannot be checked this way: its rounding error divided by eps swamps the difference.

The scalar checked is, with a fixed random G of the output's shape,
L = sum(layer(x) * G), or the softmax cross-entropy when ``labels`` are given.
Dropout layers are re-seeded before every forward so they draw the same mask.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .backend import array_module, to_numpy
from .layers import Sequential, SoftmaxCrossEntropy


def _leaves(layer):
    for sub in layer.layers if isinstance(layer, Sequential) else [layer]:
        yield from _leaves(sub) if isinstance(sub, Sequential) else [sub]


def _reseed(layer, seed: int) -> None:
    for sub in _leaves(layer):
        if hasattr(sub, "reseed"):
            sub.reseed(seed)


@contextmanager
def _float64_params(layer):
    """Check float32 layers too: their parameters are float64 copies during the check."""
    saved = [(sub, dict(sub.params), dict(sub.grads)) for sub in _leaves(layer)]
    for sub, params, _ in saved:
        sub.params.update({k: v.astype(np.float64) for k, v in params.items()})
    try:
        yield
    finally:
        for sub, params, grads in saved:
            sub.params.update(params)
            sub.grads.update(grads)


def relative_error(a, n) -> float:
    """max |a - n| / max(|a| + |n|, 1e-3 max|n|), elementwise over two arrays."""
    a, n = to_numpy(a).ravel(), to_numpy(n).ravel()
    if a.size == 0:
        return 0.0
    floor = max(1e-3 * float(np.abs(n).max()), 1e-12)
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), floor)))


def gradcheck_report(
    layer, x, *, labels=None, eps: float = 1e-6, seed: int = 0, max_checks: int | None = 200
) -> dict:
    """Relative error of dL/dx ("x") and of each parameter's gradient (by name).

    ``max_checks`` elements per tensor are chosen at random (all if None). The input must be
    float64; float32 parameters are checked through float64 copies and left as they were.
    """
    with _float64_params(layer):
        return _report(layer, x, labels, eps, seed, max_checks)


def _report(layer, x, labels, eps, seed, max_checks) -> dict:
    xp = array_module(x)
    if x.dtype != np.float64:
        raise ValueError(f"gradcheck needs float64 input (got {x.dtype}); see the module doc")
    loss_fn = SoftmaxCrossEntropy()
    pick = np.random.default_rng(seed)
    G = None

    def loss():
        nonlocal G
        _reseed(layer, seed)
        y = layer.forward(x, train=True)
        if labels is not None:
            return loss_fn.forward(y, labels), None
        if G is None:
            # its own stream: a G drawn like the input (same seed) would equal it
            G = xp.asarray(np.random.default_rng([seed, 1]).standard_normal(y.shape))
        return (y * G).sum(), G

    value, dy = loss()
    dx = layer.backward(loss_fn.backward() if labels is not None else dy)
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    tensors = {"x": x, **layer.params}

    report = {}
    for name, t in tensors.items():
        flat_t = t.reshape(-1)  # a view: writes reach the tensor the layer reads
        idx = np.arange(flat_t.size)
        if max_checks is not None and idx.size > max_checks:
            idx = pick.choice(idx, max_checks, replace=False)
        numeric = np.empty(idx.size)
        for m, i in enumerate(idx):
            orig = flat_t[i].copy()
            flat_t[i] = orig + eps
            lp = float(loss()[0])
            flat_t[i] = orig - eps
            lm = float(loss()[0])
            flat_t[i] = orig
            numeric[m] = (lp - lm) / (2 * eps)
        report[name] = relative_error(to_numpy(analytic[name]).reshape(-1)[idx], numeric)
    return report


def gradcheck(layer, x, **kwargs) -> float:
    """The largest relative error over the input and every parameter (see gradcheck_report)."""
    return max(gradcheck_report(layer, x, **kwargs).values())
