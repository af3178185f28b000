"""The GPU transports: NCCL with one rank, and MPI staged through the host for two ranks
sharing one GPU, against the single-process run on the same GPU (float64, 1e-10).
They skip with the reason where CuPy has no device (every CPU-only machine)."""

import pytest
from test_parallel_data import assert_same_training, ranks_run

from tinyalex import backend
from tinyalex.parallel.check import parse_args, run


@pytest.mark.parametrize(
    "scheme, transport, ranks", [("data", "nccl", 1), ("data", "staged", 2), ("model", "staged", 2)]
)
def test_gpu_transport_equals_one_process(scheme, transport, ranks, tmp_path):
    if not backend.cupy_available():
        pytest.skip(f"GPU transports: {backend.cupy_unavailable_reason()}")
    ref = run(parse_args([scheme, "--backend", "cupy", "--reference", "--out", "unused"]))
    got = ranks_run(ranks, [scheme, "--backend", "cupy", "--transport", transport], tmp_path)
    assert str(got["transport"]) == transport
    assert_same_training(got, ref)
    assert bool(got["identical"])
