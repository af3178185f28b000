# %% [markdown]
# # Lesson 06 — Overlapping max-pooling
#
# "Pooling layers in CNNs summarize the outputs of neighboring groups of neurons in the same
# kernel map" (§3.4). With windows of $z\times z$ placed every $s$ pixels, the usual choice was
# $s = z$: windows side by side. AlexNet uses $z = 3$, $s = 2$, so neighbouring windows overlap
# by one row or column, and the paper reports that this "reduces the top-1 and top-5 error rates by
# 0.4% and 0.3%" against $z = s = 2$, which gives outputs of the same size, and that overlapping
# pooling makes a network "slightly more difficult to overfit". This lesson writes the layer,
# draws where its gradient goes, and looks at ties.
#
# **Study time:** about 40 minutes. **Prerequisites:** lesson 03 (strided slices, col2im).

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinyalex import reference
from tinyalex.exercise import check_backward, check_layer, cmp, expect_fail
from tinyalex.layers import MaxPool2D

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The equation and the sizes
#
# $$y[n,c,p,q] = \max_{0 \le i,j < z} x[n,c,\, s p + i,\, s q + j], \qquad
# OH = \left\lfloor \frac{H - z}{s} \right\rfloor + 1.$$
#
# AlexNet pools after conv1 (55×55), conv2 (27×27) and conv5 (13×13). Both choices give the same
# sizes, so the comparison in §3.4 changes only the overlap:

# %%
for h in (55, 27, 13):
    print(f"{h:2d} -> 3/2: {(h - 3) // 2 + 1:2d}    2/2: {(h - 2) // 2 + 1:2d}")

# %% [markdown]
# ## 2. The backward pass
#
# A max passes its input through unchanged where that input is the largest in the window and
# ignores the rest, so
#
# $$\frac{\partial y[p,q]}{\partial x[r,t]} = \begin{cases} 1 & (r,t) \text{ is the window's maximum}\\ 0 & \text{otherwise,}\end{cases}
# \qquad dx[r,t] = \sum_{(p,q):\ (r,t) = \text{argmax of window }(p,q)} dy[p,q].$$
#
# Each window sends its whole gradient to one pixel. With overlapping windows a pixel can be the
# maximum of several windows (up to four for 3/2), and then it receives the **sum** of their
# gradients, as col2im added up overlapping patches in lesson 03. The forward pass keeps, for each
# window, *which* offset $(i, j)$ won, so that the backward pass needs no search.
#
# ### Exercise: forward with the winners, backward by routing
#
# As in lesson 03, loop over the $z\cdot z$ offsets only: the candidates at offset $(i, j)$ for
# every window are one strided slice. Keep the *first* maximum in row-major order on ties (compare
# with a strict `>`), and record its offset as $i\cdot z + j$.

# %%
def maxpool_forward(x, z=3, s=2):
    """x (N, C, H, W) -> (y (N, C, OH, OW), arg: the winning offset i*z + j of each window)."""
    n, c, h, w = x.shape
    oh, ow = (h - z) // s + 1, (w - z) // s + 1
    y = x[:, :, 0 : s * oh : s, 0 : s * ow : s].copy()  # offset (0, 0) to start
    arg = np.zeros(y.shape, dtype=np.int64)
    # BEGIN SOLUTION: for each other (i, j): candidates v = strided slice; where v > y take v, arg = i*z + j
    for i in range(z):
        for j in range(z):
            v = x[:, :, i : i + s * oh : s, j : j + s * ow : s]
            better = v > y
            y = np.where(better, v, y)
            arg[better] = i * z + j
    # END SOLUTION
    return y, arg


def maxpool_backward(dy, arg, x_shape, z=3, s=2):
    """Route each dy to its window's winner; winners of several windows add up."""
    n, c, h, w = x_shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(x_shape)
    # BEGIN SOLUTION: for each (i, j): dx's strided slice += dy where arg == i*z + j
    for i in range(z):
        for j in range(z):
            dx[:, :, i : i + s * oh : s, j : j + s * ow : s] += dy * (arg == i * z + j)
    # END SOLUTION
    return dx


# %%
x = rng.standard_normal((2, 3, 9, 8))
for z, s in [(3, 2), (2, 2), (3, 1)]:
    y, arg = maxpool_forward(x, z, s)
    ref_y, _ = reference.maxpool_forward(x, z, s)
    cmp(f"forward {z}/{s}", y, ref_y)
    dy = rng.standard_normal(y.shape)
    cmp(f"backward {z}/{s}", maxpool_backward(dy, arg, x.shape, z, s),
        reference.maxpool_backward(dy, x, z, s))
    check_backward(f"pool {z}/{s}", lambda x: maxpool_forward(x, z, s)[0],
                   lambda dy, x: maxpool_backward(dy, maxpool_forward(x, z, s)[1], x.shape, z, s),
                   {"x": x})

# %% [markdown]
# ## 3. Where the gradient goes, drawn
#
# A 7×7 input, 3/2 pooling: nine windows. Each arrow runs from a window's centre to the pixel that
# won it (the 60 wins four); the colour counts how many windows each pixel won, which is how many gradients it sums.

# %%
img = rng.permutation(49).reshape(1, 1, 7, 7).astype(float)
img[0, 0, 2, 2] = 60  # a bright pixel on a shared row and column: inside four windows
y, arg = maxpool_forward(img, 3, 2)
won = maxpool_backward(np.ones_like(y), arg, img.shape, 3, 2)[0, 0]
fig, ax = plt.subplots(figsize=(5, 5))
ax.imshow(won, cmap="Oranges", vmin=0, vmax=4)
for r in range(7):
    for c in range(7):
        ax.text(c, r, int(img[0, 0, r, c]), ha="center", va="center", fontsize=9,
                color="white" if won[r, c] >= 3 else "black")
for p in range(3):
    for q in range(3):
        i, j = divmod(int(arg[0, 0, p, q]), 3)
        ax.annotate("", xy=(2 * q + j, 2 * p + i), xytext=(2 * q + 1, 2 * p + 1),
                    arrowprops=dict(arrowstyle="->", color="tab:blue", lw=1.2, shrinkA=6,
                                    shrinkB=9))
ax.set_xticks(np.arange(-0.5, 7, 2), minor=False)
ax.set_yticks(np.arange(-0.5, 7, 2), minor=False)
ax.grid(color="gray", lw=0.5)
ax.set_xticklabels([])
ax.set_yticklabels([])
ax.set_title("3/2 max-pooling: each window's gradient goes to its maximum\n"
             "(colour: windows won; grid lines every 2 pixels = the stride)", fontsize=9)
plt.tight_layout()
plt.show()
print("windows won per pixel:\n", won.astype(int))

# %% [markdown]
# ## 4. 3/2 against 2/2
#
# With 2/2 every pixel is in exactly one window, so three of every four pixels get no gradient at
# all, and which one gets it is decided inside a fixed 2×2 tile. With 3/2 the windows overlap: a
# pixel on a shared row or column competes in two or four windows. On random inputs of conv1's
# size, how many windows each pixel wins:

# %%
xr = rng.standard_normal((8, 16, 55, 55))
fig, ax = plt.subplots(figsize=(6, 3))
for (z, s), offset in [((3, 2), -0.2), ((2, 2), 0.2)]:
    y, arg = maxpool_forward(xr, z, s)
    wins = maxpool_backward(np.ones_like(y), arg, xr.shape, z, s)
    counts = np.bincount(wins.astype(int).ravel(), minlength=5)[:5] / wins.size
    ax.bar(np.arange(5) + offset, counts, width=0.4, label=f"{z}/{s}")
    print(f"{z}/{s}: share of pixels winning 0, 1, 2, 3, 4 windows:", np.round(counts, 3))
ax.set_xlabel("windows won by a pixel")
ax.set_ylabel("share of pixels")
ax.legend()
ax.set_title("who receives gradient, on 55x55 random maps", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. Ties
#
# After a ReLU many activities are exactly 0, and a window of zeros has nine equal maxima. The
# max has no derivative there (it is a kink, lesson 02), and every library simply picks one
# winner: tinyalex the first in row-major order, as `reference.maxpool_forward` does (PyTorch's
# CPU code also keeps the first; GPU libraries need not). A numerical gradient at a tie splits the
# difference, so a gradient check *fails* at ties even for a correct layer:

# %%
tied = rng.standard_normal((1, 1, 5, 5))
tied[0, 0, 0, 0] = tied[0, 0, 1, 1] = 5.0  # two equal maxima in the top-left window
expect_fail(check_backward, "pool at a tie", lambda x: maxpool_forward(x)[0],
            lambda dy, x: maxpool_backward(dy, maxpool_forward(x)[1], x.shape), {"x": tied});

# %% [markdown]
# That is not a bug: at a tie the gradient is not defined, and the check compares one valid choice
# with an average of two. Gradient checks of pooling therefore use random inputs (no ties), as in
# section 2. How common are ties in a real network? After conv1 and ReLU, many windows of an
# untrained net are all zeros:

# %%
relu_out = np.maximum(rng.standard_normal((4, 16, 27, 27)) - 1.0, 0)  # about 84% zeros
y, arg = maxpool_forward(relu_out)
print(f"windows whose maximum is 0 (nine-way ties): {np.mean(y == 0):.1%}; "
      f"their gradient goes to offset 0, the top-left pixel")

# %% [markdown]
# ## 6. tinyalex's MaxPool2D
#
# `tinyalex/layers/pool.py` is your code on its plain path (with an int8 `arg`); its fast path
# (numba on the CPU, CUDA on the GPU) does each direction in one pass, so the overlapping 3/2 case
# costs one read of the input. The same gradient check through the layer:

# %%
check_layer("MaxPool2D(3, 2)", MaxPool2D(3, 2), rng.standard_normal((2, 3, 9, 9)))
check_layer("MaxPool2D(3, 2, padding 1)", MaxPool2D(3, 2, padding=1),
            rng.standard_normal((2, 3, 8, 8)));

# %% [markdown]
# ## Questions to think about
#
# 1. Why might overlapping windows make a network "slightly more difficult to overfit" (§3.4)?
#    Think of how small shifts of the input change which pixel wins.
# 2. With 3/2 pooling, a pixel can win up to four windows. Which pixels can win four, and which
#    at most one?
# 3. Average pooling spreads each window's gradient evenly over its $z^2$ pixels. Write its
#    backward pass. Does it have ties?
# 4. Later networks dropped pooling for strided convolutions. What does a strided convolution
#    learn that a max-pool cannot?
