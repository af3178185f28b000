"""PCA colour augmentation, "fancy PCA" (P §4.1): shift every pixel's RGB along the principal
axes of the training set's colours, by a random amount per image::

    shift = [p1 p2 p3] [a1 s1, a2 s2, a3 s3]^T,   a_i ~ N(0, std^2) per image, std = 0.1
    out[n, :, y, x] = in[n, :, y, x] + shift[n]         (the same shift for every pixel)

``p_i`` are the eigenvectors of the 3x3 RGB covariance (columns of ``eigvecs``) and ``s_i`` a size
per component. The paper writes ``s_i = lambda_i``, the eigenvalues. Units matter:

- eigenvalues are variances (pixel^2). On 0-255 pixels lambda_1 is ~10^3-10^4, so ``0.1 lambda_1``
  would shift colours by hundreds of levels: read literally, the formula only makes sense on
  pixels scaled to [0, 1]. The often-copied ImageNet numbers (0.2175, 0.0188, 0.0045) are used
  that way, and code that works on 0-255 multiplies them by 255 (55.46, 4.794, 1.148): they scale
  linearly with the pixel unit, like standard deviations.
- The authors' own later code (cuda-convnet2, ``convdata.py``) draws the noise as
  ``randn * color_stdevs`` along the eigenvectors: ``s_i = sqrt(lambda_i)``, in pixel units.

tinyalex follows the authors' code: ``pca_colour_stats`` returns the covariance eigenvalues in
0-255 units and ``PCAColour(..., sqrt_eigvals=True)`` uses ``s_i = sqrt(lambda_i)`` (a shift of
~0.1 x the spread of colours along each axis). ``sqrt_eigvals=False`` gives the paper's letter
(``s_i = eigvals[i]`` as passed), e.g. for the copied [0, 1] numbers on [0, 1] images.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module


def pca_colour_stats(x_uint8, max_pixels: int = 1_000_000, seed: int = 0):
    """Eigen-decomposition of the RGB covariance of a (sample of the) training set.

    x_uint8: (N, 3, H, W) raw pixels, 0-255 (uint8 or float). At most ``max_pixels`` pixels,
    chosen uniformly at random (``seed``) across all images and positions, enter the covariance
    (a million pixels pin it to well under 1%).

    Returns ``eigvals`` (3,) float64, descending, in 0-255 pixel units squared (variances), and
    ``eigvecs`` (3, 3) float64 whose *columns* are the matching unit eigenvectors:
    ``cov = eigvecs @ diag(eigvals) @ eigvecs.T``. (Not the [0, 1] numbers 0.2175, 0.0188,
    0.0045 that are often copied; see the module docstring.)
    """
    x = np.asarray(x_uint8)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) RGB images; got shape {x.shape}")
    n, _, h, w = x.shape
    total = n * h * w
    if total <= max_pixels:
        pixels = x.transpose(0, 2, 3, 1).reshape(-1, 3)
    else:  # gather a random sample without copying the whole set
        pick = np.random.default_rng(seed).choice(total, size=max_pixels, replace=False)
        i, rest = np.divmod(pick, h * w)
        yy, xx = np.divmod(rest, w)
        pixels = x[i, :, yy, xx]  # (max_pixels, 3)
    cov = np.cov(pixels.astype(np.float64), rowvar=False)
    eigvals, eigvecs = np.linalg.eigh(cov)  # ascending
    # A covariance has no negative variances; grey images (rank 1) give -1e-13 by rounding.
    eigvals = np.clip(eigvals, 0.0, None)
    order = np.argsort(eigvals)[::-1]
    return eigvals[order], eigvecs[:, order]


class PCAColour:
    """Add ``eigvecs @ (alpha * s)`` to every pixel of each image, alpha ~ N(0, std^2) (3,) per
    image; ``s = sqrt(eigvals)`` if ``sqrt_eigvals`` else ``eigvals`` (module doc: units).

    batch (N, 3, H, W) in the units of the stats (0-255 pixels, mean-subtracted or not: a shift
    does not care) -> (N, 3, H, W).
    """

    def __init__(self, eigvals, eigvecs, std: float = 0.1, sqrt_eigvals: bool = True):
        eigvals = np.clip(np.asarray(eigvals, dtype=np.float64), 0.0, None)
        self.scale = np.sqrt(eigvals) if sqrt_eigvals else eigvals
        self.eigvecs = np.asarray(eigvecs, dtype=np.float64)
        self.std, self.sqrt_eigvals = std, sqrt_eigvals

    def shifts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(N, 3) RGB shifts, one per image: rows are eigvecs @ (alpha * s)."""
        alpha = rng.normal(0.0, self.std, size=(n, 3))
        return (alpha * self.scale) @ self.eigvecs.T

    def __call__(self, batch, rng):
        xp = array_module(batch)
        shift = self.shifts(batch.shape[0], rng).astype(np.float32)
        return batch + xp.asarray(shift)[:, :, None, None]

    def __repr__(self):
        s = ", ".join(f"{v:.3g}" for v in self.scale)
        return f"PCAColour(std={self.std:g}, s=[{s}])"
