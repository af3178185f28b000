"""Conv's GEMMs on the CPU, split over threads by us, each piece a single-threaded BLAS call.

    y  = W_g @ cols_g          (G, O/G, CKK) @ (G, CKK, NHW)   split along NHW (columns)
    y^T = cols_g^T @ W_g^T     (G, NHW, CKK) @ (G, CKK, O/G)   split along NHW (rows; the
                                                               channels-last patch matrix)
    dW = dy_g @ cols_g^T       (G, O/G, NHW) @ (G, NHW, CKK)   split along NHW (the sum)
    dc = W_g^T @ dy_g          (G, CKK, O/G) @ (G, O/G, NHW)   split along NHW (columns)

Why: OpenBLAS's own threading synchronises its threads once per block of the inner
dimension. conv's weight gradient has a tiny output (O x CKK) and a huge inner dimension
(N*OH*OW), so it is mostly synchronisation; when the machine's cores are shared with
other work every synchronisation can wait a whole scheduler slice (measured here: conv1's
dW 1.9 s with two OpenBLAS threads, 13 ms with one). Splitting the work into one piece
per thread, each a single-threaded GEMM, leaves one join per product.

OpenBLAS is held at one thread only for the duration of these calls (through its
``*_set_num_threads`` entry point, found with ctypes as threadpoolctl does); where that
entry point cannot be found the products are plain ``numpy.matmul`` calls.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_FLOPS = 2e7  # below this a product is one plain call: threads cost more than they save
PIECES_PER_THREAD = 4  # pieces handed out as threads come free (see _run_split)
_lock = threading.Lock()


@functools.cache
def _blas_thread_api():
    """(get, set) for numpy's OpenBLAS thread count, or None when not found."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower()})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                return get, put
    return None


@functools.cache
def thread_pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool of ``workers`` threads (the GEMM pieces here, cpu.py's im2col copies)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinyalex-gemm")


def threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:
        return os.cpu_count() or 1


def _run_split(tasks) -> None:
    """Run callables on ``threads()`` threads (this one and the pool's), BLAS single-threaded.

    There are more pieces than threads, handed out one at a time as threads come free: on
    a shared machine one core is often busier than the other, and with one fixed piece per
    thread the product would wait for the slow one.
    """
    api = _blas_thread_api()
    workers = min(threads(), len(tasks))
    queue = iter(tasks)
    pull = threading.Lock()

    def drain():
        while True:
            with pull:
                task = next(queue, None)
            if task is None:
                return
            task()

    with _lock:  # one split product at a time, and the thread count restored after it
        before = api[0]()
        api[1](1)
        try:
            futures = [thread_pool(workers - 1).submit(drain) for _ in range(workers - 1)]
            drain()
            for fut in futures:
                fut.result()
        finally:
            api[1](before)


def _bounds(size: int, parts: int):
    step = -(-size // parts)
    return [(a, min(size, a + step)) for a in range(0, size, step)]


def _parts(flops: float) -> int:
    """Pieces for a product: 1 below MIN_FLOPS, else up to PIECES_PER_THREAD per thread,
    none smaller than MIN_FLOPS."""
    t = threads()
    if t < 2 or flops < MIN_FLOPS or _blas_thread_api() is None:
        return 1
    most = t * PIECES_PER_THREAD
    return max(t, min(most, int(flops // MIN_FLOPS))) if MIN_FLOPS > 0 else most


def _single(a, b, out=None):
    """A product too small to split: one BLAS call, on this thread alone. Left to
    OpenBLAS's own threads it can wait milliseconds for a worker to wake on a busy machine
    (measured: cifar's fc4, 19 MFLOP, 20-30 ms)."""
    api = _blas_thread_api()
    if api is None:
        return np.matmul(a, b, out=out)
    with _lock:
        before = api[0]()
        api[1](1)
        try:
            return np.matmul(a, b, out=out)
        finally:
            api[1](before)


def matmul_cols(a, b, out=None):
    """a (G, M, K) @ b (G, K, N) -> (G, M, N), the N columns split over threads; into
    ``out`` (G, M, N) when given."""
    g, m, k = a.shape
    n = b.shape[2]
    parts = _parts(2.0 * g * m * k * n)
    if parts == 1 or n < parts:
        return _single(a, b, out)
    if out is None:
        out = np.empty((g, m, n), dtype=np.result_type(a, b))

    def piece(lo, hi):
        return lambda: np.matmul(a, b[:, :, lo:hi], out=out[:, :, lo:hi])

    _run_split([piece(lo, hi) for lo, hi in _bounds(n, parts)])
    return out


def matmul_rows(a, b):
    """a (G, M, K) @ b (G, K, N) -> (G, M, N), the M rows split over threads. ``a`` may be a
    strided view (each a[g] with unit column stride, as the channels-last patch matrix)."""
    g, m, k = a.shape
    n = b.shape[2]
    parts = _parts(2.0 * g * m * k * n)
    if parts == 1 or m < parts:
        return _single(a, b)
    out = np.empty((g, m, n), dtype=np.result_type(a, b))

    def piece(gi, lo, hi):  # 2-D pieces: each one BLAS call
        return lambda: np.matmul(a[gi, lo:hi], b[gi], out=out[gi, lo:hi])

    per_group = -(-parts // g)
    _run_split([piece(gi, lo, hi) for gi in range(g) for lo, hi in _bounds(m, per_group)])
    return out


def matmul_sum(a, b):
    """a (G, M, K) @ b (G, K, N) -> (G, M, N), the K-long sum split over threads."""
    g, m, k = a.shape
    n = b.shape[2]
    parts = min(_parts(2.0 * g * m * k * n), 2 * threads())  # each piece a partial (G, M, N)
    if parts == 1 or k < parts:
        return _single(a, b)
    bounds = _bounds(k, parts)
    partial = [None] * len(bounds)

    def piece(i, lo, hi):
        def run():
            partial[i] = np.matmul(a[:, :, lo:hi], b[:, lo:hi, :])

        return run

    _run_split([piece(i, lo, hi) for i, (lo, hi) in enumerate(bounds)])
    out = partial[0]
    for p in partial[1:]:
        out += p
    return out


def matmul2d(a, b):
    """a (M, K) @ b (K, N) -> (M, N), the N columns split over threads (Linear's products)."""
    return matmul_cols(a[None], b[None])[0]
