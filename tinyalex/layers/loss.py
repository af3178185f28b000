"""Softmax cross-entropy, averaged over the batch (P §3.5: a 1000-way softmax).

    log p = log_softmax(z) = z - max(z) - log sum exp(z - max(z))        (row by row)
    L     = -(1/N) sum_n log p[n, y_n]
    dL/dz = (p - onehot(y)) / N

Shapes: logits z (N, K); labels y (N,) integers in [0, K); L a 0-d array; dL/dz (N, K).
Stable for any logits: the row maximum is subtracted before the exponential.

Versions (docs/style.md §2): reference ``reference.softmax_cross_entropy`` (one row at a
time, in float64); plain path below; fast path on the GPU only, ``kernels.cuda.softmax_xent``
and ``softmax_xent_backward`` (one launch each way, and no read back to the host: a label
outside [0, K) there makes the loss NaN, which the training loop's finiteness check reports,
instead of the ValueError the CPU raises).
"""

from __future__ import annotations

from .. import kernels
from ..backend import array_module, is_cupy_array


def log_softmax(z):
    """Row-wise log softmax of (N, K) logits, stable for any magnitude."""
    xp = array_module(z)
    z = z - z.max(axis=-1, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=-1, keepdims=True))


def softmax(z):
    """Row-wise softmax of (N, K) logits: exp(log_softmax(z)), rows summing to 1."""
    return array_module(z).exp(log_softmax(z))


class SoftmaxCrossEntropy:
    """The loss. Not a Layer: it takes labels and ends the network, so its contract is smaller:

    loss    = loss_fn.forward(logits, labels)   # mean cross-entropy; keeps log p
    dlogits = loss_fn.backward()                # dL/dlogits, (N, K)
    """

    def __init__(self):
        self._cache, self._kern = None, None

    def forward(self, logits, labels):
        xp = array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects (N, K) logits, got {logits.shape}")
        labels = xp.asarray(labels)
        n, k = logits.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be {n} integers (shape ({n},)), got shape {labels.shape} "
                f"dtype {labels.dtype}"
            )
        kern = kernels.for_array(logits) if is_cupy_array(logits) else None
        self._kern = kern
        if kern:  # no host read: checking the labels' range would synchronise every step
            loss, logp = kern.softmax_xent(logits, labels)
            self._cache = (logp, labels)
            return loss
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(
                f"labels must lie in [0, {k}), got min {int(labels.min())} max {int(labels.max())}"
            )
        logp = log_softmax(logits)
        self._cache = (logp, labels)
        return -logp[xp.arange(n), labels].mean()

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward() called before forward()")
        logp, labels = self._cache
        if self._kern:
            return self._kern.softmax_xent_backward(logp, labels)
        d = array_module(logp).exp(logp)  # p
        d[array_module(d).arange(len(labels)), labels] -= 1
        return d / len(labels)
