"""Data parallelism: every rank a copy of the model, a share of each batch, one all-reduce.

With B the global batch and rank r holding rows R_r (``rows(B)``, contiguous, sizes
differing by at most one), each rank runs forward and backward on its n_r = |R_r| rows and
then

    g  <-  sum_r (n_r / B) g_r            g_r = (1/n_r) sum_{i in R_r} dL_i/dw

by one all-reduce of all gradients in a single buffer, which is exactly the single-process
gradient (1/B) sum_i dL_i/dw. Every rank then takes the same SGD step, so the parameters
stay identical without ever being sent.

The result does not depend on the number of ranks: the global batch is the one the
single-process run draws (same order, same augmentation, which every rank applies to the
whole batch before keeping its rows), and each dropout mask is drawn for the whole batch
and cut to the rank's rows (:class:`PartDropout`), so sample i gets the mask row the
single-process run gives it. Only the order of floating-point additions changes.
"""

from __future__ import annotations

from ..backend import array_module
from ..layers import Dropout
from .comm import Communicator


class PartDropout(Dropout):
    """Dropout that draws the mask of a whole array and keeps one part of it.

    The whole array is the layer's input with ``whole`` entries along ``axis`` (the global
    batch's rows for data parallel, all units for a model-parallel tower); ``part`` is
    this rank's slice along that axis. The generator is the original layer's, so its
    state (saved in checkpoints) advances exactly as in a single process.
    """

    def __init__(self, layer: Dropout, axis: int = 0, whole: int | None = None, part=None):
        super().__init__(layer.p, inverted=layer.inverted, rng=layer.rng)
        self.name = layer.name
        self.axis, self.whole, self.part = axis, whole, part

    def _keep_mask(self, x):
        if self.whole is None:
            return super()._keep_mask(x)
        shape = list(x.shape)
        shape[self.axis] = self.whole
        whole = array_module(x).empty(tuple(shape), dtype=x.dtype)  # only its shape is read
        return super()._keep_mask(whole)[(slice(None),) * self.axis + (self.part,)]


def split_dropout(model) -> list[PartDropout]:
    """Replace the model's Dropout layers by PartDropouts (in place); returns them."""
    parts = []
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dropout) and not isinstance(layer, PartDropout):
            model.layers[i] = PartDropout(layer)
        if isinstance(model.layers[i], PartDropout):
            parts.append(model.layers[i])
    return parts


def shard(n: int, size: int, rank: int) -> slice:
    """Rank ``rank``'s contiguous rows of an n-row batch split ``size`` ways."""
    bounds = [n * r // size for r in range(size + 1)]
    return slice(bounds[rank], bounds[rank + 1])


class DataParallel:
    """One rank's side of a data-parallel run (``model`` is changed: see split_dropout)."""

    def __init__(self, model, comm: Communicator):
        self.model, self.comm = model, comm
        self.dropouts = split_dropout(model)

    def rows(self, n: int) -> slice:
        """This rank's rows of an n-row global batch."""
        return shard(n, self.comm.size, self.comm.rank)

    def step(self, loss_fn, opt, x, y, batch: int):
        """Forward, loss, backward, all-reduce, update; returns ``(loss, logits)``.

        x, y: this rank's rows (``rows(batch)``) of the global batch of ``batch`` images.
        loss: the global batch's mean loss as a 0-d array (all ranks agree); logits: (n_r, K).
        """
        model, n = self.model, len(y)
        rows = self.rows(batch)
        if n == 0:  # a last batch smaller than the rank count: draw the masks, add nothing
            x, rows = array_module(x).zeros((1, *x.shape[1:]), dtype=x.dtype), slice(0, 1)
        for d in self.dropouts:  # draw the global batch's masks, keep our rows
            d.whole, d.part = batch, rows
        logits = model.forward(x, train=True)
        if n:
            loss = loss_fn.forward(logits, y)
            model.backward(loss_fn.backward(), input_grad=False)
        else:
            loss, logits = array_module(x).zeros((), dtype=logits.dtype), logits[:0]
            model.zero_grads()
        loss = self.average_gradients(loss, n / batch)
        opt.step()
        return loss, logits

    def average_gradients(self, loss, weight: float):
        """g <- sum over ranks of weight_r g_r (and the same for the loss), in one buffer."""
        grads = self.model.grads
        xp = array_module(loss)
        buf = xp.concatenate([g.reshape(-1) for g in grads.values()] + [xp.reshape(loss, 1)])
        buf *= weight
        self.comm.allreduce(buf)
        start = 0
        for g in grads.values():
            g[...] = buf[start : start + g.size].reshape(g.shape)
            start += g.size
        return buf[-1]
