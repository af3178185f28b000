"""The communicator: every collective against NumPy's answer, on 3 ranks under mpiexec."""

import subprocess
import sys

import numpy as np
import pytest

from tinyalex.parallel import ParallelError, SelfComm, connect
from tinyalex.parallel.launch import mpiexec_command

# Each rank checks every collective against what NumPy computes from all ranks' inputs
# (rank r's input is a function of r, so every rank can work them all out).
COLLECTIVES = r"""
import numpy as np
from tinyalex.parallel.mpi import MPIComm

comm = MPIComm()
r, P = comm.rank, comm.size
assert P == 3

def mine(rank, shape, dtype=np.float64):
    return np.random.default_rng(rank).normal(size=shape).astype(dtype)

# allreduce: in place, any shape and dtype
x = mine(r, (4, 5), np.float32)
assert comm.allreduce(x) is x
np.testing.assert_allclose(x, sum(mine(q, (4, 5), np.float32) for q in range(P)), rtol=1e-6)
assert comm.bytes_sent == 2 * 2 * 80 // 3, comm.bytes_sent

# allgather along a middle axis, pieces of unequal sizes (padded inside, cut off again)
sizes = [3, 1, 2]
pieces = [mine(10 + q, (2, sizes[q], 4)) for q in range(P)]
got = comm.allgather(pieces[r], 1, sizes)
np.testing.assert_array_equal(got, np.concatenate(pieces, axis=1))

# reduce_scatter along axis 1: this rank's piece of the sum
full = [mine(20 + q, (2, 6, 3)) for q in range(P)]
got = comm.reduce_scatter(full[r], 1, sizes)
start = sum(sizes[:r])
np.testing.assert_allclose(got, sum(full)[:, start : start + sizes[r]], rtol=1e-13)
assert got.flags.c_contiguous

# exchange between ranks 0 and 1; rank 2 swaps with itself
peer = {0: 1, 1: 0, 2: 2}[r]
got = comm.exchange(mine(30 + r, (2, 3))[:, ::2], peer)  # a non-contiguous view is fine
np.testing.assert_array_equal(got, mine(30 + peer, (2, 3))[:, ::2])

assert comm.allreduce_scalar(r + 0.5) == 4.5
assert comm.gather_all_objects(r) == [0, 1, 2]
with open(f"ok.{r}", "w") as f:  # one file a rank: printed lines of 3 ranks can interleave
    f.write("ok")
"""


def test_collectives_on_three_ranks(tmp_path):
    cmd = mpiexec_command(3)
    if cmd is None:
        pytest.skip("mpi4py or mpiexec is not installed (pip install mpi4py mpich)")
    out = subprocess.run(
        cmd + [sys.executable, "-c", COLLECTIVES],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert sorted(f.name for f in tmp_path.glob("ok.*")) == ["ok.0", "ok.1", "ok.2"]


def test_self_comm_is_the_identity():
    comm = SelfComm()
    x = np.arange(6.0).reshape(2, 3)
    assert comm.allreduce(x) is x and comm.allgather(x, 1, [3]) is x
    assert comm.reduce_scatter(x, 0, [2]) is x
    assert comm.allreduce_scalar(2.5) == 2.5 and comm.bytes_sent == 0
    with pytest.raises(ValueError, match="C-contiguous"):
        comm.allreduce(x.T)


def test_connect_outside_mpiexec_and_bad_transports(monkeypatch):
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(connect("numpy", "auto"), SelfComm)
    with pytest.raises(ParallelError, match="unknown transport"):
        connect("numpy", "infiniband")
    if mpiexec_command(1) is not None:
        with pytest.raises(ParallelError, match="use --backend cupy"):
            connect("numpy", "nccl")
