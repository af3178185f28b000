"""The five likeliest classes of image files: ``python -m tinyalex.predict CHECKPOINT IMAGE...``.

Each image is prepared as the run's data was (shorter side to the stored size, centre
square, RGB), then scored with the run's evaluation view (``--crops 10`` for ten-crop).
Images are decoded and scored ``--batch-size`` at a time, so memory stays bounded however
many paths are given; each batch's lines are printed as soon as it is scored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from . import checkpoint
from .backend import BACKENDS, get_module, to_device, to_numpy
from .cli import ArgumentParser, positive_int, run_command
from .data import DataError
from .data.folder import decode
from .run import EVAL_META, eval_transform, predict_probs, restore_model

PROG = "python -m tinyalex.predict"


def parse_args(argv=None):
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("images", nargs="+")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images scored at once")
    return p.parse_args(argv)


def predict(args) -> int:
    get_module(args.backend)  # fails here, clearly, if the backend cannot run
    ckpt = checkpoint.load(args.checkpoint)
    checkpoint.require(ckpt, args.checkpoint, *EVAL_META)
    for path in args.images:  # every path checked before any work
        if not Path(path).is_file():
            raise DataError(f"image {path} not found")
    model = restore_model(ckpt, args.backend)
    view = eval_transform(ckpt["meta"], ckpt["data"], args.crops)
    classes, size = ckpt["meta"]["classes"], ckpt["meta"]["stored_size"]
    for start in range(0, len(args.images), args.batch_size):
        paths = args.images[start : start + args.batch_size]
        x = to_device(decode([Path(path) for path in paths], size).astype(np.float32), args.backend)
        probs = to_numpy(predict_probs(model, x, view))
        for path, row in zip(paths, probs, strict=True):
            top = np.argsort(-row)[:5]
            print(f"{path}: " + ", ".join(f"{classes[k]} {row[k]:.1%}" for k in top), flush=True)
    return 0


def main(argv=None) -> int:
    return run_command(PROG, predict, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
