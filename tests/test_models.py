"""The networks match the paper's table (docs/conventions.md §1) and train through backward."""

import numpy as np
import pytest

from tinyalex.gradcheck import gradcheck_report
from tinyalex.layers import LRN, Conv2D, Dropout, MaxPool2D, Tanh
from tinyalex.models import alexnet, build, cifar_alexnet, layer_stats


def total(model, key):
    return sum(r[key] for r in layer_stats(model, model.input_shape()))


def test_alexnet_counts_match_the_paper():
    m = alexnet()
    assert total(m, "params") == 60_965_224
    assert total(m, "macs") == 724_406_816
    assert m.input_size == 227


def test_one_tower_counts():
    m = alexnet(groups=1)
    assert total(m, "params") == 62_378_344
    assert total(m, "macs") == 1_135_256_096


def test_alexnet_layer_order_and_shapes():
    m = alexnet()
    names = [n for n, _ in m.named_layers()]
    assert names[:8] == ["conv1", "relu1", "lrn1", "pool1", "conv2", "relu2", "lrn2", "pool2"]
    # dropout on the outputs of fc6 and fc7 (P = Caffe), not on their inputs (torchvision)
    assert names[-8:] == ["flatten", "fc6", "relu6", "drop6", "fc7", "relu7", "drop7", "fc8"]
    assert [m[n].groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [1, 2, 1, 2, 2]
    rows = {r["name"]: r["output"] for r in layer_stats(m, (2, 3, 227, 227))}
    assert rows["conv1"] == (2, 96, 55, 55) and rows["pool1"] == (2, 96, 27, 27)
    assert rows["pool2"] == (2, 256, 13, 13) and rows["pool5"] == (2, 256, 6, 6)
    assert rows["fc8"] == (2, 1000)


def test_224_input_pads_conv1():
    m = alexnet(input_size=224)
    assert m["conv1"].padding == 2 and m.input_size == 224
    assert total(m, "params") == 60_965_224
    with pytest.raises(ValueError, match="4k \\+ 11"):
        alexnet(input_size=200)
    with pytest.raises(ValueError, match="4k \\+ 11"):
        alexnet(input_size=63)


def test_small_alexnet_keeps_the_layers():
    """input 4k + 11 and width: the same layers on smaller maps, channels scaled."""
    m = alexnet(num_classes=10, input_size=67, width=0.25)
    rows = {r["name"]: r["output"] for r in layer_stats(m, (2, 3, 67, 67))}
    assert rows["conv1"] == (2, 24, 15, 15) and rows["pool1"] == (2, 24, 7, 7)
    assert rows["pool2"] == (2, 64, 3, 3) and rows["pool5"] == (2, 64, 1, 1)
    assert rows["fc6"] == (2, 1024) and rows["fc8"] == (2, 10)
    assert [n for n, _ in m.named_layers()] == [n for n, _ in alexnet().named_layers()]
    assert build("alexnet", **m.config)["fc7"].in_features == 1024


def test_paper_init():
    m = alexnet(num_classes=10)
    for name in ("conv1", "conv3", "fc8"):
        assert float(m[name].params["b"].max()) == 0.0
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert np.all(m[name].params["b"] == 1.0)
    for name in ("conv1", "conv3", "fc6"):
        assert abs(float(m[name].params["W"].std()) - 0.01) < 2e-4, name
    assert m["conv1"].params["W"].dtype == np.float32


def test_he_init():
    m = alexnet(num_classes=10, init="he", input_size=67, width=0.5)
    for name, fan_in in (("conv1", 3 * 11 * 11), ("conv3", 128 * 9), ("fc7", 2048)):
        assert float(m[name].params["W"].std()) == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
        assert not m[name].params["b"].any()
    with pytest.raises(ValueError, match="init"):
        alexnet(init="xavier")


class CountingGenerator(np.random.Generator):
    """A Generator that counts the normal samples it hands out."""

    drawn = 0

    def normal(self, loc=0.0, scale=1.0, size=None):
        self.drawn += int(np.prod(size))
        return super().normal(loc, scale, size)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        self.drawn += int(np.prod(size))
        return super().standard_normal(size, dtype=dtype, out=out)


@pytest.mark.parametrize("init", ["paper", "he"])
def test_each_weight_is_drawn_once(init):
    rng = CountingGenerator(np.random.PCG64(0))
    m = alexnet(num_classes=10, input_size=67, width=0.25, init=init, seed=rng)
    weights = sum(p.size for k, p in m.params.items() if k.endswith(".W"))
    assert rng.drawn == weights
    rng = CountingGenerator(np.random.PCG64(0))
    m = cifar_alexnet(seed=rng)
    assert rng.drawn == sum(p.size for k, p in m.params.items() if k.endswith(".W"))


def test_ablation_options():
    m = alexnet(lrn=False, pool=(2, 2), activation="tanh", dropout=0.0)
    assert not any(isinstance(layer, LRN) for layer in m.layers)
    pools = [layer for layer in m.layers if isinstance(layer, MaxPool2D)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2)] * 3
    assert sum(isinstance(layer, Tanh) for layer in m.layers) == 7
    assert not any(isinstance(layer, Dropout) for layer in m.layers)
    assert m["fc6"].in_features == 256 * 6 * 6  # 2/2 pooling: 55 -> 27 -> 13 -> 6 as well
    lrn = alexnet(lrn_alpha_divided_by_size=True)["lrn1"]
    assert lrn.alpha_divided_by_size and lrn.effective_alpha == pytest.approx(1e-4)


def test_alexnet_forward_backward_small_batch():
    m = alexnet(num_classes=7, seed=1)
    x = np.random.default_rng(0).standard_normal((1, 3, 227, 227)).astype(np.float32)
    y = m.forward(x)
    assert y.shape == (1, 7) and y.dtype == np.float32
    dx = m.backward(np.ones_like(y))
    assert dx.shape == x.shape
    assert set(m.grads) == set(m.params)


def test_cifar_alexnet_shapes():
    m = cifar_alexnet()
    names = [n for n, _ in m.named_layers()]
    assert names[:4] == ["conv1", "relu1", "pool1", "lrn1"]  # the tutorial pools before norm1
    assert names[4:8] == ["conv2", "relu2", "lrn2", "pool2"]
    rows = {r["name"]: r["output"] for r in layer_stats(m, (1, 3, 24, 24))}
    assert rows["pool2"] == (1, 64, 6, 6) and rows["fc5"] == (1, 10)
    assert m["lrn1"].size == 9 and m["lrn1"].k == 1.0
    assert cifar_alexnet(input_size=32)["fc3"].in_features == 64 * 8 * 8


def test_whole_network_gradient_check_float64():
    m = cifar_alexnet(num_classes=5, input_size=8, dtype=np.float64, seed=3)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)) * 30
    # Pixel-scale inputs: dL/dx is small beside L, so at eps 1e-6 the difference quotient's
    # rounding shows (1e-5 here, 2e-5 at 1e-7: it grows as eps shrinks); eps 1e-5 is still a
    # tiny step for a pixel and leaves the check 20x below its bound (4.5e-7).
    report = gradcheck_report(m, x, labels=np.array([1, 4]), max_checks=15, eps=1e-5)
    assert len(report) == 1 + 10
    assert max(report.values()) < 1e-5, report


def test_summary_has_totals():
    text = alexnet().summary()
    assert "60,965,224" in text and "724,406,816" in text and "conv5" in text


def test_build_by_name():
    assert isinstance(build("cifar", num_classes=3)["conv1"], Conv2D)
    m = build("alexnet", **alexnet(num_classes=4, groups=1).config)
    assert m["conv2"].groups == 1 and m.num_classes == 4
    with pytest.raises(ValueError, match="unknown model"):
        build("vgg")
