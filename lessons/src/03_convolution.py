# %% [markdown]
# # Lesson 03 — Convolution: loops, im2col, one matrix product, and back
#
# Five of AlexNet's eight learned layers are convolutional (§3.5), and they do over 90% of its
# multiply-adds (lesson 00). This lesson writes a convolution three ways (loops, im2col, one
# matrix product), derives its backward pass (dW, db, and dx by col2im or as a convolution with
# the flipped kernel), and ends with the paper's two GPUs as *groups* and the 224-vs-227 puzzle.
#
# **Study time:** about 90 minutes. **Prerequisites:** lesson 02 (the linear layer's backward
# pass and gradient checks).

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import reference
from tinyalex.exercise import check_backward, check_layer, cmp, expect_fail
from tinyalex.layers import Conv2D
from tinyalex.layers import im2col as tinyalex_im2col
from tinyalex.models import alexnet, layer_stats

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The equation
#
# A convolutional layer with $O$ kernels of size $C \times k \times k$, stride $s$ and zero
# padding $p$ computes, for every image $n$, output map $o$ and position $(p_y, p_x)$:
#
# $$y[n,o,p_y,p_x] = b[o] + \sum_{c=0}^{C-1}\sum_{i=0}^{k-1}\sum_{j=0}^{k-1} W[o,c,i,j]\;
# x_{\text{pad}}[n, c, s\,p_y+i,\; s\,p_x+j],$$
#
# $$OH = \left\lfloor \frac{H + 2p - k}{s} \right\rfloor + 1 \quad\text{(likewise } OW\text{)}.$$
#
# (Strictly this is a cross-correlation, the kernel is not flipped; every deep-learning library
# and the paper's code compute it this way and call it convolution.) Written as loops that is
# seven nested `for`s: `tinyalex/reference.py`'s `conv_forward` is exactly that, and the
# project's tests hold the fast layer to it. In pure Python it runs at about a million
# multiply-adds a second; conv1 alone needs 105 million per image.

# %%
print(inspect.getsource(reference.conv_forward))

# %% [markdown]
# ## 2. im2col: every patch becomes a column
#
# Copy the $C\cdot k\cdot k$ numbers under each window into one column of a matrix `cols`; there
# are $N\cdot OH\cdot OW$ windows. Then every output is a dot product of one kernel (a row of $W$
# reshaped to $(O, C k k)$) with one column, and the whole layer is **one matrix product**:
#
# $$Y = W_{\text{mat}}\; \text{cols}, \qquad (O, Ckk) \times (Ckk, N\cdot OH\cdot OW) \to (O, N\cdot OH \cdot OW),$$
#
# which BLAS (or cuBLAS on a GPU) runs near the processor's peak. A 5×5 image, a 3×3 window,
# stride 1: nine windows, nine columns of nine numbers. The window at output position (1, 2) is
# drawn in orange, and so is the column it becomes.

# %%
img = np.arange(25.0).reshape(1, 1, 5, 5)
cols = tinyalex_im2col(img, 3, 1, 0).reshape(9, 9)
fig, axes = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [5, 9]})
axes[0].imshow(np.zeros((5, 5)), cmap="Greys", vmin=0, vmax=1)
for r in range(5):
    for c in range(5):
        inside = 1 <= r <= 3 and 2 <= c <= 4
        axes[0].text(c, r, f"{int(img[0, 0, r, c])}", ha="center", va="center",
                     color="tab:orange" if inside else "black", fontweight="bold" if inside else None)
axes[0].add_patch(plt.Rectangle((1.5, 0.5), 3, 3, fill=False, ec="tab:orange", lw=2))
axes[0].set_title("x: 5x5, window at output (1, 2)")
axes[1].imshow(np.zeros((9, 9)), cmap="Greys", vmin=0, vmax=1)
for r in range(9):
    for c in range(9):
        axes[1].text(c, r, f"{int(cols[r, c])}", ha="center", va="center",
                     color="tab:orange" if c == 5 else "black")
axes[1].add_patch(plt.Rectangle((4.5, -0.5), 1, 9, fill=False, ec="tab:orange", lw=2))
axes[1].set_title("cols: 9 rows (c, i, j) x 9 columns (n, py, px)")
axes[1].set_xlabel("column 1*3 + 2 = 5")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 1: im2col and the forward pass
#
# Order the rows as $(c, i, j)$ and the columns as $(n, p_y, p_x)$, both row-major, as above.
# Loop over the $k\cdot k$ kernel offsets $(i, j)$ only, never over pixels: for a fixed $(i,j)$,
# the entries `xpad[:, :, i + s*py, j + s*px]` for all $(p_y, p_x)$ are one strided slice,
# `xpad[:, :, i : i + s*OH : s, j : j + s*OW : s]`.

# %%
def im2col(x, k, stride, padding):
    """x (N, C, H, W) -> cols (C*k*k, N*OH*OW), rows (c, i, j), columns (n, py, px)."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, k, k, n, oh, ow), dtype=x.dtype)
    # BEGIN SOLUTION: for each (i, j), cols[:, i, j] = the strided slice, channels first
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xpad[:, :, i : i + stride * oh : stride,
                                 j : j + stride * ow : stride].transpose(1, 0, 2, 3)
    # END SOLUTION
    return cols.reshape(c * k * k, n * oh * ow)


def conv_forward(x, W, b, stride=1, padding=0):
    """x (N, C, H, W), W (O, C, k, k), b (O,) -> y (N, O, OH, OW) by im2col and one matmul."""
    n, _, h, w = x.shape
    o, _, k, _ = W.shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    # BEGIN SOLUTION: Y = W.reshape(O, -1) @ cols is (O, N*OH*OW): reshape, move N first, add b
    Y = W.reshape(o, -1) @ im2col(x, k, stride, padding)
    return Y.reshape(o, n, oh, ow).transpose(1, 0, 2, 3) + b.reshape(1, o, 1, 1)
    # END SOLUTION


# %%
x = rng.standard_normal((2, 3, 7, 6))
W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
cmp("im2col", im2col(x, 3, 2, 1), tinyalex_im2col(x, 3, 2, 1, fast=False).reshape(27, -1))
for s, p in [(1, 0), (2, 1), (3, 2)]:
    cmp(f"conv s={s} p={p}", conv_forward(x, W, b, s, p), reference.conv_forward(x, W, b, s, p))

# %% [markdown]
# The price of one matrix product is memory: neighbouring windows overlap, so `cols` repeats each
# pixel up to $k^2/s^2$ times. For conv1 (3 maps, 11×11 kernels, stride 4, a 227×227 image) it
# holds 363 rows by 3025 columns per image, seven times the image:

# %%
c1 = tinyalex_im2col(np.zeros((1, 3, 227, 227), np.float32), 11, 4, 0)
print(f"conv1 cols: {363} x {55 * 55} = {c1.size:,} numbers for an image of {3 * 227 * 227:,}")

# %% [markdown]
# ## 3. The backward pass, derived
#
# Write the forward pass as $Y = W_{\text{mat}}\,\text{cols} + b$: a linear layer (lesson 02)
# whose "batch" is the $N\cdot OH\cdot OW$ windows. With $dY$ the incoming gradient reshaped to
# $(O, N\cdot OH\cdot OW)$, the linear layer's rules give at once
#
# $$dW_{\text{mat}} = dY\,\text{cols}^\top, \qquad db_o = \sum_{n,p_y,p_x} dy[n,o,p_y,p_x], \qquad
# d\text{cols} = W_{\text{mat}}^\top\, dY.$$
#
# The last step is new. `cols` is not a free variable: each entry is a copy of some pixel of $x$,
# and a pixel inside several windows was copied several times. A variable used in several places
# receives the **sum** of the gradients of its uses, so
#
# $$dx[n,c,r,q] = \sum_{\text{entries of cols copied from } x[n,c,r,q]} d\text{cols}[\text{entry}],$$
#
# which is **col2im**: the adjoint of im2col, a scatter-*add* of each column back onto the pixels
# its window covered (and the padding thrown away). How many windows cover each pixel, for three
# settings (col2im of a matrix of ones):

# %%
def coverage(h, k, s, p):
    ones = np.ones((k * k, ((h + 2 * p - k) // s + 1) ** 2))
    cols6 = ones.reshape(1, k, k, 1, (h + 2 * p - k) // s + 1, -1)
    from tinyalex.layers import col2im as tinyalex_col2im

    return tinyalex_col2im(cols6, (1, 1, h, h), k, s, p, fast=False)[0, 0]


fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
for ax, (h, k, s, p, title) in zip(axes, [(8, 3, 1, 1, "k=3, s=1, p=1 (conv3-5)"),
                                          (9, 3, 2, 0, "k=3, s=2: pooling's windows"),
                                          (31, 11, 4, 0, "k=11, s=4 (conv1's pattern), 31x31")]):
    cov = coverage(h, k, s, p)
    im = ax.imshow(cov, cmap="viridis")
    ax.set_title(title, fontsize=10)
    plt.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks([])
    ax.set_yticks([])
plt.suptitle("how many windows read each pixel = how many gradients col2im adds into it")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 2: col2im and the backward pass
#
# col2im mirrors your im2col: the same loop over $(i, j)$, with `+=` into the strided slice of a
# zero `dxpad` instead of a copy out of it (within one offset the target pixels are distinct,
# so `+=` on a slice is safe). Then cut the padding off.

# %%
def col2im(cols, x_shape, k, stride, padding):
    """cols (C*k*k, N*OH*OW) -> dx (N, C, H, W): each window's column added back onto its pixels."""
    n, c, h, w = x_shape
    oh, ow = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    cols = cols.reshape(c, k, k, n, oh, ow)
    dxpad = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    # BEGIN SOLUTION: for each (i, j), add cols[:, i, j] (moved to (N, C, OH, OW)) into the slice
    for i in range(k):
        for j in range(k):
            dxpad[:, :, i : i + stride * oh : stride,
                  j : j + stride * ow : stride] += cols[:, i, j].transpose(1, 0, 2, 3)
    # END SOLUTION
    return dxpad[:, :, padding : padding + h, padding : padding + w]


def conv_backward(dy, x, W, b, stride=1, padding=0):
    """dy (N, O, OH, OW) -> (dx, dW, db) of shapes x, W, b."""
    o, c, k, _ = W.shape
    # BEGIN SOLUTION: dY = dy as (O, N*OH*OW); dW = dY cols^T; db = sums; dx = col2im(W^T dY)
    dY = dy.transpose(1, 0, 2, 3).reshape(o, -1)
    dW = (dY @ im2col(x, k, stride, padding).T).reshape(W.shape)
    db = dy.sum(axis=(0, 2, 3))
    dx = col2im(W.reshape(o, -1).T @ dY, x.shape, k, stride, padding)
    # END SOLUTION
    return dx, dW, db


# %%
dy = rng.standard_normal(reference.conv_forward(x, W, b, 2, 1).shape)
for name, mine, ref in zip(("dx", "dW", "db"), conv_backward(dy, x, W, b, 2, 1),
                           reference.conv_backward(dy, x, W, 2, 1)):
    cmp(f"conv {name}", mine, ref)
check_backward("conv s=2 p=1", lambda x, W, b: conv_forward(x, W, b, 2, 1),
               lambda dy, x, W, b: conv_backward(dy, x, W, b, 2, 1), {"x": x, "W": W, "b": b});

# %% [markdown]
# ## 4. dx is a convolution with the flipped kernel
#
# For stride 1, write out which outputs a pixel feeds. $x_{\text{pad}}[c, r, q]$ enters
# $y[o, p_y, p_x]$ with weight $W[o, c, i, j]$ wherever $r = p_y + i$, $q = p_x + j$. So
#
# $$dx_{\text{pad}}[c, r, q] = \sum_{o, i, j} W[o,c,i,j]\; dy[o,\, r-i,\, q-j]
# = \sum_{o, i', j'} W[o,c,k{-}1{-}i',k{-}1{-}j']\; dy_{\text{pad}}[o,\, r' + i',\, q' + j']$$
#
# with $i' = k-1-i$ and $dy$ zero-padded by $k-1$ (then cut to $x$'s size: padding $k-1-p$).
# That is the forward convolution again, applied to $dy$, with the kernel **flipped** in both
# spatial directions and its two channel axes **swapped** ($W^\top$: $C$ outputs from $O$
# inputs). tinyalex's CPU fast path computes stride-1 dx this way (`kernels.cpu.conv_dx_by_convolution`),
# one im2col and one wide matrix product with no scatter-add. Checking it against yours:

# %%
def dx_by_flipped_convolution(dy, W, padding, flip=True):
    k = W.shape[2]
    Wt = W.transpose(1, 0, 2, 3)  # (C, O, k, k): channels swapped
    if flip:
        Wt = Wt[:, :, ::-1, ::-1]
    return conv_forward(dy, np.ascontiguousarray(Wt), np.zeros(Wt.shape[0]), 1, k - 1 - padding)


dy1 = rng.standard_normal(conv_forward(x, W, b, 1, 1).shape)
cmp("dx = conv(dy, flipped W)", dx_by_flipped_convolution(dy1, W, 1),
    conv_backward(dy1, x, W, b, 1, 1)[0])

# %% [markdown]
# Forget the flip, and the gradient check catches it:

# %%
expect_fail(check_backward, "conv dx, kernel not flipped", lambda x: conv_forward(x, W, b, 1, 1),
            lambda dy, x: dx_by_flipped_convolution(dy, W, 1, flip=False), {"x": x});

# %% [markdown]
# ## 5. Groups: the paper's two GPUs (§3.2, §3.5)
#
# "The kernels of the second, fourth, and fifth convolutional layers are connected only to those
# kernel maps in the previous layer which reside on the same GPU" (§3.5). In today's terms that is
# a **grouped convolution** with $G = 2$: output maps $0 \ldots O/2-1$ read input maps
# $0 \ldots C/2-1$ only, the other half the other half. $W$ shrinks to $(O, C/G, k, k)$, and so do
# its parameters and multiply-adds. Which input map each output map reads, for conv2 (two groups)
# and conv3 (where the GPUs talk):

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for ax, (name, cin, cout, g) in zip(axes, [("conv2", 96, 256, 2), ("conv3", 256, 384, 1)]):
    mask = np.zeros((cout, cin))
    for o in range(cout):
        grp = o // (cout // g)
        mask[o, grp * cin // g : (grp + 1) * cin // g] = 1
    ax.imshow(mask, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_title(f"{name}: groups={g}, {cout}x{cin // g}x k x k weights", fontsize=10)
    ax.set_xlabel("input map")
    ax.set_ylabel("output map")
plt.tight_layout()
plt.show()

# %% [markdown]
# A grouped layer is exactly two independent convolutions on the two halves, and that is how
# `Conv2D(groups=2)` computes it: `cols` reshaped to $(G, Ckk/G, N\cdot OH\cdot OW)$ and one
# *batched* matrix product for both towers.

# %%
conv = Conv2D(4, 6, 3, padding=1, groups=2, dtype=np.float64, rng=0)
xg = rng.standard_normal((2, 4, 6, 6))
Wg, bg = conv.params["W"], rng.standard_normal(6)
conv.params["b"] = bg
gpu1 = conv_forward(xg[:, :2], Wg[:3], bg[:3], 1, 1)  # the first tower: maps 0-1 -> 0-2
gpu2 = conv_forward(xg[:, 2:], Wg[3:], bg[3:], 1, 1)  # the second: maps 2-3 -> 3-5
cmp("groups=2 == two towers", conv.forward(xg), np.concatenate([gpu1, gpu2], axis=1))
rows2 = {r["name"]: r for r in layer_stats(alexnet(groups=1), (1, 3, 227, 227))}
rows1 = {r["name"]: r for r in layer_stats(alexnet(), (1, 3, 227, 227))}
for name in ("conv2", "conv4", "conv5"):
    print(f"{name}: {rows1[name]['params']:,} parameters with groups=2, "
          f"{rows2[name]['params']:,} with one tower of the same width")

# %% [markdown]
# ## 6. The 224-versus-227 puzzle (docs/conventions.md §1)
#
# The paper says the input is 224×224×3 and conv1 has 11×11 kernels at stride 4 giving 55×55
# maps. But $(224 - 11)/4 + 1 = 54.25$. Caffe crops 227×227 instead ($(227-11)/4+1 = 55$
# exactly); the authors' cuda-convnet let the last window run past the edge; torchvision pads a
# 224 input by 2 ($\lfloor(224+4-11)/4\rfloor+1 = 55$). tinyalex takes 227 by default and
# `alexnet(input_size=224)` pads by 2:

# %%
for size, pad in [(224, 0), (227, 0), (224, 2)]:
    print(f"input {size}, padding {pad}: (H + 2p - 11) / 4 + 1 = {(size + 2 * pad - 11) / 4 + 1}")

# %%
def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# %% [markdown]
# ## 7. tinyalex's Conv2D
#
# `tinyalex/layers/conv.py` is your code plus groups, with a fast path: a numba (CPU) or CUDA
# (GPU) kernel for im2col and col2im, the matrix products split over threads, and stride-1 dx as
# the flipped convolution. Same numbers, much faster than the loops (best of five runs, on the
# build machine's two shared cores, so noisy):

# %%
xs = rng.standard_normal((8, 16, 27, 27)).astype(np.float32)
layer = Conv2D(16, 32, 3, padding=1, rng=0)
Ws, bs = layer.params["W"], layer.params["b"]
tiny = (xs[:1, :2, :8, :8], Ws[:2, :2], bs[:2])  # the loops get a tiny piece of the problem
runs = {
    "loops (reference)": (lambda: reference.conv_forward(*tiny, 1, 1), 2 * 8 * 8 * 2 * 9),
    "your im2col": (lambda: conv_forward(xs, Ws, bs, 1, 1), 8 * 32 * 27 * 27 * 16 * 9),
    "tinyalex Conv2D": (lambda: layer.forward(xs), 8 * 32 * 27 * 27 * 16 * 9),
}
for name, (fn, macs) in runs.items():
    fn()  # warm up (the first fast-path call compiles its kernels)
    best = min(_timed(fn) for _ in range(5))
    print(f"{name:18s} {macs / best / 1e6:10.1f} million multiply-adds per second")
check_layer("Conv2D(4->6, k3, s2, p1, groups=2)", Conv2D(4, 6, 3, stride=2, padding=1, groups=2, rng=0),
            rng.standard_normal((2, 4, 7, 7)));

# %% [markdown]
# ## Questions to think about
#
# 1. For stride 2, dx is no longer a plain convolution of $dy$. What do you have to insert into
#    $dy$ first to make it one? (Hint: think of where the windows start.)
# 2. `cols` for conv2 in the paper's batch of 128: how many bytes in float32? What would you do if
#    it did not fit in the GPU's memory?
# 3. $dW = dY\,\text{cols}^\top$ sums over the batch and all positions. Which sum would you split to
#    share the work between two GPUs, and what must they exchange afterwards?
# 4. With groups, the two towers never see each other's maps in conv2, conv4, conv5. The paper
#    (Figure 3) found the towers learned different kinds of kernels. Why might that happen?
