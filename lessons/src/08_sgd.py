# %% [markdown]
# # Lesson 08 — SGD with momentum and weight decay, the paper's way
#
# *Study time: about 50 minutes. Before this: lesson 02 (gradients, gradient checks).*
#
# **The paper's claim (§5).** AlexNet was trained by stochastic gradient descent with batches of
# 128, momentum 0.9 and weight decay 0.0005, with this update rule for every weight $w$:
#
# $$v_{i+1} = 0.9\,v_i - 0.0005\,\epsilon\,w_i - \epsilon \left\langle \frac{\partial L}{\partial w}\Big|_{w_i} \right\rangle_{D_i}, \qquad w_{i+1} = w_i + v_{i+1}$$
#
# where $\epsilon$ is the learning rate and $\langle\cdot\rangle_{D_i}$ the gradient averaged over
# batch $D_i$. The rate started at 0.01 and was divided by 10 "when the validation error rate
# stopped improving with the current learning rate", three times in about 90 epochs. The paper
# adds that the small weight decay "is not merely a regularizer: it reduces the model's training
# error".
#
# This lesson: where the weight-decay term comes from, why biases are left out of it, your own
# update checked against `tinyalex.optim.SGD`, how PyTorch's SGD differs right after a rate drop,
# and the divide-by-10 schedule on a small problem.

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from tinyalex.exercise import check_backward, cmp, expect_fail
from tinyalex.layers import Linear, ReLU, Sequential, SoftmaxCrossEntropy
from tinyalex.models import cifar_alexnet
from tinyalex.optim import SGD, ReduceOnPlateau
from tinyalex.step import train_step

np.set_printoptions(precision=5, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook

# %% [markdown]
# ## 1. Weight decay is the gradient of an L2 penalty
#
# Add a penalty on the size of the weights to the loss,
#
# $$\tilde L(w) = L(w) + \frac{\lambda}{2}\,\lVert w\rVert^2, \qquad \frac{\partial \tilde L}{\partial w} = \frac{\partial L}{\partial w} + \lambda\,w .$$
#
# Momentum SGD on $\tilde L$ with rate $\epsilon$ is $v \leftarrow 0.9\,v - \epsilon\,\partial\tilde L/\partial w
# = 0.9\,v - \lambda\epsilon\,w - \epsilon\,\partial L/\partial w$: the paper's rule with
# $\lambda = 0.0005$. So "weight decay 0.0005" means the penalty $0.00025\,\lVert w\rVert^2$, and
# the term $-\lambda\epsilon w$ pulls every weight a little towards zero at every step
# ("decay": without a gradient, $w$ shrinks by the factor $1 - \lambda\epsilon$ per step).
#
# **Why the biases are not decayed.** Caffe's AlexNet and the authors' cuda-convnet leave them out
# (docs/conventions.md §4), for three reasons:
#
# - The penalty exists to keep the function smooth: a small weight makes the output less sensitive
#   to its input. A bias multiplies no input; shrinking it shifts a unit, it does not smooth it.
# - There are few of them: about 10,000 of AlexNet's 61 million parameters (counted below), too
#   few to overfit with.
# - The paper sets the biases of conv2, conv4, conv5, fc6 and fc7 to 1 on purpose, so that the
#   ReLUs start with positive inputs; decay would pull them back towards 0.

# %%
# one bias per output channel or unit: conv1..conv5, fc6, fc7, fc8 (lesson 00's table)
biases = 96 + 256 + 384 + 384 + 256 + 4096 + 4096 + 1000
total = 60_965_224
print(f"AlexNet: {total - biases:,} weights, {biases:,} biases ({100 * biases / total:.3f}%)")

# %% [markdown]
# ## 2. Exercise: the penalty and its gradient
#
# Write the L2 penalty $\frac{\lambda}{2}\sum w^2$ and its backward pass: given the gradient `dy` of
# the loss with respect to the penalty's value (a number), return $dy \cdot \lambda w$.


# %%
def l2_penalty(w, weight_decay):
    """(weight_decay / 2) * sum(w**2), a number."""
    # BEGIN SOLUTION: half the decay times the sum of squares
    return 0.5 * weight_decay * np.sum(w * w)
    # END SOLUTION


def l2_penalty_backward(dy, w, weight_decay):
    """d(penalty)/dw, times the upstream gradient dy."""
    # BEGIN SOLUTION: the derivative of (lambda/2) w^2 is lambda w
    return dy * weight_decay * w
    # END SOLUTION


# %% [markdown]
# **Check** against central differences in float64 (a large decay, 0.3, so that a wrong factor
# shows): the relative error should be below 1e-6, the threshold the check prints.

# %%
w = np.random.default_rng(0).standard_normal((5, 4))
errors = check_backward(
    "L2 penalty",
    lambda w: l2_penalty(w, 0.3),
    lambda dy, w: (l2_penalty_backward(dy, w, 0.3),),
    {"w": w},
)

# %% [markdown]
# A classic slip, forgetting that the $\frac12$ cancels the 2 of the square (so the gradient comes
# out as $2\lambda w$), is caught:

# %%
message = expect_fail(
    check_backward,
    "L2 with gradient 2 lambda w",
    lambda w: l2_penalty(w, 0.3),
    lambda dy, w: (2 * dy * 0.3 * w,),
    {"w": w},
)

# %% [markdown]
# ## 3. Exercise: the paper's update
#
# Write one step of the paper's rule for a dict of parameters, in place. Decay only the weights
# (arrays with more than one dimension), as tinyalex, Caffe and cuda-convnet do; use your
# `l2_penalty_backward` for the decay term.


# %%
def sgd_step(params, grads, velocity, lr, momentum=0.9, weight_decay=5e-4):
    """v <- momentum v - lr (dL/dw + weight_decay w);  w <- w + v.  In place, biases not decayed."""
    # BEGIN SOLUTION: for each name: update velocity[name] in place, then params[name] += it
    for name, w in params.items():
        g = grads[name]
        if w.ndim > 1:
            g = g + l2_penalty_backward(1.0, w, weight_decay)
        velocity[name] *= momentum
        velocity[name] -= lr * g
        w += velocity[name]
    # END SOLUTION


# %% [markdown]
# **Check** against `tinyalex.optim.SGD` on a small float64 network: twenty steps on fixed batches,
# with a drop of the learning rate to a tenth after step ten. After every step the weights, biases
# and velocities must agree to rounding (about 1e-16 relative).


# %%
def small_net():
    rng = np.random.default_rng(0)
    return Sequential(
        Linear(6, 8, dtype=np.float64, rng=rng), ReLU(), Linear(8, 3, dtype=np.float64, rng=rng)
    )


reference, mine = small_net(), small_net()
for layer in (reference, mine):  # non-zero biases, so that decaying them would show
    for name, p in layer.params.items():
        if p.ndim == 1:
            p[...] = 1.0
opt = SGD(reference, lr=0.1, momentum=0.9, weight_decay=0.05)
my_velocity = {k: np.zeros_like(p) for k, p in mine.params.items()}
loss_fn = SoftmaxCrossEntropy()
data = np.random.default_rng(1)
for step in range(20):
    if step == 10:
        opt.lr *= 0.1
    x, y = data.standard_normal((16, 6)), data.integers(0, 3, 16)
    for model in (reference, mine):
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
    opt.step()
    sgd_step(mine.params, mine.grads, my_velocity, opt.lr, 0.9, 0.05)
for name in reference.params:
    cmp(name, mine.params[name], reference.params[name], rtol=1e-12, atol=1e-14)
    cmp(f"velocity {name}", my_velocity[name], opt.velocity[name], rtol=1e-12, atol=1e-14)

# %% [markdown]
# ## 4. In tinyalex
#
# `tinyalex.optim.SGD` is that loop, run over `model.params` and `model.grads`. Its fast path does
# the whole update of one parameter in a single pass over memory (a numba kernel on the CPU, a
# CUDA kernel on CuPy; lesson 11 says why one pass matters). Which parameters does it decay? Give
# it zero gradients and a big decay, take one step, and see what shrank: with $g = 0$ and $v = 0$
# the step is $w \leftarrow (1 - \lambda\epsilon)\,w$, here $\times 0.95$.

# %%
model = cifar_alexnet()
for name, p in model.params.items():
    if p.ndim == 1:
        p[...] = 1.0  # every bias 1, so that a decay would show
model.zero_grads()
before = {name: p.copy() for name, p in model.params.items()}
SGD(model, lr=0.1, momentum=0.9, weight_decay=0.5).step()
for name, p in model.params.items():
    print(f"{name:8s} {str(p.shape):18s} after / before = {np.median(p / before[name]):.3f}")

# %% [markdown]
# ## 5. PyTorch's SGD is the same rule until the rate changes
#
# `torch.optim.SGD` keeps its velocity ("buffer") in gradient units and applies the rate last:
#
# $$b \leftarrow 0.9\,b + (g + \lambda w), \qquad w \leftarrow w - \epsilon\, b .$$
#
# At a constant rate the two are one algorithm with $v = -\epsilon\, b$. When the rate drops,
# PyTorch's whole accumulated velocity shrinks with it at once; in the paper's form the velocity
# was built at the old rate and keeps carrying steps of the old size, fading at the momentum's pace,
# $0.9^k$. One parameter with a constant gradient of 1 and no decay, 40 steps at 0.01, then 40 at
# 0.001 (the schedule does `opt.lr *= 0.1`):

# %%
from types import SimpleNamespace  # noqa: E402

toy = SimpleNamespace(params={"w": np.zeros((1, 1))}, grads={"w": np.ones((1, 1))})
paper_opt = SGD(toy, lr=0.01, momentum=0.9, weight_decay=0.0)
w_torch, buf, lr = 0.0, 0.0, 0.01
paper_steps, torch_steps = [], []
for step in range(80):
    if step == 40:
        paper_opt.lr *= 0.1
        lr *= 0.1
    before = toy.params["w"].item()
    paper_opt.step()
    paper_steps.append(before - toy.params["w"].item())
    buf = 0.9 * buf + 1.0  # PyTorch's rule, written out
    w_torch -= lr * buf
    torch_steps.append(lr * buf)

try:  # the same thing with PyTorch itself, where it is installed
    import torch

    tw = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.01, momentum=0.9)
    moved = []
    for step in range(80):
        if step == 40:
            topt.param_groups[0]["lr"] *= 0.1
        before = tw.item()
        tw.grad = torch.ones(1, dtype=torch.float64)
        topt.step()
        moved.append(before - tw.item())
    cmp(
        "torch.optim.SGD vs the rule written out", np.array(moved), np.array(torch_steps), rtol=1e-5
    )
except ImportError:
    print("PyTorch is not installed here: the rule written out above stands in for it")

print(
    f"distance travelled in the 40 steps after the drop: paper {sum(paper_steps[40:]):.3f}, "
    f"PyTorch {sum(torch_steps[40:]):.3f}"
)
plt.figure(figsize=(6.5, 3))
plt.plot(np.arange(1, 81), paper_steps, label="paper / Caffe / tinyalex: v includes the rate")
plt.plot(np.arange(1, 81), torch_steps, "--", label="PyTorch: the rate multiplies the velocity")
plt.axvline(40.5, c="gray", ls=":")
plt.text(39.5, 0.03, "rate / 10", fontsize=8, ha="right")
plt.xlabel("step")
plt.ylabel("how far w moves")
plt.legend(fontsize=8)
plt.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Both settle at $\epsilon g / (1 - 0.9) = 10\,\epsilon$ per step. After the drop PyTorch's step
# falls straight to 0.01 while the paper's glides down from 0.09, about
# $0.1 \cdot 0.9^k + 0.01\,(1 - 0.9^k)$, and travels over three times as far in the next 40 steps.
# Neither is wrong, but a schedule tuned for one does not carry over exactly to the other.
#
# ## 6. Divide by 10 when the validation error stops improving
#
# The paper lowered the rate by hand; `tinyalex.optim.ReduceOnPlateau` does it automatically: after
# each epoch it takes the validation error, and when that has not improved for `patience` epochs
# it multiplies the rate by 0.1, at most three times. A small problem where the effect is easy to
# see: three noisy interleaved spirals, a two-hidden-layer network, batches of 20 (noisy
# gradients), a high starting rate of 0.15, the paper's momentum and decay.


# %%
def spirals(n, rng, arms=3, noise=0.5):
    """Points on `arms` noisy spiral arms in the plane; the label is the arm."""
    label, r = rng.integers(0, arms, n), rng.uniform(0.1, 1, n)
    t = 2 * np.pi * label / arms + 4 * r + rng.normal(0, noise, n)
    return (np.c_[r * np.cos(t), r * np.sin(t)] * 2).astype(np.float32), label


rng = np.random.default_rng(0)
train_x, train_y = spirals(2000, rng)
val_x, val_y = spirals(1000, rng)
r = np.random.default_rng(0)
model = Sequential(
    Linear(2, 128, rng=r), ReLU(), Linear(128, 128, rng=r), ReLU(), Linear(128, 3, rng=r)
)
opt = SGD(model, lr=0.15, momentum=0.9, weight_decay=5e-4)
schedule = ReduceOnPlateau(opt, factor=0.1, patience=2, max_drops=3, threshold=1e-3)
step_loss, epochs = [], []
for epoch in range(1, 13):
    order = np.random.default_rng(epoch).permutation(len(train_x))
    lr = opt.lr
    for s in range(0, len(order), 20):
        i = order[s : s + 20]
        step_loss.append(float(train_step(model, loss_fn, opt, train_x[i], train_y[i])[0]))
    val_error = float((model.forward(val_x, train=False).argmax(1) != val_y).mean())
    dropped = schedule.step(val_error)
    epochs.append((epoch, lr, val_error))
    print(
        f"epoch {epoch:2d}  lr {lr:<7g} validation error {val_error:6.1%}"
        + ("   -> lr / 10" if dropped else "")
    )

# %%
epochs = np.array(epochs)
per_epoch = len(train_x) // 20
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.6))
smooth = np.convolve(step_loss, np.ones(25) / 25, mode="valid")
ax1.plot(
    np.arange(len(smooth)) / per_epoch + 25 / per_epoch,
    smooth,
    lw=1,
    label="training loss (mean of 25 steps)",
)
ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
ax1.legend(fontsize=8)
ax2.plot(epochs[:, 0], 100 * epochs[:, 2], "o-", c="C3", label="validation error")
ax2.set(xlabel="epoch", ylabel="validation error (%)", title="the schedule")
ax3 = ax2.twinx()
ax3.step(epochs[:, 0], epochs[:, 1], where="mid", c="k", label="learning rate")
ax3.set_yscale("log")
ax3.set_ylabel("learning rate (log scale)")
handles = ax2.get_legend_handles_labels()[0] + ax3.get_legend_handles_labels()[0]
ax2.legend(handles=handles, fontsize=8, loc="upper right")
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# At the first rate the noisy steps keep the network bouncing around: the validation error jumps
# between 7% and 18% without settling, so the schedule divides the rate by 10, and the error falls
# to about 5% within an epoch and stays there — close to what this much noise in the data allows.
# The training loss shows the same step. Run longer and `ReduceOnPlateau` would drop twice more,
# buying less each time; the paper saw that staircase three times over 90 epochs.
#
# ## Questions to think about
#
# 1. With $\lambda = 0.0005$ and $\epsilon = 0.01$, by what factor does a weight that gets no
#    gradient shrink per step? After one epoch of ImageNet (about 10,000 steps of 128 images)?
# 2. The paper says weight decay lowered the *training* error too. How could a penalty that adds
#    to the loss make the training error smaller? (Think of what very large weights do to ReLU
#    networks trained with a fixed rate.)
# 3. A training script resumes a run in PyTorch that was started with the paper's rule, just after
#    a rate drop, keeping the velocity. What goes wrong, and how would you convert the velocity?
# 4. `ReduceOnPlateau` looks at validation error, which is noisy on a small validation set. What
#    do `patience` and `threshold` guard against, and what does setting them too high cost?
