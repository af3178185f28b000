"""The communicator: the one interface the parallel code talks to, whatever carries the bytes.

    comm.rank, comm.size            this process's place among ``size`` ranks
    comm.allreduce(x)               x <- sum over ranks of x, in place            (any shape)
    comm.allgather(x, axis, sizes)  the ranks' pieces joined along ``axis``; piece r has
                                    ``sizes[r]`` entries there (the pieces may differ)
    comm.reduce_scatter(x, axis, sizes)  sum over ranks of x, then this rank's piece of it
    comm.exchange(x, peer)          send x to ``peer``, receive peer's array of x's shape
    comm.bcast_object(obj), comm.gather_object(obj), comm.barrier()

Arrays are NumPy or CuPy, as the model's; the transport behind the interface is MPI on the
host (:mod:`.mpi`), NCCL between GPUs (:mod:`.nccl`), or MPI staged through the host for
ranks that share one GPU. Layers never see a communicator: only the data-parallel step and
the model-parallel towers call it.

Each transport implements five primitives on flat contiguous 1-D buffers; this base class
moves the wanted axis to the front, pads unequal pieces to the largest (NCCL's collectives
take equal counts) and counts the traffic.

``comm.bytes_sent`` counts what this rank sends, as the ring algorithms send it (the usual
yardstick; NCCL uses rings): allreduce of n bytes 2 (P-1)/P n, allgather and reduce-scatter
of n bytes in all (P-1)/P n, exchange n. With P = 2: an allreduce sends its whole buffer
once, an allgather sends this rank's own piece.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


class ParallelError(Exception):
    """A parallel run was started in a way that cannot work (the user's to fix)."""


class Communicator:
    """The interface, over five primitives a transport provides (see the module doc)."""

    rank: int = 0
    size: int = 1
    transport: str = "self"

    def __init__(self):
        self.bytes_sent = 0

    # ---- the transport's primitives, on flat contiguous buffers of one dtype ----
    def _allreduce(self, buf) -> None:  # buf <- sum over ranks, in place
        raise NotImplementedError

    def _allgather(self, send, recv) -> None:  # recv = concat of every rank's send
        raise NotImplementedError

    def _reduce_scatter(self, send, recv) -> None:  # recv = piece `rank` of sum(send)
        raise NotImplementedError

    def _sendrecv(self, send, recv, peer: int) -> None:
        raise NotImplementedError

    def bcast_object(self, obj, root: int = 0):
        raise NotImplementedError

    def gather_object(self, obj, root: int = 0) -> list | None:
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    # ---- the interface ----
    def allreduce(self, x):
        """x <- sum over ranks of x, in place (x C-contiguous); returns x."""
        if not x.flags.c_contiguous:
            raise ValueError("allreduce works in place: x must be C-contiguous")
        flat = x.reshape(-1)
        self._allreduce(flat)
        self.bytes_sent += 2 * (self.size - 1) * flat.nbytes // self.size
        return x

    def allgather(self, x, axis: int, sizes):
        """Join every rank's ``x`` along ``axis``; rank r's piece has ``sizes[r]`` entries."""
        xp, m = array_module(x), max(sizes)
        if x.shape[axis] != sizes[self.rank]:
            raise ValueError(
                f"rank {self.rank}: piece of {x.shape[axis]} along {axis}, not {sizes}"
            )
        front = _to_front(x, axis, m)  # (m, ...) with this rank's piece padded to m rows
        recv = xp.empty((self.size,) + front.shape, dtype=x.dtype)
        self._allgather(front.reshape(-1), recv.reshape(-1))
        self.bytes_sent += (self.size - 1) * front.nbytes
        pieces = [recv[r, : sizes[r]] for r in range(self.size)]
        return xp.moveaxis(xp.concatenate(pieces, axis=0), 0, axis)

    def reduce_scatter(self, x, axis: int, sizes):
        """This rank's piece (``sizes[rank]`` entries along ``axis``) of the sum over ranks."""
        xp, m = array_module(x), max(sizes)
        if x.shape[axis] != sum(sizes):
            raise ValueError(f"reduce_scatter: {x.shape[axis]} entries along {axis}, not {sizes}")
        starts = np.cumsum([0, *sizes])
        front = xp.concatenate(
            [_to_front(x[_take(axis, starts[r], starts[r + 1])], axis, m) for r in range(self.size)]
        )
        recv = xp.empty((m,) + front.shape[1:], dtype=x.dtype)
        self._reduce_scatter(front.reshape(-1), recv.reshape(-1))
        self.bytes_sent += (self.size - 1) * recv.nbytes
        return xp.ascontiguousarray(xp.moveaxis(recv[: sizes[self.rank]], 0, axis))

    def exchange(self, x, peer: int):
        """Send ``x`` to ``peer`` and return what ``peer`` sent us (an array of x's shape)."""
        xp = array_module(x)
        send = xp.ascontiguousarray(x)
        recv = xp.empty_like(send)
        self._sendrecv(send.reshape(-1), recv.reshape(-1), peer)
        self.bytes_sent += send.nbytes
        return recv

    def allreduce_scalar(self, value: float) -> float:
        """The sum over ranks of a Python float (host arithmetic, not counted as traffic)."""
        if self.size == 1:
            return float(value)
        return float(sum(self.gather_all_objects(float(value))))

    def gather_all_objects(self, obj) -> list:
        """Every rank's ``obj``, on every rank (small Python objects: error lines, sizes)."""
        return self.bcast_object(self.gather_object(obj))


class SelfComm(Communicator):
    """One process: every collective is the identity, nothing is sent."""

    transport = "self"

    def _allreduce(self, buf):
        pass

    def allgather(self, x, axis, sizes):
        return x

    def reduce_scatter(self, x, axis, sizes):
        return x

    def bcast_object(self, obj, root: int = 0):
        return obj

    def gather_object(self, obj, root: int = 0):
        return [obj]

    def barrier(self):
        pass


def _take(axis: int, start: int, stop: int) -> tuple:
    return (slice(None),) * axis + (slice(int(start), int(stop)),)


def _to_front(x, axis: int, rows: int):
    """x with ``axis`` moved first, made contiguous, zero-padded to ``rows`` along it."""
    xp = array_module(x)
    front = xp.ascontiguousarray(xp.moveaxis(x, axis, 0))
    if front.shape[0] < rows:
        pad = xp.zeros((rows - front.shape[0],) + front.shape[1:], dtype=x.dtype)
        front = xp.concatenate([front, pad])
    return front
