"""BatchLoader: exact coverage, order fixed by (seed, epoch), threads that finish."""

import threading
import time

import numpy as np
import pytest

from tinyalex.data import BatchLoader


def data(n=23):
    x = np.arange(n * 2 * 2, dtype=np.uint8).reshape(n, 1, 2, 2)
    return x, np.arange(n)


def loader_threads():
    return [t for t in threading.enumerate() if t.name == "BatchLoader" and t.is_alive()]


@pytest.mark.parametrize("prefetch", [0, 2])
def test_every_index_once_per_epoch(prefetch):
    x, y = data()
    loader = BatchLoader(x, y, 5, prefetch=prefetch)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(23))
    for xb, yb in batches:  # images travel with their labels, as contiguous copies
        assert np.array_equal(xb, x[yb]) and xb.flags.c_contiguous
        assert not np.shares_memory(xb, x)


def test_order_depends_only_on_seed_and_epoch():
    x, y = data()
    order = lambda **kw: np.concatenate([yb for _, yb in BatchLoader(x, y, 4, **kw)])  # noqa: E731
    assert np.array_equal(order(seed=1, epoch=3), order(seed=1, epoch=3))
    assert not np.array_equal(order(seed=1, epoch=3), order(seed=1, epoch=4))
    assert not np.array_equal(order(seed=1, epoch=3), order(seed=2, epoch=3))
    assert np.array_equal(order(shuffle=False), np.arange(23))
    loader = BatchLoader(x, y, 4, seed=1)
    loader.set_epoch(3)
    assert np.array_equal(np.concatenate([yb for _, yb in loader]), order(seed=1, epoch=3))


def test_drop_last_and_start_batch():
    x, y = data()
    loader = BatchLoader(x, y, 5, drop_last=True)
    assert len(loader) == 4 and [len(yb) for _, yb in loader] == [5, 5, 5, 5]
    full = [yb for _, yb in BatchLoader(x, y, 5, seed=7, epoch=2)]
    resumed = BatchLoader(x, y, 5, seed=7)
    resumed.set_epoch(2, start_batch=3)
    assert [list(yb) for _, yb in resumed] == [list(yb) for yb in full[3:]]


def test_transform_runs_in_worker_with_deterministic_rng():
    x, y = data(40)
    threads = []

    def jitter(xb, yb, rng):
        threads.append(threading.current_thread().name)
        time.sleep(rng.random() * 0.002)  # scheduling noise must not change the output
        return xb + rng.integers(0, 5, xb.shape).astype(np.uint8), yb * 10

    def run():
        return [(xb.copy(), yb.copy()) for xb, yb in BatchLoader(x, y, 6, transform=jitter)]

    first, second = run(), run()
    assert set(threads) == {"BatchLoader"}
    for (xa, ya), (xb, yb) in zip(first, second, strict=True):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    assert sorted(np.concatenate([yb for _, yb in first])) == list(range(0, 400, 10))
    assert any(not np.array_equal(xb, x[yb // 10]) for xb, yb in first)  # it did jitter


def test_worker_exception_reaches_consumer():
    x, y = data()

    def fail_on_third(xb, yb, rng):
        if fail_on_third.calls == 2:
            raise ValueError("bad batch")
        fail_on_third.calls += 1
        return xb, yb

    fail_on_third.calls = 0
    with pytest.raises(ValueError, match="bad batch"):
        for _ in BatchLoader(x, y, 4, transform=fail_on_third):
            pass
    assert loader_threads() == []


def test_breaking_early_stops_the_thread():
    x, y = data(1000)
    loader = BatchLoader(x, y, 2, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 1:
            break
    # the for loop dropped its generator: closing it stopped and joined the worker
    assert not loader._thread.is_alive()
    assert loader_threads() == []


def test_bad_arguments():
    x, y = data()
    with pytest.raises(ValueError):
        BatchLoader(x, y[:-1], 4)
    with pytest.raises(ValueError):
        BatchLoader(x, y, 0)
