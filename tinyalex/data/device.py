"""Batches made where the model runs, so the GPU never waits for the host.

On the CPU, ``BatchLoader`` gathers and augments each batch in a background thread. On the
GPU that would cast every batch to float32 on the host and copy it over (a 256 px batch of
128 is 100 MB); here the uint8 images go to the device instead, and the batch is made there:

- **Resident**: when the uint8 set takes at most ``RESIDENT_FRACTION`` of the device's free
  memory (:func:`fits_on_device`), it is copied to the device once; a batch is then a list of
  row numbers, nothing crosses the bus but a few hundred bytes of parameters.
- **Streamed**: otherwise each batch's uint8 rows are gathered on the host into page-locked
  (pinned) memory by a worker thread and copied on a side stream, the next batch in flight
  while this one trains (two buffers; CUDA events order copy, use and reuse on the device,
  so the host never waits for the GPU).

Augmentation then runs on the device with the parameters drawn from the loader's
``batch_rng(index)``, the same generator the host path gives its transform: the paper-style
pipelines as one fused pass over the uint8 pixels (augment/device.py), any other pipeline
composed step by step on float32 device arrays. Either way a batch equals the host
pipeline's bit for bit (tests/test_device_pipeline.py runs all of this with NumPy as the
"device"). Evaluation and ten-crop testing use the same two modes (:class:`EvalBatches`),
and :func:`score` adds loss and error counts up on the device, reading them once at the end.

    batches = TrainBatches(loader, train_view, cupy)     # loader: a BatchLoader (no transform)
    for x, y in batches:                                 # x float32 (N, C, s, s), y (N,)
        ...
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..augment.device import FusedCrop
from ..backend import array_module

# Keep the uint8 set on the device when it takes at most this share of the free memory: the
# rest is for the model's activations, gradients and workspaces (alexnet b128: ~6 GiB).
RESIDENT_FRACTION = 0.5


def fits_on_device(nbytes: int, free_bytes: int, fraction: float = RESIDENT_FRACTION) -> bool:
    """Whether a set of ``nbytes`` should live on a device with ``free_bytes`` free."""
    return nbytes <= fraction * free_bytes


def free_device_bytes(xp) -> int:
    """Free device memory: the driver's free bytes plus what CuPy's pool holds unused."""
    if xp is np:
        raise ValueError("free_device_bytes: NumPy has no device memory")
    free, _ = xp.cuda.runtime.memGetInfo()
    return int(free) + int(xp.get_default_memory_pool().free_bytes())


class DeviceSet:
    """uint8 images (N, C, H, W) and labels (N,) served in batches on ``xp``'s device.

    ``resident``: True copies the set to the device now, False streams each batch through
    pinned memory, None decides by :func:`fits_on_device` (always resident on NumPy, where
    the "device" is the host). Labels are always resident (8 bytes an image).
    """

    def __init__(self, x, y, xp, *, resident: bool | None = None, batch_size: int = 128):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        self.x, self.xp = x, xp
        if resident is None:
            resident = xp is np or fits_on_device(x.nbytes, free_device_bytes(xp))
        self.resident = resident
        self.y = xp.asarray(np.asarray(y))
        self.images = xp.asarray(x) if resident else None
        self._stager = None if resident else _Stager(x, batch_size, xp)

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, order: np.ndarray, batch_size: int, start: int = 0, stop: int | None = None):
        """Yield ``(index, rows, images, src, labels)`` for batches ``start..stop`` of ``order``.

        ``images[src]`` are the batch's uint8 images (the resident set and ``src = rows``, or
        the staged batch and ``src = 0..n-1``); labels (n,) are on the device. Before asking
        for the next batch, the caller must have queued everything that reads ``images``
        (a staged buffer is refilled two batches later).
        """
        count = -(-len(order) // batch_size)
        stop = count if stop is None else min(stop, count)
        index_rows = [(i, order[i * batch_size : (i + 1) * batch_size]) for i in range(start, stop)]
        if self.resident:
            for i, rows in index_rows:
                yield i, rows, self.images, rows, self.y[self.xp.asarray(rows)]
            return
        yield from self._stager.batches(index_rows, self.y)


class _Stager:
    """Two pinned host buffers and two device buffers; a worker thread fills the next batch.

    Per buffer k: the worker waits (on the host) until k's previous copy has left the pinned
    buffer, gathers the rows into it, makes the side stream wait for the event "k consumed"
    that the main stream recorded, and queues the copy, recording "k copied". The main
    stream waits for "k copied" before its kernels read the batch. On NumPy the buffers are
    plain arrays and the events are skipped, so the same code runs in the tests.
    """

    DEPTH = 2

    def __init__(self, x, batch_size: int, xp):
        self.x, self.xp = x, xp
        shape = (batch_size, *x.shape[1:])
        self.host = [_pinned_empty(shape, x.dtype, xp) for _ in range(self.DEPTH)]
        self.device = [xp.empty(shape, dtype=x.dtype) for _ in range(self.DEPTH)]
        self.on_gpu = xp is not np
        self.stream = xp.cuda.Stream(non_blocking=True) if self.on_gpu else None
        self.copied = [None] * self.DEPTH
        self.consumed = [None] * self.DEPTH

    def _fill(self, k: int, rows: np.ndarray):
        n = len(rows)
        if self.copied[k] is not None:
            self.copied[k].synchronize()  # the last copy out of host[k] has finished
        host = self.host[k][:n]
        np.take(self.x, rows, axis=0, out=host, mode="clip")  # rows are valid: no buffering
        if not self.on_gpu:
            self.device[k][:n] = host
            return self.device[k][:n]
        if self.consumed[k] is not None:
            self.stream.wait_event(self.consumed[k])  # kernels reading device[k] are done
        self.device[k][:n].set(host, stream=self.stream)
        self.copied[k] = self.stream.record()
        return self.device[k][:n]

    def batches(self, index_rows, y):
        xp = self.xp
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinyalex-stage") as pool:
            pending = {}

            def submit(j):
                if j < len(index_rows):
                    pending[j] = pool.submit(self._fill, j % self.DEPTH, index_rows[j][1])

            submit(0)
            submit(1)
            for j, (i, rows) in enumerate(index_rows):
                images = pending.pop(j).result()
                k = j % self.DEPTH
                if self.on_gpu:
                    xp.cuda.get_current_stream().wait_event(self.copied[k])
                yield i, rows, images, np.arange(len(rows)), y[xp.asarray(rows)]
                if self.on_gpu:  # the consumer has queued its reads of device[k]
                    self.consumed[k] = xp.cuda.get_current_stream().record()
                submit(j + 2)


def _pinned_empty(shape, dtype, xp):
    """A page-locked host array on CuPy (copies from it run asynchronously), else np.empty."""
    if xp is np:
        return np.empty(shape, dtype=dtype)
    count = int(np.prod(shape))
    mem = xp.cuda.alloc_pinned_memory(count * np.dtype(dtype).itemsize)
    return np.frombuffer(mem, dtype=dtype, count=count).reshape(shape)


class TrainBatches:
    """A ``BatchLoader``'s epoch made on the device: same order, same augmentation draws.

    loader: the BatchLoader (its transform is not used); view: the training pipeline
    ``(batch, rng) -> batch`` (a ``make_pipeline`` Compose); xp: the device's module.
    Yields ``(x, y)``: float32 (N, C, s, s) and labels (N,), on xp's device.
    """

    def __init__(self, loader, view, xp, *, resident: bool | None = None):
        self.loader, self.view, self.xp = loader, view, xp
        self.fused = FusedCrop.from_pipeline(view)
        self.set = DeviceSet(
            loader.x, loader.y, xp, resident=resident, batch_size=loader.batch_size
        )

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        loader = self.loader
        h, w = loader.x.shape[-2:]
        batches = self.set.batches(
            loader.order(), loader.batch_size, loader.start_batch, len(loader)
        )
        for index, _, images, src, labels in batches:
            x = None
            if self.fused is not None:
                x = _guarded(self, self._fused_batch, images, src, h, w, index)
            if x is None:  # any other pipeline: its own steps, on float32 device arrays
                xb = images[self.xp.asarray(src)].astype(self.xp.float32)
                x = self.view(xb, loader.batch_rng(index))
            yield x, labels

    def _fused_batch(self, images, src, h, w, index):
        views = self.fused.draw(src, h, w, self.loader.batch_rng(index))
        return self.fused(images, views)


class EvalBatches:
    """A set's evaluation views made on the device, in order: (V, N, C, s, s) and labels.

    view: the run's eval transform (``run.eval_transform``: batch -> (V, N, C, s, s));
    fused: a :class:`FusedCrop` for the same views (:func:`fused_eval`) or None to run
    ``view`` on float32 device arrays; crops: 1 or 10 (ten-crop, P §4.1).
    """

    def __init__(self, x, y, batch_size, xp, view, *, fused=None, crops=1, resident=None):
        self.x, self.batch_size, self.xp = x, batch_size, xp
        self.view, self.fused, self.crops = view, fused, crops
        self.set = DeviceSet(x, y, xp, resident=resident, batch_size=batch_size)

    def __iter__(self):
        h, w = self.x.shape[-2:]
        order = np.arange(len(self.x))
        for _, _, images, src, labels in self.set.batches(order, self.batch_size):
            views = None
            if self.fused is not None:
                views = _guarded(self, self._fused_views, images, src, h, w)
            if views is None:
                views = self.view(images[self.xp.asarray(src)].astype(self.xp.float32))
            yield views, labels

    def _fused_views(self, images, src, h, w):
        if self.crops == 10:
            flat = self.fused(images, self.fused.ten_crop(src, h, w))
            return flat.reshape(10, len(src), *flat.shape[1:])
        return self.fused(images, self.fused.draw(src, h, w, None))[None]


FALLBACKS: list = []  # errors that turned a fused pass into the composed steps


def _guarded(batches, make, *args):
    """``make(*args)``; on a GPU error, warn once, switch ``batches`` to the composed steps for
    good and return None (the caller recomputes the batch from the same generator). The
    kernel's own test (tests/test_device_pipeline.py) still fails on such an error."""
    try:
        return make(*args)
    except Exception as e:
        if batches.xp is np:
            raise
        FALLBACKS.append(repr(e))
        warnings.warn(f"fused crop kernel failed ({e!r}); composing the steps", stacklevel=3)
        batches.fused = None
        return None


def fused_eval(preset: str, crop_size: int, *, mean=None, std=None):
    """The fused form of ``make_eval(preset, ...)``'s views, or None for TF's preset
    (whose per-image standardisation is not a crop step)."""
    from ..augment.crop import CenterCrop

    if preset == "tf":
        return None
    if mean is not None and std is not None:
        mean = np.asarray(mean).reshape(-1)
    return FusedCrop(crop_size, CenterCrop(crop_size), mean=mean, std=std)


def score(model, batches) -> dict:
    """Mean cross-entropy and top-1 / top-5 error of the view-averaged softmax, added up on
    the device (one read at the end); the same numbers as ``run.score``."""
    from ..run import predict_probs

    total_loss = top1 = top5 = None
    n = 0
    for views, yb in batches:
        xp = array_module(yb)
        probs = predict_probs(model, views, lambda v: v)
        rows = xp.arange(len(yb))
        loss = (-xp.log(xp.maximum(probs[rows, yb], 1e-12)).sum()).astype(xp.float64)
        k = min(5, probs.shape[1])
        ranked = xp.argsort(-probs, axis=1)[:, :k]
        hit1 = (ranked[:, 0] == yb).sum()
        hit5 = (ranked == yb[:, None]).any(axis=1).sum()
        if total_loss is None:  # 0.0 + loss is loss: the same sums as run.score's
            total_loss, top1, top5 = loss, hit1, hit5
        else:
            total_loss, top1, top5 = total_loss + loss, top1 + hit1, top5 + hit5
        n += len(yb)
    if n == 0:
        raise ValueError("score: no images")
    total_loss, top1, top5 = float(total_loss), int(top1), int(top5)  # the one read
    return {"loss": total_loss / n, "top1_error": 1 - top1 / n, "top5_error": 1 - top5 / n}


__all__ = [
    "RESIDENT_FRACTION",
    "DeviceSet",
    "EvalBatches",
    "TrainBatches",
    "fits_on_device",
    "free_device_bytes",
    "fused_eval",
    "score",
]
