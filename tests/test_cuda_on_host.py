"""The CUDA kernels, run on the CPU thread by thread (tests/cuda_host.py), equal the plain path.

CI has no GPU, so without this the CUDA source is only compiled (to PTX), never run. Here the
same source, compiled for the host, runs under tinyalex's own GPU wrappers (kernels/cuda.py,
kernels/cublas.py, augment/device.py) with NumPy standing in for CuPy: the layers' fast paths
take the CUDA kernels, and each layer is held to its plain path as test_kernels.py holds the
numba kernels, in float64 to 1e-10, with a float64 gradient check through all of them.

Each case runs twice: with the wrappers' own launch sizes (one pass, 32-bit indices), and with
blocks of 32 threads, at most 2 blocks and the 64-bit index type, so every grid-stride loop
goes round more than once and the ``long long`` instantiations run too.
"""

import functools
import re

import numpy as np
import pytest
from cuda_host import clear_caches, compiler_reason, host_cupy
from test_kernels import (
    CONV_CASES,
    LRN_CASES,
    POOL_CASES,
    close,
    every_fast_path,
    same_both_ways,
)

from tinyalex import kernels
from tinyalex.augment import device
from tinyalex.gradcheck import gradcheck_report
from tinyalex.kernels import cublas, cuda
from tinyalex.layers import LRN, Conv2D, Linear, MaxPool2D, ReLU, Sequential, im2col, loss
from tinyalex.layers.loss import SoftmaxCrossEntropy

pytestmark = pytest.mark.skipif(compiler_reason() is not None, reason=str(compiler_reason()))


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cuda_host")


@pytest.fixture
def host(monkeypatch, cache):
    """The GPU wrappers on NumPy arrays with the kernels compiled for the host; afterwards
    the host-compiled functions are forgotten (a real GPU test later compiles its own)."""
    yield host_cupy(monkeypatch, cache)
    clear_caches()


@pytest.fixture(params=["one pass", "grid-stride, 64-bit index", "Winograd"])
def gpu(request, monkeypatch, host):
    """NumPy arrays take the CUDA kernels (compiled for the host) in every layer; with
    "Winograd", the 3x3 stride-1 convolutions take F(2x2, 3x3) (kernels/winograd.py)."""
    monkeypatch.setattr(cuda, "WINOGRAD", request.param == "Winograd")
    if request.param == "grid-stride, 64-bit index":
        for module in (cuda, device):
            monkeypatch.setattr(module, "BLOCK", 32)
            monkeypatch.setattr(module, "INT_LIMIT", 64)
        monkeypatch.setattr(cuda, "MAX_BLOCKS", 2)

    def for_array(x, fast=None):
        return None if fast is False or x.dtype not in (np.float32, np.float64) else cuda

    monkeypatch.setattr(kernels, "for_array", for_array)
    monkeypatch.setattr(loss, "is_cupy_array", lambda a: True)
    kernels.clear_workspaces()
    cublas.FALLBACKS.clear()
    yield host
    assert not cublas.FALLBACKS, cublas.FALLBACKS  # every product went through plan()
    kernels.clear_workspaces()


def launched(fake, kernel, dtype="double"):
    """(blocks, threads) of every launch of one kernel so far, either index type."""
    names = {f"{kernel}<{dtype}, int>", f"{kernel}<{dtype}, long long>"}
    return [
        launch
        for module in fake.modules
        for name, fn in module._functions.items()
        if name in names
        for launch in fn.launches
    ]


@pytest.mark.parametrize("keep_cols", [True, False], ids=["keep-cols", "recompute-cols"])
@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_conv_on_cuda_kernels_equals_plain(gpu, rng, c, o, k, s, p, g, h, w, keep_cols):
    """im2col, the batched GEMMs as cuBLAS computes them, bias_to_nchw, nchw_to_rows and
    col2im (dcols written over the spent patch matrix), through Conv2D's fast path."""
    layer = Conv2D(c, o, k, s, p, groups=g, dtype=np.float64, rng=rng)
    layer.keep_cols = keep_cols
    x = rng.standard_normal((2, c, h, w))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    for _ in range(2):  # the second step reuses the kept buffer or the shared workspace
        same_both_ways(layer, x, dy)
    if cuda.winograd_applies(k, s, p):  # dx by F(2x2, 3x3), and y too when cols is not kept
        assert len(launched(gpu, "winograd_output")) == 2 * (1 + (not keep_cols))
        assert not launched(gpu, "col2im")
    else:
        assert len(launched(gpu, "col2im")) == 2 and not launched(gpu, "winograd_output")


def test_grid_stride_mode_loops_and_takes_64_bit_indices(monkeypatch, host, rng):
    """The second launch mode does what the module doc says it does."""
    monkeypatch.setattr(cuda, "BLOCK", 32)
    monkeypatch.setattr(cuda, "INT_LIMIT", 64)
    monkeypatch.setattr(cuda, "MAX_BLOCKS", 2)
    x = rng.standard_normal((2, 3, 10, 10))
    y = cuda.relu_forward(x)
    close(y, np.maximum(x, 0), 0)
    assert launched(host, "relu_forward") == [(2, 32)]
    assert list(host.modules[0]._functions) == ["relu_forward<double, long long>"]  # 600 > 2 * 32


@pytest.mark.parametrize("z,s,p,h,w", POOL_CASES)
def test_maxpool_on_cuda_kernels_equals_plain(gpu, rng, z, s, p, h, w):
    layer = MaxPool2D(z, s, p)
    x = rng.standard_normal((2, 3, h, w))
    x[0, 0] = np.round(x[0, 0])  # ties: the first maximum takes the gradient on both paths
    x[1, 1] = 1.0
    same_both_ways(layer, x, rng.standard_normal(layer.output_shape(x.shape)), tol=1e-12)


@pytest.mark.parametrize("size,alpha,beta,k,c,divided", LRN_CASES)
def test_lrn_on_cuda_kernels_equals_plain(gpu, rng, size, alpha, beta, k, c, divided):
    layer = LRN(size, alpha, beta, k, alpha_divided_by_size=divided)
    x = rng.standard_normal((2, c, 3, 5)) * 2
    same_both_ways(layer, x, rng.standard_normal(x.shape))


def test_relu_and_linear_on_cuda_kernels_equal_plain(gpu, rng):
    x = rng.standard_normal((3, 4, 5, 6))
    x[0, 0, 0, :3] = [0.0, -0.0, np.nan]
    fy, _, _ = same_both_ways(ReLU(), x, rng.standard_normal(x.shape), tol=0)
    assert np.isnan(fy[0, 0, 0, 2])  # NaN passes through, as np.maximum
    layer = Linear(40, 33, dtype=np.float64, rng=rng)
    same_both_ways(layer, rng.standard_normal((7, 40)), rng.standard_normal((7, 33)))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_float32_and_float64_instantiations(gpu, rng, dtype, tol):
    model = Sequential(
        Conv2D(4, 6, 3, 1, 1, groups=2, dtype=dtype, rng=rng), LRN(), MaxPool2D(3, 2), ReLU()
    )
    x = (rng.standard_normal((2, 4, 9, 9)) * 3).astype(dtype)
    y = model.forward(x)
    assert y.dtype == dtype
    for layer in model.layers:
        layer.fast = False
    close(y, model.forward(x), tol)


def test_gradcheck_through_every_cuda_kernel(gpu, rng):
    """Float64 central differences through conv (groups 2, stride 1 and 2), ReLU, LRN with
    alpha near 1, and an overlapping, padded max-pool, every one on its CUDA kernel."""
    report = gradcheck_report(every_fast_path(rng), rng.standard_normal((2, 4, 8, 7)))
    assert max(report.values()) < 1e-6, report
    assert launched(gpu, "lrn_backward")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_xent_on_cuda_kernels_equals_plain(monkeypatch, gpu, rng, dtype):
    logits = (rng.standard_normal((9, 10)) * 20).astype(dtype)  # large: the max matters
    labels = rng.integers(0, 10, 9)
    fast = SoftmaxCrossEntropy()
    loss_value, dz = fast(logits, labels), fast.backward()
    monkeypatch.setattr(loss, "is_cupy_array", lambda a: False)  # the plain loss
    plain = SoftmaxCrossEntropy()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    close(loss_value, plain(logits, labels), tol)
    close(dz, plain.backward(), tol)
    assert dz.dtype == dtype


def test_softmax_xent_kernel_marks_a_bad_label_with_nan(gpu, rng):
    logits = rng.standard_normal((3, 4))
    rows_loss, _ = cuda.softmax_xent(logits, np.array([0, 4, 1]))
    assert np.isnan(rows_loss)
    assert np.isfinite(cuda.softmax_xent(logits, np.array([0, 3, 1]))[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_kernel_equals_plain_update(gpu, rng, dtype):
    """v <- m v - wd lr w - lr g; w <- w + v, in place; equal to the plain order up to the
    fused multiply-adds the GPU compiler may form (one rounding each)."""
    w, v, g = (rng.standard_normal(1000).astype(dtype) for _ in range(3))
    want_v = dtype(0.9) * v - dtype(5e-6) * w - dtype(0.01) * g
    want_w = w + want_v
    cuda.sgd_update(w, v, g, 0.9, 5e-6, 0.01)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    close(v, want_v, tol)
    close(w, want_w, tol)


@pytest.mark.parametrize("mean", [None, "channel", "pixel"])
@pytest.mark.parametrize("std,shift", [(False, False), (True, True)])
def test_crop_kernel_equals_numpy_twin_bit_for_bit(gpu, rng, mean, std, shift):
    """augment/device.py's fused crop/flip/mean/PCA pass, random views and the ten crops."""
    images = rng.integers(0, 256, (5, 3, 12, 11), dtype=np.uint8)
    mean = {
        None: None,
        "channel": rng.uniform(50, 200, 3).astype(np.float32),
        "pixel": rng.uniform(50, 200, (3, 12, 11)).astype(np.float32),
    }[mean]
    std = rng.uniform(20, 80, 3).astype(np.float32) if std else None
    crop = device.FusedCrop(8, device.RandomCrop(8), mean=mean, std=std)
    src = np.array([4, 0, 0, 2, 3, 1, 4])
    views = device.Views(
        src,
        rng.integers(0, 12 - 8 + 1, len(src)),
        rng.integers(0, 11 - 8 + 1, len(src)),
        rng.random(len(src)) < 0.5,
        rng.standard_normal((len(src), 3)).astype(np.float32) * 10 if shift else None,
    )
    for v in (views, crop.ten_crop(np.array([1, 3]), 12, 11)):
        got = device._crop_views_cuda(images, v, 8, mean, std)
        want = device.crop_views_reference(images, v, 8, mean, std)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ the harness can fail
def test_a_wrong_index_in_a_kernel_is_caught(monkeypatch, host, rng):
    """im2col reading one row too low gives other numbers than the plain path."""
    wrong = cuda.SOURCE.replace("const int r = s * p + i - pad;", "const int r = s * p + i;")
    assert wrong != cuda.SOURCE
    monkeypatch.setattr(cuda, "SOURCE", wrong)
    x = rng.standard_normal((1, 2, 5, 5))
    with pytest.raises(AssertionError):
        close(cuda.im2col(x, 3, 1, 1, 5, 5), im2col(x, 3, 1, 1, fast=False))


def test_arguments_are_checked_against_the_kernel_signature(host, rng):
    """What the GPU would take silently: a scalar of the wrong width, an array of the
    wrong dtype or layout, a missing argument."""
    fn = cuda.function("relu_forward", "float64", "int", 0)
    x, y = rng.standard_normal(10), np.empty(10)
    fn((1,), (32,), (x, y, np.int32(10)))
    close(y, np.maximum(x, 0), 0)
    bad = [
        (x, y, np.int64(10)),  # long long where the kernel takes int
        (x, y, 10),  # a Python int: its width is CuPy's guess
        (x.astype(np.float32), y, np.int32(10)),
        (rng.standard_normal((10, 2))[:, 0], y, np.int32(10)),  # strided
        (x, y),
    ]
    for args in bad:
        with pytest.raises(TypeError):
            fn((1,), (32,), args)
    for grid, block in (((1,), (2048,)), ((0,), (32,)), (1, (32,))):
        with pytest.raises(ValueError):
            fn(grid, block, (x, y, np.int32(10)))


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES[:4])
def test_conv_on_an_empty_batch_on_cuda_kernels(gpu, rng, c, o, k, s, p, g, h, w):
    layer = Conv2D(c, o, k, s, p, groups=g, dtype=np.float64, rng=rng)
    x = np.zeros((0, c, h, w))
    y, dx, grads = same_both_ways(layer, x, np.zeros(layer.output_shape(x.shape)))
    assert y.shape[0] == 0 and dx.shape == x.shape
    close(grads["W"], np.zeros(layer.weight_shape), 0)


@pytest.mark.parametrize("name", ["alexnet", "cifar"])
def test_training_steps_on_cuda_kernels_equal_plain_steps(monkeypatch, gpu, rng, name):
    """Three SGD steps of AlexNet (a quarter of its widths, 67 px: conv1 11x11 stride 4,
    groups 2, every LRN and pool) and of the CIFAR net, float64, dropout off: every layer,
    the loss and the update on the CUDA kernels against the same net on the plain path."""
    from tinyalex.models import alexnet, cifar_alexnet
    from tinyalex.optim import SGD
    from tinyalex.step import train_step

    def build():
        if name == "alexnet":
            return alexnet(10, input_size=67, width=0.25, dropout=0.0, dtype=np.float64)
        return cifar_alexnet(10, dtype=np.float64)

    size = 67 if name == "alexnet" else 24
    x = rng.standard_normal((4, 3, size, size))
    y = rng.integers(0, 10, 4)
    runs = []
    for fast in (True, False):
        model = build()
        for layer in model.layers:
            layer.fast = fast
        opt = SGD(model, lr=0.01, momentum=0.9, weight_decay=5e-4)
        opt.step = functools.partial(opt.step, fast=fast)
        loss_fn = SoftmaxCrossEntropy()
        if not fast:
            monkeypatch.setattr(loss, "is_cupy_array", lambda a: False)  # the plain loss
        losses = [float(train_step(model, loss_fn, opt, x, y)[0]) for _ in range(3)]
        runs.append((losses, model.params))
    (fast_losses, fast_params), (plain_losses, plain_params) = runs
    close(fast_losses, plain_losses, 1e-10)
    for k in plain_params:
        close(fast_params[k], plain_params[k], 1e-9)
    assert launched(gpu, "softmax_xent_backward")


def test_host_module_as_its_docstring_uses_it(rng):
    """tinyalex/kernels/host.py's example, with its default cache folder."""
    from tinyalex.kernels import host

    module = host.HostModule(cuda.SOURCE, cuda.instantiations())
    relu = module.get_function("relu_forward<float, int>")
    x = rng.standard_normal(1000).astype(np.float32)
    y = np.full_like(x, np.nan)
    relu((4,), (256,), (x, y, np.int32(x.size)))
    close(y, np.maximum(x, 0), 0)
    with pytest.raises(ValueError):
        module.get_function("relu_forward<half, int>")  # not instantiated


def test_host_build_contracts_multiply_adds_as_nvrtc_does(rng):
    """fmad=True (NVRTC's default) fuses the SGD kernel's multiply-adds, rounding once;
    fmad=False gives NumPy's two roundings exactly."""
    from tinyalex.kernels import host

    if not host._host_fma():
        pytest.skip("this CPU has no FMA instruction")
    m, wdlr, lr = np.float32(0.9), np.float32(5e-6), np.float32(0.01)
    w0, v0, g = (rng.standard_normal(4096, np.float32) for _ in range(3))
    want = w0 + ((m * v0 - wdlr * w0) - lr * g)
    got = {}
    for fmad in (True, False):
        module = host.HostModule(cuda.SOURCE, cuda.instantiations(), fmad=fmad)
        w, v = w0.copy(), v0.copy()
        module.get_function("sgd_update<float, int>")(
            (4,), (256,), (g, v, w, np.int32(w.size), m, wdlr, lr)
        )
        got[fmad] = w
    np.testing.assert_array_equal(got[False], want)
    assert not np.array_equal(got[True], want)
    close(got[True], want, 1e-6)


def test_winograd_kernels_equal_the_numpy_twin(host, rng):
    """winograd_input gives the twin's V; the whole layer its y (groups 2, a half tile)."""
    from tinyalex.kernels import winograd

    x = rng.standard_normal((2, 4, 7, 6))
    Wg, b = rng.standard_normal((2, 3, 18)), rng.standard_normal(6)
    th, tw = winograd.tiles(7, 6)
    v = np.full((16, 4, 2 * th * tw), np.nan)
    args = tuple(np.int32(a) for a in (2, 4, 7, 6, 1, th, tw))
    cuda.function("winograd_input", "float64", "int", 0)(
        (1,), (256,), (x, v, np.int32(v[0].size), *args)
    )
    close(v, winograd.input_transform(x, 1, 7, 6), 1e-14)
    close(cuda.conv_winograd(x, Wg, b, 1), winograd.conv(x, Wg, b, 1), 1e-12)


def _asan_env():
    """The environment of a process with AddressSanitizer preloaded, or skip."""
    import os
    import subprocess

    from tinyalex.kernels import host

    lib = subprocess.run(
        ["g++", "-print-file-name=libasan.so"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(lib) or not os.path.exists(lib):
        pytest.skip("AddressSanitizer's runtime (libasan) is not installed")
    env = dict(os.environ, LD_PRELOAD=lib, ASAN_OPTIONS="detect_leaks=0")
    env[host.SANITIZE_ENV] = "1"
    return env


def test_address_sanitizer_catches_a_read_past_the_end(tmp_path):
    """Under AddressSanitizer (kernels/host.py SANITIZE_ENV), a kernel that reads one element
    past its input stops the process; the shipped kernel does not."""
    import subprocess
    import sys

    script = """
import sys, numpy as np
from tinyalex.kernels import cuda, host
src = cuda.SOURCE
if sys.argv[1] == "wrong":
    src = src.replace("const T v = x[idx];", "const T v = x[idx + 1];")
    assert src != cuda.SOURCE
fn = host.HostModule(src, cuda.instantiations(), sys.argv[2]).get_function(
    "relu_forward<double, int>")
x, y = np.ones(1000), np.empty(1000)
fn((4,), (256,), (x, y, np.int32(1000)))
print("ran")
"""
    env = _asan_env()
    for which, ok in (("shipped", True), ("wrong", False)):
        proc = subprocess.run(
            [sys.executable, "-c", script, which, str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if ok:
            assert proc.returncode == 0 and "ran" in proc.stdout, proc.stderr[-2000:]
        else:
            assert proc.returncode != 0 and "heap-buffer-overflow" in proc.stderr, proc.stderr


def test_every_cuda_kernel_stays_inside_its_arrays():
    """This file's host-run cases (one-pass launches, and Winograd's) again, every kernel
    built with AddressSanitizer: no read or write outside the arrays it is given."""
    import subprocess
    import sys
    from pathlib import Path

    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    argv += [str(Path(__file__)), "-k", "(one or winograd) and not sanitizer and not stays"]
    proc = subprocess.run(argv, env=_asan_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "AddressSanitizer" not in proc.stderr
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    assert passed >= 100, proc.stdout[-2000:]  # the conv, pool, LRN, crop, loss, ... cases
