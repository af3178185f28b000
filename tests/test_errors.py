"""Bad input gets a clear error, not a wrong answer."""

import numpy as np
import pytest

from tinyalex.layers import LRN, Conv2D, Linear, MaxPool2D, ReLU, Sequential, SoftmaxCrossEntropy


def test_conv_wrong_channels():
    with pytest.raises(ValueError, match="expects 3 input channels, got 4"):
        Conv2D(3, 8, 3).forward(np.zeros((1, 4, 8, 8), np.float32))


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 1, 3, 8, 8), (8,)])
def test_conv_needs_4d(shape):
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\)"):
        Conv2D(3, 8, 3).forward(np.zeros(shape, np.float32))


def test_conv_input_smaller_than_kernel():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2D(3, 8, 5).forward(np.zeros((1, 3, 4, 4), np.float32))


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match="divisible by groups"):
        Conv2D(3, 8, 3, groups=2)


def test_linear_wrong_features():
    with pytest.raises(ValueError, match=r"expects \(N, 5\) input.*Flatten"):
        Linear(5, 2).forward(np.zeros((2, 5, 1, 1), np.float32))


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [0.0, 1.0], [[0], [1]]])
def test_labels_out_of_range_or_wrong_type(labels):
    with pytest.raises(ValueError, match="labels"):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3), np.float32), np.array(labels))


@pytest.mark.parametrize(
    "layer", [Conv2D(1, 1, 1), Linear(2, 2), ReLU(), LRN(), MaxPool2D(), Sequential(ReLU())]
)
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
        layer.backward(np.zeros((1, 1, 3, 3), np.float32))


def test_backward_after_eval_forward_is_an_error():
    layer = Conv2D(1, 1, 1)
    layer.forward(np.zeros((1, 1, 2, 2), np.float32), train=False)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 1, 2, 2), np.float32))


def test_softmax_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        SoftmaxCrossEntropy().backward()
