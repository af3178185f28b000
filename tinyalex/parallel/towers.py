"""The paper's model parallelism (P §3.2): two ranks, each holding one tower of AlexNet.

From a single-process ``groups=2`` network, rank r (r = 0, 1) keeps

    conv1          kernels r (half of them), seeing the whole image
    conv2/4/5      its own group (groups=2 already splits these by tower)
    conv3          half its kernels, seeing *both* towers' pool2 maps
    fc6, fc7, fc8  half of each layer's units, seeing both towers' inputs

and the towers talk exactly where the paper's GPUs do: at conv3's input and at the inputs
of fc6, fc7 and fc8, each an all-gather of the two halves (:class:`Gather`). Backward
mirrors it: the gradient with respect to a gathered input is summed over the two ranks
that used it and each keeps its half (a reduce-scatter). The logits are gathered too, so
both ranks compute the same loss on all classes.

One more exchange than the paper: tinyalex's LRN (like Caffe's) normalises across all 96
(256) channels of lrn1 (lrn2), where each of the paper's GPUs normalised its own maps. To
stay equal to the single-process network, each tower borrows the ``size // 2`` channels
next to its edge from the other tower (:class:`HaloLRN`; 2 of 48 maps at lrn1).

The tower is a plain Sequential of tinyalex layers plus these exchange layers, so
``train_step``, ``SGD`` and the loss work on it unchanged; its parameters carry the
single-process names, each holding this tower's slice (``split``). Only Gather, HaloLRN
and Logits hold the communicator; no layer knows which transport carries the bytes.
"""

from __future__ import annotations

from ..backend import array_module
from ..layers import LRN, Conv2D, Dropout, Flatten, Linear, Sequential
from ..layers.base import Layer
from .comm import Communicator, ParallelError
from .data_parallel import PartDropout


def halves(n: int) -> list[int]:
    """Sizes of the two towers' pieces of n (the first takes the odd one)."""
    return [n - n // 2, n // 2]


class Gather(Layer):
    """Forward: join the towers' pieces along axis 1. Backward: sum over towers, keep ours."""

    def __init__(self, comm: Communicator, sizes: list[int], name: str):
        super().__init__()
        self.comm, self.sizes, self.name = comm, list(sizes), name

    def forward(self, x, train: bool = True):
        return self.comm.allgather(x, 1, self.sizes)

    def backward(self, dy, input_grad: bool = True):
        return self.comm.reduce_scatter(dy, 1, self.sizes)


class Logits(Gather):
    """The last gather: both ranks compute the same loss on all logits, so each rank's
    gradient for its classes is simply its columns of dL/dz (no sum)."""

    def backward(self, dy, input_grad: bool = True):
        start = sum(self.sizes[: self.comm.rank])
        return dy[:, start : start + self.sizes[self.comm.rank]]


class HaloLRN(Layer):
    """LRN over this tower's channels plus ``h`` borrowed from the other tower's edge.

    Tower 0 appends tower 1's first h channels; tower 1 prepends tower 0's last h. The
    borrowed channels' outputs are dropped; in backward their input gradients go back to
    the tower they came from, which adds them to its own.
    """

    def __init__(self, lrn: LRN, comm: Communicator):
        super().__init__()
        self.lrn, self.comm, self.name = lrn, comm, lrn.name
        self.h = max(lrn.size // 2, (lrn.size - 1) // 2)

    def forward(self, x, train: bool = True):
        xp, h, c, first = array_module(x), self.h, x.shape[1], self.comm.rank == 0
        edge = x[:, c - h :] if first else x[:, :h]
        borrowed = self.comm.exchange(edge, 1 - self.comm.rank)
        ext = xp.concatenate([x, borrowed] if first else [borrowed, x], axis=1)
        y = self.lrn.forward(ext, train=train)
        return y[:, :c] if first else y[:, h:]

    def backward(self, dy, input_grad: bool = True):
        xp, h, first = array_module(dy), self.h, self.comm.rank == 0
        zeros = xp.zeros((dy.shape[0], h, *dy.shape[2:]), dtype=dy.dtype)
        dx = self.lrn.backward(xp.concatenate([dy, zeros] if first else [zeros, dy], axis=1))
        if first:
            dx, lent = dx[:, :-h], dx[:, -h:]
        else:
            dx, lent = dx[:, h:], dx[:, :h]
        returned = self.comm.exchange(lent, 1 - self.comm.rank)
        dx = xp.ascontiguousarray(dx)
        if first:
            dx[:, -h:] += returned
        else:
            dx[:, :h] += returned
        return dx


class Tower(Sequential):
    """Rank ``comm.rank``'s tower of ``model`` (a groups=2 AlexNet-pattern Model).

    ``split``: parameter name -> (axis, sizes) of its cut between the towers, for gathering
    the whole network's parameters (checkpoints) and cutting them again (resume).
    """

    def __init__(self, model, comm: Communicator):
        if comm.size != 2:
            raise ParallelError(f"--parallel model runs on exactly 2 ranks, not {comm.size}")
        self.comm, self.config = comm, dict(getattr(model, "config", {}))
        self.input_size, self.num_classes = model.input_size, model.num_classes
        self.whole_count = sum(int(p.size) for p in model.params.values())
        r, layers, split = comm.rank, [], {}
        shape = (1, 3, model.input_size, model.input_size)
        sizes = None  # None: every rank holds the whole activation; else each its piece

        def piece(n):
            s = halves(n)
            return slice(sum(s[:r]), sum(s[: r + 1])), s

        for name, layer in model.named_layers():
            if (
                isinstance(layer, (Conv2D, Linear))
                and sizes is not None
                and (isinstance(layer, Linear) or layer.groups == 1)
            ):
                layers.append(Gather(comm, sizes, f"to_{name}"))
                sizes = None
            if isinstance(layer, Conv2D):
                part, out_sizes = piece(layer.out_channels)
                if layer.groups not in (1, 2) or (layer.groups == 2 and sizes is None):
                    raise ParallelError(f"{name}: groups={layer.groups} cannot be cut in towers")
                cin = layer.in_channels // layer.groups
                new = Conv2D(
                    cin, out_sizes[r], layer.kernel_size, layer.stride, layer.padding,
                    dtype=layer.params["W"].dtype,
                )  # fmt: skip
                new.params = {k: v[part].copy() for k, v in layer.params.items()}
                split.update({f"{name}.W": (0, out_sizes), f"{name}.b": (0, out_sizes)})
            elif isinstance(layer, Linear):
                part, out_sizes = piece(layer.out_features)
                new = Linear(layer.in_features, out_sizes[r], dtype=layer.params["W"].dtype)
                new.params = {
                    "W": layer.params["W"][:, part].copy(),
                    "b": layer.params["b"][part].copy(),
                }
                split.update({f"{name}.W": (1, out_sizes), f"{name}.b": (0, out_sizes)})
            elif isinstance(layer, LRN):
                new = HaloLRN(layer, comm)
            elif isinstance(layer, Dropout):
                part, _ = piece(shape[1])
                new = PartDropout(layer, axis=1, whole=shape[1], part=part)
            else:  # ReLU, pooling, Flatten: tower by tower, nothing to change
                new = layer
            if isinstance(layer, (Conv2D, Linear)):
                new.zero_grads()
                sizes = out_sizes
            elif isinstance(layer, Flatten) and sizes is not None:
                sizes = [s * shape[2] * shape[3] for s in sizes]
            new.name = name
            layers.append(new)
            shape = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        if sizes is not None:
            layers.append(Logits(comm, sizes, "logits"))
        super().__init__(*layers)
        self.split = split

    def gather_params(self, arrays: dict | None = None, prefix: str = "") -> dict:
        """The whole network's arrays from both towers' pieces (on every rank).

        ``arrays``: this tower's arrays by parameter name (default its parameters); pass
        the optimiser's velocities with ``prefix="velocity."`` to gather those.
        """
        arrays = self.params if arrays is None else arrays
        out = {}
        for name, (axis, sizes) in self.split.items():
            out[prefix + name] = self.comm.allgather(arrays[prefix + name], axis, sizes)
        return out

    def cut(self, whole: dict, prefix: str = "") -> dict:
        """This tower's pieces of the whole network's arrays (inverse of gather_params)."""
        out = {}
        for name, (axis, sizes) in self.split.items():
            start = sum(sizes[: self.comm.rank])
            index = (slice(None),) * axis + (slice(start, start + sizes[self.comm.rank]),)
            array = whole[prefix + name]
            out[prefix + name] = array_module(array).ascontiguousarray(array[index])
        return out
