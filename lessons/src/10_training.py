# %% [markdown]
# # Lesson 10 — Training it
#
# *Study time: about 90 minutes. Before this: lessons 02–09 (every piece this loop calls).*
#
# **The paper (§5, §6).** Batches of 128, the update of lesson 08, the augmentation of lesson 09,
# dropout on fc6 and fc7 (lesson 07); about 90 passes over 1.2 million images, "five to six days on
# two NVIDIA GTX 580 3GB GPUs". §6.1 then looks inside the trained network: the 96 conv1 kernels
# (Figure 3) and, for test images, the training images whose last hidden layer is nearest
# (Figure 4).
#
# We cannot spend six days, so this lesson trains `cifar_alexnet()` — the small AlexNet of
# TensorFlow's CIFAR-10 tutorial: two conv/ReLU/pool/LRN blocks and three fully connected layers,
# about a million parameters — on 1,500 Fashion-MNIST images for three epochs, in well under a
# minute on a laptop CPU. First you write the training step and check it; then the sanity check
# every training run should start with; then the run, and the paper's two figures on its result.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import recipes
from tinyalex.augment import make_eval, make_pipeline
from tinyalex.data import BatchLoader, DataError, load_dataset, mean_image
from tinyalex.exercise import check_layer, cmp
from tinyalex.layers import (
    Conv2D,
    Flatten,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    softmax,
)
from tinyalex.models import cifar_alexnet
from tinyalex.optim import SGD
from tinyalex.run import predict_probs
from tinyalex.step import train_step

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook

# %% [markdown]
# ## 1. One step of SGD
#
# Everything before this lesson meets in four lines. With the layer contract (`forward` caches what
# `backward` needs; `backward` fills `model.grads`):
#
# $$z = f(x; w), \qquad L = -\frac1N \sum_n \log \operatorname{softmax}(z_n)_{y_n}, \qquad \frac{\partial L}{\partial z} = \frac{p - \operatorname{onehot}(y)}{N}, \qquad w \leftarrow \text{SGD}(w, \tfrac{\partial L}{\partial w})$$
#
# The gradient of the loss with respect to the logits is lesson 02's $p - y$; `model.backward`
# carries it back through every layer by the chain rule (lessons 03–07), and `opt.step()` applies
# lesson 08's update. There is no `zero_grad()`: each `backward` *assigns* its gradients.
#
# **Exercise.** Write the step: forward in training mode, the loss, the backward pass (the input
# images need no gradient: pass `input_grad=False`), the update. Return `(loss, logits)`.


# %%
def my_train_step(model, loss_fn, opt, x, y):
    """Forward, loss, backward, update on one batch; returns (loss, logits)."""
    # BEGIN SOLUTION: four lines: forward(train=True), loss_fn.forward, model.backward, opt.step
    logits = model.forward(x, train=True)
    loss = loss_fn.forward(logits, y)
    model.backward(loss_fn.backward(), input_grad=False)
    opt.step()
    return loss, logits
    # END SOLUTION


# %% [markdown]
# **Check 1:** three steps of yours and three of `tinyalex.step.train_step` on two copies of the
# same network and the same batches must leave the same weights (to float32 rounding; dropout
# draws the same masks because both copies are seeded alike).

# %%
rng = np.random.default_rng(0)
batches = [
    (rng.standard_normal((8, 3, 24, 24), dtype=np.float32) * 50, rng.integers(0, 10, 8))
    for _ in range(3)
]
mine, ref = cifar_alexnet(seed=1), cifar_alexnet(seed=1)
mine_opt, ref_opt = SGD(mine, lr=0.002), SGD(ref, lr=0.002)
loss_fn = SoftmaxCrossEntropy()
for x, y in batches:
    my_loss, _ = my_train_step(mine, loss_fn, mine_opt, x, y)
    ref_loss, _ = train_step(ref, loss_fn, ref_opt, x, y)
cmp("loss, last step", np.asarray(my_loss), np.asarray(ref_loss), rtol=1e-5)
for name in ("conv1.W", "conv2.W", "fc5.W", "fc5.b"):
    cmp(name, mine.params[name], ref.params[name], rtol=1e-5, atol=1e-7)

# %% [markdown]
# **Check 2:** the gradients the step applies are the true gradients of the loss. A float64 gradient
# check of a miniature network made of the same layers (convolution, ReLU, overlapping pooling,
# fully connected) through the softmax cross-entropy: the relative error should be below 1e-6.

# %%
r = np.random.default_rng(0)
mini = Sequential(
    Conv2D(3, 4, 3, padding=1, dtype=np.float64, rng=r),
    ReLU(),
    MaxPool2D(3, 2),
    Flatten(),
    Linear(4 * 3 * 3, 5, dtype=np.float64, rng=r),
)
report = check_layer(
    "conv-relu-pool-fc + loss",
    mini,
    r.standard_normal((2, 3, 7, 7)),
    labels=np.array([1, 3]),
    max_checks=30,
)

# %% [markdown]
# ## 2. The data: Fashion-MNIST, offline
#
# Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 70,000 28×28 greyscale photographs of clothing
# in ten classes. tinyalex reads Debian's copy (`/usr/share/datasets/fashion-mnist`, package
# `dataset-fashion-mnist`) and stores each image as three equal RGB channels, the input the network
# expects. Nothing is downloaded here: if the files are missing, the lesson falls back to tinyalex's
# built-in synthetic dataset (ten classes of shapes on cluttered backgrounds) and says so.

# %%
N_TRAIN, N_VAL = 1500, 400
try:
    data = load_dataset("fashion-mnist", limit=N_TRAIN, download=False)
except DataError as e:
    print(f"Fashion-MNIST is not installed here ({e}); using the synthetic dataset instead")
    data = load_dataset("synthetic", limit=N_TRAIN)
print(data.description)
train_x, train_y = data.train_x, data.train_y
val_x, val_y = data.val_x[:N_VAL], data.val_y[:N_VAL]
classes = list(data.classes)
print("train", train_x.shape, "| validation", val_x.shape, "| classes:", classes)

fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for c, ax in enumerate(axes):
    ax.imshow(train_x[np.flatnonzero(train_y == c)[0]].transpose(1, 2, 0))
    ax.set_title(classes[c], fontsize=7)
    ax.axis("off")
plt.show()

# %% [markdown]
# The paper's pipeline (lesson 09), scaled down: subtract the training set's mean image, then a
# random 24×24 crop (the CIFAR net's input) and a random flip. PCA colour is left out: the images
# are grey, so all colour variance lies along one axis, brightness. At test time the centre crop, or
# the ten crops. `BatchLoader` prepares the next batch in a background thread while the model
# trains on this one, as the paper's CPU did for its GPUs.

# %%
mean = mean_image(train_x)
train_view = make_pipeline("paper", 24, mean=mean)
one_crop, ten_crops = make_eval("paper", 24, mean=mean), make_eval("paper", 24, mean=mean, crops=10)
print(train_view)


def augment(xb, yb, rng):
    return train_view(xb.astype(np.float32), rng), yb


def evaluate(model, x, y, view, batch=50):
    """Mean loss, top-1 error and the predicted classes, softmax averaged over the views."""
    probs = np.concatenate(
        [
            predict_probs(model, x[i : i + batch].astype(np.float32), view)
            for i in range(0, len(x), batch)
        ]
    )
    loss = float(-np.log(np.maximum(probs[np.arange(len(y)), y], 1e-12)).mean())
    pred = probs.argmax(axis=1)
    return loss, float((pred != y).mean()), pred


# %% [markdown]
# ## 3. The sanity check: overfit a tiny set first
#
# Before a long run, make sure the network can learn *something*: 20 images, no augmentation, no
# weight decay, the same batch over and over. A correct network, loss and update drive the loss
# towards zero and the training error to 0%. If they do not, no amount of data or tuning will help:
# there is a bug (a wrong gradient, a sign, a learning rate far off, labels not matching images).
# A network that starts out unsure has a loss near $\log 10 = 2.30$; this one starts a little
# overconfident (about 3), its first layer seeing pixel-scale inputs.

# %%
tiny_x = one_crop(train_x[:20].astype(np.float32))[0]
tiny_y = train_y[:20]
model = cifar_alexnet(num_classes=len(classes), seed=0)
opt = SGD(model, lr=0.002, momentum=0.9, weight_decay=0.0)
tiny_curve = []
for step in range(40):
    loss, logits = my_train_step(model, loss_fn, opt, tiny_x, tiny_y)
    tiny_curve.append((float(loss), float((logits.argmax(1) != tiny_y).mean())))
tiny_curve = np.array(tiny_curve)
print(
    f"first loss {tiny_curve[0, 0]:.3f} (log 10 = {np.log(10):.3f}); after 40 steps "
    f"{tiny_curve[-1, 0]:.4f}, training error {tiny_curve[-1, 1]:.0%}"
)
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.semilogy(tiny_curve[:, 0])
ax.axhline(np.log(10), ls=":", c="gray")
ax.set(xlabel="step (the same 20 images)", ylabel="loss (log scale)", title="overfitting 20 images")
ax.grid(alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The run
#
# Three epochs of 1,500 images with the paper's settings otherwise: batch 128, momentum 0.9, weight
# decay 0.0005, and learning rate 0.002: the paper's 0.01 is too large for this network on
# pixel-scale inputs. (`python -m tinyalex.train` standardises each channel instead, which lets it
# take 0.01 and learn in fewer epochs; see `tinyalex/recipes.py`.)
# After each epoch, the validation set with the centre crop and `train=False`.

# %%
model = cifar_alexnet(num_classes=len(classes), seed=0)
opt = SGD(model, lr=0.002, momentum=0.9, weight_decay=5e-4)
loader = BatchLoader(train_x, train_y, batch_size=128, seed=0, transform=augment)
filters_before = model.params["conv1.W"].copy()
history, step_loss = [], []
t0 = time.perf_counter()
for epoch in range(1, 4):
    loader.set_epoch(epoch)
    wrong = seen = 0
    for xb, yb in loader:
        loss, logits = my_train_step(model, loss_fn, opt, xb, yb)
        step_loss.append(float(loss))
        wrong += int((logits.argmax(1) != yb).sum())
        seen += len(yb)
    val_loss, val_error, _ = evaluate(model, val_x, val_y, one_crop)
    history.append((epoch, wrong / seen, val_loss, val_error))
    print(
        f"epoch {epoch}: train error {wrong / seen:6.1%} (augmented)   validation loss "
        f"{val_loss:.3f}, error {val_error:6.1%}"
    )
print(f"{time.perf_counter() - t0:.0f} s on this machine (2 shared CPU cores when this was stored)")

# %%
history = np.array(history)
per_epoch = len(loader)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
ax1.plot(
    np.arange(1, len(step_loss) + 1) / per_epoch, step_loss, alpha=0.5, label="training, each batch"
)
ax1.plot(history[:, 0], history[:, 2], "o-", label="validation")
ax1.axhline(np.log(10), ls=":", c="gray", label="chance, log 10")
ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
ax2.plot(history[:, 0], 100 * history[:, 1], "o-", label="training (augmented, during the epoch)")
ax2.plot(history[:, 0], 100 * history[:, 3], "o-", label="validation (centre crop)")
ax2.set(xlabel="epoch", ylabel="top-1 error (%)", title="error", xticks=history[:, 0])
for ax in (ax1, ax2):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# The training error is measured while the network is still changing, on augmented crops, so it
# can sit above the validation error early on. Three epochs on 1,500 images are only a start: the
# command below trains on all 60,000 images.
#
# ## 5. What it gets wrong: the confusion matrix
#
# Row = the true class, column = the prediction, on the validation images.

# %%
_, _, pred = evaluate(model, val_x, val_y, one_crop)
confusion = np.zeros((len(classes), len(classes)), dtype=int)
np.add.at(confusion, (val_y, pred), 1)
fig, ax = plt.subplots(figsize=(5.5, 4.8))
ax.imshow(confusion, cmap="Blues")
for i in range(len(classes)):
    for j in range(len(classes)):
        if confusion[i, j]:
            ax.text(
                j,
                i,
                confusion[i, j],
                ha="center",
                va="center",
                fontsize=7,
                color="white" if confusion[i, j] > confusion.max() / 2 else "black",
            )
ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=8)
ax.set_yticks(range(len(classes)), classes, fontsize=8)
ax.set(xlabel="predicted", ylabel="true")
plt.tight_layout()
plt.show()

# %% [markdown]
# On Fashion-MNIST the mistakes cluster where people would make them too: shirts, T-shirts,
# pullovers and coats are confused with each other; trousers and bags almost never.
#
# ## 6. The learned conv1 filters (the paper's Figure 3)
#
# The paper's Figure 3 shows conv1's 96 kernels of 11×11×3 after training: oriented edges and
# gratings at many frequencies, and colour blobs. Ours are 64 kernels of 5×5×3, trained briefly on
# grey images, so colour means nothing (we show each kernel's sum over its three channels). After
# so little training the kernels are still mostly their random start; the difference (bottom)
# shows what training has added so far: smooth light–dark blobs and edges, the beginnings of the
# paper's picture.


# %%
def filter_grid(W, ax, title):
    """64 kernels (64, 3, k, k) summed over channels, each scaled to its own range, in 4 x 16."""
    k = W.shape[-1]
    grey = W.sum(axis=1)
    grey = (grey - grey.min(axis=(1, 2), keepdims=True)) / np.ptp(grey, axis=(1, 2), keepdims=True)
    canvas = np.ones((4 * (k + 1), 16 * (k + 1)))
    for i, f in enumerate(grey):
        r, c = divmod(i, 16)
        canvas[r * (k + 1) : r * (k + 1) + k, c * (k + 1) : c * (k + 1) + k] = f
    ax.imshow(canvas, cmap="gray")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


fig, axes = plt.subplots(3, 1, figsize=(8, 6.6))
filter_grid(filters_before, axes[0], "conv1 at initialisation, N(0, 0.01²)")
filter_grid(model.params["conv1.W"], axes[1], "conv1 after three epochs")
filter_grid(model.params["conv1.W"] - filters_before, axes[2], "what three epochs added")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Nearest neighbours in the last hidden layer (the paper's Figure 4)
#
# "If two images produce feature activation vectors with a small Euclidean separation, we can say
# that the higher levels of the neural network consider them to be similar." The paper's last
# hidden layer is fc7's 4096 ReLU outputs; ours is `relu4`, 192 numbers. For a few validation
# images (left), the six closest among 1,000 training images in that space:


# %%
def hidden(model, x, upto="relu4", batch=100):
    """The activations of layer `upto` for uint8 images (centre crop, train=False)."""
    stop = [name for name, _ in model.named_layers()].index(upto) + 1
    feats = []
    for i in range(0, len(x), batch):
        h = one_crop(x[i : i + batch].astype(np.float32))[0]
        for layer in model.layers[:stop]:
            h = layer.forward(h, train=False)
        feats.append(h)
    return np.concatenate(feats)


train_h, val_h = hidden(model, train_x[:1000]), hidden(model, val_x)
queries = [int(np.flatnonzero(val_y == c)[0]) for c in (0, 1, 5, 7, 8, 9)]
fig, axes = plt.subplots(len(queries), 7, figsize=(6, 0.95 * len(queries)))
for row, q in zip(axes, queries, strict=True):
    dist = np.linalg.norm(train_h - val_h[q], axis=1)
    row[0].imshow(val_x[q].transpose(1, 2, 0))
    row[0].set_title("query" if q == queries[0] else "", fontsize=7)
    for ax, j in zip(row[1:], np.argsort(dist)[:6], strict=True):
        ax.imshow(train_x[j].transpose(1, 2, 0))
    for ax in row:
        ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# Like the paper's Figure 4, the neighbours share the class far more often than they share pixels:
# a shoe pointing the same way, a bag of a different shape. (Pixel distance would instead find
# images with the same silhouette and brightness.)
#
# ## 8. One crop or ten?
#
# The paper averages the softmax over ten crops at test time (lesson 09) and reports 39.0% → 37.5%
# top-1 error on ILSVRC-2010. `make_eval(..., crops=10)` gives the ten views; `predict_probs`
# averages their softmax.

# %%
for name, view in (("1 crop", one_crop), ("10 crops", ten_crops)):
    loss, error, _ = evaluate(model, val_x, val_y, view)
    print(f"{name:>8}: validation loss {loss:.3f}, top-1 error {error:.1%}")

# %% [markdown]
# With 400 validation images, one image is 0.25%: differences of a few tenths are within noise.
# The ten views of a 28×28 image shifted by at most 4 pixels are also much more alike than the
# paper's 224 crops of 256 images.
#
# ## 9. The same, as a command
#
# Everything above with checkpoints, resuming, metrics and a curves plot is one command; its
# default run trains the CIFAR net on the synthetic dataset for the epochs `tinyalex/recipes.py`
# sets:

# %%
print(
    "default epochs:",
    recipes.defaults("cifar", "synthetic")["epochs"],
    "| default learning rate for the CIFAR net:",
    recipes.defaults("cifar", "synthetic")["lr"],
)

# %% [markdown]
# ```bash
# python -m tinyalex.train                                        # CIFAR net, synthetic data
# python -m tinyalex.train --data fashion-mnist                   # the run above, on all 60,000
# python -m tinyalex.train --resume runs/synthetic-cifar/checkpoint.npz --epochs 20
# python -m tinyalex.evaluate runs/synthetic-cifar/checkpoint.npz --crops 10
# python -m tinyalex.train --backend cupy --model alexnet --data folder --data-dir ~/imagenet
# ```
#
# A run writes `checkpoint.npz` (parameters, optimiser velocity, schedule state and the dropout
# generators, so `--resume` continues exactly), `metrics.jsonl` (one line per epoch) and
# `curves.png`. Ctrl-C saves a checkpoint at the current step; `--epochs` is the total, also when
# resuming.
#
# ## Questions to think about
#
# 1. The tiny-set check reached zero error. Name two bugs it would catch and one it would not.
# 2. The paper trained for about 90 epochs; we ran three. Which of the curves above would you
#    watch to decide when to lower the learning rate, and why not the training error?
# 3. Why does the nearest-neighbour search in Figure 4 use the last hidden layer and not the
#    logits or the softmax output?
# 4. The conv1 filters of a network trained on grey images: what would you expect the three colour
#    channels of each kernel to look like, and why do they not come out exactly equal?
# 5. Flipping Fashion-MNIST's shoes makes them point the other way; every shoe in the dataset
#    points left. Is the flip still a good augmentation here? How would you find out?
