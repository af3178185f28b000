"""The paper's crop pipeline as one pass over uint8 images: what the GPU runs per batch.

The training view of the paper-style presets (``make_pipeline``: "paper", "none", and every
evaluation view but TF's) is, per image n and output pixel (c, y, x)::

    x'  = flip[n] ? size-1-x : x                                  (RandomFlip, P §4.1)
    r   = oy[n] + y,   q = ox[n] + x'                             (RandomCrop / CenterCrop)
    v   = float32(images[src[n], c, r, q])                        (uint8 -> float32)
    v   = v - mean[c, r, q]   (or mean[c])                        (SubtractMean, P §2)
    v   = v / std[c]                                              (Standardize, if per channel)
    out[n, c, y, x] = v + shift[n, c]                             (PCAColour, P §4.1)

Composed step by step (``Compose``) this reads the whole stored image several times in float32
(a 256 px batch of 128 is 100 MB each time); fused, it reads each kept uint8 pixel once and
writes the crop once. The random parameters are drawn from the batch's generator by the
steps' own methods (``RandomCrop.offsets``, ``RandomFlip.coins``, ``PCAColour.shifts``) in the
order ``Compose`` would draw them, and the float32 operations are the same ones in the same
order, so the result equals the composed pipeline bit for bit (tests/test_device_pipeline.py).

Shapes: images uint8 (M, C, H, W), the whole set or one batch; src int (N,) rows of it;
out float32 (N, C, size, size). Ten-crop testing is the same pass with 10 N rows (views in
``TEN_CROP_ORDER``), reshaped to (10, N, C, size, size).

NumPy runs :func:`crop_views_reference` (crop, cast, subtract, flip, shift as array
operations); CuPy runs the CUDA kernel ``crop_views`` below, one thread per output value.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..backend import array_module, cupy
from .compose import Compose
from .crop import CenterCrop, RandomCrop, centre_offsets, crop_at
from .flip import RandomFlip
from .normalize import Standardize, SubtractMean
from .pca_colour import PCAColour

SOURCE = r"""
// out[n, c, y, x] from images[src[n], c, oy[n] + y, ox[n] + x'] (x' = flipped x if flip[n]):
// cast, minus the mean (none, per channel, per pixel), divided by std, plus shift[n, c].
// params: int32 (4, N) rows src, oy, ox, flip. I: the output index type.
template <typename I>
__global__ void crop_views(const unsigned char* __restrict__ images,
                           const int* __restrict__ params, const float* __restrict__ mean,
                           const float* __restrict__ std_, const float* __restrict__ shift,
                           float* __restrict__ out, const I total, const int n_, const int c_,
                           const int h, const int w, const int size, const int mean_kind,
                           const int has_std, const int has_shift) {
  for (I idx = (I)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (I)blockDim.x * gridDim.x) {
    I t = idx;
    const int x = (int)(t % size); t /= size;
    const int y = (int)(t % size); t /= size;
    const int c = (int)(t % c_);
    const int n = (int)(t / c_);
    const int src = params[n], oy = params[n_ + n], ox = params[2 * n_ + n];
    const int xs = params[3 * n_ + n] ? size - 1 - x : x;
    const int r = oy + y, q = ox + xs;
    float v = (float)images[(((long long)src * c_ + c) * h + r) * w + q];
    if (mean_kind == 2) v = v - mean[((long long)c * h + r) * w + q];
    else if (mean_kind == 1) v = v - mean[c];
    if (has_std) v = v / std_[c];
    if (has_shift) v = v + shift[n * c_ + c];
    out[idx] = v;
  }
}
"""
NAME_EXPRESSIONS = ("crop_views<int>", "crop_views<long long>")
OPTIONS = ("--std=c++14",)
BLOCK = 256
INT_LIMIT = 1 << 30


def instantiations() -> str:
    """Explicit instantiations, for compiling SOURCE alone with nvcc (the PTX test)."""
    sig = (
        "const unsigned char*, const int*, const float*, const float*, const float*, float*, "
        "{I}, int, int, int, int, int, int, int, int"
    )
    return "".join(
        f"template __global__ void crop_views<{i}>({sig.format(I=i)});\n"
        for i in ("int", "long long")
    )


@functools.cache
def _function(index_type: str, device_id: int):
    module = cupy.RawModule(code=SOURCE, options=OPTIONS, name_expressions=NAME_EXPRESSIONS)
    return module.get_function(f"crop_views<{index_type}>")


@dataclass
class Views:
    """Per-row parameters of one fused pass: rows ``src`` of the images, crop corners
    ``oy``/``ox`` (N,), mirrored rows ``flip`` (N,) bool, colour ``shift`` (N, C) float32 or
    None. All host arrays (a few hundred bytes a batch)."""

    src: np.ndarray
    oy: np.ndarray
    ox: np.ndarray
    flip: np.ndarray
    shift: np.ndarray | None = None


class FusedCrop:
    """A paper-style pipeline (mean/std, one crop, flip, PCA colour) as one fused pass.

    Build it with :meth:`from_pipeline` (None when the pipeline has other steps: those run
    composed on the device instead). ``mean``: float32 (C, H, W) or (C,) or None;
    ``std``: float32 (C,) or None.
    """

    def __init__(self, size, crop, *, mean=None, std=None, flip=None, pca=None):
        self.size, self.crop, self.flip, self.pca = int(size), crop, flip, pca
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.std = None if std is None else np.asarray(std, dtype=np.float32).reshape(-1)
        self._device = {}  # xp -> (mean, std) copied once

    @classmethod
    def from_pipeline(cls, pipeline):
        """The fused form of ``pipeline`` (a Compose), or None if it is not of that form."""
        steps = list(pipeline.transforms) if isinstance(pipeline, Compose) else None
        if not steps:
            return None
        mean = std = flip = pca = None
        if isinstance(steps[0], SubtractMean):
            mean = steps.pop(0).mean.host
        elif isinstance(steps[0], Standardize):
            step = steps.pop(0)
            mean, std = step.mean.host.reshape(-1), step.std.host.reshape(-1)
        if not steps or type(steps[0]) not in (RandomCrop, CenterCrop):
            return None
        crop = steps.pop(0)
        if steps and type(steps[0]) is RandomFlip:
            flip = steps.pop(0)
        if steps and type(steps[0]) is PCAColour:
            pca = steps.pop(0)
        if steps:
            return None
        return cls(crop.size, crop, mean=mean, std=std, flip=flip, pca=pca)

    def draw(self, src, h: int, w: int, rng) -> Views:
        """The batch's parameters, drawn from ``rng`` as the composed pipeline draws them."""
        src = np.asarray(src)
        n = len(src)
        if isinstance(self.crop, RandomCrop):
            oy, ox = self.crop.offsets(n, h, w, rng)
        else:
            cy, cx = centre_offsets(h, w, self.size)
            oy, ox = np.full(n, cy), np.full(n, cx)
        flip = self.flip.coins(n, rng) if self.flip is not None else np.zeros(n, bool)
        shift = self.pca.shifts(n, rng).astype(np.float32) if self.pca is not None else None
        return Views(src, oy, ox, flip, shift)

    def ten_crop(self, src, h: int, w: int) -> Views:
        """The paper's ten test views of rows ``src``, as 10 N rows in TEN_CROP_ORDER."""
        s = self.size
        cy, cx = centre_offsets(h, w, s)
        corners = np.array([(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), (cy, cx)] * 2)
        n = len(src)
        flip = np.repeat(np.arange(10) >= 5, n)
        return Views(
            np.tile(np.asarray(src), 10),
            np.repeat(corners[:, 0], n),
            np.repeat(corners[:, 1], n),
            flip,
        )

    def __call__(self, images, views: Views):
        """float32 (N, C, size, size) on images' backend."""
        xp = array_module(images)
        _, c, h, w = images.shape
        if not 0 < self.size <= min(h, w):
            raise ValueError(f"crop size {self.size} does not fit images of {h}x{w}")
        if self.mean is not None and self.mean.shape not in ((c,), (c, h, w)):
            raise ValueError(f"mean {self.mean.shape} does not match images {(c, h, w)}")
        if xp is np:
            return crop_views_reference(images, views, self.size, self.mean, self.std)
        if xp not in self._device:
            self._device[xp] = tuple(
                None if a is None else xp.asarray(a) for a in (self.mean, self.std)
            )
        mean, std = self._device[xp]
        return _crop_views_cuda(xp.ascontiguousarray(images), views, self.size, mean, std)


def crop_views_reference(images, views: Views, size: int, mean=None, std=None):
    """NumPy: the composed steps' own operations on the gathered rows (the kernel's twin)."""
    n = len(views.src)
    c = images.shape[1]
    out = crop_at(images[np.asarray(views.src)], views.oy, views.ox, size).astype(np.float32)
    if mean is not None:
        if mean.ndim == 1:
            out = out - mean.reshape(1, c, 1, 1)
        else:
            out = out - crop_at(np.broadcast_to(mean, (n, *mean.shape)), views.oy, views.ox, size)
    if std is not None:
        out = out / std.reshape(1, c, 1, 1)
    flipped = np.flatnonzero(views.flip)
    out[flipped] = out[flipped][..., ::-1]
    if views.shift is not None:
        out = out + views.shift[:, :, None, None]
    return np.ascontiguousarray(out, dtype=np.float32)


def _crop_views_cuda(images, views: Views, size: int, mean, std):
    n = len(views.src)
    _, c, h, w = images.shape
    out = cupy.empty((n, c, size, size), dtype=cupy.float32)
    if n == 0:
        return out
    params = np.stack([views.src, views.oy, views.ox, views.flip]).astype(np.int32)
    params = cupy.asarray(params)
    dummy = out  # never read: its flag says so
    shift = dummy if views.shift is None else cupy.asarray(views.shift, dtype=cupy.float32)
    mean_kind = 0 if mean is None else (1 if mean.ndim == 1 else 2)
    wide = out.size >= INT_LIMIT
    fn = _function("long long" if wide else "int", cupy.cuda.Device().id)
    total = (np.int64 if wide else np.int32)(out.size)
    blocks = max(1, min(-(-out.size // BLOCK), INT_LIMIT // BLOCK))
    args = (images, params, dummy if mean is None else mean, dummy if std is None else std)
    flags = (mean_kind, int(std is not None), int(views.shift is not None))
    fn(
        (blocks,),
        (BLOCK,),
        (*args, shift, out, total, *(np.int32(v) for v in (n, c, h, w, size, *flags))),
    )
    return out
