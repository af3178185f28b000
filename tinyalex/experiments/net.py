"""The experiments' network: a small AlexNet whose every ablation is an argument.

    conv1 c1@5x5 -> act -> [LRN] -> max-pool -> conv2 c2@5x5 (groups) -> act -> [LRN]
    -> max-pool -> fc3 ... (hidden widths, each act -> [dropout]) -> fc_out classes

The paper's network (ALEXNET.md §1) in miniature: two convolutional layers instead of five,
the paper's order conv -> ReLU -> LRN -> pool, LRN with the paper's constants
(n=5, k=2, alpha=1e-4, beta=0.75, alpha not divided by n), conv2 split into ``groups`` towers
as the paper's conv2/4/5, dropout on the outputs of the hidden fully connected layers.
``tinyalex.models.alexnet`` is the full-size network; this one trains in seconds a run on
two CPU cores.

Pooling: ``pool=(3, 2)`` (the paper's overlapping z=3, s=2) pads 1 so that both it and the
non-overlapping ``(2, 2)`` halve the side: the comparison keeps every other size equal, as
the paper's did ("produces output of equivalent dimensions", P §3.4).

Init (inputs standardised per channel): ``"he"`` He normal N(0, 2/fan_in) for every layer
but the output layer, N(0, 0.01^2); ``"lecun"`` N(0, 1/fan_in) everywhere, the
variance-keeping init for tanh (used for the ReLU-vs-tanh comparison so that neither
activation starts saturated). Biases 0. (The paper's N(0, 0.01^2) everywhere, on 0-255
inputs, trained too erratically here for runs of a few hundred steps.)
"""

from __future__ import annotations

import numpy as np

from ..layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Tanh
from ..layers.base import make_rng, normal
from ..models import Model, _spatial_after

INITS = ("he", "lecun")


def small_alexnet(
    num_classes: int = 10,
    *,
    input_size: int = 24,
    widths: tuple = (32, 64),
    hidden: tuple = (256, 128),
    groups: int = 2,
    lrn: bool = True,
    pool: tuple = (3, 2),
    activation: str = "relu",
    dropout: float = 0.5,
    init: str = "he",
    seed: int | None = 0,
) -> Model:
    """The small AlexNet above; input (N, 3, input_size, input_size), output (N, classes)."""
    config = {k: v for k, v in locals().items()}
    config["widths"], config["hidden"], config["pool"] = list(widths), list(hidden), list(pool)
    if activation not in ("relu", "tanh"):
        raise ValueError(f"activation must be 'relu' or 'tanh', got {activation!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    rng = make_rng(seed)
    c1, c2 = widths
    z, s = pool
    pad = (z - s + 1) // 2  # 3/2 -> 1, 2/2 -> 0: both halve an even side

    def act():
        return ReLU() if activation == "relu" else Tanh()

    def named(name, layer):
        layer.name = name
        return layer

    layers = []
    for i, conv in (
        (1, Conv2D(3, c1, 5, 1, 2, rng=rng)),
        (2, Conv2D(c1, c2, 5, 1, 2, groups, rng=rng)),
    ):
        layers += [named(f"conv{i}", conv), named(f"{activation}{i}", act())]
        if lrn:
            layers.append(named(f"lrn{i}", LRN(5, 1e-4, 0.75, 2.0)))
        layers.append(named(f"pool{i}", MaxPool2D(z, s, pad)))
    side = _spatial_after(layers, input_size)
    layers.append(named("flatten", Flatten()))
    fan_in = c2 * side * side
    for i, width in enumerate(hidden, start=3):
        layers += [
            named(f"fc{i}", Linear(fan_in, width, rng=rng)),
            named(f"{activation}{i}", act()),
        ]
        if dropout:
            layers.append(named(f"drop{i}", Dropout(dropout, rng=rng.integers(2**63))))
        fan_in = width
    out = f"fc{3 + len(hidden)}"
    layers.append(named(out, Linear(fan_in, num_classes, rng=rng)))
    model = Model(layers, input_size=input_size, num_classes=num_classes, config=config)
    _initialise(model, init, out, rng)
    return model


def _initialise(model: Model, init: str, out: str, rng) -> None:
    """Weights as the docstring says; "he" keeps the layers' own He init but for the output."""
    for name, layer in model.named_layers():
        if "W" not in layer.params:
            continue
        W = layer.params["W"]
        if init == "lecun":
            fan_in = int(np.prod(W.shape[1:])) if W.ndim == 4 else W.shape[0]
            layer.params["W"] = normal(rng, 1.0 / np.sqrt(fan_in), W.shape, W.dtype)
        elif name == out:
            layer.params["W"] = normal(rng, 0.01, W.shape, W.dtype)
