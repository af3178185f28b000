"""Every fast path (numba on NumPy arrays, CUDA on CuPy arrays) equals the plain path.

The plain path, the vectorised NumPy/CuPy code in tinyalex/layers, is held to the naive
loops of tinyalex/reference.py in test_layers.py; here each kernel is compared with it
on awkward settings, in float64 to 1e-10 and in float32 to float32 rounding. The CuPy
cases run wherever a GPU works (the ``xp`` fixture skips them elsewhere).
"""

import shutil
import subprocess

import numpy as np
import pytest

from tinyalex import kernels
from tinyalex import reference as ref
from tinyalex.backend import to_numpy
from tinyalex.gradcheck import gradcheck_report
from tinyalex.kernels import cuda
from tinyalex.layers import (
    LRN,
    Conv2D,
    Dropout,
    Flatten,
    Linear,
    MaxPool2D,
    ReLU,
    Sequential,
    Tanh,
    col2im,
    im2col,
)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=tol, atol=tol)


def backend_of(xp):
    return "numpy" if xp is np else "cupy"


def run(layer, x, dy, fast):
    """(y, dx, grads) of one forward/backward with the fast or the plain path."""
    layer.fast = fast
    y = layer.forward(x)
    dx = layer.backward(dy)
    return y, dx, {k: g.copy() for k, g in layer.grads.items()}


def same_both_ways(layer, x, dy, tol=1e-10):
    fy, fdx, fg = run(layer, x, dy, True)
    py, pdx, pg = run(layer, x, dy, False)
    close(fy, py, tol)
    close(fdx, pdx, tol)
    for k in pg:
        close(fg[k], pg[k], tol)
    return fy, fdx, fg


CONV_CASES = [
    # (C, O, k, stride, padding, groups, H, W)
    (3, 4, 3, 1, 0, 1, 5, 5),
    (4, 6, 3, 2, 1, 2, 7, 6),  # groups 2, stride != kernel, padding, odd/even sizes
    (6, 3, 2, 3, 2, 3, 8, 9),  # groups 3, stride > kernel, padding > kernel / 2
    (2, 4, 5, 1, 2, 2, 6, 5),  # conv2's shape: 5x5, pad 2, groups 2
    (3, 2, 11, 4, 0, 1, 19, 23),  # conv1's: 11x11, stride 4
    (2, 2, 3, 2, 3, 1, 4, 4),  # padding wider than the kernel reach: all-zero rows
    (3, 6, 3, 1, 2, 3, 5, 7),  # stride 1, pad k-1 (a "full" conv), groups 3
    (5, 3, 3, 1, 1, 1, 6, 5),  # stride 1, fewer outputs than inputs: dx in one chunk
    (2, 3, 2, 1, 2, 1, 4, 5),  # stride 1, pad > k-1: dx by col2im even where the default is conv
]


# The CPU's two layouts of the patch matrix (kernels/cpu.py CHANNELS_LAST). The GPU has one.
CPU_LAYOUTS = {"im2col": False, "channels-last": True}


@pytest.fixture(params=list(CPU_LAYOUTS))
def layout(request, monkeypatch):
    if "xp" in request.fixturenames and request.getfixturevalue("xp") is not np:
        if request.param != "im2col":
            pytest.skip("the GPU has one patch-matrix layout")
        return request.param
    if kernels.numba_available():
        monkeypatch.setattr(kernels.numba_kernels(), "CHANNELS_LAST", CPU_LAYOUTS[request.param])
    return request.param


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_im2col_col2im_fast_equal_plain(xp, rng, c, o, k, s, p, g, h, w):
    x = xp.asarray(rng.standard_normal((2, c, h, w)))
    cols = im2col(x, k, s, p, fast=True)
    close(cols, im2col(x, k, s, p, fast=False), 0)  # a copy: exactly equal
    d = xp.asarray(rng.standard_normal(cols.shape))
    close(col2im(d, x.shape, k, s, p, fast=True), col2im(d, x.shape, k, s, p, fast=False))
    # the workspace: a buffer of the right shape is filled in place, a wrong one replaced
    buf = xp.full(cols.shape, 7.0)
    assert im2col(x, k, s, p, fast=True, out=buf) is buf
    close(buf, cols, 0)
    other = im2col(x, k, s, p, fast=True, out=xp.zeros((1,)))
    close(other, cols, 0)


@pytest.mark.parametrize("keep_cols", [True, False], ids=["keep-cols", "recompute-cols"])
@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_conv_fast_equals_plain_and_reference(xp, layout, rng, c, o, k, s, p, g, h, w, keep_cols):
    layer = Conv2D(c, o, k, stride=s, padding=p, groups=g, dtype=np.float64, rng=rng)
    layer.keep_cols = keep_cols
    layer.params["b"] = rng.standard_normal(o)
    layer.to(backend_of(xp))
    x = rng.standard_normal((3, c, h, w))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    y, dx, grads = same_both_ways(layer, xp.asarray(x), xp.asarray(dy))
    W, b = to_numpy(layer.params["W"]), to_numpy(layer.params["b"])
    close(y, ref.conv_forward(x, W, b, s, p, g))
    rdx, rdW, rdb = ref.conv_backward(dy, x, W, s, p, g)
    close(dx, rdx)
    close(grads["W"], rdW)
    close(grads["b"], rdb)


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_conv_on_an_empty_batch(xp, layout, rng, c, o, k, s, p, g, h, w):
    """A batch of no images: the fast path gives what the plain path gives (empty outputs,
    zero gradients), in each layout."""
    layer = Conv2D(c, o, k, stride=s, padding=p, groups=g, dtype=np.float64, rng=rng)
    layer.to(backend_of(xp))
    x = xp.zeros((0, c, h, w))
    dy = xp.zeros(layer.output_shape(x.shape))
    y, dx, grads = same_both_ways(layer, x, dy)
    assert y.shape == dy.shape and dx.shape == x.shape
    close(grads["W"], np.zeros(layer.weight_shape), 0)


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", [case for case in CONV_CASES if case[3] == 1])
def test_conv_dx_by_convolution_equals_col2im(layout, rng, c, o, k, s, p, g, h, w):
    """Stride 1 on the CPU: dx as a convolution of dy (the default) and by W^T dy + col2im."""
    layer = Conv2D(c, o, k, stride=s, padding=p, groups=g, dtype=np.float64, rng=rng)
    x = rng.standard_normal((3, c, h, w))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    dxs = []
    for flag in (True, False):
        layer.dx_by_convolution = flag
        dxs.append(run(layer, x, dy, True)[1])
    close(dxs[0], dxs[1])
    rdx = ref.conv_backward(dy, x, layer.params["W"], s, p, g)[0]
    close(dxs[0], rdx)
    if p <= k - 1:  # the convolution itself, also where conv_dx takes col2im (O > C)
        Wg = layer.params["W"].reshape(g, o // g, -1)
        close(kernels.numba_kernels().conv_dx_by_convolution(dy, Wg, x.shape, k, p), rdx)


@pytest.mark.parametrize("c,o,k,s,p,g,h,w", CONV_CASES)
def test_each_conv_backward_step_fast_equals_plain(
    monkeypatch, xp, layout, rng, c, o, k, s, p, g, h, w
):
    """Conv2D's fast steps one by one, in each of the CPU's layouts: each kernel function
    against the plain expression the layer writes beside it (GEMMs split even at these
    sizes)."""
    monkeypatch.setattr(kernels.gemm_kernels(), "MIN_FLOPS", 0)
    n = 3
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    x = xp.asarray(rng.standard_normal((n, c, h, w)))
    dy = xp.asarray(rng.standard_normal((n, o, oh, ow)))
    Wg = xp.asarray(rng.standard_normal((g, o // g, c // g * k * k)))
    b = xp.asarray(rng.standard_normal(o))
    kern = kernels.for_array(x)
    assert kern is not None
    cols = im2col(x, k, s, p, fast=False).reshape(g, c // g * k * k, n * oh * ow)
    # the patch matrix: im2col's numbers, in the layout the kernels pick
    patches = kern.conv_patches(x, k, s, p, g, oh, ow)
    if layout == "channels-last":  # (N, OH, OW, G, k, k, C/G)
        assert patches.shape == (n, oh, ow, g, k, k, c // g)
        close(patches.transpose(3, 6, 4, 5, 0, 1, 2).reshape(cols.shape), cols, 0)
    else:
        close(patches, cols, 0)
    buf = xp.full(patches.size, 7.0)  # a buffer of the right size is written in place
    again = kern.conv_patches(x, k, s, p, g, oh, ow, out=buf)
    assert again.shape == patches.shape and xp.shares_memory(again, buf)
    close(again, patches, 0)
    close(kern.conv_patches(x, k, s, p, g, oh, ow, out=buf[1:]), patches, 0)  # a wrong one not
    # forward: y_g = W_g . cols_g + b, as NCHW
    y = (Wg @ cols).reshape(o, n, oh, ow).transpose(1, 0, 2, 3) + b.reshape(1, o, 1, 1)
    close(kern.conv_y(Wg, b, patches, oh, ow), y, 1e-12)
    # (1) db = sum of dy, and dy as rows
    rows, db = kern.nchw_to_rows(dy)
    close(rows, dy.transpose(1, 0, 2, 3).reshape(o, -1), 0)
    close(db, dy.sum(axis=(0, 2, 3)), 1e-12)
    dyg = rows.reshape(g, o // g, -1)
    # (2) dW_g = dy_g . cols_g^T
    close(kern.conv_dW(dyg, patches), dyg @ cols.transpose(0, 2, 1), 1e-12)
    # (3) + (4) dx = col2im(W_g^T . dy_g), by both of the CPU's variants
    dcols = (Wg.transpose(0, 2, 1) @ dyg).reshape(c, k, k, n, oh, ow)
    plain_dx = col2im(dcols, x.shape, k, s, p, fast=False)
    for by_convolution in (True, False):
        buffers = {}
        dx = kern.conv_dx(
            dy, dyg, Wg, x.shape, k, s, p, by_convolution=by_convolution, buffers=buffers
        )
        assert dx.shape == x.shape
        close(dx, plain_dx, 1e-12)
        took_convolution = xp is np and by_convolution and s == 1 and p <= k - 1 and o <= c
        assert ("dy_cols" in buffers) == took_convolution
        # the forward's spent patch matrix, holding stale numbers, may be written over
        spent = xp.full(patches.shape, xp.nan)
        buffers = {}
        dx = kern.conv_dx(
            dy,
            dyg,
            Wg,
            x.shape,
            k,
            s,
            p,
            by_convolution=by_convolution,
            buffers=buffers,
            spent=spent,
        )
        close(dx, plain_dx, 1e-12)
        assert not buffers or took_convolution
        if "dy_cols" not in buffers:  # dcols, or dy's patch matrix, went over it
            assert not xp.isnan(spent).all()


def test_for_array_picks_the_kernel_module(monkeypatch, xp, rng):
    """kernels.for_array: cpu (numba) for NumPy, cuda for CuPy, None for the plain path."""
    from tinyalex.kernels import cpu

    x = xp.asarray(rng.standard_normal((2, 3)))
    expected = cpu if xp is np else cuda
    if xp is np and not kernels.numba_available():
        expected = None
    assert kernels.for_array(x) is expected
    assert kernels.for_array(x.astype(np.float32)) is expected
    assert kernels.for_array(x, fast=False) is None
    assert kernels.for_array(x.astype(np.float16)) is None  # kernels take float32/64 only
    assert kernels.for_array(x.astype(np.int64)) is None
    with pytest.raises(RuntimeError, match="fast=True"):
        kernels.for_array(x.astype(np.int32), fast=True)
    monkeypatch.setenv("TINYALEX_KERNELS", "0")
    assert kernels.for_array(x) is None
    assert kernels.for_array(x, fast=True) is expected  # an explicit True still insists
    # every layer with a fast path asks for_array, so the switch reaches them all: the module
    # each cached for its backward is None (the plain path)
    for layer, where in (
        (Conv2D(3, 2, 3, dtype=np.float64), -1),
        (LRN(), 0),
        (MaxPool2D(), -1),
        (ReLU(), -1),
    ):
        layer.to(backend_of(xp)).forward(xp.asarray(rng.standard_normal((1, 3, 5, 5))))
        assert layer._cache[where] is None


def test_conv_kept_buffers(xp, rng):
    """Conv2D.kept_buffers(): the fast path's im2col buffers, reused step after step."""
    layer = Conv2D(3, 6, 3, padding=1, dtype=np.float64, rng=rng).to(backend_of(xp))
    assert layer.kept_buffers() == []
    x = xp.asarray(rng.standard_normal((2, 3, 5, 5)))
    layer.forward(x)
    layer.backward(xp.ones((2, 6, 5, 5)))
    kept = layer.kept_buffers()
    # forward's cols only: the dx (dcols + col2im, as O > C) was written over it once dW
    # was taken
    assert len(kept) == 1
    # channels last on the CPU, (N, OH, OW, G, k, k, C/G); (G, C/G*k*k, N*OH*OW) on the GPU
    assert kept[0].shape == ((2, 5, 5, 1, 3, 3, 3) if xp is np else (1, 27, 50))
    layer.forward(x)
    layer.backward(xp.ones((2, 6, 5, 5)))
    again = layer.kept_buffers()  # the same memory written again, not new arrays
    assert len(again) == len(kept)
    assert all(xp.shares_memory(a, b) for a, b in zip(again, kept, strict=True))
    layer.fast = False
    layer.forward(x)
    assert layer.kept_buffers() == []  # cols freed


@pytest.mark.skipif(not kernels.numba_available(), reason="the CPU kernels need numba")
@pytest.mark.parametrize("c,g", [(3, 1), (16, 1), (32, 2)])
def test_cpu_patch_matrix_is_channels_last_by_default(monkeypatch, rng, c, g):
    """On the CPU a conv keeps its patch matrix channels last, (N, OH, OW, G, k, k, C/G);
    with CHANNELS_LAST off, in im2col's layout (G, C/G*k*k, N*OH*OW). dx is right both ways."""
    cpu = kernels.numba_kernels()
    assert cpu.CHANNELS_LAST is True
    x = rng.standard_normal((2, c, 4, 5))
    dy = rng.standard_normal((2, 2 * g, 4, 5))
    for on, shape in ((True, (2, 4, 5, g, 3, 3, c // g)), (False, (g, c // g * 9, 2 * 4 * 5))):
        monkeypatch.setattr(cpu, "CHANNELS_LAST", on)
        layer = Conv2D(c, 2 * g, 3, padding=1, groups=g, dtype=np.float64, rng=rng)
        layer.forward(x)
        (kept,) = layer.kept_buffers()
        assert kept.shape == shape
        close(layer.backward(dy), ref.conv_backward(dy, x, layer.params["W"], 1, 1, g)[0])


def test_reuse_takes_only_a_buffer_that_fits(xp):
    """kernels.reuse: a contiguous array of the same size and dtype comes back as a view of
    the asked shape; any other buffer gives None (the caller allocates)."""
    buf = xp.zeros(24)
    view = kernels.reuse(buf, (2, 3, 4), buf.dtype, xp)
    assert view.shape == (2, 3, 4) and xp.shares_memory(view, buf)
    assert kernels.reuse(buf, (5, 5), buf.dtype, xp) is None  # another size
    assert kernels.reuse(buf, (24,), np.float32, xp) is None  # another dtype
    assert kernels.reuse(buf[::2], (12,), buf.dtype, xp) is None  # not contiguous
    assert kernels.reuse(None, (24,), buf.dtype, xp) is None
    if xp is not np:
        assert kernels.reuse(np.zeros(24), (24,), np.float64, xp) is None  # host memory


def conv_pair(xp, keep_cols):
    """Two convs of different sizes (the second's patch matrix the larger), float64."""
    layers = [
        Conv2D(3, 4, 3, padding=1, dtype=np.float64, rng=1),
        Conv2D(4, 6, 5, padding=2, groups=2, dtype=np.float64, rng=2),
    ]
    for layer in layers:
        layer.keep_cols = keep_cols
        layer.to(backend_of(xp))
    return layers


def test_convs_that_do_not_keep_cols_share_one_workspace(xp, rng):
    """keep_cols=False: no layer keeps a patch matrix; one shared workspace holds the
    largest. Interleaved as in a network (forward a, b; backward b, a), with another
    layer's pass between forward and backward overwriting the workspace, and a new batch
    size each step, every output and gradient equals keeping them."""
    kernels.clear_workspaces()
    shared, kept = conv_pair(xp, False), conv_pair(xp, True)
    other = conv_pair(xp, False)[0]
    for step in range(2):
        x = xp.asarray(rng.standard_normal((2 + step, 3, 6, 5)))
        dy = xp.asarray(rng.standard_normal((2 + step, 6, 6, 5)))
        results = []
        for a, b in (shared, kept):
            y = b.forward(a.forward(x))
            other.forward(x[:1] * 3, train=False)  # the workspace now holds other data
            dx = a.backward(b.backward(dy))
            results.append([y, dx, a.grads["W"], b.grads["W"], b.grads["b"]])
        # the same patch matrices and products: exactly equal on the CPU (cuBLAS may pick
        # another algorithm for another output address)
        for got, want in zip(*results, strict=True):
            close(got, want, 0 if xp is np else 1e-12)
        assert shared[0].kept_buffers() == [] and shared[1].kept_buffers() == []
        largest = 4 * 5 * 5 * (2 + step) * 6 * 5  # b's cols: (C, k, k, N, OH, OW) float64
        assert kernels.workspace_bytes(x) == 8 * largest
    kernels.clear_workspaces()
    assert kernels.workspace_bytes(x) == 0


def test_conv_keeps_cols_by_the_backends_choice(xp, rng):
    """keep_cols=None takes the backend's KEEP_COLS: kept on the CPU (no second im2col),
    left in the shared workspace on the GPU (memory)."""
    layer = Conv2D(3, 4, 3, padding=1, dtype=np.float64, rng=rng).to(backend_of(xp))
    x = xp.asarray(rng.standard_normal((2, 3, 5, 5)))
    kern = kernels.for_array(x)
    assert kern.KEEP_COLS is (xp is np)
    kernels.clear_workspaces()
    layer.forward(x)
    layer.backward(xp.ones((2, 4, 5, 5)))
    assert bool(layer.kept_buffers()) is kern.KEEP_COLS
    assert (kernels.workspace_bytes(x) > 0) is (not kern.KEEP_COLS)
    layer.fast = False  # the plain path keeps cols in its cache whatever the setting
    layer.keep_cols = False
    assert layer.keeps_cols(None)


def test_conv_workspace_reuse_keeps_each_step_right(xp, rng):
    """The fast path reuses its im2col buffer: eval passes and new batches must not leak."""
    layer = Conv2D(3, 4, 3, padding=1, dtype=np.float64, rng=rng).to(backend_of(xp))
    plain = Conv2D(3, 4, 3, padding=1, dtype=np.float64, rng=0).to(backend_of(xp))
    plain.params = {k: v.copy() for k, v in layer.params.items()}
    plain.fast = False
    for step in range(3):
        x = xp.asarray(rng.standard_normal((2, 3, 6, 6)))
        dy = xp.asarray(rng.standard_normal((2, 4, 6, 6)))
        layer.forward(x)
        if step == 1:
            layer.forward(xp.asarray(rng.standard_normal((5, 3, 6, 6))), train=False)
            layer.forward(x)
        dx = layer.backward(dy)
        plain.forward(x)
        close(dx, plain.backward(dy))
        close(layer.grads["W"], plain.grads["W"])


POOL_CASES = [
    # (z, s, pad, H, W)
    (3, 2, 0, 7, 7),  # the paper's overlapping pooling, odd size
    (3, 2, 0, 8, 6),  # even sizes: the last row/column is never covered
    (3, 2, 1, 12, 11),  # cifar_alexnet's padded 3/2
    (2, 2, 0, 6, 5),  # the non-overlapping ablation
    (3, 1, 1, 5, 4),  # stride 1: each pixel in up to nine windows
    (2, 3, 0, 8, 8),  # stride > window: gaps
]


@pytest.mark.parametrize("z,s,p,h,w", POOL_CASES)
def test_maxpool_fast_equals_plain_and_reference(xp, rng, z, s, p, h, w):
    layer = MaxPool2D(z, s, p)
    x = rng.standard_normal((2, 3, h, w))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    y, dx, _ = same_both_ways(layer, xp.asarray(x), xp.asarray(dy), tol=1e-12)
    if p == 0:
        close(y, ref.maxpool_forward(x, z, s)[0])
        close(dx, ref.maxpool_backward(dy, x, z, s))


@pytest.mark.parametrize("z,s,p", [(3, 2, 0), (3, 2, 1), (2, 2, 0), (3, 1, 1)])
def test_maxpool_ties_go_to_the_first_maximum_on_both_paths(xp, rng, z, s, p):
    x = xp.asarray(np.round(rng.standard_normal((2, 2, 9, 8))))  # many equal values
    x[0, 0] = 1.0  # a whole plane of ties
    dy = xp.asarray(rng.standard_normal(MaxPool2D(z, s, p).output_shape(x.shape)))
    same_both_ways(MaxPool2D(z, s, p), x, dy, tol=1e-12)
    if p == 0:
        close(MaxPool2D(z, s, p).forward(x), ref.maxpool_forward(to_numpy(x), z, s)[0])


LRN_CASES = [
    # (size, alpha, beta, k, C, divided)
    (5, 1e-4, 0.75, 2.0, 7, False),  # the paper's
    (5, 0.9, 0.75, 1.0, 4, False),  # alpha near 1: a wrong window shows
    (7, 1.0, 0.6, 1.5, 3, False),  # window wider than the channels, beta != 0.75
    (4, 0.5, 0.75, 2.0, 6, False),  # even size: the window is lopsided
    (9, 0.9, 0.75, 1.0, 12, True),  # cifar_alexnet's size, PyTorch's alpha convention
    (1, 0.8, 0.5, 0.5, 3, False),  # a window of one channel
]


@pytest.mark.parametrize("size,alpha,beta,k,c,divided", LRN_CASES)
def test_lrn_fast_equals_plain_and_reference(xp, rng, size, alpha, beta, k, c, divided):
    layer = LRN(size, alpha, beta, k, alpha_divided_by_size=divided)
    x = rng.standard_normal((2, c, 3, 5)) * 2
    dy = rng.standard_normal(x.shape)
    y, dx, _ = same_both_ways(layer, xp.asarray(x), xp.asarray(dy))
    a = layer.effective_alpha
    close(y, ref.lrn_forward(x, size, a, beta, k))
    close(dx, ref.lrn_backward(dy, x, size, a, beta, k))


def test_lrn_training_memory_per_backend(xp, rng):
    """What a training forward of LRN holds for backward besides x: scale, plus scale**-beta
    on the CPU (kept: faster there). On the GPU that power is taken again in backward, so
    the forward allocates two arrays of x's size (y and scale), not three (pool bytes).
    That backward is held to the reference in test_lrn_fast_equals_plain_and_reference."""
    layer = LRN()
    x = xp.asarray(rng.standard_normal((2, 8, 16, 16)))  # 32 KiB: a multiple of the pool's unit
    layer.forward(x)  # compiles the kernels
    if xp is np:
        assert [a.shape for a in layer._cache[2]] == [x.shape, x.shape]
        return
    pool = xp.get_default_memory_pool()
    layer._cache = None
    xp.cuda.Device().synchronize()
    before = pool.used_bytes()
    y = layer.forward(x)
    assert pool.used_bytes() - before == 2 * x.nbytes
    assert [a.shape for a in layer._cache[2]] == [x.shape]
    assert y.shape == x.shape


def test_relu_fast_equals_plain(xp, rng):
    x = rng.standard_normal((3, 4, 5, 6))
    x[0, 0, 0, :3] = [0.0, -0.0, np.nan]
    dy = rng.standard_normal(x.shape)
    fy, fdx, _ = same_both_ways(ReLU(), xp.asarray(x), xp.asarray(dy), tol=0)
    assert np.isnan(to_numpy(fy)[0, 0, 0, 2])  # NaN passes through, as np.maximum


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda rng: Conv2D(4, 6, 3, 1, 1, groups=2, rng=rng), (4, 4, 9, 9)),
        (lambda rng: LRN(5, 1e-4, 0.75, 2.0), (4, 8, 7, 7)),
        (lambda rng: MaxPool2D(3, 2), (4, 3, 9, 9)),
        (lambda rng: ReLU(), (4, 3, 9, 9)),
    ],
)
def test_float32_fast_paths_agree_with_plain(xp, rng, layer, shape):
    layer = layer(rng).to(backend_of(xp))
    x = xp.asarray(rng.standard_normal(shape, dtype=np.float32) * 3)
    y = layer.forward(x)
    assert y.dtype == np.float32
    dy = xp.asarray(rng.standard_normal(y.shape, dtype=np.float32))
    _, dx, _ = same_both_ways(layer, x, dy, tol=1e-5)
    assert dx.dtype == np.float32


def every_fast_path(rng):
    """Conv (groups 2 and 3, stride 1 and 2, dx both ways), ReLU, LRN with alpha near 1 and an
    overlapping padded max-pool, float64, each layer held to its fast path."""
    model = Sequential(
        Conv2D(4, 6, 3, padding=1, groups=2, dtype=np.float64, rng=rng),
        ReLU(),
        LRN(5, alpha=0.8, k=1.0),
        MaxPool2D(3, 2, 1),
        Conv2D(6, 6, 3, padding=1, groups=2, dtype=np.float64, rng=rng),
        Conv2D(6, 3, 3, stride=2, groups=3, dtype=np.float64, rng=rng),
    )
    for layer in model.layers:
        layer.fast = True
    return model


def test_gradcheck_through_every_fast_path(xp, layout, rng):
    """Float64 central differences through the kernels (conv groups 2, LRN alpha ~1, pool),
    in each of the CPU's patch-matrix layouts; conv's dx both by col2im (O > C, or stride 2)
    and by convolution (stride 1, O <= C)."""
    model = every_fast_path(rng).to(backend_of(xp))
    report = gradcheck_report(model, xp.asarray(rng.standard_normal((2, 4, 8, 7))))
    assert max(report.values()) < 1e-6, report


def test_use_fast_switches(monkeypatch, rng):
    x = rng.standard_normal((2, 3))
    assert kernels.use_fast(x) == kernels.numba_available()
    assert not kernels.use_fast(x, False)
    assert not kernels.use_fast(x.astype(np.float16))  # kernels take float32/64 only
    with pytest.raises(RuntimeError, match="fast=True"):
        kernels.use_fast(x.astype(np.int32), True)
    monkeypatch.setenv("TINYALEX_KERNELS", "0")
    assert not kernels.enabled() and not kernels.use_fast(x)
    pool = MaxPool2D(3, 2)
    pool.forward(rng.standard_normal((1, 1, 5, 5)))
    assert pool._cache[2] is None  # the plain path ran


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_every_cuda_kernel_compiles_to_ptx(tmp_path):
    """The CUDA source, every kernel instantiated for float/double and int/long long."""
    src = tmp_path / "tinyalex_kernels.cu"
    src.write_text(cuda.SOURCE + cuda.instantiations())
    ptx = tmp_path / "tinyalex_kernels.ptx"
    proc = subprocess.run(
        ["nvcc", "--ptx", "-arch=sm_90", *cuda.OPTIONS, "-Werror", "all-warnings", str(src)]
        + ["-o", str(ptx)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = ptx.read_text()
    assert text.count(".entry") == len(cuda.NAME_EXPRESSIONS)
    for name in cuda.KERNELS:
        assert name in text


@pytest.mark.parametrize("n,i,o", [(4, 5, 3), (7, 40, 33)])
def test_linear_split_gemms_equal_plain_and_reference(monkeypatch, xp, rng, n, i, o):
    """Linear's CPU fast path splits its three products over threads; same numbers."""
    monkeypatch.setattr(kernels.gemm_kernels(), "MIN_FLOPS", 0)  # split even these
    layer = Linear(i, o, dtype=np.float64, rng=rng)
    layer.params["b"] = rng.standard_normal(o)
    layer.to(backend_of(xp))
    x, dy = rng.standard_normal((n, i)), rng.standard_normal((n, o))
    y, dx, grads = same_both_ways(layer, xp.asarray(x), xp.asarray(dy), tol=1e-12)
    W, b = map(to_numpy, (layer.params["W"], layer.params["b"]))
    close(y, ref.linear_forward(x, W, b))
    close(dx, dy @ W.T)
    close(grads["W"], x.T @ dy)
    close(grads["b"], dy.sum(axis=0))


def _first_layer_nets(rng):
    """(model, input shape): conv first, Linear first, and parameter-free layers first."""
    f64 = {"dtype": np.float64, "rng": rng}
    return [
        (
            Sequential(Conv2D(3, 4, 3, padding=1, **f64), ReLU(), Conv2D(4, 2, 3, **f64)),
            (2, 3, 6, 6),
        ),
        (Sequential(Linear(5, 4, **f64), ReLU(), Linear(4, 3, **f64)), (3, 5)),
        (Sequential(ReLU(), MaxPool2D(2, 2), Conv2D(3, 2, 3, padding=1, **f64)), (2, 3, 6, 6)),
    ]


def test_backward_without_input_grad_fills_the_same_grads(xp, rng):
    """Sequential.backward(dy, input_grad=False): None, and every grad as the full backward."""
    for model, shape in _first_layer_nets(rng):
        model.to(backend_of(xp))
        x = xp.asarray(rng.standard_normal(shape))
        y = model.forward(x)
        dy = xp.asarray(rng.standard_normal(y.shape))
        assert model.backward(dy).shape == x.shape
        full = {k: g.copy() for k, g in model.grads.items()}
        model.zero_grads()
        model.forward(x)
        assert model.backward(dy, input_grad=False) is None
        for k, g in model.grads.items():
            close(g, full[k], 0)
    # a single layer keeps the contract: dx by default, None when asked not to compute it
    conv = Conv2D(2, 2, 3, dtype=np.float64, rng=rng).to(backend_of(xp))
    x = xp.asarray(rng.standard_normal((1, 2, 4, 4)))
    conv.forward(x)
    assert conv.backward(xp.ones((1, 2, 2, 2)), input_grad=False) is None
    assert Sequential(ReLU()).backward(xp.ones(3), input_grad=False) is None


def test_backward_steps_say_where_backward_stops(rng):
    """Sequential.backward_steps: last layer first; with input_grad=False it ends at the
    first layer with parameters, which alone is asked for no dx."""
    net = Sequential(
        ReLU(), MaxPool2D(2, 2), Conv2D(3, 2, 3, rng=rng), ReLU(), Flatten(), Linear(2, 4, rng=rng)
    )
    steps = [(name, flag) for name, _, flag in net.backward_steps()]
    assert steps == [(str(i), True) for i in range(5, -1, -1)]
    steps = [(name, flag) for name, _, flag in net.backward_steps(input_grad=False)]
    assert steps == [("5", True), ("4", True), ("3", True), ("2", False)]
    assert Sequential(ReLU(), Flatten()).backward_steps(input_grad=False) == []


def test_every_layer_takes_input_grad(xp, rng):
    """One contract: backward(dy, input_grad=False) returns None after the usual forward."""
    x = xp.asarray(rng.standard_normal((2, 3, 5, 5)))
    for layer in (
        Conv2D(3, 2, 3, dtype=np.float64, rng=rng),
        ReLU(),
        Tanh(),
        LRN(),
        MaxPool2D(3, 2),
        Dropout(0.5, rng=0),
        Flatten(),
        Sequential(ReLU(), Conv2D(3, 2, 3, dtype=np.float64, rng=rng)),
    ):
        layer.to(backend_of(xp))
        y = layer.forward(x)
        assert layer.backward(xp.ones_like(y), input_grad=False) is None
        layer.forward(x)
        assert layer.backward(xp.ones_like(y), input_grad=True).shape == x.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_fused_update_equals_plain_bit_for_bit(xp, rng, dtype):
    """optim.SGD's fused kernel does the plain path's operations in the same order."""
    from tinyalex.optim import SGD

    nets = []
    for _ in range(2):
        net = Sequential(
            Conv2D(3, 4, 3, dtype=dtype, rng=0), Linear(5, 70_000, dtype=dtype, rng=0)
        ).to(backend_of(xp))
        nets.append((net, SGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4)))
    for step in range(3):
        grads = {
            k: rng.standard_normal(p.shape).astype(dtype) for k, p in nets[0][0].params.items()
        }
        for (net, opt), fast in zip(nets, (True, False), strict=True):
            for name, layer in net.named_layers():
                layer.grads.update(
                    {
                        k[len(name) + 1 :]: xp.asarray(g)
                        for k, g in grads.items()
                        if k.startswith(name + ".")
                    }
                )
            opt.lr = 0.01 if step < 2 else 0.001
            opt.step(fast=fast)
    (fast_net, fast_opt), (plain_net, plain_opt) = nets
    tol = 0 if xp is np else 1e-6  # nvcc may fuse a multiply-add on the GPU
    for k in fast_net.params:
        close(fast_net.params[k], plain_net.params[k], tol)
        close(fast_opt.velocity[k], plain_opt.velocity[k], tol)


@pytest.mark.parametrize("g,m,k,n", [(1, 5, 37, 23), (2, 3, 8, 41), (3, 4, 50, 2)])
def test_split_gemms_equal_matmul(monkeypatch, rng, g, m, k, n):
    """conv's CPU GEMMs split over threads (kernels/gemm.py) give numpy.matmul's product."""
    gemm = kernels.gemm_kernels()
    monkeypatch.setattr(gemm, "MIN_FLOPS", 0)  # split even these tiny products
    a, b = rng.standard_normal((g, m, k)), rng.standard_normal((g, k, n))
    close(gemm.matmul_cols(a, b), a @ b, 1e-12)
    close(gemm.matmul_sum(a, b), a @ b, 1e-12)
    bt = np.ascontiguousarray(b.transpose(0, 2, 1)).transpose(0, 2, 1)  # conv's transposed view
    close(gemm.matmul_sum(a, bt), a @ b, 1e-12)
    # rows split, with the left factor a strided view (as the channels-last patch matrix)
    wide = rng.standard_normal((m, g, k + 3))
    at = wide[:, :, :k].transpose(1, 0, 2)
    close(gemm.matmul_rows(at, b), at @ b, 1e-12)
    close(gemm.matmul2d(a[0], bt[0]), a[0] @ b[0], 1e-12)
    close(gemm.matmul2d(b[0].T, a[0].T), (a[0] @ b[0]).T, 1e-12)  # transposed views
