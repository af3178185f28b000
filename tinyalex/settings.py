"""The settings of a training run: the command line, the defaults, and the resume rule.

``parse_args`` reads the flags (every default None, so a flag left out can be told apart
from one given); ``run_settings`` turns them into the run's config: on a new run the flags
given, else ``tinyalex.recipes.defaults(model, data)``, else ``BASE``; on ``--resume`` the
checkpoint's settings, with the rule below for flags given again (``RESUME_RULE``).
"""

from __future__ import annotations

import argparse
import os
import textwrap

from . import recipes
from .augment import PRESETS
from .backend import BACKENDS
from .cli import (
    ArgumentParser,
    UserError,
    fraction,
    int_list,
    nonnegative_float,
    positive_float,
    positive_int,
)
from .data import DATASETS
from .models import MODELS, input_size_problem

PROG = "python -m tinyalex.train"

# The settings of a run, all stored in its checkpoint (meta["config"]). On --resume:
# FIXED ones define the run and must match if given again; CHANGEABLE ones take effect
# from the resumed step, with a printed note; the rest (--epochs, the new total, and
# --backend) are taken as given, else from the checkpoint.
FIXED = (
    "model",
    "data",
    "limit",
    "val_limit",
    "batch_size",
    "seed",
    "augment",
    "init",
    "image_size",
    "input_size",
    "normalize",
    "schedule",
)
CHANGEABLE = (
    "data_dir",
    "lr",
    "momentum",
    "weight_decay",
    "patience",
    "milestones",
    "warmup",
    "eval_crops",
    "backend",
    "tf32",
)
SETTINGS = (*FIXED, *CHANGEABLE, "epochs")
# Settings added after the first checkpoints were written: what those checkpoints ran with.
LATER = {"tf32": False, "input_size": None, "warmup": 0.0}

# Settings not in tinyalex.recipes: the same for every model and dataset.
BASE = {
    "backend": "numpy",
    "model": "cifar",
    "data": "synthetic",
    "data_dir": None,
    "seed": 0,
    "eval_crops": 1,
    "limit": None,
    "val_limit": None,
}

RESUME_RULE = (
    "--resume FILE continues the run saved in FILE with every setting stored in it, and "
    "writes beside FILE unless --out says otherwise; `--resume FILE --epochs N` (N: the new "
    "total) goes on exactly as if never stopped (bit for bit on NumPy). Flags that define "
    "the run (--model --data --limit --val-limit --batch-size --seed --augment --init "
    "--image-size --input-size --normalize --schedule) may be repeated with the same value; "
    "a different value is refused. --lr --momentum --weight-decay --patience --milestones "
    "--warmup --eval-crops --data-dir --backend --tf32 take effect from the resumed step, with a "
    "printed note, and are stored for the next resume."
)

SAFETY = (
    "A folder holding a run is never reused silently: --out DIR with a run in it stops "
    "unless --resume continues that run or --overwrite replaces it; without --out each new "
    "run gets a free folder (runs/DATA-MODEL, then -2, -3, ...). Ctrl-C or SIGTERM saves "
    "a checkpoint at the current step (exit 130 / 143); a NaN or inf in the loss, the "
    "weights or the validation stops the run before anything is saved."
)


def parse_args(argv=None) -> argparse.Namespace:
    """The command line as given: a setting left out is None (see ``run_settings``)."""
    p = ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        epilog="\n\n".join(
            textwrap.fill(text, 79)
            for text in (
                "Defaults marked * depend on --model and --data (tinyalex/recipes.py).",
                f"Resume: {RESUME_RULE}",
                SAFETY,
            )
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backend", choices=BACKENDS, help="default numpy")
    p.add_argument("--model", choices=sorted(MODELS), help="default cifar")
    p.add_argument("--data", choices=DATASETS, help="default synthetic")
    p.add_argument("--data-dir", help="where the dataset's files are")
    p.add_argument("--epochs", type=positive_int, help="* total epochs (also when resuming)")
    p.add_argument("--batch-size", type=positive_int, help="*")
    p.add_argument(
        "--lr",
        type=positive_float,
        help="* initial learning rate (the paper's 0.01; 0.002 for the CIFAR net on 0-255 "
        "pixel inputs, where 0.01 diverges)",
    )
    p.add_argument("--momentum", type=fraction, help="* in [0, 1)")
    p.add_argument("--weight-decay", type=nonnegative_float, help="*")
    p.add_argument(
        "--patience",
        type=positive_int,
        help="* epochs without a better validation error before lr /= 10 (3 times)",
    )
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--augment", choices=PRESETS, help="*")
    p.add_argument(
        "--init",
        choices=("paper", "he"),
        help="* the paper's N(0, 0.01^2) draw (for 0-255 pixel inputs), or He's (for "
        "standardised inputs; alexnet's fc8 stays N(0, 0.01^2)); the CIFAR net draws only "
        "conv1 differently",
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        help="* stored image side, cropped to the model's input (256 for alexnet, the "
        "dataset's own for cifar)",
    )
    p.add_argument(
        "--input-size",
        type=positive_int,
        help="* the model's input side, to which images are cropped (alexnet: 227, or 4k + 11 "
        "from 67; the CIFAR net: 24, or any side from 8)",
    )
    p.add_argument(
        "--normalize",
        choices=("pixel-mean", "channel"),
        help="* subtract the paper's per-pixel mean image, or standardise each channel",
    )
    p.add_argument(
        "--schedule",
        choices=("plateau", "step"),
        help="* lr /10 when the validation error stalls (the paper's), or at --milestones",
    )
    p.add_argument(
        "--milestones",
        type=int_list,
        help="* epochs after which the step schedule divides lr by 10, e.g. 30,60",
    )
    p.add_argument(
        "--warmup",
        type=nonnegative_float,
        help="* epochs over which lr rises linearly from lr/steps to lr at the start (0: none)",
    )
    p.add_argument("--eval-crops", type=int, choices=(1, 10), help="default 1")
    p.add_argument("--limit", type=positive_int, help="use the first N training images")
    p.add_argument("--val-limit", type=positive_int, help="use the first N validation images")
    p.add_argument("--out", help="output folder (default: a free runs/DATA-MODEL[-N])")
    p.add_argument("--resume", metavar="FILE", help="checkpoint to continue (rule below)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run already in --out, on purpose"
    )
    p.add_argument(
        "--parallel",
        choices=("none", "data", "model"),
        default="none",
        help="under mpiexec: data (a share of each batch per rank) or model (the paper's two "
        "towers, 2 ranks); see tinyalex/parallel",
    )
    p.add_argument(
        "--transport",
        choices=("auto", "mpi", "nccl", "staged"),
        default="auto",
        help="how ranks talk: MPI on the host (numpy), NCCL (a GPU per rank), or MPI staged "
        "through the host (ranks sharing a GPU); auto picks",
    )
    p.add_argument(
        "--tf32",
        action=argparse.BooleanOptionalAction,
        help="cupy: float32 GEMMs (conv, fc) on TF32 tensor cores (10-bit mantissa inputs); "
        "default off, or on where CUPY_TF32=1",
    )
    return p.parse_args(argv)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_settings(args: argparse.Namespace, resumed: dict | None) -> tuple[dict, list[str]]:
    """The settings a run uses, and notes to print; ``args`` itself is left as given.

    A new run: the flags given, else tinyalex.recipes.defaults(model, data), else BASE.
    A resumed run: the checkpoint's settings, with the flags given applied by RESUME_RULE.
    """
    notes = []
    if resumed is None:
        model = args.model or BASE["model"]
        data = args.data or BASE["data"]
        recipe = recipes.defaults(model, data)
        if unknown := set(recipe) - set(SETTINGS):  # a recipe setting no flag carries
            raise ValueError(f"recipes.defaults gives {sorted(unknown)}: not train.SETTINGS")
        tf32 = os.environ.get("CUPY_TF32", "0").strip() not in ("", "0")  # CuPy's own switch
        config = {**BASE, **recipe, "model": model, "data": data, "tf32": tf32}
        config = {key: config.get(key) for key in SETTINGS}
        for key in SETTINGS:
            if getattr(args, key) is not None:
                config[key] = getattr(args, key)
        if args.milestones is None and config["schedule"] != "step":
            config["milestones"] = []  # a recipe's milestones go with its step schedule only
    else:
        meta = resumed["meta"]
        config = {key: meta["config"].get(key, LATER.get(key)) for key in SETTINGS}
        for key in FIXED:
            given, stored = getattr(args, key), config[key]
            if key == "image_size" and stored is None:
                stored = meta["stored_size"]
            if key == "input_size" and stored is None:
                stored = meta["crop_size"]
            if given is not None and given != stored:
                raise UserError(
                    f"{_flag(key)} {_shown(given)} differs from the checkpoint's "
                    f"{_shown(stored)}: a resumed run keeps the settings that define it "
                    "(start a new run to change it; see --help)"
                )
        for key in CHANGEABLE:
            given = getattr(args, key)
            if given is not None and given != config[key]:
                notes.append(
                    f"note: {_flag(key)} {_shown(given)} replaces the checkpoint's "
                    f"{_shown(config[key])} from epoch {meta['epoch'] + 1}, batch "
                    f"{meta['batch'] + 1} on"
                )
                config[key] = given
        if args.epochs is not None:
            config["epochs"] = args.epochs
        if config["epochs"] <= meta["epoch"]:
            raise UserError(
                f"the checkpoint has already trained {meta['epoch']} epochs; give a larger "
                f"--epochs (the new total) to continue it"
            )
    if config["milestones"] and config["schedule"] != "step":
        raise UserError("--milestones needs --schedule step")
    if resumed is None and config["input_size"] is not None:
        if problem := input_size_problem(config["model"], config["input_size"]):
            raise UserError(f"--input-size: {problem}")
    return config, notes
