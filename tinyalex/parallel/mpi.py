"""MPI transports (mpi4py): NumPy arrays on the host, and CuPy arrays staged through the host.

``MPIComm`` hands NumPy buffers straight to MPI's collectives (Allreduce, Allgather,
Reduce_scatter_block, Sendrecv). ``HostStagedComm`` serves ranks that share one GPU (or
have GPUs NCCL cannot pair): each collective copies the CuPy buffer to the host, runs the
MPI collective there, and copies the result back, so two ranks can be tested on one GPU.
"""

from __future__ import annotations

from ..backend import to_device, to_numpy
from .comm import Communicator


def mpi_world():
    """mpi4py's MPI module and COMM_WORLD (importing mpi4py.MPI initialises MPI)."""
    from mpi4py import MPI

    return MPI, MPI.COMM_WORLD


def local_rank() -> tuple[int, int]:
    """(this rank's index among the ranks on its machine, how many ranks that machine runs)."""
    MPI, world = mpi_world()
    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    rank, size = node.Get_rank(), node.Get_size()
    node.Free()
    return rank, size


class MPIComm(Communicator):
    """MPI between processes, on NumPy arrays in host memory."""

    transport = "mpi"

    def __init__(self):
        super().__init__()
        self.MPI, self.world = mpi_world()
        self.rank, self.size = self.world.Get_rank(), self.world.Get_size()

    def _allreduce(self, buf):
        self.world.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def _allgather(self, send, recv):
        self.world.Allgather(send, recv)

    def _reduce_scatter(self, send, recv):
        self.world.Reduce_scatter_block(send, recv, op=self.MPI.SUM)

    def _sendrecv(self, send, recv, peer):
        self.world.Sendrecv(send, dest=peer, recvbuf=recv, source=peer)

    def bcast_object(self, obj, root=0):
        return self.world.bcast(obj, root=root)

    def gather_object(self, obj, root=0):
        return self.world.gather(obj, root=root)

    def barrier(self):
        self.world.Barrier()


class HostStagedComm(MPIComm):
    """MPI on host copies of CuPy buffers: for ranks sharing one GPU."""

    transport = "staged"

    def _allreduce(self, buf):
        host = to_numpy(buf)
        super()._allreduce(host)
        buf[...] = to_device(host, "cupy")

    def _allgather(self, send, recv):
        host = to_numpy(recv)
        super()._allgather(to_numpy(send), host)
        recv[...] = to_device(host, "cupy")

    def _reduce_scatter(self, send, recv):
        host = to_numpy(recv)
        super()._reduce_scatter(to_numpy(send), host)
        recv[...] = to_device(host, "cupy")

    def _sendrecv(self, send, recv, peer):
        host = to_numpy(recv)
        super()._sendrecv(to_numpy(send), host, peer)
        recv[...] = to_device(host, "cupy")
