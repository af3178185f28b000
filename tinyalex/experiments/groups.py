"""Claim: two towers (the paper's two GPUs, conv2 with groups=2) err less than one tower
with half the kernels (P §3.2, §7). As in the paper's comparison the last convolutional
layer keeps its width in the one-tower net (it feeds the large fc layer), so here conv1 is
halved and conv2 keeps its kernels, ungrouped: the two nets have almost the same
parameters."""

from __future__ import annotations

from .ablation import compare, error_row, finish
from .baseline import base_spec, setting_text

NAME = "groups"
TITLE = "Two towers vs one"
PAPER = "−1.7% top-1, −1.2% top-5"
PAPER_SETTING = "ILSVRC AlexNet on two GPUs vs one GPU, half the kernels"
METHOD = (
    "conv2 in two towers (groups=2) vs one tower with half of conv1's kernels and conv2 whole, "
    "as the paper kept its last conv layer whole in the one-GPU net."
)


def run(ctx, out_dir) -> dict:
    c1, c2 = ctx.scale.widths
    one = base_spec(ctx, net={"widths": (c1 // 2, c2), "groups": 1})
    arms = {"two towers": base_spec(ctx), "one tower": one}
    result = compare(ctx, arms, better="two towers", worse="one tower")
    params = {k: result["runs"][k][0].params for k in arms}
    row = {
        "claim": "two towers beat one tower with half the kernels",
        "paper": PAPER,
        "paper_setting": PAPER_SETTING,
        "our_setting": setting_text(ctx)
        + f"; conv {c1}-{c2} groups=2 ({params['two towers']:,} parameters) vs "
        f"conv {c1 // 2}-{c2} groups=1 ({params['one tower']:,})",
        **error_row(ctx, result, "two towers", "one tower"),
    }
    return finish(ctx, NAME, result, [row], [], out_dir)
