"""Train AlexNet (or the small CIFAR AlexNet) the paper's way: ``python -m tinyalex.train``.

With no arguments it trains the CIFAR-style AlexNet on the embedded synthetic dataset on the
CPU in a few minutes. Everything a run makes goes to ``--out``: checkpoint.npz (exact resume
with ``--resume``), metrics.jsonl (one line an epoch) and curves.png.

    python -m tinyalex.train --data fashion-mnist --epochs 12
    python -m tinyalex.train --backend cupy --model alexnet --data folder --data-dir ~/imagenet
    python -m tinyalex.train --resume runs/synthetic-cifar/checkpoint.npz --epochs 20

A run is built in four named parts (``Trainer``): the data, the model (restored or built),
the input pipelines, the optimiser and its schedule. Each epoch calls
:func:`tinyalex.step.train_step` once per batch.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from . import checkpoint, recipes, rundir
from .augment import PRESETS, make_pipeline, pca_colour_stats
from .backend import BACKENDS, get_module, set_tf32, synchronize, to_device
from .checkpoint import CheckpointError
from .cli import (
    USER_ERRORS,
    ArgumentParser,
    OutputError,
    UserError,
    fraction,
    int_list,
    nonnegative_float,
    positive_float,
    positive_int,
    report,
)
from .data import DATASETS, BatchLoader, DataError, channel_stats, device, load_dataset, mean_image
from .layers import Dropout, SoftmaxCrossEntropy
from .models import MODELS, build
from .optim import SGD, ReduceOnPlateau, StepSchedule
from .run import EVAL_META, eval_transform, restore_model, score
from .step import train_step

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
    "eval_crops",
    "backend",
    "tf32",
)
SETTINGS = (*FIXED, *CHANGEABLE, "epochs")
# Settings added after the first checkpoints were written: what those checkpoints ran with.
LATER = {"tf32": False}

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
    "--image-size --normalize --schedule) may be repeated with the same value; a different "
    "value is refused. --lr --momentum --weight-decay --patience --milestones --eval-crops "
    "--data-dir --backend --tf32 take effect from the resumed step, with a printed note, and are "
    "stored for the next resume."
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
        help="* initial learning rate (the paper's 0.01 for alexnet; 0.002 for the CIFAR "
        "net, whose He-initialised hidden layers see pixel-scale inputs)",
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
        "--init", choices=("paper", "he"), help="* alexnet's initialisation (the CIFAR net's own)"
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        help="* stored image side, cropped to the model's input (256 for alexnet, the "
        "dataset's own for cifar)",
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
    return config, notes


class StopRequest:
    """The first Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current step
    (it then saves); a second one interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signal: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested, self.signal = True, signum

        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


class Diverged(FloatingPointError):
    """A NaN or inf in the loss, the weights or the validation: the run stops unsaved."""


# What a checkpoint must hold for a run to continue from it.
RESUME_META = (
    *EVAL_META,
    "epoch",
    "batch",
    "scheduler",
    "dropout_rng",
    *(f"config.{key}" for key in SETTINGS if key not in LATER),
)


class Trainer:
    """One training run: the data, the model, the pipelines, the optimiser, the loop.

    ``args`` is the command line as given and is never changed; ``config`` holds the
    settings in effect (``run_settings``), which the checkpoint stores.
    """

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.resumed = self._read_checkpoint()
        self.config, notes = run_settings(args, self.resumed)
        self.out, self.out_base = self._choose_output()
        get_module(self.config["backend"])  # BackendError now if cupy cannot run here
        set_tf32(self.config["tf32"])  # the run's GEMM precision, also when resumed
        for note in notes:
            print(note, flush=True)

        self.data = self._load_data()
        self.model, self.norm = self._restore_or_build_model()
        self.train_view, self.eval_view = self._make_pipelines()
        self.opt, self.schedule = self._make_optimiser()
        self.loss_fn = SoftmaxCrossEntropy()
        self.epoch, self.batch = 0, 0  # completed epochs; batches done in the next one
        self.partial = {"loss_sum": 0.0, "errors": 0, "seen": 0, "seconds": 0.0}
        # The file that holds the last good state, and its (epoch, batch): what a message
        # after a NaN or a failed write points to.
        self.last_good: tuple[Path, int, int] | None = None
        if self.resumed:
            self._restore_progress()

        on_gpu = self.config["backend"] != "numpy"
        # On the CPU augmentation runs in the loader's thread, overlapping the step; on the
        # GPU the raw batch is copied over and augmented there (same seeded parameters).
        self.loader = BatchLoader(
            self.data.train_x,
            self.data.train_y,
            self.config["batch_size"],
            seed=self.config["seed"],
            transform=None if on_gpu else self._augment,
        )
        # Steps between reads of the loss on the host: each read waits for the GPU.
        self.sync_every = 16 if on_gpu else 1
        # On the GPU the uint8 sets live on the device where they fit and each batch is made
        # there (data/device.py); the loader then only gives the order and batch_rng.
        self.device_train, self.device_eval = self._device_pipelines() if on_gpu else (None, None)

    # ------------------------------------------------------------------ construction parts
    def _read_checkpoint(self) -> dict | None:
        if not self.args.resume:
            return None
        ckpt = checkpoint.load(self.args.resume)
        checkpoint.require(ckpt, self.args.resume, *RESUME_META)
        meta = ckpt["meta"]
        if not all(isinstance(meta[k], int) and meta[k] >= 0 for k in ("epoch", "batch")):
            raise CheckpointError(f"checkpoint {self.args.resume}: epoch and batch are not counts")
        return ckpt

    def _choose_output(self) -> tuple[Path, Path | None]:
        """The output folder, checked before anything is loaded (rundir.check_folder).

        --out as given; else beside the checkpoint when resuming; else a free
        runs/DATA-MODEL[-N] (then also returned: the base to pick another from). A folder
        holding another run is refused unless --overwrite.
        """
        args, config = self.args, self.config
        if args.out:
            out, base = Path(args.out), None
        elif args.resume:
            out, base = Path(args.resume).parent, None
        else:
            base = Path("runs") / f"{config['data']}-{config['model']}"
            out = rundir.free_folder(base)
            if out != base:
                print(f"note: {base} holds an earlier run; this one writes to {out}", flush=True)
        rundir.check_folder(out)
        if base is None and not self._continues_in(out) and not args.overwrite:
            present = rundir.run_files(out)
            if present:
                raise UserError(
                    f"--out {out} already holds a run ({', '.join(present)}); continue it "
                    f"with --resume {out / 'checkpoint.npz'}, replace it with --overwrite, "
                    "or choose another --out"
                )
        return out, base

    def _continues_in(self, out: Path) -> bool:
        """Whether ``out`` is the folder of the checkpoint being resumed (continued in place)."""
        if not self.args.resume:
            return False
        return Path(self.args.resume).resolve().parent == Path(out).resolve()

    def _load_data(self):
        c, meta = self.config, self.resumed["meta"] if self.resumed else None
        size = meta["stored_size"] if meta else c["image_size"]
        data = load_dataset(
            c["data"], data_dir=c["data_dir"], size=size, limit=c["limit"], seed=c["seed"]
        )
        print(f"tinyalex.train: {data.description}", flush=True)
        if meta and list(data.classes) != list(meta["classes"]):
            raise DataError(
                f"{c['data']} has classes {list(data.classes)[:5]}... but the checkpoint was "
                f"trained on {list(meta['classes'])[:5]}...; is --data-dir the run's data?"
            )
        if c["val_limit"]:
            data.val_x, data.val_y = data.val_x[: c["val_limit"]], data.val_y[: c["val_limit"]]
        return data

    def _restore_or_build_model(self):
        """(model, norm): the checkpoint's, or a new model and the training set's statistics."""
        c = self.config
        if self.resumed:
            model = restore_model(self.resumed, c["backend"])
            norm = self.resumed["data"]
            missing = {"mean", "pca_eigvals", "pca_eigvecs"} - set(norm)
            if missing:
                raise CheckpointError(f"checkpoint {self.args.resume} lacks data/{min(missing)}")
        else:
            config = {"num_classes": self.data.num_classes, "seed": c["seed"]}
            if c["model"] == "alexnet":
                config["init"] = c["init"]
            model = build(c["model"], **config).to(c["backend"])
            norm = normalisation_stats(self.data.train_x, c["normalize"], c["seed"])
        if self.data.image_size < model.input_size:
            raise DataError(
                f"images are {self.data.image_size}px but the model needs {model.input_size}px "
                f"crops; pass --image-size {model.input_size} or more"
            )
        return model, norm

    def _make_pipelines(self):
        """(train_view, eval_view): the augmentation and the evaluation crops."""
        norm, crop = self.norm, self.model.input_size
        eigvecs = norm["pca_eigvecs"]
        if "std" in norm:  # standardised inputs: the colour shift is divided by std too
            eigvecs = eigvecs / norm["std"][:, None]
        # Host arrays: the augmentation steps copy them to the batch's device once.
        train_view = make_pipeline(
            self.config["augment"],
            crop,
            mean=norm["mean"],
            std=norm.get("std"),
            pca=(norm["pca_eigvals"], eigvecs),
        )
        return train_view, eval_transform(self.meta_base(), norm, self.config["eval_crops"])

    def _make_optimiser(self):
        """(SGD, schedule), their state restored from the checkpoint when resuming."""
        c = self.config
        opt = SGD(self.model, c["lr"], c["momentum"], c["weight_decay"])
        if c["schedule"] == "plateau":
            schedule = ReduceOnPlateau(opt, patience=c["patience"], max_drops=3)
        else:
            schedule = StepSchedule(opt, c["milestones"])
        if self.resumed:
            stored = self.resumed["meta"]["config"]
            try:
                opt.load_state_dict(self.resumed["optimizer"])
                schedule.load_state_dict(self.resumed["meta"]["scheduler"])
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(
                    f"checkpoint {self.args.resume}: optimiser state does not fit the model "
                    f"({type(e).__name__}: {e})"
                ) from e
            # Changed settings (a note was printed) take effect from here on.
            if c["lr"] != stored["lr"]:
                opt.lr = c["lr"]
            opt.momentum, opt.weight_decay = c["momentum"], c["weight_decay"]
        return opt, schedule

    def _restore_progress(self) -> None:
        """Epoch and batch, dropout generators and the partial epoch's sums."""
        meta, path = self.resumed["meta"], Path(self.args.resume)
        try:
            self.epoch, self.batch = int(meta["epoch"]), int(meta["batch"])
            for name, state in meta["dropout_rng"].items():
                layer = self.model[name]
                if not isinstance(layer, Dropout):
                    raise KeyError(f"{name} is not a dropout layer")
                layer.rng.bit_generator.state = state
            partial = meta.get("partial") or {}
            for key in self.partial:
                self.partial[key] = type(self.partial[key])(partial.get(key, 0))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {path}: training state does not fit ({type(e).__name__}: {e})"
            ) from e
        self.last_good = (path, self.epoch, self.batch)
        print(
            f"resumed from {path}: epoch {self.epoch}, batch {self.batch}, lr {self.opt.lr:g}",
            flush=True,
        )

    def _augment(self, xb, yb, rng):
        return self.train_view(xb.astype(np.float32), rng), yb

    def meta_base(self) -> dict:
        """What every checkpoint of this run records besides its progress."""
        return {
            "config": dict(self.config),
            "crop_size": self.model.input_size,
            "stored_size": self.data.image_size,
            "classes": list(self.data.classes),
            "data_description": self.data.description,
            "model": {"name": self.config["model"], "config": self.model.config},
        }

    # ------------------------------------------------------------------ saving
    def last_good_text(self) -> str:
        if self.last_good is None:
            return "no checkpoint was written yet"
        path, epoch, batch = self.last_good
        at = f"epoch {epoch}" + (f", batch {batch}" if batch else "")
        return f"the last good state is in {path} ({at})"

    def diverged(self, what: str) -> Diverged:
        lower = f"{self.opt.lr / 10:g}"
        if self.last_good is None:
            advice = f"start again with a lower --lr than {self.opt.lr:g}"
        else:
            advice = f"try --resume {self.last_good[0]} --lr {lower}"
        return Diverged(f"{what}; stopped, nothing saved: {self.last_good_text()} ({advice})")

    def check_finite(self, where: str) -> None:
        """Diverged unless every weight and the epoch's loss sum are finite."""
        xp = get_module(self.config["backend"])
        if not math.isfinite(float(self.partial["loss_sum"])):
            raise self.diverged(f"the training loss became non-finite by {where}")
        for name, p in self.model.params.items():
            if not bool(xp.isfinite(p).all()):
                raise self.diverged(f"weight {name} became non-finite by {where}")

    def save(self) -> Path:
        """Write checkpoint.npz, only from finite weights (else Diverged, nothing written)."""
        if self.batch:
            self.check_finite(f"epoch {self.epoch + 1}, batch {self.batch}")
        else:
            self.check_finite(f"the end of epoch {self.epoch}")
        dropout = {
            name: layer.rng.bit_generator.state
            for name, layer in self.model.named_layers()
            if isinstance(layer, Dropout)
        }
        meta = {
            **self.meta_base(),
            "epoch": self.epoch,
            "batch": self.batch,
            "scheduler": self.schedule.state_dict(),
            "dropout_rng": dropout,
            "partial": {key: _plain(value) for key, value in self.partial.items()},
        }
        path = self.out / "checkpoint.npz"
        params, optimizer = self.checkpoint_state()
        try:
            checkpoint.save(
                path,
                params=params,
                optimizer=optimizer,
                data=self.norm,
                meta=meta,
            )
        except OSError as e:
            raise OutputError(
                f"cannot write {path}: {e.strerror or e}; {self.last_good_text()}"
            ) from e
        self.last_good = (path, self.epoch, self.batch)
        return path

    # ------------------------------------------------------------------ the loop
    def device_batch(self, xb, yb):
        """A batch as the step's input on the run's backend (GPU batches are made there)."""
        return xb, to_device(yb, self.config["backend"])

    def _device_pipelines(self):
        """(TrainBatches, EvalBatches): the GPU's batches, equal to the host pipeline's."""
        c, xp = self.config, get_module(self.config["backend"])
        mean, std = self.norm["mean"], self.norm.get("std")
        fused = device.fused_eval(c["augment"], self.model.input_size, mean=mean, std=std)
        train = device.TrainBatches(self.loader, self.train_view, xp)
        val = device.EvalBatches(
            self.data.val_x,
            self.data.val_y,
            c["batch_size"],
            xp,
            self.eval_view,
            fused=fused,
            crops=c["eval_crops"],
        )
        return train, val

    # The parts tinyalex.parallel.trainer replaces for --parallel data|model.
    def step(self, xb, yb):
        return train_step(self.model, self.loss_fn, self.opt, xb, yb)

    def evaluate(self) -> dict:
        c, data = self.config, self.data
        if self.device_eval is not None:  # views made, losses summed on the GPU
            return device.score(self.model, self.device_eval)
        return score(
            self.model, data.val_x, data.val_y, self.eval_view, c["batch_size"], c["backend"]
        )

    def checkpoint_state(self) -> tuple[dict, dict]:
        """(params, optimizer state) as the checkpoint stores them."""
        return self.model.params, self.opt.state_dict()

    def train_epoch(self, stop: StopRequest) -> dict | None:
        """One epoch of SGD; None if stopped early (the caller saves).

        The loss and error sums stay on the device; the host reads them every
        ``sync_every`` steps (each step on NumPy), and checks they are finite.
        """
        from tqdm import tqdm

        xp = get_module(self.config["backend"])
        self.loader.set_epoch(self.epoch, start_batch=self.batch)
        p = self.partial
        loss_sum = xp.asarray(p["loss_sum"], dtype=np.float64)
        errors = xp.asarray(p["errors"], dtype=np.int64)
        seen, t0 = p["seen"], time.perf_counter()
        bar = tqdm(
            self.loader if self.device_train is None else self.device_train,
            total=len(self.loader) - self.batch,
            disable=None,
            leave=False,
            desc=f"epoch {self.epoch + 1}/{self.config['epochs']}",
            unit="batch",
        )
        stopped = False
        for xb, yb in bar:
            xb, yb = self.device_batch(xb, yb)
            loss, logits = self.step(xb, yb)
            self.batch += 1
            loss_sum += loss.astype(np.float64) * len(yb)
            errors += (logits.argmax(axis=1) != yb).sum()
            seen += len(yb)
            stopped = stop.requested
            if stopped or self.batch % self.sync_every == 0:
                value = float(loss)
                if not math.isfinite(float(loss_sum)):
                    what = f"loss became {value}" if not math.isfinite(value) else "loss overflowed"
                    at = f"batch {self.batch}" if self.sync_every == 1 else f"by batch {self.batch}"
                    raise self.diverged(f"{what} at epoch {self.epoch + 1}, {at}")
                rate = (seen - p["seen"]) / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{value:.3f}", img_s=f"{rate:.0f}")
            if stopped:
                break
        synchronize()  # GPU work is queued: wait for it before reading the clock
        p.update(
            loss_sum=float(loss_sum),
            errors=int(errors),
            seen=seen,
            seconds=p["seconds"] + time.perf_counter() - t0,
        )
        if stopped:
            return None
        if not math.isfinite(p["loss_sum"]):
            raise self.diverged(f"the training loss became non-finite in epoch {self.epoch + 1}")
        stats = {
            "train_loss": p["loss_sum"] / max(seen, 1),
            "train_error": p["errors"] / max(seen, 1),
            "seconds": p["seconds"],
            "images_per_second": seen / p["seconds"],
        }
        self.partial = {"loss_sum": 0.0, "errors": 0, "seen": 0, "seconds": 0.0}
        return stats

    def run(self) -> int:
        """Claim the output folder, train to ``config["epochs"]``, release the folder."""
        lock = self._claim_output()
        try:
            # Overflow and NaN are found and reported by the loop's own checks (Diverged),
            # in one line instead of NumPy's warnings.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return self._train()
        finally:
            lock.release()

    def _claim_output(self) -> rundir.FolderLock:
        """Create and lock the folder; with --overwrite remove the old run's files; on
        resume carry the readable metrics up to the checkpoint's epoch."""
        while True:
            rundir.make_folder(self.out)
            try:
                lock = rundir.FolderLock(self.out).acquire()
                break
            except rundir.FolderLocked:  # another run took this folder since _choose_output
                if self.out_base is None:
                    raise
                self.out = rundir.free_folder(self.out_base)
        try:
            if self.args.overwrite and self._continues_in(self.out):
                print("note: --overwrite has no effect: --resume continues the run in place")
            elif self.args.overwrite:
                for name in rundir.run_files(self.out):
                    (self.out / name).unlink()
            if self.resumed:
                source = Path(self.args.resume).parent / "metrics.jsonl"
                rows, bad = rundir.read_metrics(source)
                if bad:
                    print(f"note: {source}: skipped unreadable line(s) {bad}", flush=True)
                rows = [row for row in rows if row["epoch"] <= self.epoch]
                rundir.write_metrics(self.out / "metrics.jsonl", rows)
        except BaseException:
            lock.release()
            raise
        return lock

    def _train(self) -> int:
        c = self.config
        n_params = sum(int(np.prod(p.shape)) for p in self.model.params.values())
        print(
            f"model {c['model']} ({n_params:,} parameters, input {self.model.input_size}px) "
            f"on {c['backend']}; augment {c['augment']}; out {self.out}",
            flush=True,
        )
        metrics = self.out / "metrics.jsonl"
        with StopRequest() as stop:
            while self.epoch < c["epochs"]:
                lr = self.opt.lr
                stats = self.train_epoch(stop)
                if stats is None:
                    path = self.save()
                    print(
                        f"interrupted: saved {path} (epoch {self.epoch}, batch {self.batch}); "
                        f"continue with --resume {path}",
                        file=sys.stderr,
                    )
                    return 128 + int(getattr(stop, "signal", None) or signal.SIGINT)
                t0 = time.perf_counter()
                val = self.evaluate()
                if not all(math.isfinite(v) for v in val.values()):
                    raise self.diverged(
                        f"validation loss became {val['loss']} after epoch {self.epoch + 1}"
                    )
                self.epoch, self.batch = self.epoch + 1, 0
                dropped = self.schedule.step(val["top1_error"], epoch=self.epoch)
                record = {
                    "epoch": self.epoch,
                    "lr": lr,
                    **stats,
                    "val_loss": val["loss"],
                    "val_top1_error": val["top1_error"],
                    "val_top5_error": val["top5_error"],
                    "eval_seconds": time.perf_counter() - t0,
                }
                self.save()
                rundir.append_metrics(metrics, record)
                print(
                    f"epoch {self.epoch:>3}/{c['epochs']}  lr {lr:<8g} "
                    f"train loss {stats['train_loss']:.3f} err {stats['train_error']:6.1%}  "
                    f"val loss {val['loss']:.3f} top-1 {val['top1_error']:6.1%} "
                    f"top-5 {val['top5_error']:6.1%}  "
                    f"{stats['images_per_second']:.0f} img/s  {stats['seconds']:.1f}s"
                    + ("  (lr /10)" if dropped else ""),
                    flush=True,
                )
                plot_curves(metrics, self.out / "curves.png")
        print(f"done: {self.out / 'checkpoint.npz'}, {metrics}, {self.out / 'curves.png'}")
        return 0


def _plain(value):
    """A Python number for JSON (from a NumPy scalar or a 0-d array)."""
    return value.item() if hasattr(value, "item") else value


def normalisation_stats(x_uint8, normalize: str, seed: int) -> dict:
    """What the input pipeline subtracts (and divides by), and the PCA colour statistics.

    "pixel-mean": the paper's per-pixel mean image (3, H, W) (P §2); "channel": per-channel
    mean and std (3,). Both in 0..255 pixel units, from the training set.
    """
    if normalize == "pixel-mean":
        stats = {"mean": mean_image(x_uint8)}
    else:
        mean, std = channel_stats(x_uint8)
        stats = {"mean": mean, "std": std}
    eigvals, eigvecs = pca_colour_stats(x_uint8, seed=seed)
    return {**stats, "pca_eigvals": eigvals, "pca_eigvecs": eigvecs}


def plot_curves(metrics_file: Path, png: Path) -> None:
    """Loss and error against epoch, train and validation, from metrics.jsonl.

    Drawn on a bare Figure, not pyplot, so a notebook's plotting backend is left alone.
    Lines that do not parse (a torn last line) are skipped.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows, _ = rundir.read_metrics(metrics_file)
    keys = ("train_loss", "val_loss", "train_error", "val_top1_error", "val_top5_error")
    rows = [r for r in rows if all(isinstance(r.get(k), (int, float)) for k in keys)]
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax1.plot(epochs, [r["val_loss"] for r in rows], "o-", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.plot(epochs, [100 * r["train_error"] for r in rows], "o-", label="train top-1")
    ax2.plot(epochs, [100 * r["val_top1_error"] for r in rows], "o-", label="val top-1")
    ax2.plot(epochs, [100 * r["val_top5_error"] for r in rows], "o--", label="val top-5")
    ax2.set(xlabel="epoch", ylabel="error (%)", title="error")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    tmp = png.with_suffix(".tmp.png")
    try:
        fig.savefig(tmp, dpi=100)
        tmp.replace(png)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {png}: {e.strerror or e}") from e


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.tf32:
        set_tf32(True)
    if args.parallel != "none":
        from .parallel.trainer import main as parallel_main

        return parallel_main(args)
    trainer = None
    try:
        trainer = Trainer(args)
        return trainer.run()
    except USER_ERRORS as e:
        return report(PROG, e)
    except Diverged as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, unsaved
        kept = trainer.last_good_text() if trainer else "nothing was trained"
        print(f"{PROG}: interrupted, not saved: {kept}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
