"""Matrix products on the GPU straight through cuBLAS, on TF32 tensor cores when asked.

    C[g] = A[g] @ B[g]        A (G, M, K), B (G, K, N) -> C (G, M, N); 2-D operands: G = 1

One ``cublasGemmStridedBatchedEx`` call per product. Why not ``cupy.matmul``:

- For stacks of matrices (ndim > 2, conv's grouped GEMMs) CuPy passes the data type as the
  compute type, i.e. plain FP32 whatever ``CUPY_TF32`` says; only its 2-D products read that
  variable, once, at CuPy's first product (cupy/_core/_routines_linalg.pyx: ``matmul`` vs
  ``tensordot_core_v11`` / ``get_compute_type``). So ``bench --tf32`` sped up Linear but
  no convolution.
- It copies a transposed operand into a contiguous array first: conv's dW = dy . cols^T
  copied cols^T (alexnet's conv1 at batch 128: 363 x 387,200 floats, 562 MB) every step.

Here each operand's layout becomes a transpose flag, so no operand is copied, and the
compute type is ``CUBLAS_COMPUTE_32F_FAST_TF32`` when :func:`tinyalex.backend.tf32_enabled`
(inputs rounded to TF32's 10-bit mantissa, products summed in FP32), else
``CUBLAS_COMPUTE_32F``; float64 uses ``CUBLAS_COMPUTE_64F``.

cuBLAS is column-major. A row-major (R, C) matrix with row stride ld is, read column-major,
its transpose (C x R, leading dimension ld); a transposed view (column stride ld) is the
matrix itself. So C = A B is computed as C^T = B^T A^T: cuBLAS's first operand is B, its
second A, m = N, n = M, k = K, and ldc = N (:func:`plan`, which tests check on NumPy
against a column-major GEMM written out in NumPy).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..backend import cupy, tf32_enabled
from . import reuse

OP_N, OP_T = 0, 1  # cublasOperation_t
CUDA_R_32F, CUDA_R_64F = 0, 1  # cudaDataType_t
COMPUTE_32F, COMPUTE_32F_FAST_TF32, COMPUTE_64F = 68, 77, 70  # cublasComputeType_t
GEMM_DEFAULT = -1  # cublasGemmAlgo_t
_TYPES = {np.dtype(np.float32): CUDA_R_32F, np.dtype(np.float64): CUDA_R_64F}
_ONE = {t: np.ones(1, t) for t in _TYPES}  # alpha, beta: host scalars (host pointer mode)
_ZERO = {t: np.zeros(1, t) for t in _TYPES}
FALLBACKS: list = []  # errors that sent a product to cupy.matmul (the GPU tests want none)


def _layout(a):
    """(op, ld) of a's last two axes as cuBLAS's operand, or None if neither axis is unit."""
    r, c = a.shape[-2:]
    s0, s1 = (s // a.itemsize for s in a.strides[-2:])
    if (s1 == 1 or c == 1) and s0 >= max(1, c):
        return OP_N, max(s0, 1)
    if (s0 == 1 or r == 1) and s1 >= max(1, r):
        return OP_T, max(s1, 1)
    return None


def _batch_stride(a, g: int) -> int:
    return 0 if a.ndim == 2 or g == 1 else a.strides[0] // a.itemsize


def _pointer(a) -> int:
    return a.data.ptr if cupy is not None and isinstance(a, cupy.ndarray) else a.ctypes.data


def plan(a, b, c):
    """The cublasGemmStridedBatchedEx arguments (a dict) for c = a @ b, or None when an
    operand's layout needs a copy first. a (G, M, K) or (M, K); b (G, K, N) or (K, N);
    c (G, M, N) C-contiguous."""
    la, lb = _layout(a), _layout(b)
    if la is None or lb is None:
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    g = c.shape[0] if c.ndim == 3 else 1
    return {
        "transa": lb[0],
        "transb": la[0],
        "m": n,
        "n": m,
        "k": k,
        "A": _pointer(b),
        "lda": lb[1],
        "strideA": _batch_stride(b, g),
        "B": _pointer(a),
        "ldb": la[1],
        "strideB": _batch_stride(a, g),
        "C": _pointer(c),
        "ldc": n,
        "strideC": m * n,
        "batch": g,
    }


def gemm(a, b, out=None):
    """a @ b for float32/float64 CuPy arrays of 2 or 3 dimensions (batch G equal or 1).

    ``out``: a C-contiguous array of the result's size and dtype to write into (a workspace
    reused between steps); it must not overlap a or b.
    """
    dtype = np.result_type(a.dtype, b.dtype)
    if dtype not in _TYPES or a.ndim not in (2, 3) or b.ndim not in (2, 3):
        return cupy.matmul(a, b)
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    (m, k), n = a.shape[-2:], b.shape[-1]
    if b.shape[-2] != k:
        raise ValueError(f"gemm: shapes {a.shape} and {b.shape} do not chain")
    g = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b.ndim == 3 else 1)
    for x in (a, b):
        if x.ndim == 3 and x.shape[0] not in (1, g):
            raise ValueError(f"gemm: batch sizes {a.shape[0]} and {b.shape[0]} differ")
    two_d = a.ndim == 2 and b.ndim == 2
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if b.ndim == 3 and b.shape[0] == 1:
        b = b[0]
    shape = (m, n) if two_d else (g, m, n)
    c = reuse(out, shape, dtype, cupy)
    if c is None:
        c = cupy.empty(shape, dtype=dtype)
    if c.size == 0 or k == 0:
        return c.fill(0) or c
    args = plan(a, b, c)
    if args is None:  # an operand with neither axis contiguous: copy it once
        a, b = cupy.ascontiguousarray(a), cupy.ascontiguousarray(b)
        args = plan(a, b, c)
    lib = cublas()
    compute = getattr(lib, "CUBLAS_COMPUTE_64F", COMPUTE_64F)
    if dtype == np.float32:
        fast = tf32_enabled()
        name = "CUBLAS_COMPUTE_32F_FAST_TF32" if fast else "CUBLAS_COMPUTE_32F"
        compute = getattr(lib, name, COMPUTE_32F_FAST_TF32 if fast else COMPUTE_32F)
    t = _TYPES[dtype]
    try:
        _call(lib, args, t, compute, dtype)
    except Exception as e:  # a cuBLAS or binding this code does not expect: stay correct
        FALLBACKS.append(repr(e))
        if len(FALLBACKS) == 1:
            warnings.warn(f"cuBLAS GEMM failed ({e!r}); using cupy.matmul", stacklevel=2)
        c[...] = cupy.matmul(a, b).reshape(c.shape)
    return c


def _call(lib, args: dict, t: int, compute: int, dtype) -> None:
    # CuPy's handle keeps whatever stream the last CuPy routine set on it; the product must
    # run on the current stream, in order with the kernels around it (im2col before, col2im
    # after, the conv layers' shared workspace between them), as CuPy's own calls do.
    handle = cupy.cuda.device.get_cublas_handle()
    lib.setStream(handle, cupy.cuda.get_current_stream().ptr)
    lib.gemmStridedBatchedEx(
        handle,
        args["transa"],
        args["transb"],
        args["m"],
        args["n"],
        args["k"],
        _ONE[dtype].ctypes.data,
        args["A"],
        t,
        args["lda"],
        args["strideA"],
        args["B"],
        t,
        args["ldb"],
        args["strideB"],
        _ZERO[dtype].ctypes.data,
        args["C"],
        t,
        args["ldc"],
        args["strideC"],
        args["batch"],
        compute,
        GEMM_DEFAULT,
    )


def cublas():
    """CuPy's cuBLAS bindings (``cupy_backends.cuda.libs.cublas``)."""
    from cupy_backends.cuda.libs import cublas as module

    return module
