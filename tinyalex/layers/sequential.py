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

    def backward(self, dy, input_grad: bool = True):
        """dL/dx through the layers in reverse, as :meth:`backward_steps` lists them; fills
        each layer's grads. Returns dx, or None with ``input_grad=False``."""
        for _, layer, layer_input_grad in self.backward_steps(input_grad):
            dy = layer.backward(dy, input_grad=layer_input_grad)
        return dy if input_grad else None

    def backward_steps(self, input_grad: bool = True) -> list:
        """Where backward runs and stops: [(name, layer, input_grad for that layer)], last
        layer first.

        ``input_grad=True``: every layer, each computing its dx. ``input_grad=False``: the
        gradient with respect to the input is not wanted (a batch of images needs none;
        PyTorch skips it the same way when the input does not require grad). Backward then
        stops at the first layer with parameters, which fills its grads but is asked for no
        dx (conv1's dcols GEMM and col2im); the parameter-free layers below it are not run.
        The benchmark's per-layer timing walks this same list.
        """
        named = self.named_layers()
        steps = [(name, layer, True) for name, layer in named]
        if not input_grad:
            first = next((i for i, (_, layer) in enumerate(named) if layer.params), len(named))
            steps = steps[first:]
            if steps:
                steps[0] = (steps[0][0], steps[0][1], False)
        return steps[::-1]

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
