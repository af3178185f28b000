"""Sequential: layers applied in order; backward runs them in reverse.

``params`` and ``grads`` are flat dicts with dotted names, like a state dict:
{"conv1.W": ..., "conv1.b": ..., "fc6.W": ...}. A layer's name is its ``name``
attribute if set (the models name layers as the paper does), else its index.
"""

from __future__ import annotations

import inspect

from ..backend import array_module
from .base import Layer


class Sequential(Layer):
    def __init__(self, *layers: Layer):
        super().__init__()
        self.layers = list(layers)
        names = [self._layer_name(i, layer) for i, layer in enumerate(self.layers)]
        if len(set(names)) != len(names):
            raise ValueError(f"Sequential: duplicate layer names {names}")

    @staticmethod
    def _layer_name(index: int, layer: Layer) -> str:
        return layer.name if layer.name is not None else str(index)

    def named_layers(self):
        return [(self._layer_name(i, layer), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, key):
        if isinstance(key, str):
            return dict(self.named_layers())[key]
        return self.layers[key]

    def __len__(self) -> int:
        return len(self.layers)

    def _flat(self, attr: str) -> dict:
        return {
            f"{name}.{key}": v
            for name, layer in self.named_layers()
            for key, v in getattr(layer, attr).items()
        }

    @property
    def params(self) -> dict:
        return self._flat("params")

    @params.setter
    def params(self, value):  # the base class assigns {} in __init__
        pass

    @property
    def grads(self) -> dict:
        return self._flat("grads")

    @grads.setter
    def grads(self, value):
        pass

    def load_params(self, params: dict) -> None:
        """Copy arrays into the parameters by dotted name (shapes must match)."""
        own = self.params
        missing, extra = set(own) - set(params), set(params) - set(own)
        if missing or extra:
            raise ValueError(
                f"parameter names differ: missing {sorted(missing)}, extra {sorted(extra)}"
            )
        for name, layer in self.named_layers():
            for key, p in layer.params.items():
                v = params[f"{name}.{key}"]
                if tuple(v.shape) != tuple(p.shape):
                    raise ValueError(f"{name}.{key}: shape {tuple(v.shape)} != {tuple(p.shape)}")
                layer.params[key] = array_module(p).asarray(v, dtype=p.dtype)

    def forward(self, x, train: bool = True):
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dy, input_grad: bool = True):
        """dL/dx through every layer, in reverse; fills each layer's grads.

        ``input_grad=False``: the gradient with respect to the input is not wanted (a
        batch of images needs none; PyTorch skips it the same way when the input does not
        require grad). Backward then stops at the first layer with parameters, which fills
        its grads but skips its own dx (conv1's col2im and one of its three GEMMs), and
        returns None. The layers below it, holding no parameters, are not run.
        """
        layers = self.layers
        stop = 0
        if not input_grad:
            with_params = [i for i, layer in enumerate(layers) if layer.params]
            if not with_params:
                return None
            stop = with_params[0]
        for i in range(len(layers) - 1, stop - 1, -1):
            layer = layers[i]
            if i == stop and not input_grad:
                if _takes_input_grad(layer):
                    layer.backward(dy, input_grad=False)
                else:
                    layer.backward(dy)
                return None
            dy = layer.backward(dy)
        return dy

    def zero_grads(self) -> None:
        for layer in self.layers:
            layer.zero_grads()

    def to(self, backend: str):
        for layer in self.layers:
            layer.to(backend)
        return self

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({name}) {layer!r}" for name, layer in self.named_layers())
        return f"Sequential(\n{inner}\n)"


def _takes_input_grad(layer) -> bool:
    """Whether ``layer.backward`` accepts ``input_grad`` (Conv2D, Linear, Sequential do)."""
    return "input_grad" in inspect.signature(layer.backward).parameters
