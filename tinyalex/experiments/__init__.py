"""Reproduce the paper's claims at small scale: ``python -m tinyalex.experiments NAME``.

One module per claim (relu_vs_tanh, lrn, overlapping_pool, dropout, pca_colour, ten_crop,
groups), each with ``NAME``, ``TITLE``, ``PAPER``, ``PAPER_SETTING`` and ``run(ctx, out_dir)
-> dict``; the shared pieces are net.py (the network), baseline.py (the network every
ablation changes one thing of), trial.py (one training run), ablation.py (two arms, paired
by seed), verdict.py (the rule), plot.py and report.py (results/README.md).
"""

from . import dropout, groups, lrn, overlapping_pool, pca_colour, relu_vs_tanh, ten_crop

CLAIMS = {
    m.NAME: m for m in (relu_vs_tanh, lrn, overlapping_pool, dropout, pca_colour, ten_crop, groups)
}

__all__ = ["CLAIMS"]
