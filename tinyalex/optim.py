"""The paper's optimiser and learning-rate schedules (P §5).

SGD with momentum and weight decay, in the paper's (and Caffe's) form:

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

The learning rate sits inside v, so after a drop from lr to lr/10 the old velocity still
carries steps of the old size, which decay away at the momentum's rate. PyTorch's SGD
(v <- momentum * v + g; w <- w - lr * v) rescales the whole velocity at once instead: the
two agree at a constant rate and differ after every change.

Schedules: divide the rate by 10 when the validation error stops improving (the paper's,
three times in all) or at fixed epochs.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from .backend import array_module, backend_name, to_device


class SGD:
    """``opt.step()`` reads ``model.grads`` and updates ``model.params`` in place.

    Biases (parameters with one dimension) are not decayed, as in Caffe and cuda-convnet,
    unless ``decay_biases=True``.
    """

    def __init__(
        self,
        model,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        *,
        decay_biases: bool = False,
    ):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(
                f"SGD needs lr > 0, 0 <= momentum < 1, weight_decay >= 0 "
                f"(got {lr}, {momentum}, {weight_decay})"
            )
        self.model, self.lr, self.momentum = model, float(lr), float(momentum)
        self.weight_decay, self.decay_biases = float(weight_decay), decay_biases
        self.velocity = {k: array_module(p).zeros_like(p) for k, p in model.params.items()}
        self._scratch: dict = {}  # the plain path's product buffer, reused every step

    def decays(self, p) -> bool:
        """Whether weight decay applies to ``p``: weights yes, biases (1-D) only if asked."""
        return self.decay_biases or p.ndim > 1

    def step(self, fast: bool | None = None) -> None:
        """One update of every parameter, in place.

        Plain path: four in-place array operations per parameter, the products written
        into one reusable scratch buffer (no temporaries per step). Fast path (``fast``
        as in tinyalex.kernels.use_fast): one fused kernel pass per parameter (numba on the
        CPU, CUDA on CuPy) doing the same operations in the same order and dtype.
        """
        params, grads = self.model.params, self.model.grads
        for name, w in params.items():
            v, g = self.velocity[name], grads[name]
            wd = self.weight_decay if self.decays(w) else 0.0
            kern = kernels.for_array(w, fast) if _fusable(w, v, g) else None
            if kern:
                kern.sgd_update(w, v, g, self.momentum, wd * self.lr, self.lr)
                continue
            tmp = self._scratch_like(w)
            v *= self.momentum
            if wd:
                array_module(w).multiply(w, wd * self.lr, out=tmp)
                v -= tmp
            array_module(w).multiply(g, self.lr, out=tmp)
            v -= tmp
            w += v

    def _scratch_like(self, w):
        """A view of shape w.shape into one buffer per (backend, dtype), grown as needed."""
        xp = array_module(w)
        key = (xp.__name__, w.dtype.str)
        buf = self._scratch.get(key)
        if buf is None or buf.size < w.size:
            buf = self._scratch[key] = xp.empty(w.size, dtype=w.dtype)
        return buf[: w.size].reshape(w.shape)

    def state_dict(self) -> dict:
        """Plain arrays and floats, ready for a checkpoint."""
        state = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        state.update({f"velocity.{k}": v for k, v in self.velocity.items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.momentum, self.weight_decay = float(state["momentum"]), float(state["weight_decay"])
        for name, p in self.model.params.items():
            v = state[f"velocity.{name}"]
            if tuple(v.shape) != tuple(p.shape):
                raise ValueError(f"velocity.{name}: shape {tuple(v.shape)} != {tuple(p.shape)}")
            self.velocity[name] = to_device(np.asarray(v, dtype=p.dtype), backend_name(p))


def _fusable(w, v, g) -> bool:
    """The fused kernel takes C-contiguous arrays of one dtype and shape."""
    return (
        w.flags.c_contiguous
        and v.flags.c_contiguous
        and g.flags.c_contiguous
        and w.dtype == v.dtype == g.dtype
        and w.shape == v.shape == g.shape
    )


class ReduceOnPlateau:
    """Divide the rate by ``1/factor`` when the validation error has not improved for
    ``patience`` epochs, at most ``max_drops`` times (the paper: by 10, three times)."""

    def __init__(
        self,
        optimizer: SGD,
        factor: float = 0.1,
        patience: int = 2,
        max_drops: int = 3,
        threshold: float = 1e-4,
    ):
        self.optimizer, self.factor, self.patience = optimizer, factor, patience
        self.max_drops, self.threshold = max_drops, threshold
        self.best, self.bad_epochs, self.drops = float("inf"), 0, 0

    def step(self, val_error: float, epoch: int | None = None) -> bool:
        """Record one epoch's validation error; True if the rate was just lowered."""
        if val_error < self.best - self.threshold:
            self.best, self.bad_epochs = val_error, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience and self.drops < self.max_drops:
            self.optimizer.lr *= self.factor
            self.drops, self.bad_epochs = self.drops + 1, 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "drops": self.drops}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])
        self.bad_epochs, self.drops = int(state["bad_epochs"]), int(state["drops"])


class StepSchedule:
    """Multiply the rate by ``factor`` after each epoch listed in ``milestones``."""

    def __init__(self, optimizer: SGD, milestones, factor: float = 0.1):
        self.optimizer, self.milestones, self.factor = optimizer, sorted(milestones), factor

    def step(self, val_error: float | None = None, epoch: int | None = None) -> bool:
        if epoch in self.milestones:
            self.optimizer.lr *= self.factor
            return True
        return False

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
