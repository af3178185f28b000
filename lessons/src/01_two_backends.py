# %% [markdown]
# # Lesson 01 — Arrays on two backends: NumPy and CuPy
#
# The paper's network did not fit on one GPU of 2012: "a single GTX 580 GPU has only 3GB of
# memory, which limits the maximum size of the networks that can be trained on it" (§3.2), so it
# was spread over two. Its code (cuda-convnet) was written for the GPU alone. tinyalex writes each
# layer once, for arrays, and runs it on the CPU with NumPy or on an NVIDIA GPU with CuPy, whose
# arrays have the same methods and functions. This lesson shows how one code path serves both.
#
# **Study time:** about 30 minutes. **Prerequisites:** lesson 00; NumPy arrays.
# A GPU is optional: the CuPy cells say so and skip where there is none.

# %%
import inspect
import time

import matplotlib.pyplot as plt
import numpy as np

from tinyalex import backend
from tinyalex.backend import array_module, to_device, to_numpy
from tinyalex.exercise import cmp
from tinyalex.kernels import gemm_kernels
from tinyalex.layers import softmax
from tinyalex.layers.loss import log_softmax

plt.rcParams["figure.dpi"] = 72
np.set_printoptions(precision=4, suppress=True, linewidth=100)
GPU = backend.cupy_available()
print("CuPy with a working GPU here:", GPU, "" if GPU else f"({backend.cupy_unavailable_reason()})")

# %% [markdown]
# ## 1. The array decides (docs/style.md §1)
#
# A NumPy array lives in the computer's memory, a CuPy array in the GPU's. Both have `.shape`,
# `.reshape`, `@`, `.sum(axis=...)`, and both modules have `exp`, `zeros`, `maximum`, ... with the
# same names and meanings. So a layer never imports either: it asks its input which module owns
# it, `xp = array_module(x)`, and calls `xp.exp`, `xp.zeros`. That is the whole trick, and the
# only file that knows the difference is `tinyalex/backend.py`:

# %%
print(inspect.getsource(array_module))
print(inspect.getsource(log_softmax))

# %% [markdown]
# ## 2. Exercise: one softmax for both backends
#
# $\mathrm{softmax}(z)_k = e^{z_k} / \sum_j e^{z_j}$ along the last axis. Two traps:
#
# - `np.exp(1000.0)` is `inf`. Subtract each row's maximum first: the result does not change,
#   because $e^{z_k - m} / \sum_j e^{z_j - m} = e^{z_k}/\sum_j e^{z_j}$, and no exponent is
#   positive any more.
# - Calling `np.exp` on a CuPy array would copy it back to the CPU (or fail). Use `xp`.
#
# Write it for any array module; keep the input's dtype (float32 stays float32).

# %%
def my_softmax(z):
    xp = array_module(z)
    # BEGIN SOLUTION: subtract the row maximum, exponentiate with xp.exp, divide by the row sum
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
    # END SOLUTION


# %%
rng = np.random.default_rng(0)
z = rng.standard_normal((4, 10))
cmp("softmax", my_softmax(z), softmax(z))
cmp("huge logits", my_softmax(np.array([[1000.0, 999.0, -1000.0]])),
    np.array([[1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0]]))
z32 = z.astype(np.float32)
assert my_softmax(z32).dtype == np.float32, "float32 in should give float32 out"
print("float32 stays float32: PASS")
if GPU:
    zg = to_device(z, "cupy")
    out = my_softmax(zg)
    assert backend.is_cupy_array(out), "a CuPy array in should give a CuPy array out"
    cmp("softmax on the GPU", to_numpy(out), softmax(z))
else:
    print("(no GPU here: the same check runs on a CuPy array where one is)")

# %% [markdown]
# ## 3. Moving data
#
# Arrays move explicitly: `to_device(x, "cupy")` copies host memory to the GPU,
# `to_numpy(x)` copies it back (a no-op for NumPy arrays), and `model.to("cupy")` moves every
# parameter of a model. Nothing moves by itself, so a training loop copies each batch once, in,
# and reads back only the loss. A copy costs time: on a PCIe 4 bus, about 25 GB/s at best.
# Here is what one training batch of the paper costs to copy within the CPU's memory (the GPU
# cell measures the bus):

# %%
batch = np.zeros((128, 3, 227, 227), dtype=np.float32)
start = time.perf_counter()
for _ in range(5):
    batch.copy()
seconds = (time.perf_counter() - start) / 5
print(f"one batch of 128 images: {batch.nbytes / 2**20:.0f} MiB, "
      f"copied in host memory in {1e3 * seconds:.1f} ms ({batch.nbytes / seconds / 1e9:.1f} GB/s)")
if GPU:
    import cupy

    to_device(batch, "cupy")  # warm up: the first transfer allocates
    backend.synchronize()
    start = time.perf_counter()
    for _ in range(5):
        g = to_device(batch, "cupy")
    backend.synchronize(g)
    seconds = (time.perf_counter() - start) / 5
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"host -> {name}: {1e3 * seconds:.1f} ms ({batch.nbytes / seconds / 1e9:.1f} GB/s)")
else:
    print("(no GPU here: this cell times the host -> GPU copy where one is)")

# %% [markdown]
# ## 4. CPU vs GPU: where the speed comes from
#
# Most of AlexNet's work is matrix products (lesson 03 turns each convolution into one). A
# product of two $n\times n$ matrices costs $2n^3$ floating-point operations for $2n^2$ numbers
# read: the bigger the matrices, the more arithmetic per byte, and the closer a processor gets to
# its peak. Below: the rate NumPy and tinyalex reach on this machine for growing $n$, and CuPy's where a GPU
# is. A GPU call also costs a fixed few microseconds to launch and runs asynchronously, so honest
# GPU timings call `backend.synchronize()` before reading the clock.
#
# (The numbers are measured when the lesson is built: on the build machine that is two shared CPU
# cores, so they are noisy, and no GPU.)

# %%
def gflops(xp, n, matmul=None, repeats=7):
    matmul = matmul or xp.matmul
    a = xp.asarray(np.random.default_rng(1).standard_normal((n, n), dtype=np.float32))
    b = a.T.copy()
    matmul(a, b).sum()  # warm up
    backend.synchronize(a)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        c = matmul(a, b)
        backend.synchronize(c)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


sizes = [32, 64, 128, 256, 512, 1024]
split = gemm_kernels().matmul2d  # tinyalex's CPU product: split over threads by tinyalex
rates = {
    "NumPy (CPU)": [gflops(np, n) for n in sizes],
    "tinyalex's split GEMM (CPU)": [gflops(np, n, split) for n in sizes],
}
if GPU:
    import cupy

    rates["CuPy (GPU)"] = [gflops(cupy, n) for n in sizes + [4096]]
for label, r in rates.items():
    print(f"{label:28s}", " ".join(f"{v:7.1f}" for v in r), "GFLOP/s")

fig, ax = plt.subplots(figsize=(6, 3.2))
for label, r in rates.items():
    ax.loglog((sizes + [4096])[: len(r)], r, "o-", label=label)
ax.set_xlabel("n (an n x n by n x n float32 product)")
ax.set_ylabel("GFLOP/s")
ax.set_title("matrix products on the build machine", fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Where NumPy's curve collapses (on the build machine it can drop a hundredfold at some size),
# the BLAS library has switched to several threads on cores that are busy with other work, and
# waking a thread can cost milliseconds. tinyalex's CPU path splits large products over threads
# itself, each piece a single-threaded BLAS call (`tinyalex/kernels/gemm.py`, lesson 11): the
# second curve. Small products stay one plain call.
#
# ## 5. The same layer, both backends
#
# The layers check this themselves: every test in `tests/` runs once per backend
# (docs/style.md §4), and a model moves with one call. Where a GPU is, this cell runs the small
# CIFAR network on both and compares the outputs; float32 sums run in a different order on the
# GPU, so they agree to about 1e-6, not exactly.

# %%
from tinyalex.models import cifar_alexnet

model = cifar_alexnet(seed=0)
x = np.random.default_rng(2).standard_normal((8, 3, 24, 24)).astype(np.float32)
cpu_out = model.forward(x, train=False)
print("CPU logits, first image:", cpu_out[0, :5])
if GPU:
    model.to("cupy")
    gpu_out = to_numpy(model.forward(to_device(x, "cupy"), train=False))
    cmp("GPU vs CPU logits", gpu_out, cpu_out, rtol=1e-4, atol=1e-5)
    model.to("numpy")
else:
    print("(no GPU here: this cell compares the two backends where one is)")

# %% [markdown]
# The fast paths differ underneath (numba kernels on the CPU, CUDA kernels on the GPU: lesson 11),
# but each sits behind the same layer, and each is tested equal to the plain NumPy code.
#
# ## Questions to think about
#
# 1. `float(loss)` on a CuPy scalar waits for the GPU to finish everything queued before it. Why
#    does `tinyalex.step.train_step` return the loss as an array instead of a Python float?
# 2. A batch of 128 images takes how long to cross a 25 GB/s bus, against a training step that
#    takes, say, 100 ms on the GPU? What would you do if copying took longer than computing?
# 3. The curve above flattens for large $n$. What limits it there, and what limits it for small $n$?
# 4. Why is `import cupy as np` at the top of a file a worse idea than `xp = array_module(x)`?
