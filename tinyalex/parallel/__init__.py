"""Beyond one device: data parallelism and the paper's two-tower model parallelism.

    comm.py           the communicator interface (allreduce, allgather, reduce-scatter, ...)
    mpi.py, nccl.py   its transports: MPI on the host, MPI staged through the host for ranks
                      sharing a GPU, NCCL between GPUs
    launch.py         which transport a run gets; bad input agreed on by all ranks
    data_parallel.py  a share of every batch per rank, gradients all-reduced
    towers.py         P §3.2: one tower per rank, activations exchanged at conv3, fc6-fc8
    traffic.py        bytes each scheme exchanges per step (python -m tinyalex.parallel.traffic)
    trainer.py        tinyalex.train's Trainer over ranks: rank 0 writes, checkpoints move
    tiny.py, check.py AlexNet's layer pattern at toy widths, and a few steps of either scheme
                      against the single-process step (the tests' runs; a GPU check)

Run with ``mpiexec -n N python -m tinyalex.train --parallel data ...`` or
``mpiexec -n 2 python -m tinyalex.train --model alexnet --parallel model ...``.
"""

from .comm import Communicator, ParallelError, SelfComm
from .data_parallel import DataParallel, PartDropout, shard
from .launch import TRANSPORTS, connect
from .towers import Tower

__all__ = [
    "TRANSPORTS",
    "Communicator",
    "DataParallel",
    "ParallelError",
    "PartDropout",
    "SelfComm",
    "Tower",
    "connect",
    "shard",
]
