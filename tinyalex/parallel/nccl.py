"""NCCL between GPUs (``cupy.cuda.nccl``), one GPU per rank.

Rank 0 makes NCCL's unique id and MPI broadcasts it; every rank then joins the NCCL
communicator on the GPU of its local rank (rank i of a machine uses device i). The
collectives run on CuPy's current stream, so they queue behind the kernels that made
their buffers, as any other GPU work does.
"""

from __future__ import annotations

from .comm import ParallelError
from .mpi import MPIComm, local_rank


class NCCLComm(MPIComm):
    """NCCL collectives on CuPy buffers; MPI (inherited) for Python objects and barriers."""

    transport = "nccl"

    def __init__(self):
        super().__init__()
        import cupy
        from cupy.cuda import nccl

        self.cupy, self.nccl = cupy, nccl
        local, on_node = local_rank()
        devices = cupy.cuda.runtime.getDeviceCount()
        if on_node > devices:
            raise ParallelError(
                f"--transport nccl needs a GPU per rank: {on_node} ranks on this machine but "
                f"{devices} GPU(s) (use --transport staged to share one)"
            )
        cupy.cuda.Device(local).use()
        uid = self.bcast_object(nccl.get_unique_id() if self.rank == 0 else None)
        self.nccl_comm = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _types(self, buf):
        nccl = self.nccl
        kinds = {"float32": nccl.NCCL_FLOAT32, "float64": nccl.NCCL_FLOAT64}
        return kinds[buf.dtype.name], self.cupy.cuda.get_current_stream().ptr

    def _allreduce(self, buf):
        dtype, stream = self._types(buf)
        self.nccl_comm.allReduce(
            buf.data.ptr, buf.data.ptr, buf.size, dtype, self.nccl.NCCL_SUM, stream
        )

    def _allgather(self, send, recv):
        dtype, stream = self._types(send)
        self.nccl_comm.allGather(send.data.ptr, recv.data.ptr, send.size, dtype, stream)

    def _reduce_scatter(self, send, recv):
        dtype, stream = self._types(send)
        self.nccl_comm.reduceScatter(
            send.data.ptr, recv.data.ptr, recv.size, dtype, self.nccl.NCCL_SUM, stream
        )

    def _sendrecv(self, send, recv, peer):
        dtype, stream = self._types(send)
        self.nccl.groupStart()
        self.nccl_comm.send(send.data.ptr, send.size, dtype, peer, stream)
        self.nccl_comm.recv(recv.data.ptr, recv.size, dtype, peer, stream)
        self.nccl.groupEnd()
