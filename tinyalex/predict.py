"""The five likeliest classes of image files: ``python -m tinyalex.predict CHECKPOINT IMAGE...``.

Each image is prepared as the run's data was (shorter side to the stored size, centre
square, RGB), then scored with the run's evaluation view (``--crops 10`` for ten-crop).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import checkpoint
from .backend import BACKENDS, get_module, to_device, to_numpy
from .data import DataError
from .data.folder import decode
from .run import USER_ERRORS, eval_transform, predict_probs, restore_model
from .train import ArgumentParser


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m tinyalex.predict", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    args = p.parse_args(argv)
    try:
        get_module(args.backend)  # fails here, clearly, if the backend cannot run
        ckpt = checkpoint.load(args.checkpoint)
        for path in args.images:
            if not Path(path).is_file():
                raise DataError(f"image {path} not found")
        x = decode([Path(path) for path in args.images], ckpt["meta"]["stored_size"])
        model = restore_model(ckpt, args.backend)
        view = eval_transform(ckpt["meta"], ckpt["data"], args.crops)
        probs = to_numpy(predict_probs(model, to_device(x.astype(np.float32), args.backend), view))
    except USER_ERRORS as e:
        print(f"python -m tinyalex.predict: error: {e}", file=sys.stderr)
        return 2
    classes = ckpt["meta"]["classes"]
    for path, row in zip(args.images, probs, strict=True):
        top = np.argsort(-row)[:5]
        print(f"{path}: " + ", ".join(f"{classes[k]} {row[k]:.1%}" for k in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
