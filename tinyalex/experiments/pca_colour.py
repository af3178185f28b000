"""Claim: PCA colour augmentation lowers the error (P §4.1): the baseline (random crops,
flips and PCA colour) against crops and flips alone."""

from __future__ import annotations

from .ablation import compare, error_row, finish
from .baseline import base_spec, setting_text

NAME = "pca-colour"
TITLE = "PCA colour augmentation"
PAPER = "top-1 error down by over 1%"
PAPER_SETTING = "ILSVRC AlexNet"
METHOD = "Baseline (crops, flips, PCA colour σ=0.1) vs crops and flips alone."


def run(ctx, out_dir) -> dict:
    arms = {"PCA colour": base_spec(ctx), "no PCA colour": base_spec(ctx, pca=False)}
    result = compare(ctx, arms, better="PCA colour", worse="no PCA colour")
    row = {
        "claim": "PCA colour augmentation lowers the error",
        "paper": PAPER,
        "paper_setting": PAPER_SETTING,
        "our_setting": setting_text(ctx) + "; crops + flips with vs without PCA colour (σ=0.1)",
        **error_row(ctx, result, "PCA colour", "no PCA colour"),
    }
    notes = []
    if ctx.grey:
        notes.append(
            "The images are grey (three equal channels): the RGB covariance has one non-zero "
            "eigenvalue, so PCA colour is only a random brightness shift along (1, 1, 1). "
            "The paper's colour claim needs colour images (`--data cifar10`)."
        )
    return finish(ctx, NAME, result, [row], notes, out_dir)
