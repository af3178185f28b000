"""Ready-made pipelines: ``make_pipeline`` for training batches, ``make_eval`` for testing.

Input: raw 0-255 float32 batches (N, C, H, W) at the stored size (H, W >= crop_size).
Output: (N, C, crop_size, crop_size) float32, ready for the model. ``mean`` is the training set's
per-pixel mean image (C, H, W) at the stored size, or None; ``pca`` is ``pca_colour_stats``'s
``(eigvals, eigvecs)``, or None.

=========== ============================================================= ====================
preset      train                                                         eval
=========== ============================================================= ====================
paper       SubtractMean -> RandomCrop -> RandomFlip -> PCAColour          SubtractMean ->
            (P §2, §4.1)                                                  CenterCrop
tf          RandomCrop -> RandomFlip -> RandomBrightness(63) ->           CenterCrop ->
            RandomContrast(0.2, 1.8) -> PerImageStandardization (TF's     PerImageStand.
            CIFAR-10 ``distorted_inputs``; ``mean`` is not used)
none        SubtractMean -> CenterCrop (no augmentation)                  same
geometric   paper, with Sometimes(0.5, one affine warp: rotate ±10°,       paper's
            scale 0.9-1.1 per axis, shear ±8°, shift ±5%) before the crop
all         geometric + Sometimes(0.3, lens k1 ±0.15) + brightness ±32 +   paper's
            contrast 0.7-1.3 (before PCA colour)
=========== ============================================================= ====================

Steps marked SubtractMean/PCAColour are left out when ``mean``/``pca`` is None. With ``std``
(per-channel, (C,)) and a per-channel ``mean``, SubtractMean becomes Standardize: the
per-channel mean/std option instead of the paper's mean image. Warps run on
the mean-subtracted, uncropped image, so their ``fill=0`` is the mean colour and the crop sees
fewer filled corners.
"""

from __future__ import annotations

from ..backend import array_module
from .affine import RandomAffine, RandomRotate, RandomScale, RandomShear, RandomTranslate
from .compose import Compose, Sometimes
from .crop import CenterCrop, RandomCrop, ten_crop
from .flip import RandomFlip
from .lens import RandomLensDistortion
from .normalize import PerImageStandardization, Standardize, SubtractMean
from .pca_colour import PCAColour
from .photometric import RandomBrightness, RandomContrast

PRESETS = ("paper", "tf", "none", "geometric", "all")


def _check_preset(preset):
    if preset not in PRESETS:
        choices = ", ".join(PRESETS)
        raise ValueError(f"unknown augmentation preset {preset!r}; choose from {choices}")


def small_affine():
    """The geometric presets' warp: all four parts fused into one matrix (one interpolation)."""
    parts = [
        RandomRotate(10.0),
        RandomScale((0.9, 1.1), (0.9, 1.1)),
        RandomShear(8.0),
        RandomTranslate(0.05, 0.05),
    ]
    return RandomAffine(parts)


def _mean_steps(mean, std=None):
    """The paper's mean subtraction, or per-channel standardisation when ``std`` is given."""
    if mean is None:
        return []
    return [SubtractMean(mean) if std is None else Standardize(mean, std)]


def make_pipeline(
    preset: str, crop_size: int, *, mean=None, std=None, pca=None, train: bool = True
):
    """A callable ``(batch, rng) -> batch`` for ``preset`` (see the table in the module doc)."""
    _check_preset(preset)
    if not train or preset == "none":
        if preset == "tf":
            return Compose([CenterCrop(crop_size), PerImageStandardization()])
        return Compose(_mean_steps(mean, std) + [CenterCrop(crop_size)])
    if preset == "tf":
        return Compose(
            [
                RandomCrop(crop_size),
                RandomFlip(0.5),
                RandomBrightness(63.0),
                RandomContrast(0.2, 1.8),
                PerImageStandardization(),
            ]
        )
    steps = _mean_steps(mean, std)
    if preset in ("geometric", "all"):
        steps.append(Sometimes(0.5, small_affine()))
    if preset == "all":
        steps.append(Sometimes(0.3, RandomLensDistortion((-0.15, 0.15))))
    steps += [RandomCrop(crop_size), RandomFlip(0.5)]
    if preset == "all":
        steps += [RandomBrightness(32.0), RandomContrast(0.7, 1.3)]
    if pca is not None:
        steps.append(PCAColour(*pca, std=0.1))
    return Compose(steps)


def make_eval(preset: str, crop_size: int, *, mean=None, std=None, crops: int = 1):
    """A callable ``batch -> (crops, N, C, s, s)``: 1 = the preset's eval view; 10 = ten-crop.

    With 10 crops the views come in ``crop.TEN_CROP_ORDER``; average the softmax over axis 0.
    """
    _check_preset(preset)
    if crops not in (1, 10):
        raise ValueError(f"crops must be 1 or 10; got {crops}")
    if crops == 1:
        single = make_pipeline(preset, crop_size, mean=mean, std=std, train=False)
        return lambda batch: single(batch, None)[None]

    before = Compose([] if preset == "tf" else _mean_steps(mean, std))

    def evaluate(batch):
        views = ten_crop(before(batch), crop_size)  # (10, N, C, s, s)
        if preset == "tf":  # TF standardises the crop it feeds, so each view on its own
            xp = array_module(views)
            flat = views.reshape((-1,) + views.shape[2:])
            views = xp.reshape(PerImageStandardization()(flat), views.shape)
        return views

    return evaluate
