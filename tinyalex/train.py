"""Train AlexNet (or the small CIFAR AlexNet) the paper's way: ``python -m tinyalex.train``.

With no arguments it trains the CIFAR-style AlexNet on the embedded synthetic dataset on the
CPU in a few minutes. Everything a run makes goes to ``--out``: checkpoint.npz (exact resume
with ``--resume``), metrics.jsonl (one line an epoch) and curves.png.

    python -m tinyalex.train --data fashion-mnist --epochs 12
    python -m tinyalex.train --backend cupy --model alexnet --data folder --data-dir ~/imagenet
    python -m tinyalex.train --resume runs/synthetic-cifar/checkpoint.npz --epochs 20
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import checkpoint
from .augment import PRESETS, make_pipeline, pca_colour_stats
from .backend import BACKENDS, get_module, synchronize, to_device
from .data import DATASETS, BatchLoader, DataError, channel_stats, load_dataset, mean_image
from .layers import Dropout, SoftmaxCrossEntropy
from .models import MODELS, build
from .optim import SGD, ReduceOnPlateau, StepSchedule
from .run import STORED_SIZE, USER_ERRORS, eval_transform, restore_model, score

# Settings a resumed run takes from its checkpoint rather than from the command line.
RUN_SETTINGS = (
    "model",
    "data",
    "data_dir",
    "limit",
    "batch_size",
    "seed",
    "augment",
    "image_size",
    "momentum",
    "weight_decay",
    "patience",
    "init",
)


DEFAULT_LR = {"alexnet": 0.01, "cifar": 0.002}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (and exit code 2), not usage + error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m tinyalex.train", description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    p.add_argument("--model", choices=sorted(MODELS), default="cifar")
    p.add_argument("--data", choices=DATASETS, default="synthetic")
    p.add_argument("--data-dir", default=None, help="where the dataset's files are")
    p.add_argument("--epochs", type=int, default=12, help="total epochs (also when resuming)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="initial learning rate (default: the paper's 0.01 for alexnet; 0.002 for "
        "the CIFAR net, whose He-initialised hidden layers see pixel-scale inputs)",
    )
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument(
        "--patience",
        type=int,
        default=2,
        help="epochs without a better validation error before lr /= 10 (3 times)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", choices=PRESETS, default="paper")
    p.add_argument(
        "--init",
        choices=("paper", "he"),
        default="paper",
        help="alexnet's initialisation (the CIFAR net has its own)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="stored image side, cropped to the model's input (default: 256 for "
        "alexnet, the dataset's own for cifar)",
    )
    p.add_argument(
        "--normalize",
        choices=("pixel-mean", "channel"),
        default="pixel-mean",
        help="subtract the paper's per-pixel mean image, or standardise each channel",
    )
    p.add_argument(
        "--schedule",
        choices=("plateau", "step"),
        default="plateau",
        help="lr /10 when the validation error stalls (the paper's), or at --milestones",
    )
    p.add_argument(
        "--milestones",
        type=lambda v: [int(e) for e in v.split(",")],
        default=[],
        help="epochs after which the step schedule divides lr by 10, e.g. 30,60",
    )
    p.add_argument("--eval-crops", type=int, choices=(1, 10), default=1)
    p.add_argument("--limit", type=int, default=None, help="use the first N training images")
    p.add_argument("--val-limit", type=int, default=None, help="use the first N validation images")
    p.add_argument("--out", default=None, help="output folder (default runs/DATA-MODEL)")
    p.add_argument("--resume", default=None, metavar="FILE", help="checkpoint to continue")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr is None:
        args.lr = DEFAULT_LR[args.model]
    if args.lr <= 0:
        p.error("--lr must be positive")
    return args


class StopRequest:
    """The first Ctrl-C asks the loop to stop after the current step (it then saves);
    a second one interrupts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        self._previous = signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)


class Trainer:
    """One training run: the model, optimiser, data and the loop over epochs."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        get_module(args.backend)  # BackendError now if cupy cannot run here
        resumed = checkpoint.load(args.resume) if args.resume else None
        if resumed:
            for key in RUN_SETTINGS:
                setattr(args, key, resumed["meta"]["config"][key])
        # A resumed run writes beside its checkpoint unless told otherwise.
        default_out = Path(args.resume).parent if args.resume else f"runs/{args.data}-{args.model}"
        self.out = Path(args.out or default_out)

        size = args.image_size or STORED_SIZE[args.model]
        self.data = load_dataset(
            args.data, data_dir=args.data_dir, size=size, limit=args.limit, seed=args.seed
        )
        print(f"tinyalex.train: {self.data.description}", flush=True)
        if args.val_limit:
            self.data.val_x = self.data.val_x[: args.val_limit]
            self.data.val_y = self.data.val_y[: args.val_limit]

        if resumed:
            self.model = restore_model(resumed, args.backend)
            self.norm = resumed["data"]
        else:
            config = {"num_classes": self.data.num_classes, "seed": args.seed}
            if args.model == "alexnet":
                config["init"] = args.init
            self.model = build(args.model, **config).to(args.backend)
            self.norm = normalisation_stats(self.data.train_x, args.normalize, args.seed)
        crop = self.model.input_size
        if self.data.image_size < crop:
            raise DataError(
                f"images are {self.data.image_size}px but the model needs {crop}px "
                f"crops; pass --image-size {crop} or more"
            )
        # Host arrays: the augmentation steps copy them to the batch's device once.
        norm = self.norm
        eigvecs = norm["pca_eigvecs"]
        if "std" in norm:  # standardised inputs: the colour shift is divided by std too
            eigvecs = eigvecs / norm["std"][:, None]
        self.train_view = make_pipeline(
            args.augment,
            crop,
            mean=norm["mean"],
            std=norm.get("std"),
            pca=(norm["pca_eigvals"], eigvecs),
        )
        self.meta_base = {
            "config": _config_of(args),
            "crop_size": crop,
            "stored_size": self.data.image_size,
            "classes": list(self.data.classes),
            "data_description": self.data.description,
            "model": {"name": args.model, "config": self.model.config},
        }
        self.eval_view = eval_transform(self.meta_base, norm, args.eval_crops)

        self.opt = SGD(self.model, args.lr, args.momentum, args.weight_decay)
        if args.schedule == "plateau":
            self.schedule = ReduceOnPlateau(self.opt, patience=args.patience, max_drops=3)
        else:
            self.schedule = StepSchedule(self.opt, args.milestones)
        self.epoch, self.batch = 0, 0  # completed epochs; batches done in the next one
        if resumed:
            self.opt.load_state_dict(resumed["optimizer"])
            meta = resumed["meta"]
            self.schedule.load_state_dict(meta["scheduler"])
            self.epoch, self.batch = meta["epoch"], meta["batch"]
            for name, state in meta["dropout_rng"].items():
                self.model[name].rng.bit_generator.state = state
            print(
                f"resumed from {args.resume}: epoch {self.epoch}, batch {self.batch}, "
                f"lr {self.opt.lr:g}",
                flush=True,
            )

        on_gpu = args.backend != "numpy"
        # On the CPU augmentation runs in the loader's thread, overlapping the step; on the
        # GPU the raw batch is copied over and augmented there (same seeded parameters).
        self.loader = BatchLoader(
            self.data.train_x,
            self.data.train_y,
            args.batch_size,
            seed=args.seed,
            transform=None if on_gpu else self._augment,
        )
        self.loss_fn = SoftmaxCrossEntropy()

    def _augment(self, xb, yb, rng):
        return self.train_view(xb.astype(np.float32), rng), yb

    def save(self) -> Path:
        dropout = {
            name: layer.rng.bit_generator.state
            for name, layer in self.model.named_layers()
            if isinstance(layer, Dropout)
        }
        meta = {
            **self.meta_base,
            "epoch": self.epoch,
            "batch": self.batch,
            "scheduler": self.schedule.state_dict(),
            "dropout_rng": dropout,
        }
        return checkpoint.save(
            self.out / "checkpoint.npz",
            params=self.model.params,
            optimizer=self.opt.state_dict(),
            data=self.norm,
            meta=meta,
        )

    def train_epoch(self, stop: StopRequest) -> dict | None:
        """One epoch of SGD; None if stopped early (the caller saves)."""
        from tqdm import tqdm

        args = self.args
        self.loader.set_epoch(self.epoch, start_batch=self.batch)
        losses, errors, seen, t0 = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(
            self.loader,
            total=len(self.loader) - self.batch,
            disable=None,
            leave=False,
            desc=f"epoch {self.epoch + 1}/{args.epochs}",
            unit="batch",
        )
        for xb, yb in bar:
            if args.backend != "numpy":
                rng = self.loader.batch_rng(self.batch)
                xb = self.train_view(to_device(xb.astype(np.float32), args.backend), rng)
            yb = to_device(yb, args.backend)
            logits = self.model.forward(xb, train=True)
            loss = float(self.loss_fn.forward(logits, yb))
            if not np.isfinite(loss):
                path = self.out / "checkpoint.npz"
                kept = (
                    f"the last good checkpoint is kept in {path}"
                    if path.exists()
                    else "no checkpoint was written yet"
                )
                raise FloatingPointError(
                    f"loss became {loss} at epoch {self.epoch + 1}, batch {self.batch + 1}; "
                    f"stopped: {kept} (try a lower --lr than {self.opt.lr:g})"
                )
            self.model.backward(self.loss_fn.backward(), input_grad=False)
            self.opt.step()
            self.batch += 1
            losses += loss * len(yb)
            errors += int((logits.argmax(axis=1) != yb).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{seen / (time.perf_counter() - t0):.0f}")
            if stop.requested:
                return None
        synchronize()  # GPU work is queued: wait for it before reading the clock
        seconds = time.perf_counter() - t0
        return {
            "train_loss": losses / max(seen, 1),
            "train_error": errors / max(seen, 1),
            "seconds": seconds,
            "images_per_second": seen / seconds,
        }

    def run(self) -> int:
        args = self.args
        self.out.mkdir(parents=True, exist_ok=True)
        n_params = sum(int(np.prod(p.shape)) for p in self.model.params.values())
        print(
            f"model {args.model} ({n_params:,} parameters, input {self.model.input_size}px) "
            f"on {args.backend}; "
            f"augment {args.augment}; out {self.out}",
            flush=True,
        )
        with StopRequest() as stop:
            while self.epoch < args.epochs:
                lr = self.opt.lr
                stats = self.train_epoch(stop)
                if stats is None:
                    path = self.save()
                    print(
                        f"interrupted: saved {path} (epoch {self.epoch}, batch {self.batch}); "
                        f"continue with --resume {path}",
                        file=sys.stderr,
                    )
                    return 130
                t0 = time.perf_counter()
                val = score(
                    self.model,
                    self.data.val_x,
                    self.data.val_y,
                    self.eval_view,
                    args.batch_size,
                    args.backend,
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
                with open(self.out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(
                    f"epoch {self.epoch:>3}/{args.epochs}  lr {lr:<8g} "
                    f"train loss {stats['train_loss']:.3f} err {stats['train_error']:6.1%}  "
                    f"val loss {val['loss']:.3f} top-1 {val['top1_error']:6.1%} "
                    f"top-5 {val['top5_error']:6.1%}  "
                    f"{stats['images_per_second']:.0f} img/s  {stats['seconds']:.1f}s"
                    + ("  (lr /10)" if dropped else ""),
                    flush=True,
                )
                plot_curves(self.out / "metrics.jsonl", self.out / "curves.png")
        print(
            f"done: {self.out / 'checkpoint.npz'}, {self.out / 'metrics.jsonl'}, "
            f"{self.out / 'curves.png'}"
        )
        return 0


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


def _config_of(args) -> dict:
    return {k: v for k, v in vars(args).items() if k not in ("resume",)}


def plot_curves(metrics_file: Path, png: Path) -> None:
    """Loss and error against epoch, train and validation, from metrics.jsonl.

    Drawn on a bare Figure, not pyplot, so a notebook's plotting backend is left alone.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = [json.loads(line) for line in open(metrics_file)]
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
    fig.savefig(tmp, dpi=100)
    tmp.replace(png)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return Trainer(args).run()
    except USER_ERRORS as e:
        print(f"python -m tinyalex.train: error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"python -m tinyalex.train: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
