"""Fast paths for the layers: numba kernels on the CPU (cpu.py), CUDA kernels on CuPy (cuda.py).

Each layer has three versions (docs/style.md §2): the loops of tinyalex/reference.py (the
specification), its own vectorised NumPy/CuPy code (the *plain path*, what a learner reads),
and the fast path here. A layer asks :func:`for_array` once per call::

    kern = kernels.for_array(x, self.fast)   # kernels.cpu, kernels.cuda, or None
    y = kern.relu_forward(x) if kern else xp.maximum(x, 0)

``kernels.cpu`` and ``kernels.cuda`` offer the same functions under the same names, so the
layer never asks which backend it is on. Choices between fast variants (conv's GEMMs split
over threads, dx computed as a convolution) are made inside those modules, not in the layers.

The choice is made per call, from the array itself (never from a global backend):

- ``fast=False`` (a function argument, or ``layer.fast = False`` on a layer) always
  takes the plain path; ``fast=True`` insists on the kernel and raises if it cannot run;
  ``fast=None`` (the default) takes the kernel where one can run.
- The environment variable ``TINYALEX_KERNELS=0`` turns every ``fast=None`` call into
  the plain path, to compare the two (``TINYALEX_KERNELS=0 python -m tinyalex.bench``).

Kernels take float32 and float64 only; other dtypes take the plain path.

:func:`workspace` is the one scratch buffer (per device and dtype) that every Conv2D which
does not keep its im2col matrix writes it into (``Conv2D.keep_cols``): the peak then holds
the largest layer's patch matrix, not the sum of all of them.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

from ..backend import array_module, is_cupy_array

ENV_VAR = "TINYALEX_KERNELS"
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def enabled() -> bool:
    """False when ``TINYALEX_KERNELS=0`` (read at every call, so tests can set it)."""
    return os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except Exception:  # not installed, or broken against this numpy
        return False
    return True


def cuda_available() -> bool:
    from . import cuda

    return cuda.available()


def use_fast(x, fast: bool | None = None) -> bool:
    """Whether a layer should run its kernel on array ``x`` (see the module doc)."""
    if fast is False:
        return False
    on_gpu = is_cupy_array(x)
    ok = x.dtype in _FLOATS and (cuda_available() if on_gpu else numba_available())
    if fast is True:
        if not ok:
            where = "CuPy/CUDA" if on_gpu else "numba"
            raise RuntimeError(
                f"fast=True but no {where} kernel can run on a {x.dtype} array here "
                "(kernels need float32/float64 and numba or a CUDA device)"
            )
        return True
    return ok and enabled()


def for_array(x, fast: bool | None = None):
    """The kernel module for array ``x``: :mod:`kernels.cpu` (numba) for a NumPy array,
    :mod:`kernels.cuda` for a CuPy array, or None when the plain path should run
    (``fast`` as in :func:`use_fast`)."""
    if not use_fast(x, fast):
        return None
    return cuda_kernels() if is_cupy_array(x) else numba_kernels()


def numba_kernels():
    """The numba kernel module, imported on first use (importing numba takes a second)."""
    from . import cpu as module

    return module


def gemm_kernels():
    """conv's CPU GEMMs split over threads (gemm.py)."""
    from . import gemm as module

    return module


def cuda_kernels():
    """The CUDA kernel module."""
    from . import cuda as module

    return module


def reuse(out, shape, dtype, xp=np):
    """``out`` as an array of ``shape``, if it is a contiguous ``xp`` array of that size and
    dtype (a view of it: nothing is copied); else None. How the kernels write into a
    caller's buffer (a kept patch matrix, the shared workspace, a spent array)."""
    if (
        isinstance(out, xp.ndarray)
        and out.dtype == dtype
        and out.size == math.prod(int(d) for d in shape)
        and out.flags.c_contiguous
    ):
        return out.reshape(shape)
    return None


# --------------------------------------------------------------------------- shared workspace
_WORKSPACES: dict = {}  # (module name, device id, dtype) -> flat array


def _workspace_key(like):
    device = like.device.id if is_cupy_array(like) else None
    return (array_module(like).__name__, device, np.dtype(like.dtype))


def workspace(like, shape) -> object:
    """An array of ``shape`` and ``like``'s dtype, on ``like``'s device, that is a view of
    the one flat buffer shared by every caller with that device and dtype.

    Its contents are scratch: the next caller overwrites them, so a caller uses the array
    within one call and keeps no reference (Conv2D recomputes its im2col in backward when
    it uses this). The buffer only grows; growing drops the old one first, so on the GPU
    the memory pool can hand that block to the next allocation.
    """
    size = math.prod(int(d) for d in shape)
    key = _workspace_key(like)
    buf = _WORKSPACES.get(key)
    if buf is None or buf.size < size:
        _WORKSPACES.pop(key, None)
        del buf
        buf = _WORKSPACES[key] = array_module(like).empty(max(size, 1), dtype=like.dtype)
    return buf[:size].reshape(shape)


def workspace_bytes(like=None) -> int:
    """Bytes held by the shared workspaces (those of ``like``'s module, device and dtype
    only, when given)."""
    if like is not None:
        buf = _WORKSPACES.get(_workspace_key(like))
        return 0 if buf is None else int(buf.nbytes)
    return sum(int(buf.nbytes) for buf in _WORKSPACES.values())


def clear_workspaces() -> None:
    """Drop every shared workspace (the next use allocates afresh)."""
    _WORKSPACES.clear()
