"""Automatic checks for the lessons' exercises: each prints what it found, what it should be,
and a PASS or FAIL line; a FAIL raises AssertionError, so a notebook run stops there.

    cmp(name, mine, expected)                  forward values: exact / approx / max difference
    check_backward(name, forward, backward, inputs)
                                               a hand-written backward pass against central
                                               differences of L = sum(forward(**inputs) * G)
    check_layer(name, layer, x)                a Layer's backward, through tinyalex.gradcheck

The gradient checks run in float64 (docs/style.md §3) with eps = 1e-5 and pass below 1e-6:
a correct backward pass gives 1e-7 or less (usually 1e-8 to 1e-11), a wrong one 1e-3 to 1.
The relative error is :func:`tinyalex.gradcheck.relative_error`:

    rel = max |a - n| / max(|a| + |n|, 1e-3 max|n|)     a analytic, n numeric

The floor makes elements whose true gradient is near zero count at 1e-3 of the largest;
their rounding noise, about 1e-16 |L| / eps, is what sets the threshold. eps = 1e-5 rather
than tinyalex.gradcheck's 1e-6 keeps that noise ten times further from it on the lessons'
shapes, while the central difference's own error, about eps^2, stays near 1e-10.

Shapes: ``inputs`` maps names to float64 arrays; ``forward(**inputs)`` returns an array y
(or a scalar loss); ``backward(dy, **inputs)`` returns the gradients of sum(y * dy), a dict
name -> array, or a tuple in the order of ``inputs`` (or of ``wrt``).
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .gradcheck import gradcheck_report, relative_error

GRAD_THRESHOLD = 1e-6  # float64, eps 1e-5: a correct backward stays below this
EPS = 1e-5


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _fail(message: str) -> None:
    print(f"FAIL: {message}")
    raise AssertionError(message)


def cmp(name: str, mine, expected, *, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """Compare ``mine`` with ``expected`` (makemore's cmp): exact, approx, max difference.

    PASS when the shapes agree and |mine - expected| <= atol + rtol |expected| everywhere.
    Returns nothing (a notebook cell ending in a check shows only its line).
    """
    if mine is None:
        _fail(f"{name}: got None (did the function return its result?)")
    a, b = to_numpy(mine), to_numpy(expected)
    if a.shape != b.shape:
        _fail(f"{name}: shape {a.shape}, expected {b.shape}")
    if not np.all(np.isfinite(a)):
        _fail(f"{name}: contains NaN or inf")
    exact = bool(np.array_equal(a, b))
    approx = bool(np.allclose(a, b, rtol=rtol, atol=atol))
    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
    bound = atol + rtol * float(np.max(np.abs(b), initial=0.0))
    should = f"should be below {bound:.0e}" if bound else "should be 0"
    print(
        f"{name:<18} | exact: {exact!s:<5} | approx: {approx!s:<5} | max diff: {diff:.1e} "
        f"({should})  {_verdict(approx)}"
    )
    if not approx:
        _fail(f"{name}: max difference {diff:.2e} from the expected values")


def numeric_gradient(f, t: np.ndarray, idx: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Central differences (f(t + eps) - f(t - eps)) / (2 eps) at the flat indices ``idx``."""
    flat = t.reshape(-1)  # a view: writes reach the array f reads
    out = np.empty(idx.size)
    for m, i in enumerate(idx):
        orig = flat[i].copy()
        flat[i] = orig + eps
        plus = float(f())
        flat[i] = orig - eps
        minus = float(f())
        flat[i] = orig
        out[m] = (plus - minus) / (2 * eps)
    return out


def check_backward(
    name: str,
    forward,
    backward,
    inputs: dict,
    *,
    wrt=None,
    threshold: float = GRAD_THRESHOLD,
    eps: float = EPS,
    max_checks: int | None = 100,
    seed: int = 0,
) -> dict:
    """Check ``backward`` against central differences of L = sum(forward(**inputs) * G).

    G is a fixed random array of y's shape (1 for a scalar y), and ``backward(G, **inputs)``
    must return dL/d(each input in ``wrt``; default all). Up to ``max_checks`` elements per
    input are checked (all if None). Inputs must be float64. Returns {input: relative error}.
    """
    inputs = {k: np.asarray(v) for k, v in inputs.items()}
    wrt = list(inputs) if wrt is None else list(wrt)
    for k in wrt:
        if inputs[k].dtype != np.float64:
            raise ValueError(f"check_backward needs float64 inputs ({k} is {inputs[k].dtype})")
    y = np.asarray(to_numpy(forward(**inputs)), dtype=np.float64)
    G = np.random.default_rng([seed, 1]).standard_normal(y.shape) if y.ndim else np.float64(1)
    grads = backward(G if y.ndim else 1.0, **inputs)
    if grads is None:
        _fail(f"{name}: backward returned None")
    if not isinstance(grads, dict):
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        if len(grads) != len(wrt):
            _fail(f"{name}: backward returned {len(grads)} gradients, expected {len(wrt)} ({wrt})")
        grads = dict(zip(wrt, grads, strict=True))

    def loss():
        return float(np.sum(to_numpy(forward(**inputs)) * G))

    pick = np.random.default_rng(seed)
    errors = {}
    for k in wrt:
        if k not in grads or grads[k] is None:
            _fail(f"{name}: no gradient for {k}")
        g = to_numpy(grads[k])
        if g.shape != inputs[k].shape:
            _fail(f"{name}: d{k} has shape {g.shape}, expected {inputs[k].shape}")
        idx = np.arange(inputs[k].size)
        if max_checks is not None and idx.size > max_checks:
            idx = np.sort(pick.choice(idx, max_checks, replace=False))
        numeric = numeric_gradient(loss, inputs[k], idx, eps)
        errors[k] = relative_error(g.reshape(-1)[idx], numeric)
    return _report_errors(name, errors, threshold)


def _report_errors(name: str, errors: dict, threshold: float) -> dict:
    """Print each gradient's relative error against ``threshold`` with PASS/FAIL; raise
    AssertionError naming the worst one if any is at or above it. Returns ``errors``."""
    for k, err in errors.items():
        print(
            f"{name} d{k:<6} relative error {err:.1e} (should be below {threshold:.0e})  "
            f"{_verdict(err < threshold)}"
        )
    if not all(err < threshold for err in errors.values()):  # NaN fails too
        worst = max(errors, key=errors.get)
        _fail(f"{name}: d{worst} is off by a relative error of {errors[worst]:.1e}")
    return errors


def check_layer(
    name: str,
    layer,
    x,
    *,
    labels=None,
    threshold: float = GRAD_THRESHOLD,
    eps: float = EPS,
    **kwargs,
) -> dict:
    """A Layer's backward (input and every parameter) by tinyalex.gradcheck, in float64."""
    x = np.asarray(x, dtype=np.float64)
    errors = gradcheck_report(layer, x, labels=labels, eps=eps, **kwargs)
    return _report_errors(name, errors, threshold)


def expect_fail(check, *args, **kwargs) -> str:
    """Run a check that should FAIL (a lesson showing a wrong answer); returns its message.

    Raises AssertionError if the check passes: a check that cannot fail proves nothing.
    """
    try:
        check(*args, **kwargs)
    except AssertionError as e:
        print(f"(a wrong answer, caught as it should be: {e})")
        return str(e)
    raise AssertionError("the check passed a wrong answer")
