"""Softmax cross-entropy, averaged over the batch (P §3.5: a 1000-way softmax).

    p = softmax(z),   L = -(1/N) sum_n log p[n, y_n],   dL/dz = (p - onehot(y)) / N

Shapes: logits z (N, K); labels y (N,) integers in [0, K). Stable for any logits:
the row maximum is subtracted first and log p is computed as z - logsumexp(z).
"""

from __future__ import annotations

from ..backend import array_module


def softmax(z):
    """Row-wise softmax of (N, K) logits, stable for any magnitude."""
    xp = array_module(z)
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class SoftmaxCrossEntropy:
    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self._cache = None

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
        if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise ValueError(
                f"labels must lie in [0, {k}), got min {int(labels.min())} max {int(labels.max())}"
            )
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - xp.log(xp.exp(z).sum(axis=1, keepdims=True))
        rows = xp.arange(n)
        self.probs = xp.exp(logp)
        self._cache = (self.probs, labels)
        return -logp[rows, labels].mean()

    __call__ = forward

    def backward(self):
        if self._cache is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward() called before forward()")
        probs, labels = self._cache
        d = probs.copy()
        d[array_module(d).arange(len(labels)), labels] -= 1
        return d / len(labels)
