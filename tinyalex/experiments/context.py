"""What every experiment of one command shares: the data (loaded once), its normalisation
statistics, the scale, the seeds, the backend, and the runs already trained.

Runs are kept by their spec and seed, so that under ``all`` the baseline network trained for
one claim is reused by the next (the paper's own comparisons all change one thing of one
network; here that network is trained once a seed and every ablation is paired with it).
"""

from __future__ import annotations

import numpy as np

from ..augment import pca_colour_stats
from ..backend import get_module
from ..data import channel_stats, load_dataset, mean_image
from ..data.errors import DataError
from .scale import Scale


class Context:
    """Data and settings for a batch of experiments.

    train_x/train_y: the first ``scale.train_images`` training images (uint8 NCHW);
    val_x/val_y: the first ``scale.val_images`` validation images; probe_x/probe_y: the first
    ``scale.probe_images`` training images, scored in eval mode for the train/val gap.
    """

    def __init__(
        self,
        scale: Scale,
        *,
        data: str = "fashion-mnist",
        data_dir=None,
        backend: str = "numpy",
        seeds: int = 3,
        log=print,
    ):
        if seeds < 1:
            raise ValueError(f"--seeds must be at least 1, got {seeds}")
        get_module(backend)  # BackendError now if CuPy cannot run here
        self.scale, self.backend, self.log = scale, backend, log
        self.seeds = list(range(seeds))
        dataset = load_dataset(
            data, data_dir=data_dir, size=scale.stored_size, limit=scale.train_images
        )
        if dataset.image_size < scale.crop:
            raise DataError(
                f"{data}: images are {dataset.image_size}px, below the {scale.crop}px crop"
            )
        self.dataset = dataset
        self.data_name = data
        self.train_x, self.train_y = dataset.train_x, dataset.train_y
        self.val_x, self.val_y = (
            dataset.val_x[: scale.val_images],
            dataset.val_y[: scale.val_images],
        )
        self.probe_x, self.probe_y = (
            self.train_x[: scale.probe_images],
            self.train_y[: scale.probe_images],
        )
        self.mean_image = mean_image(self.train_x)  # (3, H, W), the paper's P §2
        self.channel_mean, self.channel_std = channel_stats(self.train_x)
        self.pca = pca_colour_stats(self.train_x, seed=0)  # (eigvals, eigvecs), 0-255 units
        self.runs: dict = {}  # (RunSpec, seed) -> run record, shared between claims
        log(
            f"tinyalex.experiments: {dataset.name}, {len(self.train_x)} train / "
            f"{len(self.val_x)} val images, scale {scale.name}, seeds {self.seeds}, {backend}"
        )

    @property
    def grey(self) -> bool:
        """True when the three channels are equal (Fashion-MNIST): PCA colour is then a
        brightness shift along (1, 1, 1) only."""
        return bool(np.count_nonzero(self.pca[0] > 1e-6 * self.pca[0][0]) <= 1)
