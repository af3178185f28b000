"""Choosing the transport, and the one-line agreement on bad input.

``connect(backend, transport)`` returns this process's communicator:

    not started by mpiexec, transport "auto"   SelfComm: one process, nothing to send
    numpy                                      MPIComm (MPI on the host)
    cupy, one GPU per rank on each machine     NCCLComm
    cupy, ranks sharing a GPU                  HostStagedComm (MPI through host copies)

Every check that can fail on some ranks only (no GPU on one of them, say) goes through
:func:`agree`: the ranks swap their error lines and all raise the same ParallelError, so
rank 0 alone prints it and every rank exits with code 2.
"""

from __future__ import annotations

import os
import shutil
import sys

from ..backend import cupy_unavailable_reason
from .comm import Communicator, ParallelError, SelfComm

TRANSPORTS = ("auto", "mpi", "nccl", "staged")
# Set in every rank's environment by mpiexec (MPICH/Hydra, Open MPI, PMIx, Slurm).
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def mpiexec_command(ranks: int) -> list[str] | None:
    """``[mpiexec, -n, ranks]`` if mpi4py imports and an mpiexec is found, else None
    (the parallel tests skip then). Looks on PATH, then beside this Python (pip's mpich)."""
    try:
        import mpi4py  # noqa: F401  (the MPI library itself loads when a run starts)
    except ImportError:
        return None
    found = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    return [found, "-n", str(ranks)] if found else None


def world_rank() -> int:
    """This process's rank as mpiexec set it (0 outside mpiexec); needs no MPI."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def started_by_mpiexec() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS)


def connect(backend: str = "numpy", transport: str = "auto") -> Communicator:
    """This process's communicator (see the module doc); ParallelError on bad input."""
    if transport not in TRANSPORTS:
        raise ParallelError(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")
    if transport == "auto" and not started_by_mpiexec():
        return SelfComm()
    try:
        from .mpi import HostStagedComm, MPIComm, local_rank
    except ImportError:
        raise ParallelError(
            "parallel runs need mpi4py (pip install mpi4py mpich), started by mpiexec"
        ) from None
    if backend == "numpy":
        if transport not in ("auto", "mpi"):
            raise ParallelError(f"--transport {transport} carries GPU arrays; use --backend cupy")
        return MPIComm()
    if transport == "mpi":
        raise ParallelError("--transport mpi carries host arrays; with cupy use nccl or staged")
    host = MPIComm()  # for the checks below; the chosen transport shares MPI's world
    agree(host, _gpu_problem(host.rank))
    if transport == "auto":
        import cupy

        on_node = local_rank()[1]
        transport = "nccl" if on_node <= cupy.cuda.runtime.getDeviceCount() else "staged"
    if transport == "staged":
        return HostStagedComm()
    from .nccl import NCCLComm

    return NCCLComm()


def share_cores(comm: Communicator) -> int:
    """Give this rank its share of the machine's cores for the CPU kernels' threads.

    Ranks on one machine would otherwise each start a thread per core and fight over
    them. NUMBA_NUM_THREADS, when the user sets it, wins. Returns the thread count.
    """
    import numba

    if "NUMBA_NUM_THREADS" in os.environ or comm.size == 1:
        return numba.get_num_threads()
    from .mpi import local_rank

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = max(1, (cores or 1) // local_rank()[1])
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def _gpu_problem(rank: int) -> str | None:
    reason = cupy_unavailable_reason()
    return f"rank {rank} has no GPU: {reason}" if reason else None


def agree(comm: Communicator, problem: str | None) -> None:
    """Raise the first rank's problem on every rank (collective: every rank must call)."""
    problems = [p for p in comm.gather_all_objects(problem) if p]
    if problems:
        raise ParallelError(problems[0])
