"""Bytes each scheme sends per training step, worked out from the network's shapes.

    python -m tinyalex.parallel.traffic [--model alexnet|cifar] [--batch 128]   # 2 ranks

Data parallel: one all-reduce of every gradient (and the loss) per step; a ring sends
2 (P-1)/P of the buffer from each rank, so with P = 2 each rank sends all its gradients:
61M parameters x 4 bytes = 244 MB a step for AlexNet, whatever the batch.

Model parallel (towers.py), rank 0 (the larger half where a layer splits unevenly):
forward, its piece of each gathered activation (conv3's input, fc6's, fc7's, fc8's, the
logits) and the LRN halos; backward, the same pieces' gradients again (no logits). It
grows with the batch, not with the parameters: the fully connected layers, which hold
58.6M of the 61M parameters, never move.

The counts here are the ones ``Communicator.bytes_sent`` measures (a test holds them equal).
"""

from __future__ import annotations

import numpy as np

from ..layers import LRN, Conv2D, Flatten, Linear
from .towers import halves


def data_parallel_bytes(model, ranks: int = 2, itemsize: int | None = None) -> int:
    """Bytes one rank sends per step: the ring all-reduce of all gradients and the loss."""
    params = model.params
    itemsize = itemsize or next(iter(params.values())).dtype.itemsize
    n = sum(int(np.prod(p.shape)) for p in params.values()) + 1
    return 2 * (ranks - 1) * n * itemsize // ranks


def model_parallel_bytes(model, batch: int, itemsize: int | None = None) -> list[tuple]:
    """[(where, forward bytes, backward bytes)] rank 0 sends per step, two towers."""
    itemsize = itemsize or next(iter(model.params.values())).dtype.itemsize
    rows, piece, shape = [], None, (batch, 3, model.input_size, model.input_size)
    for name, layer in model.named_layers():
        rest = int(np.prod(shape[2:]))  # entries per channel (1 after Flatten)
        gathers = isinstance(layer, Linear) or (isinstance(layer, Conv2D) and layer.groups == 1)
        if gathers and piece is not None:
            n = batch * piece * rest * itemsize
            rows.append((f"{name} input", n, n))
        if isinstance(layer, LRN):
            h = max(layer.size // 2, (layer.size - 1) // 2)
            n = batch * h * rest * itemsize
            rows.append((f"{name} halo", n, n))
        if isinstance(layer, Flatten) and piece is not None:
            piece *= rest
        shape = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        if isinstance(layer, (Conv2D, Linear)):
            piece = max(halves(shape[1]))
    rows.append(("logits", batch * piece * itemsize, 0))
    return rows


def comparison(model, batch: int, itemsize: int | None = None) -> str:
    """A table of both schemes' bytes per step on two ranks."""
    rows = model_parallel_bytes(model, batch, itemsize)
    lines = [f"{'model parallel (2 towers), rank 0 sends':<40} {'forward':>14} {'backward':>14}"]
    lines += [f"  {where:<38} {f:>14,} {b:>14,}" for where, f, b in rows]
    towers = sum(f + b for _, f, b in rows)
    dp = data_parallel_bytes(model, 2, itemsize)
    lines += [
        f"  {'total per step':<38} {towers:>29,}",
        f"{'data parallel (2 ranks), each sends':<40} {dp:>29,}",
        f"data parallel sends {dp / towers:.1f}x the towers' bytes at batch {batch}",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    import argparse

    from ..models import build

    p = argparse.ArgumentParser(prog="python -m tinyalex.parallel.traffic")
    p.add_argument("--model", choices=("alexnet", "cifar"), default="alexnet")
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    model = build(args.model, dtype=np.float32)
    count = sum(p.size for p in model.params.values())
    print(f"{args.model} ({count:,} parameters), batch {args.batch}, float32:")
    print(comparison(model, args.batch))


if __name__ == "__main__":
    main()
