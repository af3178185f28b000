"""Run tinyalex's CUDA kernels on the CPU: every thread of a launch, one after another.

Where no GPU is, the CUDA source still has to be right. This module compiles a kernel source
as C++ for the host (g++) and runs a launch ``fn((blocks,), (threads,), args)`` by calling the
kernel body once per (block, thread), with ``blockIdx``, ``threadIdx``, ``blockDim`` and
``gridDim`` set as the GPU would set them. That is a faithful model of tinyalex's kernels:
each is one thread per output element with a grid-stride loop, and no thread reads what
another writes (no shared memory, no atomics, no ``__syncthreads``). A kernel that relied on
threads running together would need a different model; none here does.

What it checks, besides the kernel's arithmetic and indexing:

- every argument against the kernel's C signature, as the GPU cannot: a pointer takes a
  C-contiguous NumPy array of the pointee's dtype, a value takes a NumPy scalar of exactly
  its type (CuPy would pass a ``float64`` scalar's 8 bytes to a ``float`` parameter);
- the launch shape: ``(blocks,)`` and ``(threads,)`` tuples of positive ints.

Floating point follows NVRTC's defaults: multiply-adds contracted into FMAs (``--fmad=true``)
where the host has FMA, IEEE division and square roots, denormals kept. ``rsqrt`` is
``1/sqrt`` here and approximate on the GPU (2 ulp), so results agree to float rounding, not
bit for bit, wherever a kernel takes one.

:func:`host_cupy` goes further: it stands NumPy in for CuPy inside ``kernels/cuda.py``,
``kernels/cublas.py`` and ``augment/device.py``, so their Python wrappers (argument order,
dtypes, launch sizes, the index type) run unchanged on NumPy arrays; cuBLAS's strided-batched
GEMM is :func:`emulate_gemm`, column-major as cuBLAS computes it.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np

PRELUDE = r"""
// The CUDA names the kernels use, for the host (tests/cuda_host.py).
#include <algorithm>
#include <cmath>
#include <cstring>
struct cuda_host_uint3 { unsigned int x, y, z; };
static cuda_host_uint3 blockIdx, threadIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
using std::exp; using std::log; using std::pow; using std::sqrt; using std::min; using std::max;
inline float rsqrtf(float v) { return 1.0f / std::sqrt(v); }
inline double rsqrt(double v) { return 1.0 / std::sqrt(v); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
"""

# C type -> NumPy dtype, for pointers' pointees and for values.
C_TYPES = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int32,
    "long long": np.int64,
    "signed char": np.int8,
    "unsigned char": np.uint8,
}
_INSTANTIATION = re.compile(r"template __global__ void (\w+)<([^>]*)>\((.*)\);")


def compiler_reason() -> str | None:
    """Why kernels cannot run here (no host C++ compiler), or None."""
    return None if shutil.which("g++") else "g++ not installed"


def parse(instantiations: str) -> dict[str, list[str]]:
    """{name expression: [C parameter types]} from explicit instantiation lines."""
    kernels = {}
    for line in instantiations.splitlines():
        m = _INSTANTIATION.fullmatch(line.strip())
        if m:
            name, targs, params = m.groups()
            kernels[f"{name}<{targs}>"] = [p.strip() for p in params.split(",")]
    return kernels


def _host_fma() -> bool:
    try:
        return " fma " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


def _launcher(index: int, expression: str, params: list[str]) -> str:
    args = ", ".join(f"*({p}*)a[{i}]" for i, p in enumerate(params))
    return (
        f'extern "C" void launch_{index}(unsigned int g, unsigned int b, void** a) {{\n'
        "  gridDim = {g, 1, 1}; blockDim = {b, 1, 1};\n"
        "  for (unsigned int i = 0; i < g; ++i)\n"
        "    for (unsigned int j = 0; j < b; ++j) {\n"
        "      blockIdx = {i, 0, 0}; threadIdx = {j, 0, 0};\n"
        f"      {expression}({args});\n"
        "    }\n"
        "}\n"
    )


class HostKernel:
    """One instantiated kernel, called as CuPy calls a RawModule function."""

    def __init__(self, expression: str, params: list[str], fn):
        self.expression, self.params, self._fn = expression, params, fn
        self.launches = []  # (blocks, threads) of each call, for tests of the launch shape

    def _arg(self, i: int, param: str, value):
        where = f"{self.expression} argument {i} ({param})"
        if param.endswith("*"):
            pointee = param.removeprefix("const ").rstrip("*").strip()
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}: an array, not {type(value).__name__}")
            if value.dtype != C_TYPES[pointee]:
                raise TypeError(f"{where}: dtype {value.dtype}, expected {C_TYPES[pointee]}")
            if not value.flags.c_contiguous:
                raise TypeError(f"{where}: not C-contiguous (the kernel reads it flat)")
            return ctypes.c_void_p(value.ctypes.data)
        want = np.dtype(C_TYPES[param.removeprefix("const ").strip()])
        if not isinstance(value, np.generic) or value.dtype != want:
            raise TypeError(f"{where}: {type(value).__name__} {value!r}, expected {want}")
        return np.ctypeslib.as_ctypes_type(want)(value.item())

    def __call__(self, grid, block, args, **_):
        for shape in (grid, block):
            if not (isinstance(shape, tuple) and len(shape) == 1 and int(shape[0]) > 0):
                raise ValueError(f"{self.expression}: launch shape {shape!r}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.expression}: {len(args)} arguments for {len(self.params)}")
        values = [
            self._arg(i, p, v) for i, (p, v) in enumerate(zip(self.params, args, strict=True))
        ]
        pointers = (ctypes.c_void_p * len(values))(*(ctypes.addressof(v) for v in values))
        self.launches.append((int(grid[0]), int(block[0])))
        self._fn(ctypes.c_uint(int(grid[0])), ctypes.c_uint(int(block[0])), pointers)


class HostModule:
    """A kernel source compiled for the host, with every instantiation in ``instantiations``
    (the lines tinyalex's PTX test compiles too). Shared objects are cached in ``cache``."""

    def __init__(self, source: str, instantiations: str, cache: Path, fmad: bool = True):
        self.kernels = parse(instantiations)
        if not self.kernels:
            raise ValueError("no explicit instantiations found")
        text = PRELUDE + source + instantiations
        text += "".join(_launcher(i, e, p) for i, (e, p) in enumerate(self.kernels.items()))
        flags = ["-std=c++14", "-O1", "-shared", "-fPIC", "-fno-strict-aliasing"]
        flags += ["-ffp-contract=fast", "-mfma"] if fmad and _host_fma() else ["-ffp-contract=off"]
        key = hashlib.sha256((text + " ".join(flags)).encode()).hexdigest()[:16]
        lib = Path(cache) / f"kernels_{key}.so"
        if not lib.exists():
            cpp = lib.with_suffix(".cpp")
            cpp.write_text(text)
            proc = subprocess.run(
                ["g++", *flags, str(cpp), "-o", str(lib)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                raise RuntimeError(f"g++ failed:\n{proc.stderr}")
        self._lib = ctypes.CDLL(str(lib))
        self._functions = {}

    def get_function(self, expression: str) -> HostKernel:
        if expression not in self._functions:
            i = list(self.kernels).index(expression)  # ValueError: not instantiated
            self._functions[expression] = HostKernel(
                expression, self.kernels[expression], getattr(self._lib, f"launch_{i}")
            )
        return self._functions[expression]


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

    sources = {cuda.SOURCE: cuda.instantiations(), device.SOURCE: device.instantiations()}
    modules = []

    def raw_module(code, options=(), name_expressions=()):
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
        asarray=np.asarray,
        ascontiguousarray=np.ascontiguousarray,
        matmul=np.matmul,
        RawModule=raw_module,
        cuda=types.SimpleNamespace(Device=lambda: types.SimpleNamespace(id=0)),
        modules=modules,
    )
    for cached in (cuda.module, cuda.function, device._function):
        cached.cache_clear()
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
