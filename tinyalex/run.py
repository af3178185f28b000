"""What a training run shares with evaluation and prediction: building the pieces from a
config, restoring them from a checkpoint, and scoring a model on a set of images.
"""

from __future__ import annotations

import numpy as np

from .augment import make_eval
from .backend import array_module, to_device
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
    """Mean cross-entropy and top-1 / top-5 error of the averaged softmax over a set."""
    if len(y) == 0 or batch_size < 1:
        raise ValueError(f"score needs images and batch_size >= 1 (got {len(y)}, {batch_size})")
    total_loss, top1, top5, n = 0.0, 0, 0, len(y)
    for start in range(0, n, batch_size):
        xb = to_device(x_uint8[start : start + batch_size].astype(np.float32), backend)
        yb = to_device(np.asarray(y[start : start + batch_size]), backend)
        probs = predict_probs(model, xb, view)
        xp = array_module(probs)
        rows = xp.arange(len(yb))
        total_loss += float(-xp.log(xp.maximum(probs[rows, yb], 1e-12)).sum())
        k = min(5, probs.shape[1])
        ranked = xp.argsort(-probs, axis=1)[:, :k]
        top1 += int((ranked[:, 0] == yb).sum())
        top5 += int((ranked == yb[:, None]).any(axis=1).sum())
    return {"loss": total_loss / n, "top1_error": 1 - top1 / n, "top5_error": 1 - top5 / n}
