"""Data parallel: N = 1, 2, 3 ranks train exactly as one process does (float64, 1e-10).

Each run is ``python -m tinyalex.parallel.check data`` under ``mpiexec -n N``: three SGD
steps of the tiny AlexNet (dropout, LRN, groups=2) on augmented global batches of 6, 5
and 2 images (split 2+2+2, 1+2+2 and 0+1+1 on three ranks: uneven, and a rank with no
rows). The reference is the plain single-process step on whole batches, run here; N = 1
runs in this process with the one-process communicator.
"""

import subprocess
import sys

import numpy as np
import pytest

from tinyalex.layers import Dropout
from tinyalex.parallel import DataParallel, SelfComm, shard
from tinyalex.parallel.check import parse_args, run
from tinyalex.parallel.launch import mpiexec_command
from tinyalex.parallel.tiny import tiny_alexnet
from tinyalex.parallel.traffic import data_parallel_bytes


def ranks_run(n, args, tmp_path):
    cmd = mpiexec_command(n)
    if cmd is None:
        pytest.skip("mpi4py or mpiexec is not installed (pip install mpi4py mpich)")
    out_file = tmp_path / f"run{n}.npz"
    out = subprocess.run(
        cmd + [sys.executable, "-m", "tinyalex.parallel.check", *args, "--out", str(out_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    with np.load(out_file) as f:
        return {k: f[k] for k in f.files}


def relative_error(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def assert_same_training(got, ref):
    compared = [k for k in ref if k.startswith(("param/", "first_grad/", "first_logits"))]
    assert len(compared) == 2 * 16 + 1  # 8 weight layers x (W, b), for params and grads
    for key in compared:
        assert relative_error(got[key], ref[key]) < 1e-10, key
    np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-12)


@pytest.fixture(scope="module")
def reference():
    return run(parse_args(["data", "--reference", "--out", "unused"]))


@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_ranks_equal_one_process(ranks, reference, tmp_path):
    if ranks == 1:  # DataParallel with SelfComm, in this process
        got = run(parse_args(["data", "--transport", "auto", "--out", "unused"]))
    else:
        got = ranks_run(ranks, ["data"], tmp_path)
    assert_same_training(got, reference)
    assert bool(got["identical"]), "ranks ended with different parameters"
    expected = data_parallel_bytes(tiny_alexnet(), ranks) if ranks > 1 else 0
    assert list(got["bytes"]) == [expected] * 3


def test_reference_changes_with_a_different_batch_split():
    """The comparison can fail: per-rank masks drawn for local rows differ from the global
    batch's, so a run that does not cut the whole batch's masks would not match."""
    x = np.random.default_rng(0).normal(size=(6, 20))
    whole = Dropout(0.5, rng=7).forward(x)
    model = tiny_alexnet()
    DataParallel(model, SelfComm())  # replaces Dropout by PartDropout
    drop = model["drop6"]
    drop.reseed(7)
    drop.whole, drop.part = 6, slice(2, 4)
    np.testing.assert_array_equal(drop.forward(x[2:4]), whole[2:4])
    drop.reseed(7)
    drop.whole = None  # a rank drawing for its rows alone
    assert not np.array_equal(drop.forward(x[2:4]), whole[2:4])


@pytest.mark.parametrize("n, size", [(6, 3), (7, 3), (2, 3), (128, 5)])
def test_shards_cover_the_batch_once(n, size):
    rows = [shard(n, size, r) for r in range(size)]
    covered = np.concatenate([np.arange(n)[s] for s in rows])
    np.testing.assert_array_equal(covered, np.arange(n))
    lengths = [s.stop - s.start for s in rows]
    assert max(lengths) - min(lengths) <= 1
