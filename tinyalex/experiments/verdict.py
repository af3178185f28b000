"""Paired comparison over seeds and the verdict rule that results/README.md states.

For each seed s the two arms share the data order and augmentation draws, so the claim is
judged on the paired differences d_s, oriented so that d > 0 is the paper's direction:

    mean = (1/S) sum_s d_s,   sd = sqrt(sum_s (d_s - mean)^2 / (S - 1)),   se = sd / sqrt(S)
    z = mean / se

Verdict (decided by this rule alone, before looking at any run):

- holds: z >= 2 and, where the paper states a factor (ReLU 6x faster, dropout 2x the
  iterations), our factor is at least half of it;
- direction only: z >= 2 but the factor is below half the paper's, or 1 <= z < 2;
- does not hold: z <= -2 (the other way round, beyond noise);
- inconclusive: -2 < z < 1, or a single seed (no spread to judge by).

With 3 seeds the t distribution has 2 degrees of freedom: z >= 2 is about p < 0.09
one-sided, weak evidence. A verdict is about this small scale, not about ImageNet.
"""

from __future__ import annotations

import math

import numpy as np

RULE = (
    "d = paired difference per seed, oriented so d > 0 is the paper's direction; "
    "z = mean(d) / (sd(d) / sqrt(seeds)). **holds**: z >= 2 (and, where the paper gives a "
    "factor, ours is at least half of it); **direction only**: z >= 2 with a factor below "
    "half the paper's, or 1 <= z < 2; **does not hold**: z <= -2; **inconclusive**: "
    "-2 < z < 1, or one seed."
)


def paired(diffs) -> dict:
    """mean, sd, se and z of paired differences (sd, se, z are None for one seed)."""
    d = np.asarray(diffs, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return {"n": len(d), "mean": mean, "sd": None, "se": None, "z": None}
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(len(d))
    z = mean / se if se > 0 else math.copysign(math.inf, mean) if mean else 0.0
    return {"n": len(d), "mean": mean, "sd": sd, "se": se, "z": z}


def verdict(stats: dict, factor: float | None = None, paper_factor: float | None = None) -> str:
    """The rule in the module docstring; ``factor`` is ours where the paper gives one."""
    z = stats["z"]
    if z is None:
        return "inconclusive"
    if z <= -2:
        return "does not hold"
    if z >= 2:
        if paper_factor is not None and (factor is None or factor < paper_factor / 2):
            return "direction only"
        return "holds"
    return "direction only" if z >= 1 else "inconclusive"


def mean_sd(values) -> tuple:
    """Mean and sample standard deviation (sd None for one value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def pm(values, scale: float = 100.0, digits: int = 1, unit: str = "%") -> str:
    """'12.3 ± 0.4%' (values times ``scale``)."""
    m, s = mean_sd(values)
    spread = f" ± {s * scale:.{digits}f}" if s is not None else ""
    return f"{m * scale:.{digits}f}{spread}{unit}"


def evidence(stats: dict, scale: float = 100.0, unit: str = " points") -> str:
    """'+0.73 points (se 0.43, z 1.7)': the paired mean difference and its evidence."""
    text = f"{stats['mean'] * scale:+.2f}{unit}"
    if stats["se"]:
        text += f" (se {stats['se'] * scale:.2f}, z {stats['z']:.1f})"
    return text
