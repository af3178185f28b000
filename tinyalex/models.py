"""The networks, as data: each reads as the paper's table, line by line (docs/conventions.md §1).

``alexnet()``       the 2012 ImageNet network, two towers expressed as groups=2.
``cifar_alexnet()`` the small AlexNet-style CIFAR-10 network of TensorFlow's tutorial.

A model is a :class:`Model`: a Sequential whose layers carry the paper's names
(conv1, lrn1, pool1, ..., fc8), plus ``input_size``, ``num_classes``, ``config``
(the keyword arguments that rebuild it) and ``summary()``.
"""

from __future__ import annotations

import numpy as np

from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Sequential, Tanh
from .layers.base import make_rng


class Model(Sequential):
    """A named Sequential with the facts a trainer needs."""

    def __init__(self, layers, *, input_size: int, num_classes: int, config: dict):
        super().__init__(*layers)
        self.input_size, self.num_classes, self.config = input_size, num_classes, dict(config)

    def input_shape(self, batch: int = 1) -> tuple:
        return (batch, 3, self.input_size, self.input_size)

    def summary(self, batch: int = 1) -> str:
        """Per layer: output shape, parameters, MACs and activation memory; then totals."""
        return format_summary(layer_stats(self, self.input_shape(batch)), batch)


def _named(name: str, layer):
    layer.name = name
    return layer


def _block(
    i: int, conv: Conv2D, act, *, lrn: LRN | None = None, pool: MaxPool2D | None = None, order=None
):
    """conv_i -> act_i [-> lrn_i] [-> pool_i], or the order given (the CIFAR net pools first)."""
    parts = {"conv": conv, "relu": act, "lrn": lrn, "pool": pool}
    order = order or ("conv", "relu", "lrn", "pool")
    return [_named(f"{kind}{i}", parts[kind]) for kind in order if parts[kind] is not None]


def _activation(kind: str):
    if kind == "relu":
        return ReLU()
    if kind == "tanh":
        return Tanh()
    raise ValueError(f"activation must be 'relu' or 'tanh', got {kind!r}")


def alexnet(
    num_classes: int = 1000,
    *,
    input_size: int = 227,
    groups: int = 2,
    lrn: bool = True,
    pool: tuple = (3, 2),
    activation: str = "relu",
    dropout: float = 0.5,
    lrn_alpha_divided_by_size: bool = False,
    init: str = "paper",
    width: float = 1.0,
    dtype=np.float32,
    seed: int | None = 0,
) -> Model:
    """The paper's network (P §3.5). 60,965,224 parameters and 724,406,816 MACs at the defaults.

    Input (N, 3, 227, 227) by default: (227 - 11) / 4 + 1 = 55 exactly, as Caffe does it.
    ``input_size=224`` (the paper's stated size) pads conv1 by 2 instead, as torchvision does;
    both give conv1 55x55 and the same parameters. Smaller inputs of 4k + 11 pixels (67, 99,
    ..., 227) keep the same layers on smaller maps (67: pool5 is 1x1), and ``width`` scales
    every layer's channels and fc6/fc7's units (``width=0.25``: 24-64-96-96-64, fc 1024):
    AlexNet's shape at a size a CPU test can afford.

    Ablations of the paper's claims: ``groups=1`` (one tower of the same widths:
    62,378,344 parameters), ``lrn=False``, ``pool=(2, 2)`` (non-overlapping),
    ``activation="tanh"``, ``dropout=0.0``, ``lrn_alpha_divided_by_size=True`` (PyTorch's and
    Caffe's alpha convention, with alpha 5e-4 so that the layer is unchanged).

    ``init="paper"``: weights N(0, 0.01^2), biases 1 in conv2, conv4, conv5, fc6, fc7 and 0
    elsewhere (P §5). It expects the paper's inputs (0-255 pixels minus the mean image) and
    1000 classes; on 10 it stalls (docs/conventions.md §4). ``init="he"``: N(0, 2 / fan_in),
    biases 0 (He et al. 2015), for inputs standardised to unit scale; fc8 keeps the paper's
    N(0, 0.01^2) under both.
    """
    config = {k: v for k, v in locals().items() if k != "dtype"}
    config["dtype"] = np.dtype(dtype).name
    config["pool"] = list(pool)
    if problem := input_size_problem("alexnet", input_size):
        raise ValueError(f"alexnet input_size: {problem}")
    if init not in ("paper", "he"):
        raise ValueError(f"init must be 'paper' or 'he', got {init!r}")
    if width <= 0:
        raise ValueError(f"alexnet width must be positive, got {width}")
    rng = make_rng(seed)
    z, s = pool
    pad1 = 2 if input_size == 224 else 0
    alpha = 5e-4 if lrn_alpha_divided_by_size else 1e-4
    paper = init == "paper"

    def c(channels):  # a width, kept even so that groups=2 splits it
        return max(2, 2 * round(channels * width / 2))

    def norm():
        return (
            LRN(5, alpha, 0.75, 2.0, alpha_divided_by_size=lrn_alpha_divided_by_size)
            if lrn
            else None
        )

    def conv(cin, cout, k, stride=1, padding=0, g=1):
        layer = Conv2D(cin, cout, k, stride, padding, g, dtype=dtype, rng=rng)
        return _scaled_to(layer, 0.01) if paper else layer

    act = activation
    features = [
        *_block(1, conv(3, c(96), 11, 4, pad1), _activation(act), lrn=norm(), pool=MaxPool2D(z, s)),
        *_block(
            2,
            conv(c(96), c(256), 5, 1, 2, groups),
            _activation(act),
            lrn=norm(),
            pool=MaxPool2D(z, s),
        ),
        *_block(3, conv(c(256), c(384), 3, 1, 1), _activation(act)),
        *_block(4, conv(c(384), c(384), 3, 1, 1, groups), _activation(act)),
        *_block(5, conv(c(384), c(256), 3, 1, 1, groups), _activation(act), pool=MaxPool2D(z, s)),
    ]
    side = _spatial_after(features, input_size)

    def fc(fin, fout):
        return Linear(fin, fout, dtype=dtype, rng=rng, weight_std=0.01 if paper else None)

    classifier = [_named("flatten", Flatten())]
    for i, (fin, fout) in ((6, (c(256) * side * side, c(4096))), (7, (c(4096), c(4096)))):
        classifier += [
            _named(f"fc{i}", fc(fin, fout)),
            _named(f"relu{i}", _activation(act)),
        ]
        if dropout:
            classifier.append(_named(f"drop{i}", Dropout(dropout, rng=rng.integers(2**63))))
    # fc8 N(0, 0.01^2) under both inits: He's draw there gives logits of std ~3 (loss ~5.5
    # at step 1), and the first steps at lr 0.01 then collapse the net to one output for
    # every image (docs/conventions.md §4)
    fc8 = Linear(c(4096), num_classes, dtype=dtype, rng=rng, weight_std=0.01)
    classifier.append(_named("fc8", fc8))
    model = Model(
        features + classifier, input_size=input_size, num_classes=num_classes, config=config
    )
    if paper:
        set_biases(model, {"conv2": 1, "conv4": 1, "conv5": 1, "fc6": 1, "fc7": 1})
    return model


def cifar_alexnet(
    num_classes: int = 10,
    *,
    input_size: int = 24,
    lrn: bool = True,
    activation: str = "relu",
    init: str = "paper",
    dtype=np.float32,
    seed: int | None = 0,
) -> Model:
    """The AlexNet-style CIFAR-10 network of TensorFlow's tutorial (the seed's input code).

    conv1 64@5x5 -> ReLU -> max-pool 3/2 -> LRN -> conv2 64@5x5 -> ReLU -> LRN -> max-pool 3/2
    -> fc3 384 -> ReLU -> fc4 192 -> ReLU -> fc5 classes.

    Input (N, 3, 24, 24): the tutorial's random 24x24 crops of 32x32 images (``input_size=32``
    takes whole images). Convolutions pad 2 ("SAME"); pooling pads 1 on both sides where TF's
    "SAME" pads only after, which gives the same 12 -> 6 sizes. LRN as the tutorial:
    depth_radius 4 (size 9), bias 1, alpha 0.001/9, beta 0.75, alpha not divided by size.

    Init, scaled for inputs in pixel units (mean-subtracted 0..255, std ~ 60): conv1
    N(0, 0.01^2) as the paper's conv1, He normal for the hidden layers, fc5 N(0, (1/192)^2)
    as the tutorial; biases 0.1 in conv2, fc3, fc4 (the tutorial's), 0 elsewhere. That is
    ``init="paper"`` (conv1 as the paper's); ``init="he"`` draws conv1 He normal too (std
    sqrt(2 / 75)), for inputs standardised to unit scale (``--normalize channel``), the rest
    unchanged.
    """
    config = {k: v for k, v in locals().items() if k != "dtype"}
    if problem := input_size_problem("cifar", input_size):
        raise ValueError(f"cifar_alexnet input_size: {problem}")
    if init not in ("paper", "he"):
        raise ValueError(f"cifar_alexnet init must be 'paper' or 'he', got {init!r}")
    config["dtype"] = np.dtype(dtype).name
    rng = make_rng(seed)

    def norm():
        return LRN(9, 0.001 / 9.0, 0.75, 1.0) if lrn else None

    def conv(cin, cout):
        return Conv2D(cin, cout, 5, 1, 2, dtype=dtype, rng=rng)

    layers = [
        *_block(
            1,
            _scaled_to(conv(3, 64), 0.01) if init == "paper" else conv(3, 64),
            _activation(activation),
            lrn=norm(),
            pool=MaxPool2D(3, 2, 1),
            order=("conv", "relu", "pool", "lrn"),
        ),
        *_block(2, conv(64, 64), _activation(activation), lrn=norm(), pool=MaxPool2D(3, 2, 1)),
    ]
    side = _spatial_after(layers, input_size)
    layers += [
        _named("flatten", Flatten()),
        _named("fc3", Linear(64 * side * side, 384, dtype=dtype, rng=rng)),
        _named("relu3", _activation(activation)),
        _named("fc4", Linear(384, 192, dtype=dtype, rng=rng)),
        _named("relu4", _activation(activation)),
        _named("fc5", Linear(192, num_classes, dtype=dtype, rng=rng, weight_std=1 / 192)),
    ]
    model = Model(layers, input_size=input_size, num_classes=num_classes, config=config)
    set_biases(model, {"conv2": 0.1, "fc3": 0.1, "fc4": 0.1})
    return model


MODELS = {"alexnet": alexnet, "cifar": cifar_alexnet}


def input_size_problem(name: str, size: int) -> str | None:
    """Why ``size`` cannot be model ``name``'s input side, or None when it can."""
    if name == "alexnet" and size != 224 and (size < 67 or (size - 11) % 4):
        return f"alexnet takes 224, or 4k + 11 pixels from 67 up (227 is the paper's), got {size}"
    if name == "cifar" and size < 8:
        return f"the CIFAR net takes 8 pixels or more, got {size}"
    return None


def build(name: str, **config) -> Model:
    """A model by its CLI name ('alexnet' or 'cifar') and keyword config (as in model.config)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](**config)


def set_biases(model: Sequential, biases: dict) -> None:
    """Set the named layers' biases to constants (the layers build theirs at 0)."""
    for name, layer in model.named_layers():
        if name in biases:
            layer.params["b"][...] = biases[name]


def _scaled_to(conv: Conv2D, std: float) -> Conv2D:
    """Conv2D draws W ~ N(0, 2 / fan_in) (He); scaled by std / sqrt(2 / fan_in) that one
    draw is N(0, std^2), with no second draw of the same weights."""
    fan_in = conv.in_channels // conv.groups * conv.kernel_size**2
    conv.params["W"] *= conv.dtype.type(std / np.sqrt(2.0 / fan_in))
    return conv


def _spatial_after(layers, size: int) -> int:
    shape = (1, 3, size, size)
    for layer in layers:
        if hasattr(layer, "output_shape"):
            shape = layer.output_shape(shape)
    if shape[2] < 1:
        raise ValueError(f"input {size}x{size} is too small for this network")
    return shape[2]


def layer_stats(model: Sequential, input_shape: tuple) -> list[dict]:
    """Per layer: name, type, output shape, parameter count, MACs and activation bytes (float32)."""
    shape, rows = tuple(input_shape), []
    for name, layer in model.named_layers():
        out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        params = sum(int(np.prod(p.shape)) for p in layer.params.values())
        if isinstance(layer, Conv2D):
            macs = int(np.prod(out)) * (layer.in_channels // layer.groups) * layer.kernel_size**2
        elif isinstance(layer, Linear):
            macs = shape[0] * layer.in_features * layer.out_features
        else:
            macs = 0
        rows.append(
            {
                "name": name,
                "type": type(layer).__name__,
                "output": out,
                "params": params,
                "macs": macs,
                "activation_bytes": int(np.prod(out)) * 4,
            }
        )
        shape = out
    return rows


def format_summary(rows: list[dict], batch: int = 1) -> str:
    head = f"{'layer':<9} {'type':<10} {'output':<20} {'params':>12} {'MACs':>15} {'act. MiB':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        out = "x".join(str(d) for d in r["output"][1:])
        lines.append(
            f"{r['name']:<9} {r['type']:<10} {out:<20} {r['params']:>12,} {r['macs']:>15,} "
            f"{r['activation_bytes'] / 2**20:>9.2f}"
        )
    lines.append("-" * len(head))
    params, macs = sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
    mib = sum(r["activation_bytes"] for r in rows) / 2**20
    lines.append(
        f"{'total':<9} {'':<10} {f'batch {batch}':<20} {params:>12,} {macs:>15,} {mib:>9.2f}"
    )
    return "\n".join(lines)
