"""What a training run shares with evaluation and prediction: building the pieces from a
config, restoring them from a checkpoint, and scoring a model on a set of images.
"""

from __future__ import annotations

import numpy as np

from .augment import make_eval
from .backend import get_module
from .checkpoint import CheckpointError
from .layers import softmax
from .models import MODELS, Model, build

# What evaluation and prediction read from a checkpoint's meta (checkpoint.require).
EVAL_META = ("model.name", "model.config", "config.augment", "crop_size", "stored_size", "classes")


def restore_model(ckpt: dict, backend: str = "numpy") -> Model:
    """The checkpoint's model with its parameters, on ``backend``.

    A model name, config or parameter set that does not fit raises CheckpointError: the
    file, not the code, is what is wrong.
    """
    path = ckpt.get("path", "checkpoint")
    spec = ckpt["meta"]["model"]
    name, config = spec.get("name"), spec.get("config")
    if name not in MODELS:
        raise CheckpointError(f"{path}: model {name!r} is not one of {sorted(MODELS)}")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model's config is not a JSON object")
    try:
        model = build(name, **config)
        model.load_params(ckpt["params"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: the {name} model does not load: {e}") from e
    return model.to(backend)


def eval_transform(meta: dict, norm: dict, crops: int):
    """The run's evaluation view(s): callable batch -> (crops, N, C, s, s).

    meta: a checkpoint's meta (its augment preset and crop size); norm: its data arrays
    (``mean``, and ``std`` when the run standardised each channel).
    """
    preset, crop = meta["config"]["augment"], meta["crop_size"]
    return make_eval(preset, crop, mean=norm["mean"], std=norm.get("std"), crops=crops)


def predict_probs(model: Model, batch, view) -> np.ndarray:
    """Class probabilities, softmax averaged over the views (10-crop testing, P §4.1).

    batch: float32 (N, 3, H, W) raw pixels on the model's backend; view: an eval transform.
    Returns (N, K) on the same backend.
    """
    views = view(batch)  # (V, N, C, s, s)
    v, n = views.shape[:2]
    logits = model.forward(views.reshape(v * n, *views.shape[2:]), train=False)
    return softmax(logits).reshape(v, n, -1).mean(axis=0)


def score(model: Model, x_uint8, y, view, batch_size: int, backend: str) -> dict:
    """Mean cross-entropy and top-1 / top-5 error of the averaged softmax over a set.

    x_uint8: (N, 3, H, W) host images; view: an eval transform. On NumPy each batch is cast
    and viewed on the host; on a GPU the images go over as uint8 and are viewed there
    (data/device.py). Either way ``device.score`` adds the numbers up, read once at the end.
    """
    from .data import device

    if len(y) == 0 or batch_size < 1:
        raise ValueError(f"score needs images and batch_size >= 1 (got {len(y)}, {batch_size})")
    if backend != "numpy":
        batches = device.EvalBatches(x_uint8, y, batch_size, get_module(backend), view)
    else:
        batches = (
            (
                view(x_uint8[i : i + batch_size].astype(np.float32)),
                np.asarray(y[i : i + batch_size]),
            )
            for i in range(0, len(y), batch_size)
        )
    return device.score(model, batches)
