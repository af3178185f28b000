"""Learning curves of a run, drawn from its metrics.jsonl into curves.png."""

from __future__ import annotations

from pathlib import Path

from . import rundir
from .checkpoint import atomic_file
from .cli import OutputError


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
    try:
        with atomic_file(png, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    except OSError as e:
        raise OutputError(f"cannot write {png}: {e.strerror or e}") from e
