"""Sequential: layers applied in order; backward runs them in reverse.

``params`` and ``grads`` are flat dicts with dotted names, like a state dict:
{"conv1.W": ..., "conv1.b": ..., "fc6.W": ...}. A layer's name is its ``name``
attribute if set (the models name layers as the paper does), else its index.
"""

from __future__ import annotations

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

    def backward(self, dy):
        for layer in reversed(self.layers):
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
