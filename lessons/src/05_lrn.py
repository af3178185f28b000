# %% [markdown]
# # Lesson 05 — Local response normalisation
#
# "ReLUs have the desirable property that they do not require input normalization to prevent them
# from saturating" (§3.3), yet the paper found that dividing each activity by the energy of its
# neighbours *across channels* helped: it "reduces our top-1 and top-5 error rates by 1.4% and
# 1.2%", and on CIFAR-10 a four-layer CNN went from 13% to 11% test error. The paper calls it a
# form of lateral inhibition: channels at the same pixel compete for big activities. This lesson
# writes the layer, derives its full backward pass (the cross-channel term is the part people
# forget), and looks at the alpha-divided-by-n trap.
#
# **Study time:** about 60 minutes. **Prerequisites:** lesson 02 (gradient checks), lesson 03
# (NCHW arrays).

# %%
import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from tinyalex import reference
from tinyalex.exercise import check_backward, check_layer, cmp, expect_fail
from tinyalex.layers import LRN, Conv2D, ReLU
from tinyalex.layers.lrn import window_sum

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The formula (§3.3, docs/conventions.md §2)
#
# With $a^i_{x,y}$ the activity of channel $i$ at pixel $(x,y)$ after the ReLU, and $N$ channels:
#
# $$b^i_{x,y} = a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\,i-n/2)}^{\min(N-1,\,i+n/2)} \big(a^j_{x,y}\big)^2\Big)^{\beta},
# \qquad k=2,\; n=5,\; \alpha=10^{-4},\; \beta=0.75.$$
#
# Each channel is divided by a power of the summed squares of the $n$ channels around it (itself
# included), at the same pixel; the window is clipped at the first and last channel. Which
# channels each output reads, for 8 channels:

# %%
C, n = 8, 5
mask = np.zeros((C, C))
for i in range(C):
    mask[i, max(0, i - n // 2) : min(C - 1, i + (n - 1) // 2) + 1] = 1
fig, ax = plt.subplots(figsize=(4, 3.4))
ax.imshow(mask, cmap="Blues", interpolation="nearest")
ax.set_xlabel("channel j whose square is summed")
ax.set_ylabel("output channel i")
ax.set_title("LRN window, n = 5 (clipped at the edges)", fontsize=10)
ax.set_xticks(range(C))
ax.set_yticks(range(C))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The backward pass, derived
#
# Write $s_i = k + \alpha S_i$ with $S_i = \sum_{j \in \text{win}(i)} a_j^2$ (one pixel; every pixel
# is independent). Then $b_i = a_i\, s_i^{-\beta}$ depends on $a_j$ in two ways: directly when
# $j = i$, and through the denominator whenever $j$ is in $i$'s window:
#
# $$\frac{\partial b_i}{\partial a_j} = [i = j]\; s_i^{-\beta} \;-\; \beta\, a_i\, s_i^{-\beta-1}\, 2\alpha\, a_j\; [j \in \text{win}(i)].$$
#
# The chain rule sums over every output $i$ that $a_j$ reached:
#
# $$\frac{\partial L}{\partial a_j} = \sum_i dy_i \frac{\partial b_i}{\partial a_j}
# = dy_j\, s_j^{-\beta} \;-\; 2\alpha\beta\, a_j \sum_{i:\; j \in \text{win}(i)} \frac{dy_i\, b_i}{s_i}.$$
#
# The second, **cross-channel term** is the one that is easy to forget: every activity also sits in
# its neighbours' denominators. The set $\{i : j \in \text{win}(i)\}$ is the window mirrored: $i$ runs
# from $j - (n-1)/2$ to $j + n/2$ ($=$ the same window for odd $n$).
#
# ### Exercise: forward and backward
#
# `window_sum(v, before, after)` (imported from `tinyalex/layers/lrn.py`) returns, for each channel
# $i$, the sum of `v` over channels $i - \text{before} \ldots i + \text{after}$, with zeros outside.
# The forward window is `before = n // 2`, `after = (n - 1) // 2`; the mirrored one swaps them.

# %%
def lrn_forward(x, n=5, alpha=1e-4, beta=0.75, k=2.0):
    """x (N, C, H, W) -> b, the same shape."""
    # BEGIN SOLUTION: s = k + alpha * window sum of x^2 over channels; b = x * s^-beta
    s = k + alpha * window_sum(x * x, n // 2, (n - 1) // 2)
    return x * s**-beta
    # END SOLUTION


def lrn_backward(dy, x, n=5, alpha=1e-4, beta=0.75, k=2.0):
    """dL/dx for the same settings: the direct term and the cross-channel term."""
    # BEGIN SOLUTION: recompute s and b; dx = dy s^-beta - 2 alpha beta x * mirrored sum of dy b / s
    s = k + alpha * window_sum(x * x, n // 2, (n - 1) // 2)
    b = x * s**-beta
    cross = window_sum(dy * b / s, (n - 1) // 2, n // 2)
    return dy * s**-beta - 2 * alpha * beta * x * cross
    # END SOLUTION


# %% [markdown]
# The checks use two settings: an exaggerated one ($\alpha = 0.9$, $k = 1$, where the cross-channel
# term is as large as the direct one and any slip in it shows) and the paper's.

# %%
x = rng.standard_normal((2, 7, 3, 4))
dy = rng.standard_normal(x.shape)
for name, kw in [("alpha 0.9, k 1", dict(n=5, alpha=0.9, beta=0.75, k=1.0)),
                 ("paper", dict(n=5, alpha=1e-4, beta=0.75, k=2.0)),
                 ("n=4 (even)", dict(n=4, alpha=0.9, beta=0.75, k=1.0))]:
    ref_kw = dict(size=kw["n"], alpha=kw["alpha"], beta=kw["beta"], k=kw["k"])
    cmp(f"forward, {name}", lrn_forward(x, **kw), reference.lrn_forward(x, **ref_kw))
    cmp(f"backward, {name}", lrn_backward(dy, x, **kw), reference.lrn_backward(dy, x, **ref_kw))
    check_backward(f"LRN {name}", lambda x: lrn_forward(x, **kw),
                   lambda dy, x: lrn_backward(dy, x, **kw), {"x": x})

# %% [markdown]
# ## 3. A backward pass without the cross-channel term
#
# Keep only $dy_j\, s_j^{-\beta}$ and the layer still trains, a little wrongly. How far off is it?
# With $\alpha$ near 1 the error is of order one; with the paper's $\alpha = 10^{-4}$ the missing
# term is about $2\alpha\beta\, a^2$ relative to the kept one, small enough to pass for rounding
# if you do not know that a correct pass gives 1e-8:

# %%
def forgetful_backward(dy, x, n=5, alpha=1e-4, beta=0.75, k=2.0):
    s = k + alpha * window_sum(x * x, n // 2, (n - 1) // 2)
    return dy * s**-beta


for alpha, k in [(0.9, 1.0), (1e-4, 2.0)]:
    kw = dict(n=5, alpha=alpha, beta=0.75, k=k)
    expect_fail(check_backward, f"forgetful LRN, alpha {alpha}", lambda x: lrn_forward(x, **kw),
                lambda dy, x: forgetful_backward(dy, x, **kw), {"x": x})

# %% [markdown]
# With the paper's $\alpha$ the forgetful layer is off by a few times 1e-3: far above a correct
# pass's 1e-8, but easy to wave away as "close enough". That is why tinyalex's tests check LRN at $\alpha$ near 1
# (docs/style.md §3): a bug in the small term hides behind a small $\alpha$.
#
# ## 4. The alpha-divided-by-n trap
#
# The paper's $\alpha$ multiplies the *sum* of the squares. PyTorch's `nn.LocalResponseNorm` and
# Caffe multiply the *mean*, $\frac{\alpha}{n}\sum$, so the paper's $\alpha = 10^{-4}$ is their
# $\alpha = 5\cdot10^{-4}$; TensorFlow's `tf.nn.lrn` uses the paper's form. Copy the paper's
# number into PyTorch's formula and the normalisation is five times weaker. tinyalex names the
# choice: `LRN(alpha_divided_by_size=True)` is PyTorch's convention.
#
# How much the layer divides by depends on the energy $S$ of the window: $b/a = (k + \alpha S)^{-\beta}$.
# Below $S \approx k/\alpha = 20{,}000$ it is nearly the constant $k^{-\beta} = 2^{-0.75} = 0.59$;
# above, it bites.

# %%
S = np.logspace(0, 7, 200)
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for label, alpha_eff in [("paper: alpha 1e-4 (= PyTorch 5e-4)", 1e-4),
                         ("paper's 1e-4 typed into PyTorch: 2e-5", 2e-5)]:
    ax.semilogx(S, (2 + alpha_eff * S) ** -0.75, label=label)
ax.axhline(2**-0.75, color="gray", ls=":", lw=1)
ax.set_xlabel("S = sum of squares in the window")
ax.set_ylabel("b / a")
ax.set_title("LRN's factor: a constant 0.59 until the window's energy is large", fontsize=10)
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

paper = LRN(5, alpha=1e-4)
pytorch_style = LRN(5, alpha=5e-4, alpha_divided_by_size=True)
xa = np.abs(rng.standard_normal((2, 8, 3, 3))) * 100
cmp("paper 1e-4 == PyTorch-style 5e-4", pytorch_style.forward(xa), paper.forward(xa))

# %% [markdown]
# ## 5. What it does to a real activation
#
# A photograph through the paper's (untrained) conv1 and ReLU, then LRN. Where many neighbouring
# channels fire strongly (the eye's rim, the fur's edges) the window's energy is large and the
# activity is divided down hard; in quiet regions LRN is the constant $2^{-0.75} = 0.59$. (Untrained weights give modest activities; trained ones are larger and reach further
# along the curve above.)

# %%
conv1 = Conv2D(3, 96, 11, stride=4)  # the paper's conv1, with its init N(0, 0.01^2)
conv1.params["W"] = rng.normal(0, 0.01, conv1.params["W"].shape).astype(np.float32)
photo = data.chelsea()[:227, 100:327].astype(np.float32)  # (227, 227, 3)
img = photo.transpose(2, 0, 1)[None] - photo.mean(axis=(0, 1)).reshape(1, 3, 1, 1)
a = ReLU().forward(conv1.forward(img * 10, train=False), train=False)
b = LRN().forward(a, train=False)
energy = window_sum(a * a, 2, 2)
on = a > 0
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].imshow(photo.astype(np.uint8))
axes[0].set_title("input (227 x 227 crop)")
axes[0].axis("off")
axes[1].imshow(a[0, 3], cmap="gray")
axes[1].set_title("conv1 + ReLU, map 3")
axes[1].axis("off")
ratio = np.where(on, b / np.where(on, a, 1), np.nan)[0, 3]
im = axes[2].imshow(ratio, cmap="magma")
axes[2].set_title("b / a for map 3 (blank: a = 0)")
axes[2].axis("off")
plt.colorbar(im, ax=axes[2], fraction=0.046)
plt.tight_layout()
plt.show()
print(f"activities: max {a.max():.1f}; window energy up to {energy.max():,.0f}; "
      f"b/a from {np.min(b[on] / a[on]):.3f} to {np.max(b[on] / a[on]):.3f}")

# %% [markdown]
# (The image is scaled by 10 so that the untrained conv1, whose weights are N(0, 0.01²), gives
# activities of the size a trained network has.)
#
# ## 6. tinyalex's LRN
#
# `tinyalex/layers/lrn.py` is your two functions on its plain path; its fast path (numba on the
# CPU, CUDA on the GPU) does both in one pass each way, keeping the window sum as a running sum over
# channels (add the channel entering the window, subtract the one leaving) and computing
# $s^{-3/4}$ with square roots for the paper's $\beta = 0.75$. The gradient check runs through it:

# %%
check_layer("LRN(alpha 0.9, k 1)", LRN(5, alpha=0.9, k=1.0), rng.standard_normal((2, 6, 3, 3)))
check_layer("LRN(paper)", LRN(), 10 * rng.standard_normal((2, 6, 3, 3)));

# %% [markdown]
# ## Questions to think about
#
# 1. LRN does not subtract a mean, which is why the paper calls it "brightness normalization".
#    What would change if it divided by the window's *variance* instead?
# 2. The layer sits after the ReLU. What would happen to negative pre-activations if it came first?
# 3. For small activities LRN is a constant factor $k^{-\beta}$. What does a constant factor do to
#    training, given the layers after it can rescale their weights?
# 4. Batch normalisation replaced LRN a few years later (VGG had already reported LRN did not help
#    its nets). What does batch normalisation normalise over that LRN does not?
