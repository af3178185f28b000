"""Our layers and the whole cifar_alexnet equal PyTorch's (skipped without torch).

Float64 on both sides, weights copied by tinyalex.bench_torch (the same translation the
benchmark uses), so the comparison also checks that the benchmark times the same network.
LRN: PyTorch divides alpha by the window size, so the paper's alpha becomes alpha * size.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinyalex.bench_torch import torch_grads, torch_module, torch_sequential  # noqa: E402
from tinyalex.layers import LRN, Conv2D, Linear, MaxPool2D, SoftmaxCrossEntropy  # noqa: E402


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def against_torch(layer, x, tol=1e-10):
    """Forward, dx and parameter gradients of ``layer`` vs its PyTorch twin."""
    rng = np.random.default_rng(1)
    m = torch_module(layer, "float64")
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = m(tx)
    y = layer.forward(x)
    close(y, ty.detach().numpy(), tol)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(dy))
    close(layer.backward(dy), tx.grad.numpy(), tol)
    if getattr(m, "weight", None) is not None:
        w = m.weight.grad.numpy()
        close(layer.grads["W"], w.T if w.ndim == 2 else w, tol)
        close(layer.grads["b"], m.bias.grad.numpy(), tol)


@pytest.mark.parametrize(
    "c,o,k,s,p,g", [(4, 6, 3, 2, 1, 2), (6, 3, 5, 1, 2, 3), (3, 8, 11, 4, 0, 1)]
)
def test_conv_with_groups(rng, c, o, k, s, p, g):
    layer = Conv2D(c, o, k, s, p, g, dtype=np.float64, rng=rng)
    layer.params["b"] = rng.standard_normal(o)
    against_torch(layer, rng.standard_normal((2, c, 19, 17)))


@pytest.mark.parametrize(
    "size,alpha,beta,k", [(5, 1e-4, 0.75, 2.0), (5, 0.9, 0.75, 1.0), (9, 0.5, 0.6, 1.0)]
)
def test_lrn_paper_alpha_is_torch_alpha_times_size(rng, size, alpha, beta, k):
    against_torch(LRN(size, alpha, beta, k), rng.standard_normal((2, 7, 4, 5)) * 2)


@pytest.mark.parametrize("z,s,p,h", [(3, 2, 0, 13), (3, 2, 0, 12), (3, 2, 1, 12), (2, 2, 0, 7)])
def test_maxpool(rng, z, s, p, h):
    against_torch(MaxPool2D(z, s, p), rng.standard_normal((2, 3, h, h + 1)))


def test_linear(rng):
    layer = Linear(9, 4, dtype=np.float64, rng=rng)
    layer.params["b"] = rng.standard_normal(4)
    against_torch(layer, rng.standard_normal((5, 9)))


def test_whole_cifar_alexnet_equals_torch(rng):
    """Forward, loss, dx and every parameter gradient of the benchmark's cifar network."""
    from tinyalex.models import cifar_alexnet

    model = cifar_alexnet(dtype=np.float64, seed=3)
    x = rng.standard_normal((3, 3, 24, 24)) * 50
    labels = np.array([1, 7, 3])
    net = torch_sequential(model, "float64")
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    tlogits = net(tx)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(labels))
    tloss.backward()

    ce = SoftmaxCrossEntropy()
    logits = model.forward(x)
    close(logits, tlogits.detach().numpy(), 1e-9)
    close(ce.forward(logits, labels), tloss.item(), 1e-9)
    close(model.backward(ce.backward()), tx.grad.numpy(), 1e-9)
    theirs = torch_grads(net)
    assert set(theirs) == set(model.grads)
    for name, g in model.grads.items():
        close(g, theirs[name], 1e-9)
