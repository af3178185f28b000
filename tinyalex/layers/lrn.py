"""Local response normalisation across channels (P §3.3).

    b[n, i] = a[n, i] / (k + alpha' * S[n, i]) ** beta,   S[n, i] = sum_{j in win(i)} a[n, j]^2

with win(i) = max(0, i - size//2) ... min(C-1, i + (size-1)//2): ``size`` neighbouring
channels centred on i, clipped at the edges (for odd sizes exactly the paper's
i-n/2 ... i+n/2). alpha' = alpha as in the paper (and TensorFlow's tf.nn.lrn); with
``alpha_divided_by_size=True``, alpha' = alpha / size as PyTorch and Caffe define it,
so paper alpha 1e-4 equals their 5e-4.

Backward, with scale = k + alpha' S and y = b:
    dx[j] = dy[j] * scale[j]^-beta - 2 alpha' beta a[j] * sum_{i: j in win(i)} dy[i] y[i] / scale[i]

Shapes: x, y (N, C, H, W).

Versions (docs/style.md §2):

- reference: ``reference.lrn_forward`` / ``lrn_backward``, loops over every element and window.
- plain path (below): the window sum as a padded copy and ``size`` shifted adds.
- fast path: ``kern.lrn_forward`` / ``lrn_backward`` (``kern = kernels.for_array(x)``, unless
  ``layer.fast = False`` or ``TINYALEX_KERNELS=0``): one fused pass each way, the window sum
  kept as a running sum over channels (add the channel entering the window, subtract the one
  leaving it) and scale**-beta by square roots for the paper's beta = 0.75; numba on the CPU,
  CUDA on CuPy. Besides x, backward needs scale and scale**-beta: the CPU kernel keeps
  both, the GPU's keeps scale and takes the power again (one activation-sized array less).
"""

from __future__ import annotations

from .. import kernels
from ..backend import array_module
from .base import Layer, check_4d


def window_sum(v, before: int, after: int):
    """s[:, i] = sum of v[:, i-before ... i+after] over the channel axis, zeros outside."""
    xp = array_module(v)
    c = v.shape[1]
    padded = xp.pad(v, ((0, 0), (before, after), (0, 0), (0, 0)))
    s = padded[:, 0:c].copy()
    for d in range(1, before + after + 1):
        s += padded[:, d : d + c]
    return s


class LRN(Layer):
    """Cross-channel LRN; defaults are the paper's k=2, n=5, alpha=1e-4, beta=0.75."""

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        *,
        alpha_divided_by_size: bool = False,
    ):
        super().__init__()
        if size < 1:
            raise ValueError(f"LRN size must be >= 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.alpha_divided_by_size = alpha_divided_by_size
        self.fast: bool | None = None  # None: kernels where they run; False: plain path

    def _repr_args(self):
        return ("size", "alpha", "beta", "k", "alpha_divided_by_size")

    @property
    def effective_alpha(self) -> float:
        """The alpha that multiplies the window sum (the paper's convention)."""
        return self.alpha / self.size if self.alpha_divided_by_size else self.alpha

    def forward(self, x, train: bool = True):
        check_4d(self, x)
        xp = array_module(x)
        n = self.size
        kern = kernels.for_array(x, self.fast)
        if kern:
            x = xp.ascontiguousarray(x)
            # saved: what this backend's backward needs besides x (scale, and on the CPU
            # scale**-beta too; the GPU takes that again rather than keep it)
            y, saved = kern.lrn_forward(x, n, self.effective_alpha, self.beta, self.k)
            self._cache = (kern, x, saved) if train else None
            return y
        scale = self.k + self.effective_alpha * window_sum(x * x, n // 2, (n - 1) // 2)
        y = x * xp.power(scale, -self.beta)
        self._cache = (None, x, y, scale) if train else None
        return y

    def backward(self, dy, input_grad: bool = True):
        kern, x, *rest = self._take_cache()
        if not input_grad:
            return None
        xp = array_module(dy)
        n = self.size
        if kern is not None:
            (saved,) = rest
            dy = xp.ascontiguousarray(dy.astype(x.dtype, copy=False))
            return kern.lrn_backward(dy, x, saved, n, self.effective_alpha, self.beta)
        y, scale = rest
        # i with j in win(i) runs over j-(n-1)//2 ... j+n//2: the window mirrored.
        t = window_sum(dy * y / scale, (n - 1) // 2, n // 2)
        return dy * xp.power(scale, -self.beta) - (2 * self.effective_alpha * self.beta) * x * t
