"""Claim: averaging the softmax over ten crops (four corners and the centre, each also
flipped) errs less than the centre crop alone, on the same trained model (P §4.1).
The baseline networks are scored both ways on the validation images."""

from __future__ import annotations

from . import plot
from .baseline import base_spec, setting_text
from .trial import run_spec
from .verdict import paired, pm, verdict

NAME = "ten-crop"
TITLE = "Ten-crop testing"
PAPER = "39.0/18.3 → 37.5/17.0 top-1/top-5 error"
PAPER_SETTING = "ILSVRC-2010 AlexNet, 224 crops of 256 images"
METHOD = (
    "The baseline nets (shared with the other claims under `all`), each scored with the "
    "centre crop and with ten crops."
)


def run(ctx, out_dir) -> dict:
    spec = base_spec(ctx)
    runs = [run_spec(ctx, spec, seed) for seed in ctx.seeds]
    centre = [r.val_error for r in runs]
    ten = [r.val_error_ten_crop for r in runs]
    stats = paired([c - t for c, t in zip(centre, ten, strict=True)])
    s, c = ctx.scale.crop, ctx.dataset.image_size
    row = {
        "claim": "ten-crop testing lowers the error",
        "paper": PAPER,
        "paper_setting": PAPER_SETTING,
        "our_setting": setting_text(ctx) + f"; baseline nets, {s}px crops of {c}px images",
        "ours": f"centre {pm(centre)} vs ten-crop {pm(ten)}; "
        f"centre − ten-crop = {stats['mean'] * 100:+.2f} points"
        + (f" (se {stats['se'] * 100:.2f}, z {stats['z']:.1f})" if stats["se"] else ""),
        "verdict": verdict(stats),
        "stats": stats,
    }
    png = plot.paired_bars(
        {"centre crop": centre, "ten crops": ten},
        out_dir / f"{NAME}.png",
        "same models, two ways of testing",
        "validation top-1 error (%)",
    )
    notes = [
        f"Our corner crops are {(c - s) / 2:g}px from the centre one on {c}px images (the "
        "paper's: 16px on 256px), and flips of clothing add little new; top-5 is near 0 on "
        "10 classes.",
    ]
    return {
        "rows": [row],
        "arms": {"baseline": {"spec": spec.describe(), "runs": [r.to_json() for r in runs]}},
        "notes": notes,
        "plot": png.name,
    }
