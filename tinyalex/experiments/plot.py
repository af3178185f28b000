"""The claims' figures, drawn on bare matplotlib Figures (no pyplot state, any backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def _figure(ncols: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * ncols, 3.8), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def arms(runs: dict, path: Path, title: str) -> Path:
    """Left: validation error against epoch, one line a seed, per arm. Right: final
    validation (filled) and training-probe (hollow) error of each seed, per arm."""
    fig, (ax, bx) = _figure(2)
    for i, (label, records) in enumerate(runs.items()):
        colour = COLOURS[i % len(COLOURS)]
        for j, r in enumerate(records):
            ep = [e["epoch"] for e in r.evals]
            ve = [100 * e["val_error"] for e in r.evals]
            ax.plot(ep, ve, color=colour, alpha=0.8, label=label if j == 0 else None)
            bx.plot(i, 100 * r.val_error, "o", color=colour)
            bx.plot(i + 0.15, 100 * r.probe_error, "o", mfc="none", color=colour)
    ax.set(xlabel="epoch", ylabel="validation top-1 error (%)", title=title)
    ax.legend()
    bx.set_xticks(range(len(runs)), list(runs))
    bx.set(ylabel="error (%)", title="final: validation (filled), training (hollow)")
    fig.savefig(path, dpi=90)
    return path


def curves(runs: dict, path: Path, threshold: float, title: str) -> Path:
    """Windowed training error against iterations (left) and seconds (right), per arm."""
    fig, (ax, bx) = _figure(2)
    for i, (label, records) in enumerate(runs.items()):
        colour = COLOURS[i % len(COLOURS)]
        for j, r in enumerate(records):
            it = [c["iteration"] for c in r.curve]
            sec = [c["seconds"] for c in r.curve]
            err = [100 * c["train_error"] for c in r.curve]
            ax.plot(it, err, color=colour, alpha=0.8, label=label if j == 0 else None)
            bx.plot(sec, err, color=colour, alpha=0.8, label=label if j == 0 else None)
    for a, xlabel in ((ax, "iteration"), (bx, "training seconds (shared machine)")):
        a.axhline(100 * threshold, color="grey", ls="--", lw=1)
        a.set(xlabel=xlabel, ylabel="training error (%)", ylim=(0, 100))
        a.legend()
    ax.set_title(title)
    fig.savefig(path, dpi=90)
    return path


def paired_bars(values: dict, path: Path, title: str, ylabel: str) -> Path:
    """One line a seed joining its values across the labels (a paired comparison)."""
    fig, (ax,) = _figure(1)
    labels = list(values)
    data = np.array([values[k] for k in labels]) * 100  # (labels, seeds)
    for s in range(data.shape[1]):
        ax.plot(range(len(labels)), data[:, s], "o-", color="grey", alpha=0.7)
    ax.plot(range(len(labels)), data.mean(axis=1), "s", color="black", ms=9, label="mean")
    ax.set_xticks(range(len(labels)), labels)
    ax.set(ylabel=ylabel, title=title)
    ax.legend()
    fig.savefig(path, dpi=90)
    return path
