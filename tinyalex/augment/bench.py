"""``--bench``: images per second through each preset's training pipeline.

Two shapes, as the training loop uses them: CIFAR-size (batch 256, stored 32 -> crop 24) and
ImageNet-size (batch 64, stored 256 -> crop 227). Random 0-255 data, mean image and PCA stats
from the batch itself; min and median over repeats, after one warm-up call (numba compiles, CuPy
allocates). On CuPy the device is synchronised before each clock reading.
"""

from __future__ import annotations

import time

import numpy as np

from ..backend import get_module, synchronize
from .pca_colour import pca_colour_stats
from .presets import PRESETS, make_pipeline

SHAPES = ((256, 32, 24), (64, 256, 227))  # (batch, stored size, crop)


def bench(backend: str = "numpy", repeats: int = 5, shapes=SHAPES, presets=PRESETS):
    """Rows of (preset, stored, crop, batch, min img/s, median img/s... as best/median)."""
    xp = get_module(backend)
    rng = np.random.default_rng(0)
    rows = []
    for n, stored, crop in shapes:
        host = rng.integers(0, 256, (n, 3, stored, stored)).astype(np.float32)
        mean = host.mean(axis=0)
        pca = pca_colour_stats(host.astype(np.uint8))
        batch = xp.asarray(host)
        for preset in presets:
            pipe = make_pipeline(preset, crop, mean=mean, pca=pca)
            pipe(batch, rng)
            synchronize(batch)
            rates = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                pipe(batch, rng)
                synchronize(batch)
                rates.append(n / (time.perf_counter() - t0))
            # min = the slowest run's rate; median = the typical run.
            rows.append((preset, stored, crop, n, min(rates), float(np.median(rates))))
    return rows


def print_table(rows, backend: str) -> None:
    print(f"augmentation throughput, backend {backend} (images/s; train pipelines)")
    print(f"{'preset':<10} {'stored':>6} {'crop':>5} {'batch':>5} {'min':>10} {'median':>10}")
    for preset, stored, crop, n, lo, med in rows:
        print(f"{preset:<10} {stored:>6} {crop:>5} {n:>5} {lo:>10.0f} {med:>10.0f}")
