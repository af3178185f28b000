"""The shape of most claims: train the baseline and one variant with the same seeds, and
compare their final validation errors seed by seed (verdict.py)."""

from __future__ import annotations

from . import plot
from .trial import run_spec
from .verdict import paired, pm, verdict


def compare(ctx, arms: dict, better: str, worse: str) -> dict:
    """Train every arm for every seed; ``better`` is the arm the paper says errs less.

    arms: label -> RunSpec. Returns {"arms": ..., "error": paired stats of
    worse - better (positive: the paper's direction), "gap": the same for the train/val
    gap, and the per-seed numbers}.
    """
    runs = {
        label: [run_spec(ctx, spec, seed) for seed in ctx.seeds] for label, spec in arms.items()
    }
    err = {label: [r.val_error for r in rs] for label, rs in runs.items()}
    gap = {label: [r.val_error - r.probe_error for r in rs] for label, rs in runs.items()}
    diff = [w - b for w, b in zip(err[worse], err[better], strict=True)]
    return {
        "arms": {
            label: {"spec": arms[label].describe(), "runs": [r.to_json() for r in rs]}
            for label, rs in runs.items()
        },
        "val_error": err,
        "gap": gap,
        "error_diff": paired(diff),
        "runs": runs,
    }


def error_row(ctx, result: dict, better: str, worse: str) -> dict:
    """The table's 'our number' and verdict for an error-difference claim."""
    stats = result["error_diff"]
    err = result["val_error"]
    ours = (
        f"val error {better} {pm(err[better])} vs {worse} {pm(err[worse])}; "
        f"{worse} − {better} = {stats['mean'] * 100:+.2f} points"
        + (f" (se {stats['se'] * 100:.2f}, z {stats['z']:.1f})" if stats["se"] else "")
    )
    return {"ours": ours, "verdict": verdict(stats), "stats": stats}


def finish(ctx, name: str, result: dict, rows: list, notes: list, out_dir) -> dict:
    """The claim's JSON body and its plot (validation error over training, per arm)."""
    png = plot.arms(result["runs"], out_dir / f"{name}.png", title=name)
    return {
        "rows": rows,
        "arms": result["arms"],
        "notes": notes,
        "plot": png.name,
    }
