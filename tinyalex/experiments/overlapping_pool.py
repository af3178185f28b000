"""Claim: overlapping max-pooling (z=3, s=2) errs less than z=2, s=2 and overfits a little
less (P §3.4). Both halve the side here (3/2 pads 1), as the paper's gave equal sizes."""

from __future__ import annotations

from .ablation import compare, error_row, finish
from .baseline import base_spec, setting_text
from .verdict import evidence, paired, pm, verdict

NAME = "overlapping-pool"
TITLE = "Overlapping pooling"
PAPER = "−0.4% top-1, −0.3% top-5; “slightly more difficult to overfit”"
PAPER_SETTING = "ILSVRC AlexNet, pool 3/2 vs 2/2"
METHOD = "Baseline (3/2, pad 1) vs 2/2; gap = validation error − training error (eval mode)."


def run(ctx, out_dir) -> dict:
    arms = {"pool 3/2": base_spec(ctx), "pool 2/2": base_spec(ctx, net={"pool": (2, 2)})}
    result = compare(ctx, arms, better="pool 3/2", worse="pool 2/2")
    setting = setting_text(ctx) + "; max-pool 3/2 (pad 1) vs 2/2, same output sizes"
    gap = result["gap"]
    gap_stats = paired([w - b for w, b in zip(gap["pool 2/2"], gap["pool 3/2"], strict=True)])
    rows = [
        {
            "claim": "overlapping pooling lowers the error",
            "paper": "−0.4% top-1, −0.3% top-5",
            "paper_setting": PAPER_SETTING,
            "our_setting": setting,
            **error_row(ctx, result, "pool 3/2", "pool 2/2"),
        },
        {
            "claim": "overlapping pooling overfits less (train/val gap)",
            "paper": "“slightly more difficult to overfit” (no number)",
            "paper_setting": PAPER_SETTING,
            "our_setting": setting + "; gap = val error − training error (eval mode)",
            "ours": f"gap 3/2 {pm(gap['pool 3/2'])} vs 2/2 {pm(gap['pool 2/2'])}; "
            f"2/2 − 3/2 = {evidence(gap_stats)}",
            "verdict": verdict(gap_stats),
            "stats": gap_stats,
        },
    ]
    result["gap_diff"] = gap_stats
    return finish(ctx, NAME, result, rows, [], out_dir)
