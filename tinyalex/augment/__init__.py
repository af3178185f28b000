"""Data augmentation for tinyalex: the paper's crops, flips and PCA colour, TF's CIFAR-10
distortions, and hand-written geometric warps, for batches on NumPy or CuPy.

Conventions (the training loop relies on them):

- a batch is float32 (N, C, H, W), RGB, raw 0-255 pixel values unless a step says otherwise;
- every transform is ``t(batch, rng) -> batch``; ``rng`` is a ``numpy.random.Generator`` and all
  random parameters are drawn from it on the host, so a seed gives the same batch on either
  backend; deterministic transforms ignore ``rng``;
- ``ten_crop(batch, size)`` is a plain function: (N, C, H, W) -> (10, N, C, size, size).

``python -m tinyalex.augment --show`` draws every transform on a photograph;
``python -m tinyalex.augment --bench`` measures images per second.
"""

from .affine import (
    RandomAffine,
    RandomRotate,
    RandomScale,
    RandomShear,
    RandomTranslate,
    rotation,
    scaling,
    shear,
    translation,
)
from .compose import Compose, OneOf, Sometimes
from .crop import TEN_CROP_ORDER, CenterCrop, RandomCrop, crop_at, ten_crop
from .flip import RandomFlip, hflip
from .lens import RandomLensDistortion, lens_distort
from .normalize import PerImageStandardization, Standardize, SubtractMean, per_image_standardization
from .pca_colour import PCAColour, pca_colour_stats
from .photometric import RandomBrightness, RandomContrast, adjust_brightness, adjust_contrast
from .presets import PRESETS, make_eval, make_pipeline
from .sample import sample_bilinear
from .warp import warp_affine

__all__ = [
    "PRESETS",
    "TEN_CROP_ORDER",
    "CenterCrop",
    "Compose",
    "OneOf",
    "PCAColour",
    "PerImageStandardization",
    "RandomAffine",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomLensDistortion",
    "RandomRotate",
    "RandomScale",
    "RandomShear",
    "RandomTranslate",
    "Sometimes",
    "Standardize",
    "SubtractMean",
    "adjust_brightness",
    "adjust_contrast",
    "crop_at",
    "hflip",
    "lens_distort",
    "make_eval",
    "make_pipeline",
    "pca_colour_stats",
    "per_image_standardization",
    "rotation",
    "sample_bilinear",
    "scaling",
    "shear",
    "ten_crop",
    "translation",
    "warp_affine",
]
