"""``python -m tinyalex.train --parallel data|model`` under mpiexec: checkpoints move
between rank counts, and bad input is one line from rank 0 with exit code 2.

float32 (the trainer's dtype), so runs agree to float32 rounding; exact equality in
float64 is tested in test_parallel_data.py and test_parallel_model.py.
"""

import subprocess
import sys

import numpy as np
import pytest

from tinyalex import checkpoint, train
from tinyalex.backend import cupy_available
from tinyalex.parallel.launch import mpiexec_command

SMALL = ["--limit", "32", "--val-limit", "16", "--batch-size", "8"]


def mpi_train(ranks, args, cwd):
    cmd = mpiexec_command(ranks)
    if cmd is None:
        pytest.skip("mpi4py or mpiexec is not installed (pip install mpi4py mpich)")
    return subprocess.run(
        cmd + [sys.executable, "-m", "tinyalex.train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def assert_close_runs(a, b):
    for key in a["params"]:
        x, y = a["params"][key], b["params"][key]
        assert np.abs(x - y).max() <= 1e-4 * np.abs(y).max(), key
    for key in ("epoch", "batch", "dropout_rng"):
        assert a["meta"][key] == b["meta"][key]


def test_checkpoints_move_between_rank_counts(tmp_path, monkeypatch):
    """Epoch 1 on 2 data-parallel ranks; epoch 2 from its checkpoint on two towers, and in
    one process: the two continuations agree. (A 2-rank checkpoint is a single-process
    checkpoint, so one process's checkpoints go to ranks by the same path.)"""
    monkeypatch.chdir(tmp_path)
    out = mpi_train(2, [*SMALL, "--parallel", "data", "--epochs", "1", "--out", "dp"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "parallel data over 2 ranks" in out.stdout
    assert checkpoint.load("dp/checkpoint.npz")["meta"]["epoch"] == 1
    args = ["--parallel", "model", "--resume", "dp/checkpoint.npz", "--epochs", "2"]
    out = mpi_train(2, [*args, "--out", "towers"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert train.main(["--resume", "dp/checkpoint.npz", "--epochs", "2", "--out", "one"]) == 0
    towers, one = (checkpoint.load(f"{d}/checkpoint.npz") for d in ("towers", "one"))
    assert towers["meta"]["epoch"] == 2
    assert_close_runs(towers, one)
    assert len((tmp_path / "towers" / "metrics.jsonl").read_text().splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp", "one", "towers"]


@pytest.mark.parametrize(
    "ranks, flags, message",
    [
        (3, ["--batch-size", "8"], "--batch-size 8 does not split evenly over 3 ranks"),
        (2, ["--backend", "cupy"], "rank 0 has no GPU"),
    ],
)
def test_bad_input_is_one_line_from_rank_0(ranks, flags, message, tmp_path):
    """Every rank finds the mistake; rank 0 alone says so, and every rank exits with 2."""
    if "cupy" in flags and cupy_available():
        pytest.skip("this machine has a GPU: --backend cupy is not a mistake here")
    out = mpi_train(ranks, ["--parallel", "data", *flags, "--out", "run"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert message in out.stderr
    assert not (tmp_path / "run").exists()
