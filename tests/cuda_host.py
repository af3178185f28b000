"""Test helpers for the CUDA kernels run on the CPU (tinyalex/kernels/host.py).

:func:`host_cupy` stands NumPy in for CuPy inside ``kernels/cuda.py``, ``kernels/cublas.py``
and ``augment/device.py``, so their Python wrappers (argument order, dtypes, launch sizes, the
index type) run unchanged on NumPy arrays with the kernels compiled for the host; cuBLAS's
strided-batched GEMM is :func:`emulate_gemm`, column-major as cuBLAS computes it.
"""

from __future__ import annotations

import ctypes
import types
from pathlib import Path

import numpy as np

from tinyalex.kernels.host import HostModule, compiler_reason

__all__ = ["clear_caches", "compiler_reason", "emulate_gemm", "host_cupy"]


# ------------------------------------------------------------------ cuBLAS, column-major
def _column_major(ptr: int, rows: int, cols: int, ld: int, dtype):
    """The (rows x cols) column-major matrix with leading dimension ld at address ptr."""
    item = np.dtype(dtype).itemsize
    count = (cols - 1) * ld + rows
    ctype = {8: ctypes.c_double, 4: ctypes.c_float}[item]
    flat = np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctype)), shape=(count,))
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (item, ld * item))


def emulate_gemm(args: dict, dtype) -> None:
    """C_i = op(A_i) op(B_i) for every batch entry i, as cublasGemmStridedBatchedEx
    computes it (column-major) from :func:`tinyalex.kernels.cublas.plan`'s arguments."""
    from tinyalex.kernels import cublas

    item = np.dtype(dtype).itemsize
    m, n, k = args["m"], args["n"], args["k"]
    for i in range(args["batch"]):
        a_shape = (m, k) if args["transa"] == cublas.OP_N else (k, m)
        b_shape = (k, n) if args["transb"] == cublas.OP_N else (n, k)
        A = _column_major(args["A"] + i * args["strideA"] * item, *a_shape, args["lda"], dtype)
        B = _column_major(args["B"] + i * args["strideB"] * item, *b_shape, args["ldb"], dtype)
        opA = A if args["transa"] == cublas.OP_N else A.T
        opB = B if args["transb"] == cublas.OP_N else B.T
        C = _column_major(args["C"] + i * args["strideC"] * item, m, n, args["ldc"], dtype)
        C[...] = opA @ opB


# ------------------------------------------------------------------ NumPy as CuPy
def host_cupy(monkeypatch, cache: Path):
    """Make tinyalex's GPU wrappers run on NumPy arrays with the kernels compiled for the
    host. Returns the stand-in module, whose ``modules`` lists each HostModule built."""
    from tinyalex.augment import device
    from tinyalex.kernels import cublas, cuda

    modules = []

    def raw_module(code, options=(), name_expressions=()):
        # the sources as they are now (a test may have changed one)
        sources = {cuda.SOURCE: cuda.instantiations(), device.SOURCE: device.instantiations()}
        fmad = "--fmad=false" not in options
        module = HostModule(code, sources[code], cache, fmad=fmad)
        missing = set(name_expressions) - set(module.kernels)
        if missing:
            raise ValueError(f"name expressions not instantiated: {sorted(missing)}")
        modules.append(module)
        return module

    fake = types.SimpleNamespace(
        **{name: getattr(np, name) for name in ("float32", "float64", "int8", "int32", "int64")},
        ndarray=np.ndarray,
        empty=np.empty,
        empty_like=np.empty_like,
        zeros=np.zeros,
        einsum=np.einsum,
        asarray=np.asarray,
        ascontiguousarray=np.ascontiguousarray,
        matmul=np.matmul,
        RawModule=raw_module,
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0)),
        modules=modules,
    )
    clear_caches()
    monkeypatch.setattr(cuda, "cupy", fake)
    monkeypatch.setattr(device, "cupy", fake)
    monkeypatch.setattr(cublas, "cupy", fake)
    monkeypatch.setattr(cublas, "_pointer", lambda a: a.ctypes.data)
    monkeypatch.setattr(cublas, "cublas", lambda: types.SimpleNamespace())
    monkeypatch.setattr(
        cublas, "_call", lambda lib, args, t, compute, dtype: emulate_gemm(args, dtype)
    )
    monkeypatch.setattr(cublas, "tf32_enabled", lambda: False)
    return fake


def clear_caches() -> None:
    """Forget host-compiled functions so a real GPU run after the test compiles its own."""
    from tinyalex.augment import device
    from tinyalex.kernels import cuda

    for cached in (cuda.module, cuda.function, device._function):
        cached.cache_clear()
