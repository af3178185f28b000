# %% [markdown]
# # Lesson 02 — The fully connected layer, softmax cross-entropy, and gradient checking
#
# The paper's network ends in three fully connected layers, "the output of the last
# fully-connected layer is fed to a 1000-way softmax which produces a distribution over the 1000
# class labels", and training "maximizes the multinomial logistic regression objective" (§3.5):
# the cross-entropy. This lesson derives the backward pass of both, has you write them, and then
# looks at the tool that checks every backward pass in tinyalex: the numerical gradient.
#
# **Study time:** about 60 minutes. **Prerequisites:** lesson 00; derivatives and the chain rule;
# matrix products.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinyalex import reference
from tinyalex.exercise import check_backward, check_layer, cmp, expect_fail
from tinyalex.gradcheck import relative_error
from tinyalex.layers import Linear, ReLU, SoftmaxCrossEntropy

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The fully connected layer
#
# For a batch of $N$ inputs with $M$ features each, $x$ of shape $(N, M)$, weights $W$ $(M, K)$
# and biases $b$ $(K,)$:
#
# $$y = xW + b, \qquad y_{nk} = b_k + \sum_m x_{nm} W_{mk}.$$
#
# **Backward.** The layer is handed $dy = \partial L/\partial y$, shape $(N, K)$, and must return
# $\partial L / \partial x$ and fill $\partial L/\partial W$, $\partial L/\partial b$. By the chain
# rule, each parameter's gradient sums over every output it touched:
#
# $$\frac{\partial L}{\partial W_{mk}} = \sum_n \frac{\partial L}{\partial y_{nk}}\frac{\partial y_{nk}}{\partial W_{mk}} = \sum_n x_{nm}\, dy_{nk}
# \;\Rightarrow\; dW = x^\top dy \quad (M, K)$$
#
# $$\frac{\partial L}{\partial b_k} = \sum_n dy_{nk} \;\Rightarrow\; db = \textstyle\sum_n dy_n \quad (K,)
# \qquad
# \frac{\partial L}{\partial x_{nm}} = \sum_k dy_{nk} W_{mk} \;\Rightarrow\; dx = dy\, W^\top \quad (N, M)$$
#
# A shape check catches most mistakes: each gradient has its variable's shape, and there is only
# one way to multiply the pieces to get it.
#
# ### Exercise 1: write the forward and backward pass

# %%
def linear_forward(x, W, b):
    """x (N, M), W (M, K), b (K,) -> y (N, K)."""
    # BEGIN SOLUTION: y = x W + b
    return x @ W + b
    # END SOLUTION


def linear_backward(dy, x, W, b):
    """dy (N, K) -> (dx, dW, db), the gradients of L with respect to x, W and b."""
    # BEGIN SOLUTION: dx = dy W^T, dW = x^T dy, db = sum of dy over the batch
    return dy @ W.T, x.T @ dy, dy.sum(axis=0)
    # END SOLUTION


# %%
x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
dy = rng.standard_normal((5, 3))
cmp("linear forward", linear_forward(x, W, b), reference.linear_forward(x, W, b))
for name, mine, ref in zip(("dx", "dW", "db"), linear_backward(dy, x, W, b),
                           reference.linear_backward(dy, x, W)):
    cmp(f"linear {name}", mine, ref)
check_backward("linear", linear_forward, linear_backward, {"x": x, "W": W, "b": b});

# %% [markdown]
# `tinyalex.reference.linear_forward` is the same sum written as plain loops, one output at a time:
# slow, but obviously right, and the project's tests hold the fast layer to it. The last line
# compared your backward pass with numbers computed from the forward pass alone; section 3 shows how.
#
# ## 2. Softmax cross-entropy: deriving $p - y$
#
# For one example with logits $z$ (length $K$) and true class $c$:
#
# $$p_k = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad L = -\log p_c = -z_c + \log \sum_j e^{z_j}.$$
#
# Differentiate with respect to $z_k$: the first term gives $-1$ if $k = c$, else 0; the second
# gives $e^{z_k}/\sum_j e^{z_j} = p_k$. So
#
# $$\frac{\partial L}{\partial z_k} = p_k - [k = c], \qquad \text{or for the batch mean }
# L = \frac1N\sum_n L_n:\quad \frac{\partial L}{\partial z} = \frac{p - \mathrm{onehot}(y)}{N}.$$
#
# The gradient pushes the right class's logit up by $1 - p_c$ and every other logit down by its
# probability. The $1/N$ is easy to forget; then every gradient is $N$ times too big, and so is
# the effective learning rate.
#
# ### Exercise 2: the loss and its gradient
#
# Compute $\log p$ stably ($z - \max z - \log\sum e^{z - \max z}$, as in lesson 01), the mean
# loss, and $dz$.

# %%
def softmax_cross_entropy(z, labels):
    """z (N, K) logits, labels (N,) ints -> (mean loss, dL/dz of shape (N, K))."""
    # BEGIN SOLUTION: log p stably, loss = -mean of log p at the labels, dz = (p - onehot) / N
    n = z.shape[0]
    shifted = z - z.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), labels].mean()
    dz = np.exp(logp)
    dz[np.arange(n), labels] -= 1
    return loss, dz / n
    # END SOLUTION


# %%
labels = np.array([2, 0, 4, 4, 1, 3])
z = rng.standard_normal((6, 5))
loss, dz = softmax_cross_entropy(z, labels)
ref_loss, ref_dz = reference.softmax_cross_entropy(z, labels)
cmp("loss", np.array(loss), np.array(ref_loss))
cmp("dL/dz", dz, ref_dz)
check_backward("cross-entropy", lambda z: softmax_cross_entropy(z, labels)[0],
               lambda dL, z: dL * softmax_cross_entropy(z, labels)[1], {"z": z});

# %% [markdown]
# What a check says when the $1/N$ is missing: the error is not rounding, it is of order one.

# %%
def forgot_the_mean(dL, z):
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return dL * p


expect_fail(check_backward, "cross-entropy (p - y)", lambda z: softmax_cross_entropy(z, labels)[0],
            forgot_the_mean, {"z": z});

# %% [markdown]
# A sanity check worth doing before any training run: at initialisation the logits are nearly
# equal, every $p_k \approx 1/K$, so the loss should be close to $\log K$ (2.303 for 10 classes,
# 6.908 for ImageNet's 1000).

# %%
loss0, _ = softmax_cross_entropy(0.01 * rng.standard_normal((64, 10)), rng.integers(0, 10, 64))
print(f"tiny logits, 10 classes: loss {loss0:.3f}   log 10 = {np.log(10):.3f}")

# %% [markdown]
# ## 3. Gradient checking: how the checks work
#
# A backward pass is a hand-derived formula, and a wrong one still trains, just worse. The check
# computes the same derivative from the forward pass alone. For each element $v$ of an input,
#
# $$\frac{\partial L}{\partial v} \approx \frac{L(v + \varepsilon) - L(v - \varepsilon)}{2\varepsilon},$$
#
# the **central difference**, whose error shrinks like $\varepsilon^2$ (the one-sided
# $(L(v+\varepsilon) - L(v))/\varepsilon$ only like $\varepsilon$). For a layer with output $y$,
# the checked scalar is $L = \sum y \odot G$ for a fixed random $G$, so every output counts, and
# $\partial L/\partial y = G$ is what is fed to backward.
#
# The comparison is a **relative error**, $|a - n| / (|a| + |n|)$ for analytic $a$ and numeric $n$
# (with a floor so that gradients near zero do not turn rounding into a large ratio). An absolute
# difference of 1e-6 means nothing on its own: it is perfect for a gradient of size 100 and
# useless for one of size 1e-6.
#
# ### Exercise 3: the central difference
#
# Write it for every element of `x` (use `x.reshape(-1)`, a view, to change one element at a time
# and put it back afterwards).

# %%
def numerical_gradient(f, x, eps=1e-6):
    """dF/dx by central differences for a scalar function f() that reads x; x is restored."""
    grad = np.zeros(x.shape)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    # BEGIN SOLUTION: for each i: f at flat[i] + eps and at flat[i] - eps, restore, difference / 2 eps
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = f()
        flat[i] = orig - eps
        minus = f()
        flat[i] = orig
        gflat[i] = (plus - minus) / (2 * eps)
    # END SOLUTION
    return grad


# %%
x = rng.standard_normal((3, 4))
G = rng.standard_normal((3, 4))
x_before = x.copy()
numeric = numerical_gradient(lambda: np.sum(np.sin(x) * G), x)
cmp("x restored", x, x_before, rtol=0, atol=0)
cmp("d/dx sum(sin(x) G)", numeric, np.cos(x) * G, rtol=1e-7, atol=1e-9)

# %% [markdown]
# ## 4. How small should the error be? $\varepsilon$, float64 and float32
#
# Two errors compete. The difference formula's own error, about $\varepsilon^2 |L'''|$, falls as
# $\varepsilon$ shrinks; the rounding error of computing $L$ twice and subtracting, about
# $u |L| / \varepsilon$ for a unit roundoff $u$, grows. Float64 has $u \approx 10^{-16}$, float32
# $u \approx 6\cdot 10^{-8}$. The plot measures both on $L = \sum \tanh(xW + b) \odot G$, whose
# exact gradient is $dx = \big((1 - \tanh^2(xW+b)) \odot G\big) W^\top$:

# %%
x64, W64, b64 = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
G = rng.standard_normal((4, 3))
analytic = ((1 - np.tanh(x64 @ W64 + b64) ** 2) * G) @ W64.T
epsilons = np.logspace(-12, -1, 23)
curves = {}
for dtype in (np.float64, np.float32):
    xd, Wd, bd = x64.astype(dtype), W64.astype(dtype), b64.astype(dtype)
    curves[np.dtype(dtype).name] = [
        relative_error(
            analytic,
            numerical_gradient(lambda: float(np.sum(np.tanh(linear_forward(xd, Wd, bd)) * G)),
                               xd, eps),
        )
        for eps in epsilons
    ]

fig, ax = plt.subplots(figsize=(6, 3.4))
for name, errs in curves.items():
    ax.loglog(epsilons, errs, "o-", ms=3, label=name)
ax.axhline(1e-6, color="gray", ls="--", lw=1)
ax.text(1.5e-12, 2e-6, "1e-6: the checks' threshold", fontsize=8)
ax.set_xlabel("eps")
ax.set_ylabel("relative error")
ax.set_title("central differences: rounding (left) against truncation (right)")
ax.legend()
ax.grid(alpha=0.3, which="both")
plt.tight_layout()
plt.show()
print("best float64:", f"{min(curves['float64']):.0e}", " best float32:", f"{min(curves['float32']):.0e}")

# %% [markdown]
# On the left rounding wins (in float32, below $\varepsilon \approx 10^{-7}$ the step vanishes
# altogether and the estimate is 0); on the right the $\varepsilon^2$ term does. Float64 reaches
# about 1e-10 near $\varepsilon = 10^{-6}$ to $10^{-5}$; float32 never gets much below 1e-4, too
# coarse to tell a subtle bug from rounding. So, in tinyalex:
#
# - **Check in float64** with $\varepsilon = 10^{-5}$ (`tinyalex.exercise`; `tinyalex.gradcheck`
#   uses $10^{-6}$): a correct backward pass gives a relative error of 1e-7 or less, usually 1e-8
#   to 1e-11; the checks pass below **1e-6**. A mistake gives 1e-3 to 1. The largest errors of a
#   correct pass come from elements whose true gradient is nearly zero: the relative error's
#   floor counts them at 1e-3 of the largest gradient, and their rounding noise, about
#   $10^{-16}|L|/\varepsilon$, is what the threshold has to clear. `tinyalex.gradcheck` refuses
#   float32 input.
# - **Use small shapes** (it costs two forward passes per element) and **exaggerated settings**
#   that make each layer's tricky part large (lesson 05: LRN's $\alpha$ near 1).
#
# ### Kinks
#
# ReLU, max-pooling and the absolute value have a corner where the derivative jumps. If an input
# sits within $\varepsilon$ of the corner, the central difference straddles it and returns the
# average of the two slopes:

# %%
relu = ReLU()
x = np.array([[-0.5, -3e-7, 2e-7, 0.8]])
relu.forward(x)
analytic = relu.backward(np.ones_like(x))
numeric = numerical_gradient(lambda: float(np.maximum(x, 0).sum()), x, eps=1e-6)
print("x        ", x.ravel().tolist())
print("analytic ", analytic.ravel().tolist())
print("numeric  ", numeric.ravel().round(3).tolist(), " <- the two inputs within eps of 0 are off")

# %% [markdown]
# This is not a bug in ReLU; it is the check looking at a point where the derivative does not
# exist. With random float64 inputs the chance of landing within 1e-6 of a kink is tiny, which is
# why the checks draw their inputs at random, and why pooling tests avoid exact ties (lesson 06).
#
# ## 5. tinyalex's layers
#
# `tinyalex.layers.Linear` and `SoftmaxCrossEntropy` are these same equations
# (`tinyalex/layers/linear.py`, `loss.py`), with a fast path that splits the matrix products over
# threads. `check_layer` runs the same central differences on a whole layer, through its
# float64 parameters:

# %%
fc = Linear(6, 3, rng=0)
check_layer("Linear", fc, rng.standard_normal((4, 6)))
loss_fn = SoftmaxCrossEntropy()
logits = rng.standard_normal((4, 10))
print("loss", float(loss_fn.forward(logits, labels[:4])), " dL/dz matches yours:",
      np.allclose(loss_fn.backward(), softmax_cross_entropy(logits, labels[:4])[1]))

# %% [markdown]
# ## Questions to think about
#
# 1. Derive $\partial L / \partial z$ for a *sigmoid* output with binary cross-entropy. What do
#    you notice?
# 2. fc6 maps 9216 inputs to 4096 outputs. How many elements would a full central-difference
#    check of its $W$ take, and how many forward passes? What does tinyalex check instead?
# 3. If your relative error is 1e-5, is the backward pass wrong? What would you try before
#    deciding?
# 4. Label smoothing replaces $\mathrm{onehot}(y)$ by $(1-\epsilon)\,\mathrm{onehot}(y) + \epsilon/K$.
#    What is the new gradient?
