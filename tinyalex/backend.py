"""The array backend: the only module that knows about NumPy vs CuPy.

Every layer asks its input which module to use::

    xp = array_module(x)      # numpy for numpy arrays, cupy for cupy arrays

so one function body serves both backends. Models and batches move with
:func:`to_device`; results come back with :func:`to_numpy`.

``import cupy`` succeeds on machines without a GPU (the failure comes at the
first allocation), so :func:`cupy_available` really allocates before it says
yes.
"""

from __future__ import annotations

import functools
import os

import numpy as np

try:  # CuPy is optional: requirements-gpu.txt installs it.
    import cupy
except Exception:  # ImportError, or a broken CUDA install raising at import
    cupy = None

BACKENDS = ("numpy", "cupy")


class BackendError(RuntimeError):
    """A backend was asked for that this machine cannot provide."""


@functools.cache
def cupy_available() -> bool:
    """True only when CuPy imports *and* a CUDA device accepts an allocation."""
    if cupy is None:
        return False
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False
        (cupy.arange(4, dtype=cupy.float32) * 2).sum().item()
        return True
    except Exception:
        return False


def cupy_unavailable_reason() -> str:
    """One line saying why the cupy backend cannot be used here ('' if it can)."""
    if cupy is None:
        return "CuPy is not installed (pip install -r requirements-gpu.txt)"
    if not cupy_available():
        return "CuPy is installed but no CUDA device works on this machine"
    return ""


def is_cupy_array(x) -> bool:
    return cupy is not None and isinstance(x, cupy.ndarray)


def array_module(x):
    """numpy or cupy, whichever module owns ``x`` (numpy for anything else)."""
    return cupy if is_cupy_array(x) else np


def backend_name(x) -> str:
    """'cupy' for a CuPy array, else 'numpy'."""
    return "cupy" if is_cupy_array(x) else "numpy"


def get_module(backend: str):
    """The array module for a backend name; a clear error if it cannot be used."""
    if backend == "numpy":
        return np
    if backend == "cupy":
        reason = cupy_unavailable_reason()
        if reason:
            raise BackendError(f"--backend cupy: {reason}")
        return cupy
    raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


def to_numpy(x) -> np.ndarray:
    """A NumPy array holding ``x`` (copied off the GPU if it lives there)."""
    if is_cupy_array(x):
        return cupy.asnumpy(x)
    return np.asarray(x)


def to_device(x, backend: str):
    """``x`` as an array of ``backend`` ('numpy' or 'cupy'); no copy if already there."""
    if backend == "numpy":
        return to_numpy(x)
    return get_module(backend).asarray(x)


def synchronize(x=None) -> None:
    """Wait for queued GPU work (a no-op on NumPy); for honest timings."""
    if cupy is not None and (x is None or is_cupy_array(x)) and cupy_available():
        cupy.cuda.get_current_stream().synchronize()


# TF32 for float32 matrix products on the GPU (kernels/cublas.py reads it at every product):
# inputs rounded to TF32's 10-bit mantissa, products summed in FP32, on tensor cores. Off by
# default; ``--tf32`` turns it on, and so does CuPy's own switch CUPY_TF32=1 in the environment.
_tf32 = os.environ.get("CUPY_TF32", "0").strip() not in ("", "0")


def set_tf32(enabled: bool) -> None:
    """Allow (True) or forbid (False) TF32 tensor cores for float32 GEMMs on the GPU."""
    global _tf32
    _tf32 = bool(enabled)


def tf32_enabled() -> bool:
    """Whether float32 GEMMs on the GPU may use TF32 (see :func:`set_tf32`)."""
    return _tf32
