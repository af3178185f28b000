"""Top-1 / top-5 error of a checkpoint: ``python -m tinyalex.evaluate CHECKPOINT [--crops 10]``.

With ``--crops 10`` the softmax is averaged over the four corner crops, the centre crop and
their mirror images (the paper's test-time averaging, P §4.1).
"""

from __future__ import annotations

import sys

from . import checkpoint
from .backend import BACKENDS, get_module
from .cli import ArgumentParser, positive_int, run_command
from .data import DATASETS, DataError, load_dataset
from .run import EVAL_META, eval_transform, restore_model, score

PROG = "python -m tinyalex.evaluate"


def parse_args(argv=None):
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--data", choices=DATASETS, default=None, help="default: the run's dataset")
    p.add_argument("--data-dir", default=None, help="default: the run's, for the run's dataset")
    p.add_argument("--crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    p.add_argument("--batch-size", type=positive_int, default=100)
    p.add_argument("--limit", type=positive_int, default=None, help="the first N validation images")
    return p.parse_args(argv)


def evaluate(args) -> int:
    get_module(args.backend)
    ckpt = checkpoint.load(args.checkpoint)
    checkpoint.require(ckpt, args.checkpoint, *EVAL_META, "config.data", "config.seed")
    meta, config = ckpt["meta"], ckpt["meta"]["config"]
    name = args.data or config["data"]
    data_dir = args.data_dir or (config.get("data_dir") if name == config["data"] else None)
    data = load_dataset(name, data_dir=data_dir, size=meta["stored_size"], seed=config["seed"])
    if data.num_classes != len(meta["classes"]):
        raise DataError(
            f"{name} has {data.num_classes} classes but the checkpoint was "
            f"trained on {len(meta['classes'])}"
        )
    model = restore_model(ckpt, args.backend)
    view = eval_transform(meta, ckpt["data"], args.crops)
    x, y = data.val_x[: args.limit], data.val_y[: args.limit]
    result = score(model, x, y, view, args.batch_size, args.backend)
    print(
        f"{name} validation, {len(y)} images, {args.crops} crop{'s' if args.crops > 1 else ''}: "
        f"top-1 error {result['top1_error']:.2%}  top-5 error {result['top5_error']:.2%}  "
        f"loss {result['loss']:.4f}"
    )
    return 0


def main(argv=None) -> int:
    return run_command(PROG, evaluate, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
