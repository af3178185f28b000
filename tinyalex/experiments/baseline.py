"""The network every ablation changes one thing of: the paper's choices at small scale.

ReLU, LRN after conv1 and conv2, overlapping 3/2 max-pooling, conv2 in two towers
(groups=2), dropout 0.5 on the hidden fully connected layers, random crops and flips with
PCA colour, SGD with momentum 0.9 and weight decay 5e-4 (P §5). Inputs standardised per
channel (the paper subtracts the mean image of 0-255 pixels, P §2; unit-scale inputs let
these short runs take larger steps), He init. One learning rate for all of them
(``Scale.lr``), set once so that the baseline trains, not tuned per arm or claim.
"""

from __future__ import annotations

from .trial import RunSpec


def base_net(ctx) -> dict:
    scale = ctx.scale
    return {
        "widths": tuple(scale.widths),
        "hidden": tuple(scale.hidden),
        "groups": 2,
        "lrn": True,
        "pool": (3, 2),
        "activation": "relu",
        "dropout": 0.5,
        "init": "he",
    }


def base_spec(ctx, *, net: dict | None = None, **settings) -> RunSpec:
    """The baseline's RunSpec, with ``net`` entries and settings replaced."""
    scale = ctx.scale
    full = {
        "lr": scale.lr,
        "epochs": scale.epochs,
        "weight_decay": scale.weight_decay,
        "evals_per_epoch": scale.evals_per_epoch,
        "normalise": "channel",
        "ten_crop": True,  # cheap next to training; the ten-crop claim reads it
        **settings,
    }
    return RunSpec.of({**base_net(ctx), **(net or {})}, **full)


def setting_text(ctx) -> str:
    """'Fashion-MNIST, 4000 training images, ...' for the table's 'our setting' column."""
    return f"{ctx.data_name}, {ctx.scale.describe()}, {len(ctx.seeds)} seeds"
