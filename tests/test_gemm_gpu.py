"""kernels/cublas.py: conv's and Linear's GEMMs straight through cuBLAS, TF32 when asked.

Here (no GPU): :func:`cublas.plan` turns each operand layout (contiguous, transposed view,
a view with a longer row stride, broadcast over the batch) into cublasGemmStridedBatchedEx
arguments, and a column-major strided-batched GEMM written out in NumPy, run on those
arguments over the arrays' raw memory, must give ``a @ b`` exactly (small integers in
float64). Where a GPU works: the products equal cupy.matmul in FP32, differ from it by
TF32's rounding (not more) with TF32 on, and a training step with TF32 differs from FP32
by no more than TF32 explains.
"""

import numpy as np
import pytest
from cuda_host import emulate_gemm

from tinyalex import backend
from tinyalex.kernels import cublas


def _ints(rng, shape, xp=np, dtype=np.float64):
    """Small integers (exact products in float32 and float64) as an xp array."""
    return xp.asarray(rng.integers(-4, 5, shape).astype(dtype))


def _cases(rng, xp=np, dtype=np.float64):
    """(name, a, b): the layouts conv and Linear hand to the GEMM, views made on xp."""

    def r(*shape):
        return _ints(rng, shape, xp, dtype)

    g, m, k, n = 2, 5, 7, 3
    wide = r(g, k, n + 4)  # rows longer than the matrix: ld > n
    yield "contiguous", r(g, m, k), r(g, k, n)
    yield "a transposed", r(g, k, m).transpose(0, 2, 1), r(g, k, n)
    yield "b transposed (conv dW)", r(g, m, k), r(g, n, k).transpose(0, 2, 1)
    yield "both transposed", r(g, k, m).transpose(0, 2, 1), r(g, n, k).transpose(0, 2, 1)
    yield "b with ld > n", r(g, m, k), wide[:, :, :n]
    yield "2-D (Linear)", r(m, k), r(k, n)
    yield "2-D, x.T @ dy", r(k, m).T, r(k, n)
    yield "2-D, dy @ W.T", r(m, k), r(n, k).T
    yield "a broadcast over the batch", r(m, k), r(g, k, n)
    yield "one row", r(g, 1, k), r(g, k, n)
    yield "one column", r(g, m, k), r(g, k, 1)


@pytest.mark.parametrize("case", range(11))
def test_plan_computes_a_times_b_with_no_copy(case):
    name, a, b = list(_cases(np.random.default_rng(case)))[case]
    g = max(x.shape[0] for x in (a, b) if x.ndim == 3) if max(a.ndim, b.ndim) == 3 else None
    shape = (a.shape[-2], b.shape[-1]) if g is None else (g, a.shape[-2], b.shape[-1])
    c = np.full(shape, np.nan)
    args = cublas.plan(a, b, c)
    assert args is not None, f"{name}: would be copied"
    emulate_gemm(args, np.float64)
    np.testing.assert_array_equal(c, a @ b, err_msg=name)


def test_plan_asks_for_a_copy_when_no_axis_is_contiguous():
    a = np.ones((4, 6))[::2, ::2]  # both strides 2 elements
    assert cublas.plan(a, np.ones((3, 2)), np.empty((2, 2))) is None


# ----------------------------------------------------------------- GPU only (skip here)
@pytest.fixture
def cp():
    if not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    return backend.cupy


@pytest.fixture
def tf32_off():
    yield
    backend.set_tf32(False)


@pytest.mark.parametrize("case", range(11))
def test_gemm_equals_cupy_matmul_in_fp32(cp, tf32_off, case):
    name, a, b = list(_cases(np.random.default_rng(case), cp, np.float32))[case]
    _, a_np, b_np = list(_cases(np.random.default_rng(case)))[case]
    got = cublas.gemm(a, b)
    np.testing.assert_array_equal(cp.asnumpy(got), (a_np @ b_np).astype(np.float32), name)
    assert cublas.FALLBACKS == []  # cuBLAS itself ran


def test_gemm_runs_on_the_current_stream(cp, tf32_off):
    """Inside ``with stream:`` the product is queued on that stream (in order with the
    kernels the layers launch there), and back on the default stream outside it."""
    rng = np.random.default_rng(0)
    a_np, b_np = rng.integers(-3, 4, (2, 5, 7)), rng.integers(-3, 4, (2, 7, 3))
    a, b = cp.asarray(a_np, dtype=cp.float64), cp.asarray(b_np, dtype=cp.float64)
    handle = cp.cuda.device.get_cublas_handle()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        got = cublas.gemm(a, b)
        assert cublas.cublas().getStream(handle) == stream.ptr
    stream.synchronize()
    np.testing.assert_array_equal(cp.asnumpy(got), a_np @ b_np)
    cublas.gemm(a, b)
    assert cublas.cublas().getStream(handle) == cp.cuda.get_current_stream().ptr
    assert cublas.FALLBACKS == []


def test_tf32_rounds_inputs_to_ten_bits_and_no_more(cp, tf32_off):
    """Random FP32 products: FP32 mode matches float64 to FP32 accuracy; TF32 mode differs
    from it by more, and by no more than inputs cut to TF32's 10 mantissa bits explain:
    |error| <= 2 u sum |a||b| with u = 2**-10 (truncation; half that if rounded)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 512, 1024)).astype(np.float32)
    b = rng.standard_normal((2, 1024, 384)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    backend.set_tf32(False)
    fp32 = cp.asnumpy(cublas.gemm(cp.asarray(a), cp.asarray(b)))
    backend.set_tf32(True)
    bt = cp.asarray(np.ascontiguousarray(b.transpose(0, 2, 1))).transpose(0, 2, 1)
    tf32 = cp.asnumpy(cublas.gemm(cp.asarray(a), bt))  # conv dW's transposed operand too
    fp32_err = np.max(np.abs(fp32 - exact) / scale)
    tf32_err = np.max(np.abs(tf32 - exact) / scale)
    print(f"relative error: FP32 {fp32_err:.2e}, TF32 {tf32_err:.2e}")
    assert fp32_err < 1024 * 2**-24
    assert tf32_err > 8 * fp32_err  # tensor cores ran
    assert tf32_err <= 2 * 2**-10 + 1024 * 2**-24
    assert cublas.FALLBACKS == []


def test_tf32_training_step_differs_from_fp32_by_rounding(cp, tf32_off):
    """One alexnet-shaped step (the CIFAR net) on the same batch: TF32 vs FP32 logits and
    gradients agree to TF32's precision (about 1e-3 relative), not to FP32's."""
    from tinyalex.layers import SoftmaxCrossEntropy
    from tinyalex.models import build

    rng = np.random.default_rng(0)
    x = cp.asarray(rng.standard_normal((32, 3, 24, 24)).astype(np.float32) * 50)
    y = cp.asarray(rng.integers(0, 10, 32))
    out = {}
    for on in (False, True):
        backend.set_tf32(on)
        model = build("cifar", num_classes=10, seed=0).to("cupy")
        loss_fn = SoftmaxCrossEntropy()
        logits = model.forward(x, train=True)  # same dropout masks: same seeded keys
        loss_fn.forward(logits, y)
        model.backward(loss_fn.backward())
        out[on] = (cp.asnumpy(logits), {k: cp.asnumpy(g) for k, g in model.grads.items()})
    (l32, g32), (ltf, gtf) = out[False], out[True]
    rel = np.max(np.abs(ltf - l32)) / np.max(np.abs(l32))
    assert rel < 2e-2  # (that TF32 engages at all is the large-GEMM test above)
    for key in g32:
        d = np.max(np.abs(gtf[key] - g32[key])) / (np.max(np.abs(g32[key])) + 1e-30)
        assert d < 5e-2, key
