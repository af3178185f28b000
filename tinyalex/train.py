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
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import checkpoint, rundir
from .augment import make_pipeline, pca_colour_stats
from .backend import get_module, set_tf32, synchronize, to_device
from .checkpoint import CheckpointError
from .cli import (
    USER_ERRORS,
    OutputError,
    UserError,
    report,
)
from .curves import plot_curves
from .data import BatchLoader, DataError, channel_stats, device, load_dataset, mean_image
from .layers import Dropout, SoftmaxCrossEntropy
from .models import build
from .optim import SGD, ReduceOnPlateau, StepSchedule
from .run import EVAL_META, eval_transform, restore_model, score
from .settings import LATER, PROG, SETTINGS, parse_args, run_settings
from .step import train_step


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
            config["init"] = c["init"]
            if c["input_size"]:
                config["input_size"] = c["input_size"]
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

    def warmup_factor(self) -> float:
        """lr's share for the next step: (t + 1) / T over the first T = warmup * steps/epoch
        steps (t counted from the run's start, so a resumed run repeats it exactly), then 1."""
        total = self.config["warmup"] * len(self.loader)
        t = self.epoch * len(self.loader) + self.batch
        return min(1.0, (t + 1) / total) if total >= 1 else 1.0

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
            base_lr, self.opt.lr = self.opt.lr, self.opt.lr * self.warmup_factor()
            try:
                loss, logits = self.step(xb, yb)
            finally:
                self.opt.lr = base_lr  # the schedule's rate: what the checkpoint stores
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
