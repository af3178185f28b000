# %% [markdown]
# # Lesson 07 — Dropout
#
# *Study time: about 40 minutes. Before this: lesson 02 (the fully connected layer, softmax
# cross-entropy, gradient checks).*
#
# **The paper's claim (§4.2).** Averaging the predictions of many networks would cut test error,
# but AlexNet already takes days to train. Dropout gets much of that benefit inside one network:
# during training each hidden unit's output is set to zero with probability 0.5, so every batch
# trains a different "thinned" network and no unit can rely on particular others being present.
# The paper applies it to the outputs of fc6 and fc7, multiplies the outputs by 0.5 at test time,
# and reports that without it the network "exhibits substantial overfitting", while with it
# training needs about twice as many iterations to converge.
#
# This lesson: the two ways of writing dropout, the backward pass, your own dropout checked
# against tinyalex's, and a small network that overfits without it.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from tinyalex.exercise import check_backward, cmp, expect_fail
from tinyalex.layers import Dropout, Linear, ReLU, Sequential, SoftmaxCrossEntropy, softmax
from tinyalex.optim import SGD
from tinyalex.step import train_step

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook

# %% [markdown]
# ## 1. The equations: the paper's form and inverted dropout
#
# With keep-probability $1-p$ and one Bernoulli draw $m_i \in \{0, 1\}$, $P(m_i = 1) = 1 - p$, per
# unit and per example:
#
# | | training | test |
# |---|---|---|
# | paper (§4.2) | $y_i = m_i\,x_i$ | $y_i = (1-p)\,x_i$ |
# | inverted | $y_i = m_i\,x_i / (1-p)$ | $y_i = x_i$ |
#
# Both keep the **expected** output at test time equal to the training-time average:
# $\mathbb{E}[m_i x_i] = (1-p)\,x_i$ for the paper's form, and
# $\mathbb{E}[m_i x_i/(1-p)] = x_i$ for the inverted one. The inverted form does the scaling while
# training, so the test-time network is the plain network — nothing to remember when deploying.
# tinyalex uses the inverted form by default and the paper's with `Dropout(inverted=False)`
# (docs/conventions.md §3).
#
# ## 2. The backward pass
#
# The mask is drawn in the forward pass and then held fixed; as a function of $x$ the layer is
# an elementwise product with a constant, $y_i = c_i x_i$ with $c_i = m_i$ (paper) or
# $c_i = m_i/(1-p)$ (inverted). So
#
# $$\frac{\partial L}{\partial x_i} = \frac{\partial L}{\partial y_i}\,\frac{\partial y_i}{\partial x_i} = \frac{\partial L}{\partial y_i}\, c_i .$$
#
# A dropped unit passes no gradient back, exactly as it passed no signal forward. The backward pass
# must reuse the *same* mask as the forward pass: drawing a new one would give the gradient of a
# different network. That is also why a numerical gradient check of dropout needs the mask fixed
# (tinyalex's `gradcheck` re-seeds the layer before every forward pass).

# %% [markdown]
# ## 3. Exercise: write dropout
#
# Write `dropout_forward(x, p, rng, train, inverted)` returning `(y, cache)` and
# `dropout_backward(dy, cache)` returning `dx`. Draw the keep mask as tinyalex does, so the two can
# be compared draw for draw: `keep = rng.random(x.shape) >= p` (a unit survives when its uniform
# number is at least p). At test time (`train=False`) no mask is drawn.


# %%
def dropout_forward(x, p, rng, train=True, inverted=True):
    """y = x * mask, mask = keep / (1 - p) (inverted) or keep (paper); test: x or x * (1 - p)."""
    # BEGIN SOLUTION: draw keep = rng.random(x.shape) >= p; scale it; return (y, cache)
    if not train:
        return (x if inverted else x * (1.0 - p)), None
    mask = (rng.random(x.shape) >= p).astype(x.dtype)
    if inverted:
        mask /= 1.0 - p
    return x * mask, mask
    # END SOLUTION


def dropout_backward(dy, cache):
    """dx = dy * mask, the same mask as the forward pass."""
    # BEGIN SOLUTION: the gradient flows through the kept units, scaled like the forward pass
    return dy * cache
    # END SOLUTION


# %% [markdown]
# **Check 1: the forward pass against tinyalex's `Dropout`.** Same seed, same draws, so the outputs
# must agree exactly, in both forms and at test time.

# %%
x = np.random.default_rng(0).standard_normal((4, 6))
for inverted in (True, False):
    layer = Dropout(0.5, inverted=inverted, rng=7)
    mine, _ = dropout_forward(x, 0.5, np.random.default_rng(7), train=True, inverted=inverted)
    cmp(f"train, inverted={inverted}", mine, layer.forward(x, train=True))
    mine, _ = dropout_forward(x, 0.5, None, train=False, inverted=inverted)
    cmp(f"test, inverted={inverted}", mine, layer.forward(x, train=False))

# %% [markdown]
# **Check 2: the backward pass against central differences** in float64, with the mask fixed
# by drawing it from the same seed each time the check calls the forward pass. The relative error
# of a correct backward pass is around 1e-9 or smaller (the check fails above 1e-6); a wrong one
# is 1e-3 or more.


# %%
def forward_fixed_mask(x):
    return dropout_forward(x, 0.5, np.random.default_rng(3))[0]


def backward_fixed_mask(dy, x):
    _, cache = dropout_forward(x, 0.5, np.random.default_rng(3))
    return (dropout_backward(dy, cache),)


errors = check_backward("dropout", forward_fixed_mask, backward_fixed_mask, {"x": x.copy()})

# %% [markdown]
# The check can fail. A backward pass that forgets the $1/(1-p)$ is off by a factor of two on every
# kept unit:

# %%
message = expect_fail(
    check_backward,
    "dropout without 1/(1-p)",
    forward_fixed_mask,
    lambda dy, x: ((dropout_forward(x, 0.5, np.random.default_rng(3))[1] > 0) * dy,),
    {"x": x.copy()},
)

# %% [markdown]
# ## 4. The fast version in tinyalex
#
# `tinyalex.layers.Dropout` is the same few lines (`tinyalex/layers/dropout.py`); on a GPU each
# forward draws one key from the layer's NumPy generator and the device hashes (key, element
# index) into the mask, so a checkpoint of that one generator resumes GPU runs exactly too
# (the GPU's masks differ from the CPU's for the same seed). In `alexnet()`
# it sits after `relu6` and `relu7`, on the outputs of fc6 and fc7 as in the paper (torchvision's
# AlexNet puts it on their inputs instead).

# %%
import inspect  # noqa: E402

print(inspect.getsource(Dropout.forward))
print(Dropout(0.5), "|", Dropout(0.5, inverted=False))

# %% [markdown]
# ## 5. What the two forms do to one unit
#
# One unit with input 1.0, 10,000 training-time draws: the paper's form gives 0 or 1 (mean 0.5,
# matched at test time by $\times 0.5$); the inverted form gives 0 or 2 (mean 1, matched at test time
# by doing nothing). Same expectation relative to the test-time output, different units.

# %%
ones = np.ones(10_000)
paper, _ = dropout_forward(ones, 0.5, np.random.default_rng(1), inverted=False)
inv, _ = dropout_forward(ones, 0.5, np.random.default_rng(1), inverted=True)
print(
    f"paper:    training mean {paper.mean():.3f}, test output {dropout_forward(ones, 0.5, None, False, False)[0][0]:.1f}"
)
print(
    f"inverted: training mean {inv.mean():.3f}, test output {dropout_forward(ones, 0.5, None, False, True)[0][0]:.1f}"
)

# %% [markdown]
# Is the test-time network really the average of the thinned networks? For one layer before a
# softmax, the test-time rule gives the *normalised geometric mean* of the thinned networks'
# predictions, not their arithmetic mean (Srivastava et al., 2014, §9). Below: a random linear
# layer of 50 inputs, the softmax of the scaled network against the average softmax of 2,000
# thinned ones — close, not equal.

# %%
rng = np.random.default_rng(0)
W, h = rng.standard_normal((50, 5)) * 0.3, rng.standard_normal((1, 50))
scaled = softmax(dropout_forward(h, 0.5, None, train=False)[0] @ W)
thinned = np.mean([softmax(dropout_forward(h, 0.5, rng)[0] @ W) for _ in range(2000)], axis=0)
print("test-time network:     ", scaled[0])
print("mean of 2000 thinned:  ", thinned[0])

# %% [markdown]
# ## 6. Experiment: overfitting with and without dropout
#
# A small version of the paper's observation. Sixty noisy points of two interleaved half-moons,
# a network with two hidden layers of 256 ReLUs — far more capacity than sixty points need —
# trained by full-batch SGD for 1,200 steps, once without dropout and once with dropout 0.5 after
# each hidden layer (as after fc6 and fc7). We measure the error on 2,000 fresh points of the same
# distribution.


# %%
def moons(n, noise, rng):
    """Two interleaved half-circles with Gaussian noise; labels 0 and 1."""
    t, label = rng.uniform(0, np.pi, n), rng.integers(0, 2, n)
    upper = np.c_[np.cos(t), np.sin(t)]
    lower = np.c_[1 - np.cos(t), 0.5 - np.sin(t)]
    x = np.where(label[:, None] == 0, upper, lower) + rng.normal(0, noise, (n, 2))
    return (x - [0.5, 0.25]).astype(np.float32), label


rng = np.random.default_rng(0)
train_x, train_y = moons(60, 0.3, rng)
test_x, test_y = moons(2000, 0.3, rng)


def mlp(p, seed=0):
    r = np.random.default_rng(seed)
    layers = [Linear(2, 256, rng=r), ReLU()]
    layers += [Dropout(p, rng=1)] if p else []
    layers += [Linear(256, 256, rng=r), ReLU()]
    layers += [Dropout(p, rng=2)] if p else []
    return Sequential(*layers, Linear(256, 2, rng=r))


loss_fn = SoftmaxCrossEntropy()
runs = {}
for p in (0.0, 0.5):
    model = mlp(p)
    opt = SGD(model, lr=0.05, momentum=0.9, weight_decay=0.0)
    curve = []
    for step in range(1, 1201):
        train_step(model, loss_fn, opt, train_x, train_y)
        if step % 50 == 0:
            errs = [
                float((model.forward(a, train=False).argmax(1) != b).mean())
                for a, b in ((train_x, train_y), (test_x, test_y))
            ]
            curve.append(
                (step, *errs, float(loss_fn.forward(model.forward(test_x, train=False), test_y)))
            )
    runs[p] = (model, np.array(curve))
    print(
        f"dropout {p}: train error {curve[-1][1]:.1%}, test error {curve[-1][2]:.1%}, "
        f"test loss {curve[-1][3]:.2f}"
    )

# %%
grid = np.stack(np.meshgrid(np.linspace(-2, 2, 150), np.linspace(-1.5, 1.5, 110)), -1)
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, p in zip(axes[:2], (0.0, 0.5), strict=True):
    model = runs[p][0]
    prob = softmax(model.forward(grid.reshape(-1, 2).astype(np.float32), train=False))[:, 1]
    ax.contourf(
        grid[..., 0],
        grid[..., 1],
        prob.reshape(grid.shape[:2]),
        levels=20,
        cmap="RdBu_r",
        alpha=0.6,
    )
    ax.contour(grid[..., 0], grid[..., 1], prob.reshape(grid.shape[:2]), levels=[0.5], colors="k")
    ax.scatter(*train_x.T, c=train_y, cmap="RdBu_r", edgecolors="k", s=25)
    train_err, test_err = runs[p][1][-1, 1:3]
    ax.set_title(f"dropout {p}: train error {train_err:.0%}, test {test_err:.1%}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
for p, colour in ((0.0, "C3"), (0.5, "C0")):
    c = runs[p][1]
    axes[2].plot(c[:, 0], c[:, 3], c=colour, label=f"dropout {p}")
axes[2].set(xlabel="step", ylabel="cross-entropy", title="loss on the 2,000 test points")
axes[2].legend(fontsize=8)
axes[2].grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Without dropout the network reaches zero training error by bending its boundary around single
# noisy points; with dropout the boundary is smoother and the test error lower. The test loss
# shows overfitting more plainly than the error: without dropout the network grows ever more
# confident on points it will get wrong, and the loss climbs while the training error sits at
# zero. With dropout the training error stays above zero and falls more slowly: the paper's
# "roughly doubles the number of iterations required to converge".
#
# ## Questions to think about
#
# 1. A network trained with the paper's form is deployed by someone who forgets the $\times 0.5$.
#    What happens to fc8's logits, and to the softmax? Would the top-1 prediction change?
# 2. Why does the paper drop units only in fc6 and fc7, not in the convolutional layers? (Count the
#    parameters per layer in lesson 00.)
# 3. With dropout 0.5 on 4096 units, how many different thinned networks does fc7 alone define?
#    Why is it fine that almost none of them is ever trained?
# 4. Section 5 shows the test-time network is not the arithmetic mean of the thinned networks.
#    How would you get the arithmetic mean, and at what cost per test image?
