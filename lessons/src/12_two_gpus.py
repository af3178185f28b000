# %% [markdown]
# # Lesson 12 — Two GPUs
#
# *Study time: about 45 minutes. Before this: lessons 03 (convolution, groups) and 11 (going fast).*
#
# **The paper's claim (§3.2).** "A single GTX 580 GPU has only 3GB of memory, which limits the
# maximum size of the networks that can be trained on it." So the network is spread over two GPUs:
# half of the kernels (or neurons) on each, and "the GPUs communicate only in certain layers. This
# means that, for example, the kernels of layer 3 take input from all kernel maps in layer 2.
# However, kernels in layer 4 take input only from those kernel maps in layer 3 which reside on the
# same GPU." Against "a net with half as many kernels in each convolutional layer trained on one
# GPU", the two-GPU net has 1.7% lower top-1 and 1.2% lower top-5 error, and "takes slightly less
# time to train".
#
# This lesson: the split as grouped convolution, its backward pass, two towers you write and check
# against `groups=2`, where the towers talk and how many bytes that costs per step against the
# alternative (data parallelism), and the whole network run as two towers in one process.

# %%
# %matplotlib inline
import threading

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from tinyalex.exercise import check_backward, cmp, expect_fail
from tinyalex.layers import Conv2D, Linear, SoftmaxCrossEntropy
from tinyalex.models import alexnet
from tinyalex.optim import SGD
from tinyalex.parallel import Communicator, Tower
from tinyalex.parallel.tiny import tiny_alexnet
from tinyalex.parallel.traffic import comparison, data_parallel_bytes, model_parallel_bytes
from tinyalex.step import train_step

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook

# %% [markdown]
# ## 1. Two towers are a grouped convolution
#
# A convolution with $G$ groups splits the $C$ input channels and the $O$ output channels into $G$
# equal parts; output channel $o$ sees only the input channels of its own group:
#
# $$y[n, o] = b[o] + \sum_{c \,\in\, \text{group}(o)} W[o, c] \star x[n, c], \qquad W \text{ of shape } (O,\ C/G,\ k,\ k).$$
#
# With $G = 2$ that is exactly "the kernels of one GPU see only the maps of the same GPU": conv2,
# conv4 and conv5 are `groups=2`. conv3 and the fully connected layers see both towers' maps: one
# ordinary layer, whose output units happen to be computed half on each GPU. conv1 sees the image,
# which both GPUs hold. Drawn as which output channel (row) may read which input channel
# (column), GPU 1's half first; orange marks where one GPU needs the other's maps:

# %%
net = alexnet()  # the paper's network, groups=2 (lesson 00); 61 million parameters
layers = [
    (name, layer) for name, layer in net.named_layers() if isinstance(layer, (Conv2D, Linear))
]
colours = ListedColormap(["white", "tab:orange", "tab:blue"])  # none, other tower, own tower
fig, axes = plt.subplots(1, len(layers), figsize=(13, 2.4))
for ax, (name, layer) in zip(axes, layers, strict=True):
    if name == "conv1":  # reads the image, which both GPUs hold
        mask = np.full((layer.out_channels, layer.in_channels), 2)
    elif isinstance(layer, Conv2D) and layer.groups == 2:
        mask = 2 * np.kron(np.eye(2), np.ones((layer.out_channels // 2, layer.in_channels // 2)))
    else:  # conv3, fc6-fc8: half the reads come from the other tower's maps
        o, c = (
            (layer.out_channels, layer.in_channels)
            if isinstance(layer, Conv2D)
            else (layer.out_features, layer.in_features)
        )
        mask = 1 + np.kron(np.eye(2), np.ones((o // 2, c // 2)))
    ax.imshow(mask, cmap=colours, vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    ax.set_title(f"{name}{' (groups=2)' if mask.min() == 0 else ''}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].set_ylabel("output (GPU 1 top)", fontsize=8)
fig.legend(
    handles=[
        Patch(color="tab:blue", label="reads its own GPU's maps"),
        Patch(color="tab:orange", label="reads the other GPU's maps: an exchange"),
    ],
    loc="lower center",
    ncol=2,
    fontsize=8,
)
plt.tight_layout(rect=(0, 0.12, 1, 1))
plt.show()

# %% [markdown]
# ## 2. The backward pass splits the same way
#
# Write $x = [x_0; x_1]$, $W = [W_0; W_1]$, $y = [y_0; y_1]$ for the two towers' halves (along the
# channel axis), so $y_g = \text{conv}(x_g, W_g) + b_g$. Tower $g$'s output depends only on $x_g$ and
# $W_g$, so the chain rule has a single path for each:
#
# $$\frac{\partial L}{\partial x_g} = \text{conv}^\top\!\Big(\frac{\partial L}{\partial y_g}, W_g\Big), \qquad \frac{\partial L}{\partial W_g} = \frac{\partial L}{\partial y_g} \star x_g, \qquad \frac{\partial L}{\partial b_g} = \sum_{n, p, q} \frac{\partial L}{\partial y_g}$$
#
# — each tower's backward pass is an ordinary convolution's backward (lesson 03) on its own half,
# and the halves are concatenated. Nothing crosses between the towers, forward or backward. The
# exchanges happen only at the layers that see both towers (conv3, fc6–fc8): forward, each GPU
# needs the other's half of the input; backward, each needs the other's contribution to the
# gradient of its half.
#
# ## 3. Exercise: two towers
#
# Write a grouped convolution with two groups as two ordinary convolutions, one per tower, using
# the helper `tower_conv` (a `Conv2D` with `groups=1` and the given weights). Forward: split `x` by
# input channels and `W`, `b` by output channels, run each tower, concatenate the outputs. Backward:
# split `dy` by output channels, run each tower's backward, concatenate `dx`, `dW`, `db`.


# %%
def tower_conv(W, b, padding):
    """A groups=1 Conv2D holding the given float64 weights (shape (O, C, k, k))."""
    layer = Conv2D(W.shape[1], W.shape[0], W.shape[2], 1, padding, dtype=np.float64)
    layer.params.update(W=W, b=b)
    return layer


def two_towers_forward(x, W, b, padding=1):
    """y = conv(x, W, b) with groups=2, as two towers: y = [conv(x0, W0, b0); conv(x1, W1, b1)]."""
    # BEGIN SOLUTION: np.split x on axis 1 and W, b on axis 0; forward each tower; concatenate
    xs, Ws, bs = np.split(x, 2, axis=1), np.split(W, 2, axis=0), np.split(b, 2)
    ys = [tower_conv(Wg, bg, padding).forward(xg) for xg, Wg, bg in zip(xs, Ws, bs, strict=True)]
    return np.concatenate(ys, axis=1)
    # END SOLUTION


def two_towers_backward(dy, x, W, b, padding=1):
    """(dx, dW, db) of the two-tower convolution: each tower's backward on its half."""
    # BEGIN SOLUTION: split dy by output channels; per tower: forward (fills the cache), backward
    xs, Ws, bs = np.split(x, 2, axis=1), np.split(W, 2, axis=0), np.split(b, 2)
    dxs, dWs, dbs = [], [], []
    for xg, Wg, bg, dyg in zip(xs, Ws, bs, np.split(dy, 2, axis=1), strict=True):
        tower = tower_conv(Wg, bg, padding)
        tower.forward(xg)
        dxs.append(tower.backward(dyg))
        dWs.append(tower.grads["W"])
        dbs.append(tower.grads["b"])
    return np.concatenate(dxs, axis=1), np.concatenate(dWs), np.concatenate(dbs)
    # END SOLUTION


# %% [markdown]
# **Check 1** against `Conv2D(groups=2)` on conv4's pattern at toy widths (6 → 4 channels, 3×3,
# padding 1), forward and backward, float64: agreement to about 1e-15.

# %%
rng = np.random.default_rng(0)
grouped = Conv2D(6, 4, 3, 1, 1, groups=2, dtype=np.float64, rng=rng)
grouped.params["b"][...] = rng.standard_normal(4)
W, b = grouped.params["W"], grouped.params["b"]
x = rng.standard_normal((2, 6, 5, 5))
dy = rng.standard_normal((2, 4, 5, 5))
cmp("y", two_towers_forward(x, W, b), grouped.forward(x))
dx = grouped.backward(dy)
for name, mine, ref in zip(
    ("dx", "dW", "db"),
    two_towers_backward(dy, x, W, b),
    (dx, grouped.grads["W"], grouped.grads["b"]),
    strict=True,
):
    cmp(name, mine, ref, rtol=1e-10, atol=1e-12)

# %% [markdown]
# **Check 2**: a float64 gradient check of your backward pass by central differences (relative
# error below 1e-6).

# %%
errors = check_backward(
    "two towers",
    lambda x, W, b: two_towers_forward(x, W, b),
    lambda dy, x, W, b: two_towers_backward(dy, x, W, b),
    {"x": x.copy(), "W": W.copy(), "b": b.copy()},
)

# %% [markdown]
# Letting the towers talk where they should not — one ordinary convolution over all six input
# channels with the weights of tower 0 and tower 1 side by side — is a different function, and
# the check says so:

# %%
full = Conv2D(6, 4, 3, 1, 1, dtype=np.float64)
full.params.update(W=np.concatenate([W, W], axis=1) / 2, b=b)
message = expect_fail(cmp, "y of an ungrouped conv", full.forward(x), grouped.forward(x))

# %% [markdown]
# ## 4. In tinyalex
#
# `Conv2D(groups=2)` runs both towers as one batched matrix product: im2col lays the patches out as
# (G, C/G·k·k, N·OH·OW) and `matmul` multiplies each group's weights with its own patches
# (`tinyalex/layers/conv.py`). On one device that is all the paper's split amounts to.
# `tinyalex.parallel.Tower` cuts a `groups=2` network into the paper's two towers on two processes
# or GPUs (`mpiexec -n 2 python -m tinyalex.train --model alexnet --parallel model`); it is tested
# equal to the one-process network to 1e-10 in float64.
#
# ## 5. What the towers say to each other, in bytes
#
# Model parallelism as in the paper moves *activations*: at conv3's input and the inputs of fc6, fc7
# and fc8, each GPU sends its half to the other, and the gradients of those halves come back in the
# backward pass. Data parallelism — the usual way today: each GPU holds the whole network and half
# of the batch — moves *gradients*: an all-reduce of all 61 million every step, whatever the batch.
# `tinyalex.parallel.traffic` counts both from the network's shapes (the numbers that
# `Communicator.bytes_sent` measures in a real run):

# %%
print(comparison(net, 128))

# %% [markdown]
# tinyalex's LRN normalises across all channels, so each tower also borrows two neighbouring maps
# at lrn1 and lrn2 (the "halo" rows); the paper's GPUs normalised only their own maps. Even so, at
# the paper's batch of 128 the towers move several times fewer bytes than data parallelism, because
# the fully connected layers, 58.6 of the 61 million parameters, never move. The balance depends on
# the batch: activations grow with it, gradients do not.

# %%
batches = np.array([16, 32, 64, 128, 256, 512, 1024])
towers = [sum(f + bwd for _, f, bwd in model_parallel_bytes(net, int(n))) for n in batches]
fig, ax = plt.subplots(figsize=(6, 3.2))
ax.loglog(batches, np.array(towers) / 2**20, "o-", label="two towers (model parallel)")
ax.axhline(data_parallel_bytes(net, 2) / 2**20, c="C3", label="data parallel, 2 GPUs")
ax.axvline(128, c="gray", ls=":")
ax.set(
    xlabel="batch (images per step)", ylabel="MiB sent per GPU per step", title="AlexNet, float32"
)
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.tight_layout()
plt.show()
del net

# %% [markdown]
# ## 6. Two towers in one process, checked against `groups=2`
#
# A communicator is a handful of collective operations and one exchange (`tinyalex/parallel/comm.py`): all-gather
# (join the pieces), reduce-scatter (sum, then each keeps its piece), all-reduce. Two threads and a
# barrier make one, enough to run the real `Tower` code without MPI or GPUs. The network is
# `tiny_alexnet()`: AlexNet's layer pattern (LRN, overlapping pooling, groups=2 at conv2, conv4,
# conv5, dropout) at toy widths, float64.


# %%
class ThreadComm(Communicator):
    """Two ranks as two threads of one process; each collective meets at a barrier."""

    transport = "threads"

    def __init__(self, rank, shared):
        super().__init__()
        self.rank, self.size, self.shared = rank, 2, shared

    def _meet(self, item):  # every rank's item, in rank order
        s = self.shared
        s["slots"][self.rank] = item
        s["barrier"].wait()
        items = list(s["slots"])
        s["barrier"].wait()  # nobody overwrites a slot before everyone has read it
        return items

    def _allreduce(self, buf):
        buf[...] = sum(self._meet(buf.copy()))

    def _allgather(self, send, recv):
        recv[...] = np.concatenate(self._meet(send.copy()))

    def _reduce_scatter(self, send, recv):
        m = recv.size
        recv[...] = sum(self._meet(send.copy()))[self.rank * m : (self.rank + 1) * m]

    def _sendrecv(self, send, recv, peer):
        recv[...] = self._meet(send.copy())[peer]

    def bcast_object(self, obj, root=0):
        return self._meet(obj)[root]

    def gather_object(self, obj, root=0):
        items = self._meet(obj)
        return items if self.rank == root else None

    def barrier(self):
        self._meet(None)


rng = np.random.default_rng(1)
images, labels = rng.standard_normal((6, 3, 55, 55)), rng.integers(0, 7, 6)

# one process, one network with groups=2
one = tiny_alexnet(seed=0)
loss_fn = SoftmaxCrossEntropy()
one_loss, one_logits = train_step(one, loss_fn, SGD(one, lr=0.01), images, labels)

# two towers, one thread each, each cut from its own copy of the same network
shared = {"slots": [None, None], "barrier": threading.Barrier(2, timeout=60)}
results = [None, None]


def run_tower(rank):
    try:
        results[rank] = one_tower(rank)
    except BaseException as e:  # shown below, after both threads have stopped
        shared["barrier"].abort()
        results[rank] = e


def one_tower(rank):
    comm = ThreadComm(rank, shared)
    tower = Tower(tiny_alexnet(seed=0), comm)
    loss, logits = train_step(tower, SoftmaxCrossEntropy(), SGD(tower, lr=0.01), images, labels)
    sent = comm.bytes_sent  # the step's traffic (gathering the weights below sends more)
    return float(loss), logits, tower.gather_params(), sent


threads = [threading.Thread(target=run_tower, args=(r,)) for r in (0, 1)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for outcome in results:
    if isinstance(outcome, BaseException):
        raise outcome

cmp("loss", np.float64(results[0][0]), np.float64(one_loss), rtol=1e-12)
cmp("logits", results[0][1], one_logits, rtol=1e-10, atol=1e-12)
for name in ("conv2.W", "conv3.W", "fc6.W", "fc8.b"):
    cmp(f"{name} after a step", results[0][2][name], one.params[name], rtol=1e-10, atol=1e-12)

# %% [markdown]
# The two towers computed the same loss and logits as the one network, and after one SGD step their
# gathered weights equal its weights: the split changes where the work happens, not what is
# computed. Rank 0's bytes sent, as counted by the communicator during the step, and as worked out
# from the shapes by `traffic.model_parallel_bytes`:

# %%
counted = sum(f + bwd for _, f, bwd in model_parallel_bytes(tiny_alexnet(seed=0), 6))
print(f"rank 0 sent {results[0][3]:,} bytes in the step; the shapes say {counted:,}")

# %% [markdown]
# ### The same towers as two real processes
#
# Threads share one memory, so they could cheat. `python -m tinyalex.parallel.check` runs the same
# `Tower` code as two separate MPI processes (`mpiexec -n 2`, each rank holding only its own half
# of the weights) for three SGD steps, then compares the gathered network with one process running
# `groups=2`. This is what `mpiexec -n 2 python -m tinyalex.train --parallel model` does each step.
# It needs `pip install mpi4py mpich`; without them the cell says so.

# %%
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402


def run_check(*args, cwd):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
    print(done.stdout.strip() or done.stderr.strip())
    return done.returncode


try:
    import mpi4py  # noqa: F401

    mpiexec = shutil.which("mpiexec")
except ImportError:
    mpiexec = None
if mpiexec is None:
    print("mpi4py or mpiexec is not installed here: pip install mpi4py mpich, then rerun this cell")
else:
    with tempfile.TemporaryDirectory() as tmp:
        check = [sys.executable, "-m", "tinyalex.parallel.check", "model"]
        run_check(*check, "--reference", "--out", "one.npz", cwd=tmp)
        code = run_check(mpiexec, "-n", "2", *check, "--out", "two.npz", "--compare", "one.npz",
                         cwd=tmp)
        assert code == 0, "the two processes disagree with one process"

# %% [markdown]
# ## 7. What it cost and what it bought
#
# - **Bought:** a network twice as wide as one 3 GB GPU could hold, trained in "slightly less time"
#   than the half-width one-GPU net, and 1.7% / 1.2% lower top-1 / top-5 error than it.
# - **Cost:** the exchanges above, and a constraint on the architecture: conv2, conv4 and conv5 see
#   only half the maps. That also saves work: the grouped network has 60,965,224 parameters and
#   724 million multiply-adds per image; one tower of the same widths without groups has
#   62,378,344 and 1,135 million (docs/conventions.md §1; lesson 00's `summary()`).
# - **A side effect the paper noticed (Figure 3):** the 48 conv1 kernels on GPU 1 came out largely
#   colour-agnostic and the 48 on GPU 2 largely colour-specific, in every run — the groups make the
#   towers specialise.
# - Later networks dropped the split once one GPU held the whole model (torchvision's AlexNet has no
#   groups), and spread the *batch* instead; grouped convolutions came back for their savings
#   (ResNeXt, MobileNet's depthwise convolutions).
#
# ## Questions to think about
#
# 1. Why does the paper let conv3 see both towers but not conv4 and conv5? What would the traffic
#    table above look like if every convolution saw both towers?
# 2. At what batch size do the two schemes send equal bytes for AlexNet (read it off the plot)?
#    Which would you choose for batch 128 on two GPUs joined by a slow link?
# 3. Data parallelism with two GPUs computes the same gradients as one GPU with the whole batch.
#    Does model parallelism? What about dropout's masks?
# 4. `groups=2` on one device gives the same numbers as two GPUs. Is it also as fast as one
#    ungrouped convolution of the same total FLOPs? (Think of the matrix sizes in lesson 03.)
