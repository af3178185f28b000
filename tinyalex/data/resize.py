"""Resizing a batch of uint8 images with Pillow's bilinear filter."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def _pillow_image():
    try:
        from PIL import Image
    except ImportError as e:  # Pillow is in requirements.txt, but say so if it is missing
        raise DataError("resizing images needs Pillow: pip install pillow") from e
    return Image


def resize_images(x: np.ndarray, size: int) -> np.ndarray:
    """Resize every image of ``x`` to ``size`` x ``size``.

    Args:
        x: uint8 (N, C, H, W) with C = 1 or 3.
        size: the new square side in pixels.

    Returns:
        uint8 (N, C, size, size); ``x`` itself when it already has that size.

    Pillow's bilinear filter widens its support when shrinking, so downscaling
    averages pixels instead of aliasing; one call per image is fast enough here
    (60000 Fashion-MNIST images take a few seconds).
    """
    n, c, h, w = x.shape
    if h == size and w == size:
        return x
    Image = _pillow_image()
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        if c == 3:  # Pillow wants RGB as (H, W, 3)
            image = Image.fromarray(np.ascontiguousarray(x[i].transpose(1, 2, 0)))
            out[i] = np.asarray(image.resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
        else:  # one grey ("L") plane at a time
            for ch in range(c):
                plane = Image.fromarray(np.ascontiguousarray(x[i, ch]))
                out[i, ch] = np.asarray(plane.resize((size, size), Image.BILINEAR))
    return out
