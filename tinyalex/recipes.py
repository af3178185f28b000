"""Training recipes: the settings ``python -m tinyalex.train`` uses for each model and dataset.

``defaults(model, data)`` returns a dict keyed by train.py's argparse names (``lr``,
``epochs``, ``image_size``, ...); the command fills every flag left unset from it, so an
explicit flag always wins.
"""

from __future__ import annotations

# Stored image side: AlexNet crops 227 out of the paper's 256x256 images (P §2);
# the CIFAR net crops 24 out of each dataset's own size (None).
_STORED_SIZE = {"alexnet": 256, "cifar": None}

# The paper's 0.01 for alexnet; 0.002 for the CIFAR net, whose He-initialised hidden
# layers see pixel-scale inputs (0.01 diverges there).
_LR = {"alexnet": 0.01, "cifar": 0.002}


def defaults(model: str, data: str) -> dict:
    """The training settings for ``model`` ('alexnet' or 'cifar') on ``data``."""
    if model not in _LR:
        raise ValueError(f"no recipe for model {model!r}; choose from {', '.join(_LR)}")
    return {
        "lr": _LR[model],
        "epochs": 12,
        "batch_size": 128,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "patience": 2,
        "augment": "paper",
        "init": "paper",
        "image_size": _STORED_SIZE[model],
        "normalize": "pixel-mean",
        "schedule": "plateau",
        "milestones": [],
    }
