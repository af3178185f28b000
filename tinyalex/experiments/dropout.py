"""Claim: without dropout the network overfits substantially; with it, it takes about twice
the iterations to converge (P §4.2). Dropout 0.5 on the hidden fc layers vs none.

Overfitting: the gap between validation error and training error (the probe images in eval
mode: no dropout, centre crop). Convergence: the first iteration at which a run's validation
error is within 10% (relative) of its own best, scored ``Scale.evals_per_epoch`` times an
epoch; the factor is with / without, averaged over seeds as a geometric mean.
"""

from __future__ import annotations

import math

from .ablation import compare, finish
from .baseline import base_spec, setting_text
from .verdict import evidence, paired, pm, verdict

NAME = "dropout"
TITLE = "Dropout"
PAPER = "without: substantial overfitting; with: ≈2× the iterations to converge"
PAPER_SETTING = "ILSVRC AlexNet, dropout 0.5 in fc6 and fc7"
METHOD = (
    "Overfitting: validation error minus the training error of the first training images "
    "scored in eval mode. Convergence: the first validation score (twice an epoch) within 10% "
    "of the run's own best; factor = with / without, geometric mean over seeds."
)


def converged_at(record, tolerance: float = 0.10) -> int:
    """First scored iteration with validation error <= (1 + tolerance) x the run's best."""
    best = min(e["val_error"] for e in record.evals)
    return next(e["iteration"] for e in record.evals if e["val_error"] <= (1 + tolerance) * best)


def run(ctx, out_dir) -> dict:
    arms = {"dropout 0.5": base_spec(ctx), "no dropout": base_spec(ctx, net={"dropout": 0.0})}
    result = compare(ctx, arms, better="dropout 0.5", worse="no dropout")
    setting = setting_text(ctx) + "; dropout 0.5 on both hidden fc layers vs none"
    gap = result["gap"]
    gap_stats = paired([w - b for w, b in zip(gap["no dropout"], gap["dropout 0.5"], strict=True)])
    rows = [
        {
            "claim": "without dropout the net overfits (train/val gap)",
            "paper": "“substantial overfitting” without (no number)",
            "paper_setting": PAPER_SETTING,
            "our_setting": setting + "; gap = val error − training error (eval mode)",
            "ours": f"gap without {pm(gap['no dropout'])} vs with {pm(gap['dropout 0.5'])}; "
            f"without − with = {evidence(gap_stats)}; "
            f"val error without {pm(result['val_error']['no dropout'])}, "
            f"with {pm(result['val_error']['dropout 0.5'])}",
            "verdict": verdict(gap_stats),
            "stats": gap_stats,
        }
    ]
    conv = {k: [converged_at(r) for r in rs] for k, rs in result["runs"].items()}
    if all(r.evals for rs in result["runs"].values() for r in rs):
        logs = [
            math.log(w / wo) for w, wo in zip(conv["dropout 0.5"], conv["no dropout"], strict=True)
        ]
        conv_stats = paired(logs)
        factor = math.exp(conv_stats["mean"])
        rows.append(
            {
                "claim": "dropout needs ≈2× the iterations to converge",
                "paper": "≈2× the iterations",
                "paper_setting": PAPER_SETTING,
                "our_setting": setting
                + "; converged = first validation score within 10% of the run's best",
                "ours": f"iterations with {conv['dropout 0.5']} vs without {conv['no dropout']}: "
                f"factor {factor:.2f}"
                + (
                    f" (log-ratio se {conv_stats['se']:.2f}, z {conv_stats['z']:.1f})"
                    if conv_stats["se"]
                    else ""
                ),
                "verdict": verdict(conv_stats, factor=factor, paper_factor=2.0),
                "stats": {**conv_stats, "factor": factor},
            }
        )
    result["converged_at"], result["gap_diff"] = conv, gap_stats
    notes = [
        "The last epoch runs at lr/10 in both arms, which moves each run's best validation "
        "score towards its end and so compresses the convergence measure.",
    ]
    body = finish(ctx, NAME, result, rows, notes, out_dir)
    body["converged_at"] = conv
    return body
