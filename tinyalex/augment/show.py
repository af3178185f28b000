"""``--show``: every transform applied several times to one photograph, as a labelled grid.

Each row is one transform (its name and parameter ranges on the left), each column one draw
from the same seeded rng. Two rows sweep a parameter left to right instead, to pin down the
conventions by eye: rotation (+ = counter-clockwise) and lens k1 (+ = barrel).
"""

from __future__ import annotations

import textwrap

import numpy as np

from .affine import RandomRotate, RandomScale, RandomShear, RandomTranslate, rotation
from .compose import Sometimes
from .crop import CenterCrop, RandomCrop
from .flip import RandomFlip
from .lens import RandomLensDistortion, lens_distort
from .normalize import PerImageStandardization
from .pca_colour import PCAColour, pca_colour_stats
from .photometric import RandomBrightness, RandomContrast
from .presets import PRESETS, make_pipeline
from .warp import warp_affine


def load_image(path: str | None, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8: shorter side resized to ``size``, centre square (P §2's recipe).

    ``path`` None means skimage's bundled astronaut photograph.
    """
    from PIL import Image

    if path is None:
        from skimage import data

        img = Image.fromarray(data.astronaut())
    else:
        img = Image.open(path).convert("RGB")
    w, h = img.size
    k = size / min(w, h)
    img = img.resize((max(size, round(w * k)), max(size, round(h * k))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _sweep_rotation(angles):
    return lambda b, rng: warp_affine(b, rotation(angles, *b.shape[2:]))


def _sweep_lens(k1s):
    return lambda b, rng: lens_distort(b, k1s, np.zeros_like(k1s))


def grid_rows(size: int, cols: int, mean_rgb, pca):
    """(label, transform, display) rows; display maps an output back to 0-255 for viewing."""
    crop = max(1, round(size * 224 / 256))
    raw = "raw"
    angles = np.linspace(-45, 45, cols)
    k1s = np.linspace(-0.4, 0.4, cols)
    exaggerated = PCAColour(*pca, std=0.5)
    rows = [
        ("original", lambda b, rng: b, raw),
        (repr(RandomCrop(crop)), RandomCrop(crop), raw),
        (repr(CenterCrop(crop)), CenterCrop(crop), raw),
        (repr(RandomFlip(0.5)), RandomFlip(0.5), raw),
        (repr(PCAColour(*pca)), PCAColour(*pca), raw),
        ("PCAColour std=0.5\n(5x the paper's, to see it)", exaggerated, raw),
        (repr(RandomBrightness(63)), RandomBrightness(63), raw),
        (repr(RandomContrast(0.2, 1.8)), RandomContrast(0.2, 1.8), raw),
        ("PerImageStandardization\n(shown as 60 z + 128)", PerImageStandardization(), "z"),
        (repr(RandomTranslate(0.1, 0.1)), RandomTranslate(0.1, 0.1), raw),
        (repr(RandomRotate(30)), RandomRotate(30), raw),
        (
            f"rotation {angles[0]:g}° … +{angles[-1]:g}°\n(+ = counter-clockwise)",
            _sweep_rotation(angles),
            raw,
        ),
        (repr(RandomScale((0.7, 1.3), (0.7, 1.3))), RandomScale((0.7, 1.3), (0.7, 1.3)), raw),
        (repr(RandomShear(20)), RandomShear(20), raw),
        (repr(RandomLensDistortion((-0.4, 0.4))), RandomLensDistortion((-0.4, 0.4)), raw),
        (
            f"lens k1 {k1s[0]:g} … +{k1s[-1]:g}\n(- pincushion, + barrel)",
            _sweep_lens(k1s),
            raw,
        ),
        ("Sometimes(0.5, RandomRotate(±30°))", Sometimes(0.5, RandomRotate(30)), raw),
    ]
    for preset in PRESETS:
        pipe = make_pipeline(preset, crop, mean=mean_rgb, pca=pca)
        rows.append((f"preset '{preset}' (train)", pipe, "z" if preset == "tf" else "mean"))
    return rows


def to_display(out, display, mean_rgb):
    """(N, 3, h, w) transform output -> (N, h, w, 3) uint8 for imshow."""
    if display == "mean":
        out = out + mean_rgb[None, :, None, None]
    elif display == "z":
        out = out * 60 + 128
    return np.clip(out, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def render(image_hwc: np.ndarray, out_path: str, seed: int = 0, cols: int = 6) -> int:
    """Draw the grid for one (H, W, 3) uint8 image into ``out_path``; returns the row count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = image_hwc.shape[0]
    batch = np.repeat(image_hwc.transpose(2, 0, 1)[None].astype(np.float32), cols, axis=0)
    mean_rgb = batch[0].mean(axis=(1, 2))  # per-channel: can be added back after any crop
    pca = pca_colour_stats(image_hwc.transpose(2, 0, 1)[None])
    rows = grid_rows(size, cols, mean_rgb, pca)

    fig, axes = plt.subplots(len(rows), cols, figsize=(1.7 * cols + 2.6, 1.7 * len(rows)))
    for r, (label, transform, display) in enumerate(rows):
        rng = np.random.default_rng(seed + r)
        images = to_display(transform(batch.copy(), rng), display, mean_rgb)
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[c], extent=(0, images.shape[2], images.shape[1], 0))
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_xticks([])
            ax.set_yticks([])
        label = "\n".join(
            textwrap.fill(line, 26, break_on_hyphens=False) for line in label.split("\n")
        )
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"tinyalex.augment, seed {seed}: one transform per row, one draw per column")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    try:
        fig.savefig(out_path, dpi=80)  # an OSError here is the caller's to report
    finally:
        plt.close(fig)
    return len(rows)
