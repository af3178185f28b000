"""Dropout's GPU masks: a counter-based hash keyed by the layer's NumPy generator, so the
checkpointed generator state fixes every later mask and a resumed CuPy run is exact.

Here: the hash in NumPy against the same arithmetic in plain Python integers, its
statistics, and the layer drawing one key per forward. Where a GPU works: CuPy's masks equal
NumPy's bit for bit, and ``train --backend cupy`` resumed (at an epoch end and mid-epoch)
ends with the same parameters as a straight run.
"""

import numpy as np
import pytest
from helpers import StopAfter

from tinyalex import backend, checkpoint, train
from tinyalex.layers import Dropout
from tinyalex.layers.dropout import hashed_uniform

MASK = (1 << 64) - 1


def _splitmix(key: int, i: int) -> float:
    """The hash of element i, in Python's unbounded integers cut to 64 bits."""
    h = (i * 0x9E3779B97F4A7C15 + key) & MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    h ^= h >> 31
    return (h >> 40) / 2**24


def test_hash_equals_plain_integer_arithmetic():
    key = 0x1234_5678_9ABC_DEF0
    u = hashed_uniform(key, (3, 7), np)
    assert u.dtype == np.float32 and u.shape == (3, 7)
    want = [_splitmix(key, i) for i in range(21)]
    np.testing.assert_array_equal(u.ravel(), np.array(want, dtype=np.float32))


def test_hash_is_uniform_and_keys_give_new_streams():
    u = hashed_uniform(7, (1000, 1000), np).ravel().astype(np.float64)
    assert 0 <= u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 2e-3 and abs(u.var() - 1 / 12) < 1e-3
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5e-3  # neighbours independent
    keep = u >= 0.5
    assert abs(keep.mean() - 0.5) < 2e-3
    assert np.array_equal(hashed_uniform(7, (50,), np), hashed_uniform(7, (50,), np))
    assert np.mean(hashed_uniform(8, (1000,), np) == hashed_uniform(7, (1000,), np)) < 0.01


# ----------------------------------------------------------------- GPU only (skip here)
@pytest.fixture
def cp():
    if not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    return backend.cupy


def test_cupy_hash_equals_numpy(cp):
    for key in (0, 1, 2**63 - 1, 0xDEADBEEF):
        got = cp.asnumpy(hashed_uniform(key, (129, 33), cp))
        np.testing.assert_array_equal(got, hashed_uniform(key, (129, 33), np))


def test_cupy_dropout_masks_follow_the_host_generator_state(cp):
    layer = Dropout(0.5, rng=3)
    x = cp.ones((64, 100), dtype=cp.float32)
    layer.forward(x)
    state = layer.rng.bit_generator.state  # what the checkpoint keeps
    second = cp.asnumpy(layer.forward(x))
    restored = Dropout(0.5, rng=99)
    restored.rng.bit_generator.state = state
    np.testing.assert_array_equal(cp.asnumpy(restored.forward(x)), second)
    assert 0.4 < (second != 0).mean() < 0.6 and set(np.unique(second)) == {0.0, 2.0}


TINY = ["--backend", "cupy", "--limit", "48", "--val-limit", "40", "--batch-size", "16"]


def test_cupy_resume_is_exact_at_epoch_end_and_mid_epoch(cp, tmp_path, monkeypatch):
    def run(name, *extra):
        return train.main([*TINY, "--seed", "3", "--out", str(tmp_path / name), *extra])

    def params(name):
        return checkpoint.load(tmp_path / name / "checkpoint.npz")["params"]

    assert run("straight", "--epochs", "2") == 0
    assert run("split", "--epochs", "1") == 0
    assert (
        train.main(["--resume", str(tmp_path / "split" / "checkpoint.npz"), "--epochs", "2"]) == 0
    )
    with monkeypatch.context() as m:
        m.setattr(train, "StopRequest", StopAfter(4))  # 3 batches an epoch: stop in epoch 2
        assert run("stopped", "--epochs", "2") == 130
    out = tmp_path / "stopped"
    rc = train.main(["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--out", str(out)])
    assert rc == 0
    a = params("straight")
    for other in ("split", "stopped"):
        b = params(other)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{other}: {name}")
