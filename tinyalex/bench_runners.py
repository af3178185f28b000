"""The benchmark's runners: one training (or inference) step of the same network, timed, in
tinyalex and in PyTorch. Each ``step()`` returns its seconds with the device synchronised.

The tinyalex step is :func:`tinyalex.step.train_step` (what ``python -m tinyalex.train``
runs); the per-layer profile walks ``Sequential.backward_steps``, so it stops backward
where the training step does.
"""

from __future__ import annotations

import time

import numpy as np

from . import backend, kernels
from .layers import Conv2D, SoftmaxCrossEntropy
from .optim import SGD
from .step import train_step

# The paper's update (P §5), the same in both libraries.
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def make_batch(model, batch_size: int, xp, seed: int = 0):
    """A fixed random batch (pixel-like scale) and labels, on xp's device."""
    rng = np.random.default_rng(seed)
    size = model.input_size
    x = rng.standard_normal((batch_size, 3, size, size), dtype=np.float32) * 50
    labels = rng.integers(0, model.num_classes, batch_size)
    return xp.asarray(x), xp.asarray(labels)


class TinyalexRunner:
    """One training (or inference) step of a tinyalex model on a fixed batch."""

    def __init__(self, model, x, labels, inference: bool = False):
        self.model, self.x, self.labels, self.inference = model, x, labels, inference
        self.loss = SoftmaxCrossEntropy()
        self.opt = None if inference else SGD(model, LR, MOMENTUM, WEIGHT_DECAY)

    def step(self) -> float:
        """Seconds for one step, the device synchronised at the end."""
        t0 = time.perf_counter()
        if self.inference:
            out = self.model.forward(self.x, train=False)
        else:
            _, out = train_step(self.model, self.loss, self.opt, self.x, self.labels)
        backend.synchronize(out)
        return time.perf_counter() - t0

    def profile_step(self) -> dict:
        """Seconds per layer, [forward, backward], plus the loss and the update."""
        sync = backend.synchronize
        times = {}
        h = self.x
        sync(h)
        for name, layer in self.model.named_layers():
            t0 = time.perf_counter()
            h = layer.forward(h, train=not self.inference)
            sync(h)
            times[name] = [time.perf_counter() - t0, 0.0]
        if self.inference:
            return times
        t0 = time.perf_counter()
        self.loss.forward(h, self.labels)
        dy = self.loss.backward()
        sync(dy)
        times["loss"] = [time.perf_counter() - t0, 0.0]
        for name, layer, input_grad in self.model.backward_steps(input_grad=False):
            t0 = time.perf_counter()
            dy = layer.backward(dy, input_grad=input_grad)
            sync(dy)
            times[name][1] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.opt.step()
        sync()
        times["sgd update"] = [0.0, time.perf_counter() - t0]
        return times


def peak_memory(runner: TinyalexRunner, xp) -> dict:
    """Peak bytes of one step: the CuPy pool, or NumPy arrays (tracemalloc) + parameters."""
    if xp is not np:
        pool = xp.get_default_memory_pool()
        runner.step()
        return {"kind": "cupy memory pool total bytes", "bytes": int(pool.total_bytes())}
    import tracemalloc

    params = sum(int(p.nbytes) for p in runner.model.params.values())
    # Buffers the layers keep between steps (conv's im2col workspaces, and the one the convs
    # share when they do not keep theirs) were allocated before tracing starts, so
    # tracemalloc does not see them: counted here.
    kept = sum(
        int(buf.nbytes)
        for layer in runner.model.layers
        if isinstance(layer, Conv2D)
        for buf in layer.kept_buffers()
    )
    kept += kernels.workspace_bytes(runner.x)
    tracemalloc.start()
    try:
        runner.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "kind": "numpy arrays during one step (tracemalloc) + parameters + kept workspaces",
        "bytes": peak + params + kept,
        "kept_bytes": kept,
    }


class TorchRunner:
    """The same network and step in PyTorch (tinyalex.bench_torch)."""

    def __init__(self, model, x, labels, *, device: str, inference: bool, tf32: bool):
        import torch

        from .bench_torch import torch_sequential

        self.torch = torch
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        self.device, self.inference = device, inference
        self.net = torch_sequential(model).to(device)
        self.x = torch.from_numpy(backend.to_numpy(x)).to(device)
        self.labels = torch.from_numpy(backend.to_numpy(labels).astype(np.int64)).to(device)
        self.loss = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(
            self.net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
        )

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def step(self) -> float:
        torch = self.torch
        t0 = time.perf_counter()
        if self.inference:
            self.net.eval()
            with torch.no_grad():
                self.net(self.x)
        else:
            self.net.train()
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(self.x), self.labels).backward()
            self.opt.step()
        self._sync()
        return time.perf_counter() - t0

    def peak_memory(self) -> dict | None:
        if self.device != "cuda":
            return None
        torch = self.torch
        torch.cuda.reset_peak_memory_stats()
        self.step()
        return {"kind": "torch.cuda.max_memory_reserved", "bytes": torch.cuda.max_memory_reserved()}
