"""The reference: naive implementations in plain Python loops, obviously right, tiny shapes only.

"Reference" in tinyalex means this file (docs/style.md §2). It is the specification: each
layer's plain path (its vectorised NumPy/CuPy code) is tested against it in
tests/test_layers.py, and the fast paths (tinyalex/kernels) against both in
tests/test_kernels.py. Written straight from each layer's equation with no vectorisation
tricks. NumPy arrays in and out, float64 recommended.
"""

from __future__ import annotations

import numpy as np


def conv_forward(x, W, b, stride=1, padding=0, groups=1):
    """y[n,o,p,q] = b[o] + sum_{c in group(o), i, j} W[o,c,i,j] xpad[n, c0+c, s p + i, s q + j]."""
    n, c, h, w = x.shape
    o, cg, k, _ = W.shape
    og = o // groups
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    y = np.zeros((n, o, oh, ow), dtype=x.dtype)
    for ni in range(n):
        for oi in range(o):
            c0 = (oi // og) * cg
            for p in range(oh):
                for q in range(ow):
                    total = b[oi]
                    for ci in range(cg):
                        for i in range(k):
                            for j in range(k):
                                total += (
                                    W[oi, ci, i, j]
                                    * xpad[ni, c0 + ci, stride * p + i, stride * q + j]
                                )
                    y[ni, oi, p, q] = total
    return y


def conv_backward(dy, x, W, stride=1, padding=0, groups=1):
    """(dx, dW, db): each output gradient flows back along the products that made it."""
    n, c, h, w = x.shape
    o, cg, k, _ = W.shape
    og = o // groups
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxpad, dW = np.zeros_like(xpad), np.zeros_like(W)
    db = np.zeros(o, dtype=dy.dtype)
    for ni in range(n):
        for oi in range(o):
            c0 = (oi // og) * cg
            for p in range(dy.shape[2]):
                for q in range(dy.shape[3]):
                    g = dy[ni, oi, p, q]
                    db[oi] += g
                    for ci in range(cg):
                        for i in range(k):
                            for j in range(k):
                                r, s = stride * p + i, stride * q + j
                                dW[oi, ci, i, j] += g * xpad[ni, c0 + ci, r, s]
                                dxpad[ni, c0 + ci, r, s] += g * W[oi, ci, i, j]
    return dxpad[:, :, padding : padding + h, padding : padding + w], dW, db


def linear_forward(x, W, b):
    n, m = x.shape[0], W.shape[1]
    y = np.zeros((n, m), dtype=x.dtype)
    for ni in range(n):
        for j in range(m):
            y[ni, j] = b[j] + sum(x[ni, i] * W[i, j] for i in range(W.shape[0]))
    return y


def linear_backward(dy, x, W):
    dx, dW = np.zeros_like(x), np.zeros_like(W)
    db = np.zeros(W.shape[1], dtype=dy.dtype)
    for ni in range(x.shape[0]):
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                dx[ni, i] += dy[ni, j] * W[i, j]
                dW[i, j] += x[ni, i] * dy[ni, j]
        for j in range(W.shape[1]):
            db[j] += dy[ni, j]
    return dx, dW, db


def _lrn_window(i, channels, size):
    return range(max(0, i - size // 2), min(channels - 1, i + (size - 1) // 2) + 1)


def lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """The paper's formula (alpha NOT divided by size), one element at a time."""
    n, c, h, w = x.shape
    y = np.zeros_like(x)
    for ni in range(n):
        for i in range(c):
            for r in range(h):
                for s in range(w):
                    total = sum(x[ni, j, r, s] ** 2 for j in _lrn_window(i, c, size))
                    y[ni, i, r, s] = x[ni, i, r, s] / (k + alpha * total) ** beta
    return y


def lrn_backward(dy, x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    """dx[j] = sum_i dy[i] * d y[i] / d x[j], with the derivative written out per pair (i, j)."""
    n, c, h, w = x.shape
    dx = np.zeros_like(x)
    for ni in range(n):
        for r in range(h):
            for s in range(w):
                a = x[ni, :, r, s]
                scale = [
                    k + alpha * sum(a[j] ** 2 for j in _lrn_window(i, c, size)) for i in range(c)
                ]
                for i in range(c):
                    for j in _lrn_window(i, c, size):
                        d = -beta * a[i] * scale[i] ** (-beta - 1) * 2 * alpha * a[j]
                        if i == j:
                            d += scale[i] ** -beta
                        dx[ni, j, r, s] += dy[ni, i, r, s] * d
    return dx


def maxpool_forward(x, kernel_size=3, stride=2):
    """Returns (y, argmax) where argmax holds the (row, col) of the first maximum per window."""
    n, c, h, w = x.shape
    z = kernel_size
    oh, ow = (h - z) // stride + 1, (w - z) // stride + 1
    y = np.zeros((n, c, oh, ow), dtype=x.dtype)
    arg = np.zeros((n, c, oh, ow, 2), dtype=int)
    for ni in range(n):
        for ci in range(c):
            for p in range(oh):
                for q in range(ow):
                    best, where = -np.inf, (0, 0)
                    for i in range(z):
                        for j in range(z):
                            v = x[ni, ci, stride * p + i, stride * q + j]
                            if v > best:
                                best, where = v, (stride * p + i, stride * q + j)
                    y[ni, ci, p, q], arg[ni, ci, p, q] = best, where
    return y, arg


def maxpool_backward(dy, x, kernel_size=3, stride=2):
    _, arg = maxpool_forward(x, kernel_size, stride)
    dx = np.zeros_like(x)
    n, c, oh, ow = dy.shape
    for ni in range(n):
        for ci in range(c):
            for p in range(oh):
                for q in range(ow):
                    r, s = arg[ni, ci, p, q]
                    dx[ni, ci, r, s] += dy[ni, ci, p, q]
    return dx


def softmax_cross_entropy(logits, labels):
    """(mean loss, dlogits) with the softmax computed one row at a time, in float64."""
    n, k = logits.shape
    loss, d = 0.0, np.zeros((n, k))
    for ni in range(n):
        row = [float(v) for v in logits[ni]]
        m = max(row)
        exps = [np.exp(v - m) for v in row]
        total = sum(exps)
        loss -= (row[labels[ni]] - m) - np.log(total)
        for j in range(k):
            d[ni, j] = (exps[j] / total - (j == labels[ni])) / n
    return loss / n, d
