"""Mini-batches, prepared by a background thread while the model trains on the last one."""

from __future__ import annotations

import queue
import threading

import numpy as np

_DONE = object()  # the worker's "no more batches" mark


class _Failure:
    """Carries an exception from the worker thread to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


class BatchLoader:
    """Iterate over (images, labels) in mini-batches, in an order fixed by (seed, epoch).

    Args:
        x: images, any array indexable by an index array, e.g. uint8 (N, 3, H, W).
        y: labels (N,).
        batch_size: images per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: a new random order each epoch; False keeps the stored order.
        seed, epoch: the order is ``default_rng([seed, epoch]).permutation(N)`` and depends
            on nothing else, so a run resumed at epoch e sees exactly the batches it would
            have seen (call ``set_epoch`` before each epoch).
        drop_last: skip a final batch smaller than ``batch_size``.
        transform: optional ``transform(xb, yb, rng) -> (xb, yb)`` (augmentation), called in
            the background thread with ``rng = default_rng([seed, epoch, batch_index, 1])``:
            the same random crops and flips every time, however the threads are scheduled.
        prefetch: batches prepared ahead (the queue bound); 0 prepares each batch in the
            consumer's thread, which is easier to debug.
        start_batch: skip the first batches of the epoch (to resume mid-epoch).

    Yields:
        (xb, yb): fresh contiguous NumPy arrays ``x[idx]``, ``y[idx]`` (or transform's output).
    """

    def __init__(
        self,
        x,
        y,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        drop_last: bool = False,
        transform=None,
        prefetch: int = 2,
        start_batch: int = 0,
    ):
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} items but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.transform, self.prefetch = transform, prefetch
        self.epoch, self.start_batch = epoch, start_batch
        self._thread: threading.Thread | None = None  # the worker of the latest iteration

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Choose the epoch (and so the order) of the next iteration."""
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        n, b = len(self.x), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def order(self) -> np.ndarray:
        """The epoch's sample indices, int64 (N,)."""
        n = len(self.x)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def batch_rng(self, index: int) -> np.random.Generator:
        """The augmentation generator of batch ``index`` of the current epoch: it depends on
        (seed, epoch, index) alone, so a batch augmented elsewhere (on the GPU) draws alike."""
        return np.random.default_rng([self.seed, self.epoch, index, 1])

    def _make_batch(self, order: np.ndarray, index: int):
        idx = order[index * self.batch_size : (index + 1) * self.batch_size]
        xb, yb = np.ascontiguousarray(self.x[idx]), np.ascontiguousarray(self.y[idx])
        if self.transform is not None:
            xb, yb = self.transform(xb, yb, self.batch_rng(index))
        return xb, yb

    def __iter__(self):
        order, batches = self.order(), range(self.start_batch, len(self))
        if self.prefetch <= 0:
            for index in batches:
                yield self._make_batch(order, index)
            return

        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def hand_over(item) -> bool:
            """Put ``item`` in the queue, giving up if the consumer has stopped listening."""
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        def work():
            try:
                for index in batches:
                    if not hand_over(self._make_batch(order, index)):
                        return
                hand_over(_DONE)
            except BaseException as error:  # reported to the consumer, who re-raises it
                hand_over(_Failure(error))

        thread = threading.Thread(target=work, name="BatchLoader", daemon=True)
        self._thread = thread
        thread.start()
        try:
            while (item := ready.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            # reached on exhaustion, on an error, and when the consumer breaks out of its
            # loop (the generator is closed): tell the worker to stop, and wait for it
            stop.set()
            thread.join()
