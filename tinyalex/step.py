"""One step of stochastic gradient descent, the four lines every training loop repeats.

    logits = model.forward(x, train=True)     z = f(x; w)                        (N, K)
    loss   = loss_fn.forward(logits, y)       L = -(1/N) sum_n log softmax(z)[n, y_n]
    model.backward(loss_fn.backward(), input_grad=False)    dL/dw for every parameter
    opt.step()                                v <- m v - wd lr w - lr dL/dw;  w <- w + v

The trainer (tinyalex.train), the benchmark (tinyalex.bench) and the lessons all call
:func:`train_step`, so what is timed, taught and trained is the same code.

``input_grad=False``: a batch of images needs no gradient, so backward stops at the first
layer with parameters (it fills that layer's grads and skips its dx).
"""

from __future__ import annotations

from .backend import array_module


def train_step(model, loss_fn, opt, x, y):
    """Forward, loss, backward and update on one batch; returns ``(loss, logits)``.

    x: float32 (N, C, H, W) on the model's backend; y: int (N,) labels on the same backend.
    loss: a 0-d array on x's backend, *not* read back to the host (no ``float()``), so a
    GPU loop can add losses up on the device and synchronise once in a while.
    logits: (N, K), the forward pass's output (for the error count).
    """
    logits = model.forward(x, train=True)
    loss = loss_fn.forward(logits, y)
    model.backward(loss_fn.backward(), input_grad=False)
    opt.step()
    return array_module(x).asarray(loss), logits
