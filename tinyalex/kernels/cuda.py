"""GPU fast paths: CUDA kernels for the CuPy backend, one source, compiled on first use.

Each kernel is the CUDA twin of a numba kernel in cpu.py, with the same Python signature,
so a layer calls ``kern.im2col(...)`` with ``kern = kernels.for_array(x)`` and never asks
which backend it is on. One thread per output element, grid-stride loops:

- ``im2col``: one thread per cols element (C, k, k, N, OH, OW); writes are coalesced.
- ``col2im``: one thread per *input* pixel, summing the windows that cover it (a gather,
  as Caffe's col2im_gpu): deterministic, no atomics, writes NCHW directly.
- ``maxpool_forward``: one thread per output; ``maxpool_backward`` gathers, one thread per
  input pixel, from the windows whose recorded maximum (offset i*z + j) it is.
- ``lrn_forward`` / ``lrn_backward``: one thread per (n, pixel), walking the channels with
  a running window sum (as Caffe's LRNFillScale / LRNComputeDiff); neighbouring threads
  read neighbouring pixels, so every load is coalesced.
- ``bias_to_nchw`` / ``nchw_to_rows``: conv's GEMM result to NCHW (+ bias) and back.
- ``relu_forward`` / ``relu_backward``: one pass each.

``SOURCE`` holds every kernel as a template over T (float, double) and the index type I
(int when every array has fewer than 2**30 elements, as 64-bit division is slow on a GPU;
long long otherwise). :func:`module` compiles it once per device with NVRTC through
``cupy.RawModule`` (memoized, as Chainer's ``cuda.elementwise``); without CuPy nothing
here runs, and tests compile ``SOURCE`` + :func:`instantiations` to PTX with nvcc so a
kernel that does not compile fails CI on machines without a GPU.

Conv's steps (``conv_patches``, ``conv_y``, ``conv_dW``, ``conv_dx``) and Linear's
``matmul2d`` keep their products as batched cuBLAS GEMMs, called directly (kernels/cublas.py:
transposed operands read in place, TF32 tensor cores when ``backend.tf32_enabled()``, e.g.
``--tf32``): there is no thread split and no channels-last patch matrix on the GPU.

``winograd_input`` / ``winograd_output``: Winograd's F(2x2, 3x3) for the 3x3 stride-1 layers
(kernels/winograd.py, one thread per 2x2 output tile), forward and dx, around one batched
cuBLAS GEMM; taken only when ``WINOGRAD`` is set (``bench --winograd``) until it is timed.

Without a GPU the tests run every kernel here on the CPU, one thread after another
(kernels/host.py, tests/test_cuda_on_host.py), through these same wrappers.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backend import cupy, cupy_available
from . import cublas, reuse, winograd

SOURCE = r"""
// tinyalex CUDA kernels. T: float or double. I: the index type, int or long long.

#define GRID_STRIDE_LOOP(idx, total)                                         \
  for (I idx = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; idx < (total); \
       idx += (I)blockDim.x * (I)gridDim.x)

template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() {
  return __int_as_float(0xff800000);
}
template <> __device__ __forceinline__ double neg_inf<double>() {
  return __longlong_as_double(0xfff0000000000000ULL);
}

// A quiet NaN without math.h's NAN (NVRTC compiles without headers).
template <typename T> __device__ __forceinline__ T quiet_nan();
template <> __device__ __forceinline__ float quiet_nan<float>() {
  return __int_as_float(0x7fc00000);
}
template <> __device__ __forceinline__ double quiet_nan<double>() {
  return __longlong_as_double(0x7ff8000000000000ULL);
}

// v ** -beta; the paper's beta = 0.75 by rsqrt and sqrt, far cheaper than pow.
template <typename T> __device__ __forceinline__ T neg_pow(T v, T beta);
template <> __device__ __forceinline__ float neg_pow<float>(float v, float beta) {
  if (beta == 0.75f) { const float r = rsqrtf(v); return r * sqrtf(r); }
  return powf(v, -beta);
}
template <> __device__ __forceinline__ double neg_pow<double>(double v, double beta) {
  if (beta == 0.75) { const double r = rsqrt(v); return r * sqrt(r); }
  return pow(v, -beta);
}

// cols[c, i, j, n, p, q] = x[n, c, s*p + i - pad, s*q + j - pad], 0 outside the image.
template <typename T, typename I>
__global__ void im2col(const T* __restrict__ x, T* __restrict__ cols, const I total,
                       const int n_, const int c_, const int h, const int w, const int k,
                       const int s, const int pad, const int oh, const int ow) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int q = (int)(t % ow); t /= ow;
    const int p = (int)(t % oh); t /= oh;
    const int n = (int)(t % n_); t /= n_;
    const int j = (int)(t % k); t /= k;
    const int i = (int)(t % k); t /= k;
    const int c = (int)t;
    const int r = s * p + i - pad;
    const int col = s * q + j - pad;
    cols[idx] = (r >= 0 && r < h && col >= 0 && col < w)
                    ? x[(((I)n * c_ + c) * h + r) * w + col]
                    : T(0);
  }
}

// dx[n, c, y, x] = sum of cols[c, i, j, n, p, q] over the windows (p, q) that cover the
// pixel, i = y + pad - s*p, j = x + pad - s*q: a gather, one thread per pixel.
template <typename T, typename I>
__global__ void col2im(const T* __restrict__ cols, T* __restrict__ dx, const I total,
                       const int n_, const int c_, const int h, const int w, const int k,
                       const int s, const int pad, const int oh, const int ow) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int xp = (int)(t % w) + pad; t /= w;
    const int yp = (int)(t % h) + pad; t /= h;
    const int c = (int)(t % c_); t /= c_;
    const int n = (int)t;
    const int p0 = yp < k ? 0 : (yp - k) / s + 1, p1 = min(yp / s + 1, oh);
    const int q0 = xp < k ? 0 : (xp - k) / s + 1, q1 = min(xp / s + 1, ow);
    T acc = T(0);
    for (int p = p0; p < p1; ++p) {
      const int i = yp - s * p;
      for (int q = q0; q < q1; ++q) {
        const int j = xp - s * q;
        acc += cols[((((I)c * k + i) * k + j) * n_ + n) * oh * ow + (I)p * ow + q];
      }
    }
    dx[idx] = acc;
  }
}

// y[n, o, e] = rows[o, n, e] + b[o]: the GEMM's (O, N*OH*OW) result as NCHW.
template <typename T, typename I>
__global__ void bias_to_nchw(const T* __restrict__ rows, const T* __restrict__ b,
                             T* __restrict__ y, const I total, const int n_, const int o_,
                             const int hw) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int e = (int)(t % hw); t /= hw;
    const int o = (int)(t % o_);
    const int n = (int)(t / o_);
    y[idx] = rows[((I)o * n_ + n) * hw + e] + b[o];
  }
}

// rows[o, n, e] = dy[n, o, e]: NCHW gradients as the GEMM's (O, N*OH*OW) operand.
template <typename T, typename I>
__global__ void nchw_to_rows(const T* __restrict__ dy, T* __restrict__ rows, const I total,
                             const int n_, const int o_, const int hw) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int e = (int)(t % hw); t /= hw;
    const int n = (int)(t % n_);
    const int o = (int)(t / n_);
    rows[idx] = dy[((I)n * o_ + o) * hw + e];
  }
}

// y = max over the z x z window; arg = offset i*z + j of the first maximum in row-major
// order (strict >), padding counting as -inf.
template <typename T, typename I>
__global__ void maxpool_forward(const T* __restrict__ x, T* __restrict__ y,
                                signed char* __restrict__ arg, const I total, const int h,
                                const int w, const int z, const int s, const int pad,
                                const int oh, const int ow) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int q = (int)(t % ow); t /= ow;
    const int p = (int)(t % oh); t /= oh;  // t = n*C + c, the plane
    const T* src = x + t * h * w;
    const int r0 = s * p - pad, c0 = s * q - pad;
    T best = (r0 >= 0 && c0 >= 0) ? src[r0 * w + c0] : neg_inf<T>();
    int where = 0;
    for (int i = 0; i < z; ++i) {
      const int r = r0 + i;
      if (r < 0 || r >= h) continue;
      for (int j = 0; j < z; ++j) {
        const int cc = c0 + j;
        if (cc < 0 || cc >= w) continue;
        const T v = src[r * w + cc];
        if (v > best) { best = v; where = i * z + j; }
      }
    }
    y[idx] = best;
    arg[idx] = (signed char)where;
  }
}

// dx[pixel] = sum of dy over the windows covering the pixel whose maximum it is.
template <typename T, typename I>
__global__ void maxpool_backward(const T* __restrict__ dy, const signed char* __restrict__ arg,
                                 T* __restrict__ dx, const I total, const int h, const int w,
                                 const int z, const int s, const int pad, const int oh,
                                 const int ow) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int xp = (int)(t % w) + pad; t /= w;
    const int yp = (int)(t % h) + pad; t /= h;  // t = the plane
    const I base = t * oh * ow;
    const int p0 = yp < z ? 0 : (yp - z) / s + 1, p1 = min(yp / s + 1, oh);
    const int q0 = xp < z ? 0 : (xp - z) / s + 1, q1 = min(xp / s + 1, ow);
    T acc = T(0);
    for (int p = p0; p < p1; ++p) {
      for (int q = q0; q < q1; ++q) {
        const I o = base + (I)p * ow + q;
        if (arg[o] == (yp - s * p) * z + (xp - s * q)) acc += dy[o];
      }
    }
    dx[idx] = acc;
  }
}

// One thread per (n, pixel e): S = sum_{j=i-before}^{i+after} x[j]^2 kept as a running sum
// (in double) over the channels i; scale = k + alpha S, y = x scale^-beta. Only scale is
// stored for backward, which takes scale^-beta again from the same stored value.
template <typename T, typename I>
__global__ void lrn_forward(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ scale,
                            const I total, const int c_, const int hw, const int before,
                            const int after, const T k, const T alpha, const T beta) {
  GRID_STRIDE_LOOP(idx, total) {
    const I base = (idx / hw) * c_ * hw + idx % hw;  // element (n, 0, e); channel stride hw
    double acc = 0.0;
    const int first = min(after, c_);
    for (int j = 0; j < first; ++j) {
      const double v = x[base + (I)j * hw];
      acc += v * v;
    }
    for (int i = 0; i < c_; ++i) {
      const int jin = i + after, jout = i - before - 1;
      if (jin < c_) { const double v = x[base + (I)jin * hw]; acc += v * v; }
      if (jout >= 0) { const double v = x[base + (I)jout * hw]; acc -= v * v; }
      const I o = base + (I)i * hw;
      const T sc = k + alpha * (T)(acc > 0.0 ? acc : 0.0);
      scale[o] = sc;
      y[o] = x[o] * neg_pow<T>(sc, beta);
    }
  }
}

template <typename T, typename I>
__device__ __forceinline__ double lrn_term(const T* dy, const T* x, const T* scale,
                                           const T beta, const I o) {
  const T sc = scale[o];
  return (double)dy[o] * (double)x[o] * (double)neg_pow<T>(sc, beta) / (double)sc;
}

// dx[j] = dy[j] pw[j] - coef x[j] sum_{i=j-after}^{j+before} dy[i] x[i] pw[i] / scale[i],
// pw = scale^-beta, the mirrored window again as a running sum; coef = 2 alpha beta.
template <typename T, typename I>
__global__ void lrn_backward(const T* __restrict__ dy, const T* __restrict__ x,
                             const T* __restrict__ scale, T* __restrict__ dx, const I total,
                             const int c_, const int hw, const int before, const int after,
                             const T beta, const T coef) {
  GRID_STRIDE_LOOP(idx, total) {
    const I base = (idx / hw) * c_ * hw + idx % hw;
    double acc = 0.0;
    const int first = min(before, c_);
    for (int i = 0; i < first; ++i) acc += lrn_term<T, I>(dy, x, scale, beta, base + (I)i * hw);
    for (int j = 0; j < c_; ++j) {
      const int jin = j + before, jout = j - after - 1;
      if (jin < c_) acc += lrn_term<T, I>(dy, x, scale, beta, base + (I)jin * hw);
      if (jout >= 0) acc -= lrn_term<T, I>(dy, x, scale, beta, base + (I)jout * hw);
      const I o = base + (I)j * hw;
      dx[o] = dy[o] * neg_pow<T>(scale[o], beta) - coef * x[o] * (T)acc;
    }
  }
}

// Written so that NaN passes through, as the plain maximum(x, 0) does.
template <typename T, typename I>
__global__ void relu_forward(const T* __restrict__ x, T* __restrict__ y, const I total) {
  GRID_STRIDE_LOOP(idx, total) {
    const T v = x[idx];
    y[idx] = v <= T(0) ? T(0) : v;
  }
}

template <typename T, typename I>
__global__ void relu_backward(const T* __restrict__ dy, const T* __restrict__ y,
                              T* __restrict__ dx, const I total) {
  GRID_STRIDE_LOOP(idx, total) { dx[idx] = y[idx] > T(0) ? dy[idx] : T(0); }
}

// The paper's SGD, in place: v <- m v - wdlr w - lr g; w <- w + v (the plain code's order).
template <typename T, typename I>
__global__ void sgd_update(const T* __restrict__ g, T* __restrict__ v, T* __restrict__ w,
                           const I total, const T m, const T wdlr, const T lr) {
  GRID_STRIDE_LOOP(idx, total) {
    T t = m * v[idx];
    t = t - wdlr * w[idx];
    t = t - lr * g[idx];
    v[idx] = t;
    w[idx] = w[idx] + t;
  }
}

// Softmax cross-entropy, one thread per row n of z (N, K): logp[n] = z - max - log sum exp
// (the sum in double), row_loss[n] = -logp[n, y_n]; a label outside [0, K) gives NaN.
template <typename T, typename I>
__global__ void softmax_xent_forward(const T* __restrict__ z, const long long* __restrict__ y,
                                     T* __restrict__ logp, T* __restrict__ row_loss,
                                     const I total, const int k) {
  GRID_STRIDE_LOOP(n, total) {
    const T* zr = z + n * k;
    T m = zr[0];
    for (int j = 1; j < k; ++j) m = zr[j] > m ? zr[j] : m;
    double s = 0.0;
    for (int j = 0; j < k; ++j) s += (double)exp(zr[j] - m);
    const T lse = (T)log(s);
    for (int j = 0; j < k; ++j) logp[n * k + j] = (zr[j] - m) - lse;
    const long long label = y[n];
    row_loss[n] = (label >= 0 && label < k) ? -logp[n * k + label] : quiet_nan<T>();
  }
}

// dL/dz[n, j] = (exp(logp[n, j]) - [j == y_n]) / N, in the plain path's three steps.
template <typename T, typename I>
__global__ void softmax_xent_backward(const T* __restrict__ logp,
                                      const long long* __restrict__ y, T* __restrict__ dz,
                                      const I total, const int k, const int n_) {
  GRID_STRIDE_LOOP(idx, total) {
    T p = exp(logp[idx]);
    if ((long long)(idx % k) == y[idx / k]) p = p - T(1);
    dz[idx] = p / (T)n_;
  }
}
// Winograd F(2x2, 3x3), kernels/winograd.py. V[ab, c, t] = (B^T d B)[a, b] for the 4x4 patch d
// of x[n, c] at rows 2 th - pad + i, columns 2 tw - pad + j (0 outside), t = (n TH + th) TW + tw:
// one thread per (c, t), so idx = c T + t and V's planes ab lie total = C T apart.
template <typename T, typename I>
__global__ void winograd_input(const T* __restrict__ x, T* __restrict__ v, const I total,
                               const int n_, const int c_, const int h, const int w,
                               const int pad, const int th_, const int tw_) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int tw = (int)(t % tw_); t /= tw_;
    const int th = (int)(t % th_); t /= th_;
    const int n = (int)(t % n_);
    const int c = (int)(t / n_);
    const T* src = x + ((I)n * c_ + c) * h * w;
    const int r0 = 2 * th - pad, c0 = 2 * tw - pad;
    T d[4][4];
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        const int r = r0 + i, q = c0 + j;
        d[i][j] = (r >= 0 && r < h && q >= 0 && q < w) ? src[r * w + q] : T(0);
      }
    }
    T s[4][4];  // B^T d
    for (int j = 0; j < 4; ++j) {
      s[0][j] = d[0][j] - d[2][j];
      s[1][j] = d[1][j] + d[2][j];
      s[2][j] = d[2][j] - d[1][j];
      s[3][j] = d[1][j] - d[3][j];
    }
    T* dst = v + idx;  // (B^T d) B, row by row
    for (int i = 0; i < 4; ++i) {
      dst[(I)(4 * i + 0) * total] = s[i][0] - s[i][2];
      dst[(I)(4 * i + 1) * total] = s[i][1] + s[i][2];
      dst[(I)(4 * i + 2) * total] = s[i][2] - s[i][1];
      dst[(I)(4 * i + 3) * total] = s[i][1] - s[i][3];
    }
  }
}

// y[n, o, 2 th + i, 2 tw + j] = (A^T m A)[i, j] + b[o], m[a, b] = M[ab, o, t] (M: 16, O, T):
// one thread per (n, o, th, tw); a tile's outputs past OH or OW are not written.
template <typename T, typename I>
__global__ void winograd_output(const T* __restrict__ m, const T* __restrict__ b,
                                T* __restrict__ y, const I total, const int n_, const int o_,
                                const int oh, const int ow, const int th_, const int tw_) {
  GRID_STRIDE_LOOP(idx, total) {
    I t = idx;
    const int tw = (int)(t % tw_); t /= tw_;
    const int th = (int)(t % th_); t /= th_;
    const int o = (int)(t % o_);
    const int n = (int)(t / o_);
    const I tiles = (I)n_ * th_ * tw_;
    const I plane = (I)o_ * tiles;  // O T: from one position ab to the next
    const T* src = m + (I)o * tiles + ((I)n * th_ + th) * tw_ + tw;
    T s[2][4];  // A^T m
    for (int j = 0; j < 4; ++j) {
      const T m0 = src[j * plane], m1 = src[(4 + j) * plane];
      const T m2 = src[(8 + j) * plane], m3 = src[(12 + j) * plane];
      s[0][j] = m0 + m1 + m2;
      s[1][j] = m1 - m2 - m3;
    }
    const T bias = b[o];
    T* dst = y + ((I)n * o_ + o) * oh * ow;
    const int r0 = 2 * th, c0 = 2 * tw;
    for (int i = 0; i < 2 && r0 + i < oh; ++i) {  // (A^T m) A, row by row
      dst[(r0 + i) * ow + c0] = s[i][0] + s[i][1] + s[i][2] + bias;
      if (c0 + 1 < ow) dst[(r0 + i) * ow + c0 + 1] = s[i][1] - s[i][2] - s[i][3] + bias;
    }
  }
}
"""

KERNELS = (
    "im2col",
    "col2im",
    "bias_to_nchw",
    "nchw_to_rows",
    "maxpool_forward",
    "maxpool_backward",
    "lrn_forward",
    "lrn_backward",
    "relu_forward",
    "relu_backward",
    "sgd_update",
    "softmax_xent_forward",
    "softmax_xent_backward",
    "winograd_input",
    "winograd_output",
)
_CTYPES = {"float32": "float", "float64": "double"}
_ITYPES = ("int", "long long")
NAME_EXPRESSIONS = tuple(
    f"{k}<{t}, {i}>" for k in KERNELS for t in _CTYPES.values() for i in _ITYPES
)
OPTIONS = ("--std=c++14",)
BLOCK = 256
INT_LIMIT = 1 << 30  # arrays below this many elements index with int, grid stride included
MAX_BLOCKS = INT_LIMIT // BLOCK


def instantiations() -> str:
    """Explicit instantiations of every kernel, for compiling SOURCE alone with nvcc."""
    sigs = {
        "im2col": "const T*, T*, I, int, int, int, int, int, int, int, int, int",
        "col2im": "const T*, T*, I, int, int, int, int, int, int, int, int, int",
        "bias_to_nchw": "const T*, const T*, T*, I, int, int, int",
        "nchw_to_rows": "const T*, T*, I, int, int, int",
        "maxpool_forward": "const T*, T*, signed char*, I, int, int, int, int, int, int, int",
        "maxpool_backward": "const T*, const signed char*, T*, I, int, int, int, int, int, "
        "int, int",
        "lrn_forward": "const T*, T*, T*, I, int, int, int, int, T, T, T",
        "lrn_backward": "const T*, const T*, const T*, T*, I, int, int, int, int, T, T",
        "relu_forward": "const T*, T*, I",
        "relu_backward": "const T*, const T*, T*, I",
        "sgd_update": "const T*, T*, T*, I, T, T, T",
        "softmax_xent_forward": "const T*, const long long*, T*, T*, I, int",
        "softmax_xent_backward": "const T*, const long long*, T*, I, int, int",
        "winograd_input": "const T*, T*, I, int, int, int, int, int, int, int",
        "winograd_output": "const T*, const T*, T*, I, int, int, int, int, int, int",
    }
    lines = []
    for name in KERNELS:
        for t in _CTYPES.values():
            for i in _ITYPES:
                args = sigs[name].replace("T", t).replace("I", i)
                lines.append(f"template __global__ void {name}<{t}, {i}>({args});")
    return "\n".join(lines) + "\n"


def available() -> bool:
    return cupy_available()


@functools.cache
def module(device_id: int):
    """The compiled RawModule for one device (memoized: NVRTC runs once per device)."""
    return cupy.RawModule(code=SOURCE, options=OPTIONS, name_expressions=NAME_EXPRESSIONS)


@functools.cache
def function(name: str, dtype: str, index_type: str, device_id: int):
    return module(device_id).get_function(f"{name}<{_CTYPES[dtype]}, {index_type}>")


def _launch(name: str, dtype, total: int, largest: int, arrays: tuple, scalars: tuple) -> None:
    """kernel(*arrays, total, *scalars) over ``total`` threads (grid-stride).

    ``largest``: the size of the biggest array the kernel touches, which picks the index type.
    """
    if total == 0:
        return
    wide = largest >= INT_LIMIT
    index = np.int64 if wide else np.int32
    fn = function(name, np.dtype(dtype).name, _ITYPES[wide], cupy.cuda.Device().id)
    blocks = max(1, min((total + BLOCK - 1) // BLOCK, MAX_BLOCKS))
    fn((blocks,), (BLOCK,), (*arrays, index(total), *scalars))


def _i32(*values):
    return tuple(np.int32(v) for v in values)


# --------------------------------------------------------------------------- wrappers
def im2col(x, k: int, stride: int, padding: int, oh: int, ow: int, out=None):
    """(N, C, H, W) -> cols (C, k, k, N, OH, OW); ``out`` is reused when it fits."""
    n, c, h, w = x.shape
    shape = (c, k, k, n, oh, ow)
    if not isinstance(out, cupy.ndarray) or out.shape != shape or out.dtype != x.dtype:
        out = cupy.empty(shape, dtype=x.dtype)
    size = max(out.size, x.size)
    _launch(
        "im2col", x.dtype, out.size, size, (x, out), _i32(n, c, h, w, k, stride, padding, oh, ow)
    )
    return out


def col2im(cols, x_shape, k: int, stride: int, padding: int):
    n, c, h, w = x_shape
    oh, ow = cols.shape[4], cols.shape[5]
    dx = cupy.empty(x_shape, dtype=cols.dtype)
    size = max(cols.size, dx.size)
    _launch(
        "col2im",
        cols.dtype,
        dx.size,
        size,
        (cols, dx),
        _i32(n, c, h, w, k, stride, padding, oh, ow),
    )
    return dx


def bias_to_nchw(rows, b, n: int, o: int, oh: int, ow: int):
    y = cupy.empty((n, o, oh, ow), dtype=rows.dtype)
    b = cupy.ascontiguousarray(b, dtype=rows.dtype)
    _launch("bias_to_nchw", rows.dtype, y.size, y.size, (rows, b, y), _i32(n, o, oh * ow))
    return y


def nchw_to_rows(dy):
    n, o, oh, ow = dy.shape
    rows = cupy.empty((o, n * oh * ow), dtype=dy.dtype)
    _launch("nchw_to_rows", dy.dtype, rows.size, rows.size, (dy, rows), _i32(n, o, oh * ow))
    return rows, rows.sum(axis=1)  # a contiguous row reduction per output channel


# Conv2D leaves its im2col in the workspace all layers share and computes it again in
# backward on the GPU (layers/conv.py, keep_cols): one more im2col kernel per layer per step
# (memory-bound, about a millisecond for all of alexnet's at batch 128 at H100 bandwidth, by
# arithmetic, not yet timed), against 2.3 GB of patch matrices held at the peak by the five
# layers at that batch (562 + 896 + 199 + 299 + 299 MB) where the largest, 896 MB, remains.
KEEP_COLS = False


def conv_patches(x, k: int, stride: int, padding: int, groups: int, oh: int, ow: int, out=None):
    """Conv2D's patch matrix: im2col's (C, k, k, N, OH, OW) as (G, C/G*k*k, N*OH*OW), the
    layout the equations read (the GPU has no channels-last variant). ``out``: a contiguous
    buffer of the same size and dtype to write into (else a new array)."""
    n, c = x.shape[:2]
    out = reuse(out, (c, k, k, n, oh, ow), x.dtype, cupy)
    cols = im2col(cupy.ascontiguousarray(x), k, stride, padding, oh, ow, out)
    return cols.reshape(groups, c // groups * k * k, n * oh * ow)


def conv_y(Wg, b, cols, oh: int, ow: int):
    """y = W_g . cols_g + b as (N, O, OH, OW): one batched cuBLAS GEMM (G, O/G, CKK) @
    (G, CKK, NHW), then one kernel adding b while it writes NCHW."""
    o = Wg.shape[0] * Wg.shape[1]
    n = cols.shape[2] // (oh * ow)
    return bias_to_nchw(cublas.gemm(Wg, cols).reshape(o, -1), b, n, o, oh, ow)


def conv_dW(dyg, cols):
    """dW_g = dy_g . cols_g^T: one batched cuBLAS GEMM, cols^T read in place (no copy)."""
    return cublas.gemm(dyg, cols.transpose(0, 2, 1))


# Winograd F(2x2, 3x3) for the 3x3 stride-1 layers (alexnet's conv3-5), forward and dx
# (kernels/winograd.py): 4 products per output pixel and channel instead of 9, and a transformed
# input 4/9 the size of the patch matrix. Off until it is timed against the GEMM path on a GPU
# (``bench --winograd``, run by ``python -m tinyalex.gpucheck``); it has run on the CPU only,
# through kernels/host.py, where the tests hold it to the plain path.
WINOGRAD = False


def winograd_applies(k: int, stride: int, padding: int) -> bool:
    """Whether the layers take Winograd's F(2x2, 3x3) for this convolution (``WINOGRAD``)."""
    return WINOGRAD and winograd.applies(k, stride, padding)


def conv_winograd(x, Wg, b, padding: int):
    """y = conv(x, W) + b for a 3x3 stride-1 layer by F(2x2, 3x3): the input transform V
    (16, C, T) (one kernel), the (16 G) products M = U . V (one batched cuBLAS GEMM), the
    output transform plus b written as NCHW (one kernel). Wg (G, O/G, C/G*9)."""
    n, c, h, w = x.shape
    o = Wg.shape[0] * Wg.shape[1]
    oh, ow = winograd.output_size(h, w, padding)
    th, tw = winograd.tiles(oh, ow)
    t = n * th * tw
    v = cupy.empty((16, c, t), dtype=x.dtype)
    args = _i32(n, c, h, w, padding, th, tw)
    x = cupy.ascontiguousarray(x)
    _launch("winograd_input", x.dtype, c * t, max(x.size, v.size), (x, v), args)
    u = winograd.filter_transform(Wg, cupy)  # (16 G, O/G, C/G): small
    m = winograd.products(u, v, Wg.shape[0], cublas.gemm)  # (16, O, T)
    y = cupy.empty((n, o, oh, ow), dtype=x.dtype)
    b = cupy.ascontiguousarray(b, dtype=x.dtype)
    args = _i32(n, o, oh, ow, th, tw)
    _launch("winograd_output", x.dtype, n * o * th * tw, max(m.size, y.size), (m, b, y), args)
    return y


def conv_dx(dy, dyg, Wg, x_shape, k: int, stride: int, padding: int, spent=None, **_cpu):
    """dcols_g = W_g^T . dy_g (one batched GEMM), dx = col2im(dcols) (one kernel).

    dcols has the forward's cols shape, and cols (``spent``) is no longer needed once dW is
    queued: the product is written over it instead of into a new array of that size
    (alexnet's conv2 at batch 128: 896 MB less at the peak). The CPU's options
    (``by_convolution``, ``buffers``) have no effect here. Where :func:`winograd_applies`,
    dx is instead the convolution of dy (padded by 2 - p) with the flipped, transposed
    kernel, by :func:`conv_winograd`.
    """
    if winograd_applies(k, stride, padding):
        zero = cupy.zeros(x_shape[1], dtype=dy.dtype)
        return conv_winograd(dy, winograd.dx_weights(Wg), zero, 2 - padding)
    n, c = x_shape[:2]
    oh, ow = dy.shape[2:]
    dcols = cublas.gemm(Wg.transpose(0, 2, 1), dyg, out=spent)  # (G, C/G*k*k, N*OH*OW)
    dcols = cupy.ascontiguousarray(dcols.reshape(c, k, k, n, oh, ow))
    return col2im(dcols, tuple(x_shape), k, stride, padding)


def matmul2d(a, b):
    """a (M, K) @ b (K, N): Linear's products, one cuBLAS GEMM each (transposes in place)."""
    return cublas.gemm(a, b)


def maxpool_forward(x, z: int, stride: int, padding: int, oh: int, ow: int):
    n, c, h, w = x.shape
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    arg = cupy.empty((n, c, oh, ow), dtype=cupy.int8)
    _launch(
        "maxpool_forward",
        x.dtype,
        y.size,
        max(x.size, y.size),
        (x, y, arg),
        _i32(h, w, z, stride, padding, oh, ow),
    )
    return y, arg


def maxpool_backward(dy, arg, x_shape, z: int, stride: int, padding: int):
    n, c, h, w = x_shape
    oh, ow = dy.shape[2], dy.shape[3]
    dx = cupy.empty(x_shape, dtype=dy.dtype)
    _launch(
        "maxpool_backward",
        dy.dtype,
        dx.size,
        max(dx.size, dy.size),
        (dy, arg, dx),
        _i32(h, w, z, stride, padding, oh, ow),
    )
    return dx


def lrn_forward(x, size: int, alpha: float, beta: float, k: float):
    """(N, C, H, W) -> (y, saved): y and what backward needs besides x, here (scale,);
    alpha as the paper's (not divided by size). Backward takes scale**-beta again from
    scale: one activation-sized array per LRN layer less at the peak (alexnet's lrn1 and
    lrn2 at batch 128: 149 + 96 MB), and one array fewer read (the kernel is memory-bound)."""
    n, c, h, w = x.shape
    y, scale = (cupy.empty(x.shape, dtype=x.dtype) for _ in range(2))
    T = x.dtype.type
    _launch(
        "lrn_forward",
        x.dtype,
        n * h * w,
        x.size,
        (x, y, scale),
        (*_i32(c, h * w, size // 2, (size - 1) // 2), T(k), T(alpha), T(beta)),
    )
    return y, (scale,)


def lrn_backward(dy, x, saved, size: int, alpha: float, beta: float):
    """dx for LRN; ``saved``: the (scale,) that lrn_forward returned."""
    (scale,) = saved
    n, c, h, w = x.shape
    dx = cupy.empty(x.shape, dtype=x.dtype)
    T = x.dtype.type
    _launch(
        "lrn_backward",
        x.dtype,
        n * h * w,
        x.size,
        (dy, x, scale, dx),
        (*_i32(c, h * w, size // 2, (size - 1) // 2), T(beta), T(2.0 * alpha * beta)),
    )
    return dx


def relu_forward(x):
    y = cupy.empty_like(x)
    _launch("relu_forward", x.dtype, x.size, x.size, (x, y), ())
    return y


def relu_backward(dy, y):
    dy = cupy.ascontiguousarray(dy, dtype=y.dtype)  # the kernel reads both as y's type
    dx = cupy.empty_like(y)
    _launch("relu_backward", y.dtype, y.size, y.size, (dy, y, dx), ())
    return dx


def sgd_update(w, v, g, momentum: float, wd_lr: float, lr: float) -> None:
    """In place, one pass: v = momentum v - wd_lr w - lr g; w += v."""
    T = w.dtype.type
    _launch("sgd_update", w.dtype, w.size, w.size, (g, v, w), (T(momentum), T(wd_lr), T(lr)))


def softmax_xent(logits, labels):
    """Softmax cross-entropy in two launches: (mean loss as a 0-d array, logp (N, K)).

    No host read: a label outside [0, K) makes the loss NaN instead of raising, which the
    training loop's periodic finiteness check reports.
    """
    n, k = logits.shape
    z = cupy.ascontiguousarray(logits)
    y = cupy.ascontiguousarray(labels, dtype=cupy.int64)
    logp = cupy.empty_like(z)
    rows = cupy.empty(n, dtype=z.dtype)
    _launch("softmax_xent_forward", z.dtype, n, z.size, (z, y, logp, rows), _i32(k))
    return rows.mean(), logp


def softmax_xent_backward(logp, labels):
    """dL/dz = (exp(logp) - onehot(y)) / N in one pass (the plain path's arithmetic)."""
    n, k = logp.shape
    y = cupy.ascontiguousarray(labels, dtype=cupy.int64)
    dz = cupy.empty_like(logp)
    _launch("softmax_xent_backward", logp.dtype, logp.size, logp.size, (logp, y, dz), _i32(k, n))
    return dz
