"""AlexNet's layer pattern at toy widths, for the parallel tests and demonstrations.

The same layers, names and groups as ``models.alexnet`` (conv1 -> LRN -> pool, conv2
groups=2, conv3 seeing both towers, conv4/conv5 groups=2, fc6/fc7 with dropout, fc8), at
widths and an input small enough to run in float64 in a fraction of a second:

    input 3x55x55 -> conv1 5/2 8x26x26 -> pool 8x12x12 -> conv2 12x12x12 -> pool 12x5x5
    -> conv3 16x5x5 -> conv4 16x5x5 -> conv5 12x5x5 -> pool 12x2x2 -> fc6 20 -> fc7 20 -> fc8 7

LRN's alpha is 0.5 rather than 1e-4, so that a channel missing from a window changes the
output visibly; 7 classes split unevenly between two towers (4 + 3).
"""

from __future__ import annotations

import numpy as np

from ..layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU
from ..layers.base import make_rng
from ..models import Model


def tiny_alexnet(
    num_classes: int = 7,
    *,
    widths=(8, 12, 16, 16, 12),
    hidden: int = 20,
    dropout: float = 0.5,
    dtype=np.float64,
    seed: int = 0,
) -> Model:
    rng = make_rng(seed)
    c1, c2, c3, c4, c5 = widths

    def named(name, layer):
        layer.name = name
        return layer

    def conv(i, cin, cout, k, stride=1, pad=0, groups=1):
        return named(f"conv{i}", Conv2D(cin, cout, k, stride, pad, groups, dtype=dtype, rng=rng))

    def lrn(i):
        return named(f"lrn{i}", LRN(5, 0.5, 0.75, 2.0))

    def relu(i):
        return named(f"relu{i}", ReLU())

    def pool(i):
        return named(f"pool{i}", MaxPool2D(3, 2))

    def drop(i):
        return named(f"drop{i}", Dropout(dropout, rng=rng.integers(2**63)))

    def fc(i, fin, fout):
        return named(f"fc{i}", Linear(fin, fout, dtype=dtype, rng=rng))

    layers = [
        conv(1, 3, c1, 5, 2), relu(1), lrn(1), pool(1),
        conv(2, c1, c2, 5, 1, 2, groups=2), relu(2), lrn(2), pool(2),
        conv(3, c2, c3, 3, 1, 1), relu(3),
        conv(4, c3, c4, 3, 1, 1, groups=2), relu(4),
        conv(5, c4, c5, 3, 1, 1, groups=2), relu(5), pool(5),
        named("flatten", Flatten()),
        fc(6, c5 * 2 * 2, hidden), relu(6), drop(6),
        fc(7, hidden, hidden), relu(7), drop(7),
        fc(8, hidden, num_classes),
    ]  # fmt: skip
    config = {"num_classes": num_classes, "widths": list(widths), "hidden": hidden}
    return Model(layers, input_size=55, num_classes=num_classes, config=config)
