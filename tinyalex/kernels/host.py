"""CUDA kernels run on the CPU: every thread of a launch, one after another.

Where no GPU is, the CUDA source still has to be right, and a learner still wants to see a
kernel run. This module compiles a kernel source as C++ for the host (g++) and runs a launch
``fn((blocks,), (threads,), args)`` by calling the kernel body once per (block, thread), with
``blockIdx``, ``threadIdx``, ``blockDim`` and ``gridDim`` set as the GPU would set them. That
is a faithful model of tinyalex's kernels: each is one thread per output element with a
grid-stride loop, and no thread reads what another writes (no shared memory, no atomics, no
``__syncthreads``). A kernel that relied on threads running together would need a different
model; none here does.

What it checks, besides the kernel's arithmetic and indexing:

- every argument against the kernel's C signature, as the GPU cannot: a pointer takes a
  C-contiguous NumPy array of the pointee's dtype, a value takes a NumPy scalar of exactly
  its type (CuPy would pass a ``float64`` scalar's 8 bytes to a ``float`` parameter);
- the launch shape: ``(blocks,)`` and ``(threads,)`` tuples, at most 2**31 - 1 blocks and
  1024 threads a block;
- with ``TINYALEX_HOST_ASAN=1`` in a process that preloads AddressSanitizer, that every read
  and write stays inside the arrays the kernel was given (:data:`SANITIZE_ENV`).

Floating point follows NVRTC's defaults: multiply-adds contracted into FMAs (``--fmad=true``)
where the host has FMA, IEEE division and square roots, denormals kept. ``rsqrt`` is
``1/sqrt`` here and approximate on the GPU (2 ulp), so results agree to float rounding, not
bit for bit, wherever a kernel takes one.

Use::

    from tinyalex.kernels import cuda, host
    module = host.HostModule(cuda.SOURCE, cuda.instantiations())
    relu = module.get_function("relu_forward<float, int>")
    relu((4,), (256,), (x, y, np.int32(x.size)))     # x, y: float32 NumPy arrays

The tests (tests/cuda_host.py) also stand NumPy in for CuPy inside the GPU wrappers, so every
layer's CUDA path runs in CI.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PRELUDE = r"""
// The CUDA names the kernels use, for the host (tinyalex/kernels/host.py).
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

# Set (to 1) in a process started with AddressSanitizer preloaded (LD_PRELOAD=$(g++
# -print-file-name=libasan.so)): kernels are then built with -fsanitize=address, and a read or
# write outside any NumPy array stops the process with a report (tests/test_cuda_on_host.py).
SANITIZE_ENV = "TINYALEX_HOST_ASAN"

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


@functools.cache
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
        for shape, most in ((grid, 2**31 - 1), (block, 1024)):  # the GPU's limits
            if not (isinstance(shape, tuple) and len(shape) == 1 and 0 < int(shape[0]) <= most):
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
    (the lines tinyalex's PTX test compiles too). Shared objects are cached in ``cache``
    (default: ``tinyalex-cuda-host`` in the temporary folder), keyed by the source's hash.
    ``fmad``: contract multiply-adds into FMAs, as NVRTC does by default."""

    def __init__(self, source: str, instantiations: str, cache=None, fmad: bool = True):
        self.kernels = parse(instantiations)
        if not self.kernels:
            raise ValueError("no explicit instantiations found")
        text = PRELUDE + source + instantiations
        text += "".join(_launcher(i, e, p) for i, (e, p) in enumerate(self.kernels.items()))
        flags = ["-std=c++14", "-O2", "-shared", "-fPIC", "-fno-strict-aliasing"]
        if os.environ.get(SANITIZE_ENV, "") not in ("", "0"):
            flags += ["-fsanitize=address", "-fno-omit-frame-pointer"]
        flags += ["-ffp-contract=fast", "-mfma"] if fmad and _host_fma() else ["-ffp-contract=off"]
        key = hashlib.sha256((text + " ".join(flags)).encode()).hexdigest()[:16]
        cache = Path(cache or Path(tempfile.gettempdir()) / "tinyalex-cuda-host")
        cache.mkdir(parents=True, exist_ok=True)
        lib = cache / f"kernels_{key}.so"
        if not lib.exists():
            cpp = lib.with_suffix(f".{os.getpid()}.cpp")
            cpp.write_text(text)
            tmp = lib.with_suffix(f".{os.getpid()}.so")  # then renamed: no half-written .so
            proc = subprocess.run(
                ["g++", *flags, str(cpp), "-o", str(tmp)], capture_output=True, text=True
            )
            cpp.unlink()
            if proc.returncode != 0:
                raise RuntimeError(f"g++ failed:\n{proc.stderr}")
            os.replace(tmp, lib)
        self._lib = ctypes.CDLL(str(lib))
        self._functions = {}

    def get_function(self, expression: str) -> HostKernel:
        if expression not in self._functions:
            i = list(self.kernels).index(expression)  # ValueError: not instantiated
            self._functions[expression] = HostKernel(
                expression, self.kernels[expression], getattr(self._lib, f"launch_{i}")
            )
        return self._functions[expression]
