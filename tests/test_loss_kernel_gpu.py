"""The fused softmax cross-entropy kernels (kernels/cuda.py: softmax_xent, _backward).

Here: a NumPy twin written as the kernel computes (one row at a time, the sum of
exponentials in float64) must agree with the loss's plain path; the PTX test in
test_kernels.py compiles the CUDA source. Where a GPU works: the kernels against the twin
and the plain path, the backward bit for bit, and a bad label giving NaN without a host read.
"""

import numpy as np
import pytest

from tinyalex import backend
from tinyalex.layers import SoftmaxCrossEntropy
from tinyalex.layers.loss import log_softmax


def twin_forward(z, y):
    """(mean loss, logp) the kernel's way: per row max, float64 sum of exp, then logp."""
    n, k = z.shape
    logp = np.empty_like(z)
    rows = np.empty(n, dtype=z.dtype)
    for i in range(n):
        m = z[i].max()
        s = np.exp((z[i] - m).astype(z.dtype)).astype(np.float64).sum()
        logp[i] = (z[i] - m) - z.dtype.type(np.log(s))
        rows[i] = -logp[i, y[i]] if 0 <= y[i] < k else np.nan
    return rows.mean(), logp


def twin_backward(logp, y):
    p = np.exp(logp)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k,scale", [(128, 10, 3.0), (7, 1000, 30.0), (3, 1, 1.0)])
def test_twin_agrees_with_the_plain_loss(dtype, n, k, scale):
    rng = np.random.default_rng(n + k)
    z = (rng.standard_normal((n, k)) * scale + 50).astype(dtype)  # offset: needs the max
    y = rng.integers(0, k, n)
    loss_fn = SoftmaxCrossEntropy()
    want = loss_fn.forward(z, y)
    got, logp = twin_forward(z, y)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(logp, log_softmax(z), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(got, want, rtol=tol * 10)
    np.testing.assert_allclose(twin_backward(logp, y), loss_fn.backward(), rtol=tol, atol=tol)


def test_twin_marks_a_bad_label_with_nan():
    z = np.zeros((3, 4), np.float32)
    loss, _ = twin_forward(z, np.array([0, 4, 1]))
    assert np.isnan(loss)


# ----------------------------------------------------------------- GPU only (skip here)
@pytest.fixture
def cuda():
    if not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    from tinyalex.kernels import cuda

    return cuda


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(128, 10), (64, 1000)])
def test_gpu_kernels_equal_twin_and_plain_path(cuda, dtype, n, k):
    cp = backend.cupy
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((n, k)) * 5 + 50).astype(dtype)
    y = rng.integers(0, k, n)
    loss, logp = cuda.softmax_xent(cp.asarray(z), cp.asarray(y))
    want_loss, want_logp = twin_forward(z, y)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(cp.asnumpy(logp), want_logp, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(float(loss), want_loss, rtol=tol * 10)
    # backward: the plain path's own arithmetic on the device, so bit for bit
    d = cuda.softmax_xent_backward(logp, cp.asarray(y))
    plain = cp.exp(logp)
    plain[cp.arange(n), cp.asarray(y)] -= 1
    np.testing.assert_array_equal(cp.asnumpy(d), cp.asnumpy(plain / n))


def test_gpu_bad_label_is_nan_not_a_host_read(cuda):
    cp = backend.cupy
    loss, _ = cuda.softmax_xent(cp.zeros((4, 3), cp.float32), cp.asarray([0, 1, 3, 2]))
    assert np.isnan(float(loss))
