"""The same network in PyTorch, for side-by-side timings and equality tests.

PyTorch is never a dependency of tinyalex: this module imports it inside its functions,
and callers check :func:`torch_available` first. A tinyalex Sequential is translated
layer by layer into ``torch.nn`` modules with the same shapes, and its weights copied:

- Conv2D (O, C/G, k, k)  -> nn.Conv2d(groups=G), same weight layout
- Linear W (in, out)     -> nn.Linear, weight = W.T (PyTorch stores (out, in))
- LRN (the paper's alpha) -> nn.LocalResponseNorm(alpha = alpha' * size): PyTorch
  divides alpha by the window size
- MaxPool2D (-inf padding) -> nn.MaxPool2d (implicit -inf padding, floor mode)
- ReLU, Tanh, Flatten, Dropout (inverted) -> their nn namesakes
"""

from __future__ import annotations

import numpy as np

from .backend import to_numpy
from .layers import LRN, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Tanh


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def torch_module(layer, dtype: str = "float32"):
    """One torch.nn module equal to a tinyalex layer, weights copied, on the CPU.

    ``dtype`` 'float32' (for timing) or 'float64' (for equality tests).
    """
    import torch
    from torch import nn

    def tensor(a):
        return torch.from_numpy(np.ascontiguousarray(to_numpy(a), dtype=dtype))

    tdtype = getattr(torch, dtype)
    if isinstance(layer, Conv2D):
        m = nn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            groups=layer.groups,
            dtype=tdtype,
        )
        with torch.no_grad():
            m.weight.copy_(tensor(layer.params["W"]))
            m.bias.copy_(tensor(layer.params["b"]))
        return m
    if isinstance(layer, Linear):
        m = nn.Linear(layer.in_features, layer.out_features, dtype=tdtype)
        with torch.no_grad():
            m.weight.copy_(tensor(layer.params["W"]).T)
            m.bias.copy_(tensor(layer.params["b"]))
        return m
    if isinstance(layer, LRN):
        return nn.LocalResponseNorm(
            layer.size, alpha=layer.effective_alpha * layer.size, beta=layer.beta, k=layer.k
        )
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
    if isinstance(layer, ReLU):
        return nn.ReLU()
    if isinstance(layer, Tanh):
        return nn.Tanh()
    if isinstance(layer, Flatten):
        return nn.Flatten()
    if isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    raise TypeError(f"no PyTorch counterpart for {type(layer).__name__}")


def torch_sequential(model, dtype: str = "float32"):
    """nn.Sequential of the model's layers, with the same names (conv1, lrn1, ...)."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(
        OrderedDict((name, torch_module(layer, dtype)) for name, layer in model.named_layers())
    )


def torch_grads(net) -> dict:
    """Gradients by tinyalex's dotted names, as NumPy arrays in tinyalex's layouts."""
    out = {}
    for name, m in net.named_children():
        if getattr(m, "weight", None) is not None and m.weight.grad is not None:
            w = m.weight.grad.detach().cpu().numpy()
            out[f"{name}.W"] = w.T if w.ndim == 2 else w
            out[f"{name}.b"] = m.bias.grad.detach().cpu().numpy()
    return out
