# %% [markdown]
# # Lesson 11 — Going fast
#
# *Study time: about 60 minutes. Before this: lessons 01 (two backends), 03 (convolution as a
# matrix product), 10 (the training step).*
#
# **The paper's point (§3.2, §1).** "Current GPUs are particularly well-suited to cross-GPU
# parallelization"; the network's size "is limited mainly by the amount of memory available on
# current GPUs and by the amount of training time that we are willing to tolerate". The authors
# wrote "a highly-optimized GPU implementation of 2D convolution and all the other operations
# inherent in training convolutional neural networks" (cuda-convnet). Speed was what made the
# network possible.
#
# This lesson: where a training step's time goes, why the layers split into two kinds (those
# limited by arithmetic and those limited by memory), what tinyalex's numba and CUDA kernels do
# about the second kind, a fused kernel you write and check, and the numbers from
# `python -m tinyalex.bench` against PyTorch.

# %%
# %matplotlib inline
import inspect
import os
import platform
import time

import matplotlib.pyplot as plt
import numba
import numpy as np

from tinyalex import bench, kernels
from tinyalex.backend import cupy_available, cupy_unavailable_reason
from tinyalex.bench_runners import TinyalexRunner, make_batch
from tinyalex.exercise import cmp, expect_fail
from tinyalex.models import cifar_alexnet, layer_stats
from tinyalex.optim import SGD

np.set_printoptions(precision=4, suppress=True)
plt.rcParams["figure.dpi"] = 72  # small images in the stored notebook
print(
    f"{platform.machine()}, {os.cpu_count()} CPU cores; numba {numba.__version__}, "
    f"numpy {np.__version__}"
)

# %% [markdown]
# ## 1. Profile a step
#
# `TinyalexRunner.profile_step` (the benchmark's profiler) runs one training step of the CIFAR net
# layer by layer with a clock around each forward and backward call. Batch 32 here, median of three
# steps, after one step to warm up (numba compiles its kernels on first use).

# %%
model = cifar_alexnet()
x, labels = make_batch(model, 32, np)
runner = TinyalexRunner(model, x, labels)
runner.step()


def profile(runner, steps=3):
    """Median milliseconds per layer, forward and backward."""
    runs = [runner.profile_step() for _ in range(steps)]
    return {name: np.median([r[name] for r in runs], axis=0) * 1e3 for name in runs[0]}


fast = profile(runner)
os.environ["TINYALEX_KERNELS"] = "0"  # the plain NumPy code, no numba kernels
plain = profile(runner)
del os.environ["TINYALEX_KERNELS"]

names = list(fast)
fig, ax = plt.subplots(figsize=(10, 3.4))
pos = np.arange(len(names))
for offset, (label, prof) in zip(
    (-0.2, 0.2), (("plain NumPy", plain), ("numba kernels", fast)), strict=True
):
    ax.bar(pos + offset, [prof[n][0] for n in names], 0.4, label=f"{label}: forward")
    ax.bar(
        pos + offset,
        [prof[n][1] for n in names],
        0.4,
        bottom=[prof[n][0] for n in names],
        label=f"{label}: backward",
        alpha=0.6,
    )
ax.set_xticks(pos, names, rotation=45, ha="right", fontsize=8)
ax.set(ylabel="ms (batch 32)", title="one training step of cifar_alexnet, layer by layer")
ax.legend(fontsize=8, ncol=2)
ax.grid(axis="y", alpha=0.3)
plt.tight_layout()
plt.show()
for label, prof in (("plain NumPy", plain), ("numba kernels", fast)):
    total = sum(f + b for f, b in prof.values())
    top = sorted(prof, key=lambda n: -sum(prof[n]))[:3]
    print(
        f"{label:>14}: {total:6.1f} ms a step; largest: "
        + ", ".join(f"{n} {100 * sum(prof[n]) / total:.0f}%" for n in top)
    )

# %% [markdown]
# (Timings on a shared machine are noisy; the stored ones here came from 2 busy cores.) The
# convolutions dominate either way. The kernels change the rest: pooling, LRN, ReLU and the update
# shrink, and conv's own reshuffles (im2col, col2im) get faster.
#
# ## 2. Two kinds of layer
#
# A convolution is one large matrix product (lesson 03): for every number it reads it does many
# multiply-adds, so its speed is set by arithmetic, and the BLAS library that does it is already
# close to the machine's peak. Pooling, LRN, ReLU and the SGD update do a handful of operations per
# number: their speed is set by how fast memory delivers the numbers. The ratio, operations per
# byte moved (the *arithmetic intensity*), tells which is which:

# %%
rows = layer_stats(model, (32, 3, 24, 24))
shape_in = (32, 3, 24, 24)
print(f"{'layer':8s} {'MACs':>14s} {'bytes in+out':>14s} {'MACs/byte':>10s}")
for r in rows:
    moved = 4 * (np.prod(shape_in) + np.prod(r["output"]))
    if r["type"] in ("Conv2D", "Linear", "MaxPool2D", "LRN", "ReLU"):
        print(f"{r['name']:8s} {r['macs']:>14,} {int(moved):>14,} {r['macs'] / moved:>10.1f}")
    shape_in = r["output"]

# %% [markdown]
# conv2 does about 200 multiply-adds per byte; ReLU, pooling and LRN do none that count here (a few
# comparisons or a short sum each). For those layers, the way to go faster is to move fewer bytes:
# read each input once, write each output once, and keep intermediate results in registers instead
# of in temporary arrays. That is what every kernel in `tinyalex/kernels/` does:
#
# - **im2col / col2im** (numba, CUDA): one pass with the padding in the index arithmetic, instead
#   of padding a copy first; the GPU's col2im *gathers* (one thread per input pixel sums the windows
#   that cover it), so no two threads write the same place and no atomics are needed.
# - **max-pooling**: one pass that records where each maximum was, so backward is a scatter.
# - **LRN**: a running sum over the channel window (add the channel entering, subtract the one
#   leaving), $O(C)$ per pixel instead of $O(C \cdot n)$, forward and backward in one pass each.
# - **the SGD update**: one pass instead of five array operations. You write that one next.
#
# ## 3. Exercise: a fused SGD update in numba
#
# The plain update in `tinyalex.optim.SGD` is five NumPy operations, each a full pass over the
# parameter: `v *= m`, `tmp = w * (wd lr)`, `v -= tmp`, `tmp = g * lr`, `v -= tmp`, then `w += v`.
# Counting reads and writes of whole arrays that is 14 passes over memory. A fused loop reads `g`,
# `v`, `w` once and writes `v`, `w` once: 5 passes.
#
# Write it as a numba kernel: `numba.njit(parallel=True)` and a `numba.prange` loop over the
# elements of the flat arrays. Compute in the order of the plain code,
# `t = m*v; t = t - wdlr*w; t = t - lr*g`, so that float32 results agree to the last bit.


# %%
@numba.njit(parallel=True, cache=False)
def fused_sgd(w, v, g, m, wdlr, lr):
    """In place on flat arrays: v = m v - wdlr w - lr g;  w = w + v.  One pass."""
    # BEGIN SOLUTION: for e in numba.prange(w.size): t = m*v[e]; ...; v[e] = t; w[e] += t
    for e in numba.prange(w.size):
        t = m * v[e]
        t = t - wdlr * w[e]
        t = t - lr * g[e]
        v[e] = t
        w[e] = w[e] + t
    # END SOLUTION


# %% [markdown]
# **Check** against `tinyalex.optim.SGD`'s plain NumPy path (`step(fast=False)`) on a float32
# parameter, five steps: the weights and velocities must agree to float32 rounding. (No gradient
# check here: an optimiser has no backward pass.)

# %%
rng = np.random.default_rng(0)
W0 = rng.standard_normal((300, 200), dtype=np.float32)
grads = [rng.standard_normal((300, 200), dtype=np.float32) for _ in range(5)]


class OneParam:
    def __init__(self, w):
        self.params, self.grads = {"W": w}, {"W": np.zeros_like(w)}


ref = OneParam(W0.copy())
opt = SGD(ref, lr=0.01, momentum=0.9, weight_decay=5e-4)
w, v = W0.copy().reshape(-1), np.zeros(W0.size, dtype=np.float32)
f32 = np.float32
for g in grads:
    ref.grads["W"][...] = g
    opt.step(fast=False)
    fused_sgd(w, v, g.reshape(-1), f32(0.9), f32(5e-4 * 0.01), f32(0.01))
cmp("weights", w.reshape(W0.shape), ref.params["W"], rtol=1e-6, atol=1e-7)
cmp("velocity", v.reshape(W0.shape), opt.velocity["W"], rtol=1e-6, atol=1e-7)

# %% [markdown]
# A kernel that forgets the weight decay is caught:

# %%
w_bad, v_bad = W0.copy().reshape(-1), np.zeros(W0.size, dtype=np.float32)
for g in grads:
    fused_sgd(w_bad, v_bad, g.reshape(-1), f32(0.9), f32(0.0), f32(0.01))
message = expect_fail(
    cmp, "weights, no decay", w_bad.reshape(W0.shape), ref.params["W"], rtol=1e-6, atol=1e-7
)

# %% [markdown]
# **How much does fusing buy?** On four million parameters (a sixth of AlexNet's fc6), the plain
# five-operation path, tinyalex's fused kernel (`step(fast=True)`), and yours; best of five.

# %%
n = 4_000_000
big = OneParam(rng.standard_normal(n, dtype=np.float32))
big.grads["W"][...] = rng.standard_normal(n, dtype=np.float32)
big_opt = SGD(big, lr=0.01)
wv = [big.params["W"].copy(), np.zeros(n, dtype=np.float32)]


def best_ms(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


results = {
    "plain NumPy (14 passes)": best_ms(lambda: big_opt.step(fast=False)),
    "tinyalex fused (5 passes)": best_ms(lambda: big_opt.step(fast=True)),
    "yours (5 passes)": best_ms(
        lambda: fused_sgd(wv[0], wv[1], big.grads["W"], f32(0.9), f32(5e-6), f32(0.01))
    ),
}
for name, ms in results.items():
    print(
        f"{name:>26}: {ms:6.2f} ms   ({14 * 4 * n / 1e6 if 'plain' in name else 5 * 4 * n / 1e6:.0f} MB moved)"
    )

# %% [markdown]
# Expect the fused versions to be faster by at least the ratio of bytes moved (14 : 5), since the
# arithmetic is the same. The stored run shows more than that: the numba loop also spreads over
# both cores, where each NumPy operation runs on one, and NumPy pays a call per operation. (On a
# busy machine all of these wobble.)
#
# ## 4. The same kernels in CUDA
#
# Each numba kernel has a CUDA twin in `tinyalex/kernels/cuda.py`, compiled once per device through
# CuPy. The GPU version of the update, as stored in that file's `SOURCE`:

# %%
from tinyalex.kernels import cuda as cuda_kernels  # noqa: E402

src = cuda_kernels.SOURCE
start = src.index("// The paper's SGD")
print(src[start : src.index("}\n}", start) + 3])
print("numba twin:", inspect.getsource(kernels.numba_kernels()._sgd_update.py_func), sep="\n")

# %% [markdown]
# `GRID_STRIDE_LOOP` gives each of thousands of GPU threads one element, then the element a whole
# grid further on: neighbouring threads touch neighbouring addresses, so the memory system serves
# a whole group of threads with one wide read ("coalesced"). Convolution itself stays a matrix
# product, one cuBLAS call per layer and step (`tinyalex/kernels/cublas.py`); the kernels do the
# memory-bound work around it.
#
# No GPU? The CUDA text above still runs. `tinyalex/kernels/host.py` compiles it as C++ for the
# CPU and calls the kernel body once for every (block, thread) of a launch, with `blockIdx` and
# `threadIdx` set as the GPU would set them: one thread after another, slowly, but the very same
# source. That is how the tests check every CUDA kernel on machines without a GPU
# (`tests/test_cuda_on_host.py`). Below, the update of 1,000 weights launched as 2 blocks of 128
# threads: 256 threads, so each one goes round the grid-stride loop four times (the last three
# threads three times).

# %%
from tinyalex.kernels import host  # noqa: E402

if host.compiler_reason() is None:
    sgd_cuda = host.HostModule(src, cuda_kernels.instantiations()).get_function(
        "sgd_update<float, int>"
    )
    w, v, g = (np.random.default_rng(i).standard_normal(1000, np.float32) for i in range(3))
    w_numba, v_numba = w.copy(), v.copy()
    scalars = (np.int32(w.size), np.float32(0.9), np.float32(5e-6), np.float32(0.01))
    sgd_cuda((2,), (128,), (g, v, w, *scalars))  # grid, block, arguments: as CuPy calls it
    kernels.numba_kernels().sgd_update(w_numba, v_numba, g, 0.9, 5e-6, 0.01)
    print("CUDA kernel (on the CPU) vs numba, largest difference in w:", abs(w - w_numba).max())
else:
    print("no C++ compiler here:", host.compiler_reason())

# %% [markdown]
# A difference of 0, or of one float32 rounding: the GPU's compiler fuses `m * v - wd_lr * w` into
# one multiply-add instruction (FMA) that rounds once instead of twice, and the CPU run copies
# that choice where the processor has FMA. Where a GPU is present, the next cell runs the CIFAR
# net's step on it; here it says why it cannot.

# %%
if cupy_available():
    import cupy

    gpu_model = cifar_alexnet().to("cupy")
    gx, glabels = make_batch(gpu_model, 128, cupy)
    gpu_runner = TinyalexRunner(gpu_model, gx, glabels)
    gpu_runner.step()
    print(f"GPU step, batch 128: {1e3 * min(gpu_runner.step() for _ in range(5)):.1f} ms")
else:
    print("no GPU step here:", cupy_unavailable_reason())

# %% [markdown]
# ## 5. NumPy vs PyTorch vs CuPy: `python -m tinyalex.bench`
#
# Speed claims in tinyalex are ratios against PyTorch measured in the same run, on the same
# threads, with the same weights: `python -m tinyalex.bench --compare-torch`. The two libraries'
# steps run in alternating blocks, so both see the same machine load. A small run, batch 32 (the
# README's figures use 128); the report names the machine it ran on:

# %%
status = bench.main(
    [
        "--model",
        "cifar",
        "--batch-size",
        "32",
        "--repeats",
        "4",
        "--profile-steps",
        "1",
        "--compare-torch",
    ]
)

# %% [markdown]
# Figures stored in the README, measured on this project's 2-core AMD EPYC machines (no GPU),
# 2026-11-27, torch 2.13.0+cpu, quiet machine, batch 128 (cifar) and 32 (alexnet):
#
# | model, batch | tinyalex img/s (best / median) | PyTorch img/s (best / median) | ratio |
# |---|---|---|---|
# | `cifar_alexnet`, 128 | 520 / 487 | 516 / 384 | 1.01× / 1.27× |
# | `alexnet`, 32 | 19.1 / 18.0 | 11.9 / 10.7 | 1.60× / 1.68× |
#
# **The GPU has not been measured in this session**: no CuPy or CUDA figure is given here, and none
# should be guessed. The CUDA kernels compile to PTX in the tests; on a machine with a GPU,
# `python -m tinyalex.bench --backend cupy --compare-torch` measures them against PyTorch with
# cuDNN, and `python -m tinyalex.gpucheck` runs the GPU tests, the benchmarks and a short training
# run in one command.
#
# ## Questions to think about
#
# 1. The SGD update of AlexNet touches 61 million parameters each step. At 14 passes of 4 bytes and
#    a memory bandwidth of 20 GB/s, how long does the plain update take? The fused one? How does
#    that compare with the convolutions' time on the same machine?
# 2. The ratio against PyTorch above differs from the README's table (another machine, batch 32
#    instead of 128, a busier moment). Which layers' rows would you compare to find out where the
#    two libraries differ? (PyTorch's CPU LRN is one place to look.)
# 3. A GPU has far more arithmetic per byte of memory bandwidth than a CPU. Does that make the
#    memory-bound layers a larger or a smaller share of a GPU step?
# 4. The GPU col2im gathers instead of scattering. What would go wrong with one thread per *output*
#    column scattering into the image, and what would fixing it with atomic adds cost?
