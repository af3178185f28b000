"""The layers of AlexNet, each with an explicit backward pass (see base.py for the contract)."""

from .activations import ReLU, Tanh
from .base import Layer
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import SoftmaxCrossEntropy, softmax
from .lrn import LRN
from .pool import MaxPool2D
from .sequential import Sequential

__all__ = [
    "LRN",
    "Conv2D",
    "Dropout",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2D",
    "ReLU",
    "Sequential",
    "SoftmaxCrossEntropy",
    "Tanh",
    "col2im",
    "im2col",
    "softmax",
]
