# %% [markdown]
# # Lesson 00 — The map
#
# *Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
# Networks", NIPS 2012* — the paper every lesson here rebuilds, one piece at a time.
# This lesson looks at the whole network first: what it is made of, how big each part is, what it
# achieved, and which lesson builds which piece.
#
# **Study time:** about 20 minutes. **Prerequisites:** Python and NumPy arrays; nothing else.

# %%
import matplotlib.pyplot as plt
import numpy as np

from tinyalex.exercise import cmp
from tinyalex.models import alexnet, layer_stats

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)

# %% [markdown]
# ## 1. What the paper did (§1, §6)
#
# A convolutional network with 60 million parameters and 650,000 neurons, trained for five to six
# days on two GTX 580 GPUs with 3 GB each, classified the 1.2 million ImageNet training images
# into 1000 classes far better than anything before it:
#
# | test | top-1 error | top-5 error |
# |---|---|---|
# | ILSVRC-2010 test set, one network (§6, Table 1) | 37.5% | 17.0% |
# | ILSVRC-2012 validation, one network (Table 2) | 40.7% | 18.2% |
# | ILSVRC-2012 validation, five networks averaged | 38.1% | 16.4% |
# | ILSVRC-2012 test, the winning entry (seven networks, two pre-trained on more data) | — | 15.3% |
# | ILSVRC-2012 test, the second-best entry (not a neural network) | — | 26.2% |
#
# "Top-5 error" counts an image as wrong only when the right label is not among the network's five
# most probable guesses.
#
# The paper credits its result to a handful of pieces, each a section, each a lesson here:
# ReLUs (§3.1), training on two GPUs (§3.2), local response normalisation (§3.3), overlapping
# pooling (§3.4), data augmentation (§4.1), dropout (§4.2), and SGD with momentum and weight
# decay (§5).

# %% [markdown]
# ## 2. The network as a table (§3.5, Figure 2)
#
# `tinyalex.models.alexnet()` builds the paper's network as a list of named layers, and
# `summary()` walks that list with shape arithmetic only: output shape, parameters,
# multiply-adds (MACs) and float32 activation memory for one image.
# (tinyalex takes a 227×227 input where the paper says 224: lesson 03 explains why;
# docs/conventions.md §1 gives the table with the paper's numbers.) Building it draws 61 million
# random weights, a few seconds.

# %%
model = alexnet()
print(model.summary())

# %% [markdown]
# Five convolutional layers (conv1–conv5), three fully connected ones (fc6–fc8), a ReLU after
# every one of them but the last, LRN after conv1 and conv2, overlapping max-pooling after conv1,
# conv2 and conv5, dropout on fc6's and fc7's outputs, and a 1000-way softmax. A picture of
# the same table: spatial size shrinks (227 → 55 → 27 → 13 → 6) as the number of maps grows.

# %%
rows = layer_stats(model, model.input_shape(1))
shapes = [(3, 227, 227)] + [r["output"][1:] for r in rows]
names = ["input"] + [r["name"] for r in rows]
keep = [i for i, n in enumerate(names) if n == "input" or n.startswith(("conv", "pool", "fc"))]

fig, ax = plt.subplots(figsize=(10, 3))
for x, i in enumerate(keep):
    s = shapes[i]
    side = s[1] if len(s) == 3 else 1
    ax.bar(x, side, width=0.6, color="tab:blue" if len(s) == 3 else "tab:orange")
    ax.text(x, side + 4, "x".join(map(str, s)), ha="center", fontsize=7, rotation=90, va="bottom")
ax.set_xticks(range(len(keep)), [names[i] for i in keep], rotation=45)
ax.set_ylabel("height = width of the maps")
ax.set_ylim(0, 330)
ax.set_title("AlexNet: maps shrink while their number grows (labels: channels x height x width)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Exercise: count it yourself
#
# A convolution with $C$ input maps, $O$ output maps, $k\times k$ kernels and $G$ groups has
# weights of shape $(O, C/G, k, k)$ and $O$ biases: each output map sees only the $C/G$ input
# maps of its own group (the paper's two GPUs are $G = 2$, lesson 03). Each of its
# $O \cdot H_{out} \cdot W_{out}$ outputs costs $(C/G)\,k^2$ multiply-adds.
# A fully connected layer from $m$ to $n$ units has $mn + n$ parameters and $mn$ MACs.
#
# Write the four counts; the check compares them with `layer_stats`, which the project's tests
# hold to the paper's totals (60,965,224 parameters, 724,406,816 MACs).

# %%
def conv_params(c_in, c_out, k, groups=1):
    """Weights and biases of a grouped k x k convolution."""
    # BEGIN SOLUTION: weights (c_out, c_in // groups, k, k) plus c_out biases
    return c_out * (c_in // groups) * k * k + c_out
    # END SOLUTION


def conv_macs(c_in, c_out, k, out_h, out_w, groups=1):
    """Multiply-adds of one image through that convolution."""
    # BEGIN SOLUTION: each of c_out * out_h * out_w outputs sums (c_in // groups) * k * k products
    return c_out * out_h * out_w * (c_in // groups) * k * k
    # END SOLUTION


def fc_params(m, n):
    # BEGIN SOLUTION: an (m, n) matrix and n biases
    return m * n + n
    # END SOLUTION


def fc_macs(m, n):
    # BEGIN SOLUTION: one multiply-add per weight
    return m * n
    # END SOLUTION


# %%
mine, expected, shape = [], [], (1, 3, 227, 227)
for name, layer in model.named_layers():
    out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
    if name.startswith("conv"):
        args = (layer.in_channels, layer.out_channels, layer.kernel_size)
        mine += [conv_params(*args, groups=layer.groups),
                 conv_macs(*args, out[2], out[3], groups=layer.groups)]
    elif name.startswith("fc"):
        mine += [fc_params(layer.in_features, layer.out_features),
                 fc_macs(layer.in_features, layer.out_features)]
    shape = out
expected = [v for r in rows if r["params"] for v in (r["params"], r["macs"])]
cmp("params and MACs", np.array(mine), np.array(expected), rtol=0, atol=0)
print(f"total: {sum(mine[0::2]):,} parameters, {sum(mine[1::2]):,} MACs per image")

# %% [markdown]
# ## 4. Where the parameters are, where the work is
#
# The paper says each convolutional layer holds "no more than 1% of the model's parameters" (§1),
# yet removing any one of them hurt. The counts show the contrast: fc6 alone holds about 62% of
# the parameters, while the convolutions do over 90% of the multiply-adds. (The 1% is not quite
# right either: conv3 holds 1.45%, conv4 1.09%.) Training also keeps every layer's output for the
# backward pass: the activation memory, which grows with the batch.

# %%
weighted = [r for r in rows if r["params"]]
params = sum(r["params"] for r in rows)
macs = sum(r["macs"] for r in rows)
act = np.array([r["activation_bytes"] for r in rows])
for r in weighted:
    print(f"{r['name']:6s} params {100 * r['params'] / params:5.2f}%   "
          f"MACs {100 * r['macs'] / macs:5.2f}%")
print(f"\nactivations, one image: {act.sum() / 2**20:.1f} MiB; the paper's batch of 128: "
      f"{128 * act.sum() / 2**30:.2f} GiB; the weights: {4 * params / 2**30:.2f} GiB (float32)")

fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
axes[0].bar([r["name"] for r in weighted], [r["params"] / 1e6 for r in weighted])
axes[0].set_title("parameters (millions)")
axes[1].bar([r["name"] for r in weighted], [r["macs"] / 1e6 for r in weighted], color="tab:orange")
axes[1].set_title("multiply-adds per image (millions)")
axes[2].bar([r["name"] for r in rows], act / 2**20, color="tab:green")
axes[2].set_title("activation memory per image (MiB)")
for ax in axes:
    ax.tick_params(axis="x", rotation=90, labelsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. The lessons
#
# Each lesson takes one piece: the paper's claim (with its section), the equation, the derivation
# of its backward pass, an exercise where you write the piece, an automatic check of your code
# (against `tinyalex.reference`'s plain loops and a float64 gradient check), the fast tinyalex
# code that does the same, an experiment or picture, and questions to think about.
# Open `lessons/NN_name.ipynb`: each exercise cell says `# TODO:` and raises `NotImplementedError`
# until you replace that line with your code; every other cell shows what a solved run printed,
# so you can compare. The solved copies are in `lessons/solutions/`.
#
# | lesson | builds | paper | study time | needs |
# |---|---|---|---|---|
# | 00 the map | this table | §1, §3.5, §6 | 20 min | Python, NumPy |
# | 01 two backends | NumPy and CuPy behind one `array_module` | — | 30 min | 00 |
# | 02 fully connected + softmax | `Linear`, softmax cross-entropy, gradient checking | §3.5 | 60 min | 00; matrix calculus basics |
# | 03 convolution | im2col, one matrix product, col2im; groups | §3.2, §3.5 | 90 min | 02 |
# | 04 ReLU vs tanh | saturation; Figure 1 rerun | §3.1 | 40 min | 02 |
# | 05 LRN | the normalisation and its full backward | §3.3 | 60 min | 02, 03 |
# | 06 overlapping pooling | 3/2 max-pooling and its gradient | §3.4 | 40 min | 03 |
# | 07 dropout | training vs test, inverted dropout | §4.2 | 40 min | 02 |
# | 08 SGD | momentum, weight decay, the schedule | §5 | 50 min | 02 |
# | 09 augmentation | crops, flips, PCA colour, ten crops | §4.1 | 60 min | 00 |
# | 10 training it | a hand-written loop on Fashion-MNIST | §5, §6 | 90 min | 02–09 |
# | 11 going fast | profiling, numba and CUDA kernels, the benchmark | — | 60 min | 01, 03, 10 |
# | 12 two GPUs | the model-parallel split as groups | §3.2 | 45 min | 03, 11 |
#
# `lessons/README.md` keeps this list.

# %% [markdown]
# ## Questions to think about
#
# 1. fc6 has 62% of the weights but under 6% of the work. If you had to shrink the model to fit a
#    phone, which layer would you cut first, and what would that cost?
# 2. Activation memory grows with the batch, weight memory does not. At what batch size do the
#    activations of one training step outweigh the weights, their gradients and their momentum?
# 3. The paper trained for about 90 passes over 1.2 million images. With 724 million multiply-adds
#    forward and roughly twice that backward, how many multiply-adds is that in total? The two
#    GTX 580s took five to six days: what rate does that imply per GPU?
