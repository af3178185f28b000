"""One training run of an experiment: a spec, a seed, and what was measured along the way.

The loop is the plain one (tinyalex.step.train_step per batch) with the measurements the
claims need: the training error of every ``window`` batches against iterations and seconds
(Figure 1's curve), the validation error a few times an epoch (convergence), and at the end
the validation error with the centre crop and with ten crops, and the training error of the
probe images in eval mode (the train/validation gap).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..augment import make_eval, make_pipeline
from ..backend import synchronize, to_device
from ..data import BatchLoader
from ..layers import SoftmaxCrossEntropy
from ..optim import SGD, StepSchedule
from ..run import score
from ..step import train_step
from .net import small_alexnet


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run except its seed (hashable: runs are shared by spec).

    net: small_alexnet's keyword arguments as sorted (name, value) pairs.
    normalise: "pixel-mean" (the paper's mean image, 0-255 units) or "channel" (per-channel
    mean/std). augment: "paper" (random crop + flip) or "none" (centre crop only).
    pca: PCA colour augmentation on top of "paper". lr_drop: lr / 10 for the last epoch.
    stop_at: end the run once the windowed training error is at or below this (lr tuning).
    """

    net: tuple
    lr: float
    epochs: int
    weight_decay: float = 5e-4
    normalise: str = "pixel-mean"
    augment: str = "paper"
    pca: bool = True
    lr_drop: bool = True
    ten_crop: bool = False
    evals_per_epoch: int = 0
    stop_at: float | None = None

    @staticmethod
    def of(net: dict, **settings) -> RunSpec:
        return RunSpec(net=tuple(sorted(net.items())), **settings)

    def describe(self) -> dict:
        return {**asdict(self), "net": dict(self.net)}


@dataclass
class Record:
    """What one run measured. Errors are fractions (0.25 = 25%)."""

    seed: int
    curve: list = field(default_factory=list)  # {iteration, epoch, seconds, train_error, loss}
    evals: list = field(default_factory=list)  # {iteration, epoch, val_error}
    val_error: float = float("nan")
    val_error_ten_crop: float | None = None
    probe_error: float = float("nan")
    iterations: int = 0
    train_seconds: float = 0.0
    params: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def run_spec(ctx, spec: RunSpec, seed: int) -> Record:
    """Train ``spec`` with ``seed`` once per context; later calls return the same record."""
    key = (spec, seed)
    if key not in ctx.runs:
        t0 = time.perf_counter()
        ctx.runs[key] = record = train(ctx, spec, seed)
        net = dict(spec.net)
        what = (
            f"{net['activation']} conv {net['widths']} groups {net['groups']} lrn {net['lrn']} "
            f"pool {net['pool']} dropout {net['dropout']} pca {spec.pca} lr {spec.lr:g}"
        )
        ctx.log(
            f"  seed {seed} {what}: val error {record.val_error:.2%}, "
            f"train (probe) {record.probe_error:.2%}, {record.iterations} it, "
            f"{time.perf_counter() - t0:.0f}s"
        )
    return ctx.runs[key]


def _views(ctx, spec: RunSpec):
    """Training transform (batch, rng) -> batch, and the eval views for 1 and 10 crops."""
    crop = ctx.scale.crop
    if spec.normalise == "channel":
        norm = {"mean": ctx.channel_mean, "std": ctx.channel_std}
        eigvecs = ctx.pca[1] / ctx.channel_std[:, None]  # the colour shift in standard units
    else:
        norm = {"mean": ctx.mean_image, "std": None}
        eigvecs = ctx.pca[1]
    pca = (ctx.pca[0], eigvecs) if spec.pca else None
    train = make_pipeline(spec.augment, crop, **norm, pca=pca)
    evals = {c: make_eval(spec.augment, crop, **norm, crops=c) for c in (1, 10)}
    return train, evals


def train(ctx, spec: RunSpec, seed: int) -> Record:
    """One run from scratch (seeded init, data order, crops and dropout masks)."""
    scale, backend = ctx.scale, ctx.backend
    net = dict(spec.net)
    model = small_alexnet(ctx.dataset.num_classes, input_size=scale.crop, seed=seed, **net)
    model = model.to(backend)
    opt = SGD(model, spec.lr, 0.9, spec.weight_decay)
    schedule = StepSchedule(opt, [spec.epochs - 1] if spec.lr_drop and spec.epochs > 1 else [])
    loss_fn = SoftmaxCrossEntropy()
    augment, views = _views(ctx, spec)

    def transform(xb, yb, rng):
        return augment(xb.astype(np.float32), rng), yb

    loader = BatchLoader(ctx.train_x, ctx.train_y, scale.batch_size, seed=seed, transform=transform)
    record = Record(seed=seed, params=sum(int(p.size) for p in model.params.values()))
    per_epoch = len(loader)
    eval_at = _eval_points(per_epoch, spec.evals_per_epoch)
    window = {"errors": 0, "loss": 0.0, "seen": 0, "batches": 0}
    clock, it = 0.0, 0
    for epoch in range(spec.epochs):
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        for xb, yb in loader:
            xb, yb = to_device(xb, backend), to_device(yb, backend)
            loss, logits = train_step(model, loss_fn, opt, xb, yb)
            it += 1
            window["errors"] += int((logits.argmax(axis=1) != yb).sum())
            window["loss"] += float(loss) * len(yb)
            window["seen"] += len(yb)
            window["batches"] += 1
            if window["batches"] == scale.window:
                synchronize()
                clock += time.perf_counter() - t0
                t0 = time.perf_counter()
                err = window["errors"] / window["seen"]
                record.curve.append(
                    {
                        "iteration": it,
                        "epoch": it / per_epoch,
                        "seconds": clock,
                        "train_error": err,
                        "loss": window["loss"] / window["seen"],
                    }
                )
                window = dict.fromkeys(window, 0)
                if not np.isfinite(record.curve[-1]["loss"]):
                    break
                if spec.stop_at is not None and err <= spec.stop_at:
                    break
            if it % per_epoch in eval_at:
                synchronize()
                clock += time.perf_counter() - t0
                val = _error(ctx, model, ctx.val_x, ctx.val_y, views[1])
                record.evals.append({"iteration": it, "epoch": it / per_epoch, "val_error": val})
                t0 = time.perf_counter()
        else:
            synchronize()
            clock += time.perf_counter() - t0
            schedule.step(epoch=epoch + 1)
            continue
        break  # the inner loop stopped early: diverged or reached stop_at
    record.iterations, record.train_seconds = it, clock
    record.val_error = _error(ctx, model, ctx.val_x, ctx.val_y, views[1])
    record.probe_error = _error(ctx, model, ctx.probe_x, ctx.probe_y, views[1])
    if spec.ten_crop:
        record.val_error_ten_crop = _error(ctx, model, ctx.val_x, ctx.val_y, views[10])
    return record


def _eval_points(per_epoch: int, evals_per_epoch: int) -> set:
    """Batch indices (mod the epoch length) after which the validation set is scored."""
    if evals_per_epoch <= 0:
        return set()
    return {
        round(per_epoch * (k + 1) / evals_per_epoch) % per_epoch for k in range(evals_per_epoch)
    }


def _error(ctx, model, x, y, view) -> float:
    return score(model, x, y, view, ctx.scale.batch_size, ctx.backend)["top1_error"]
