"""How big each experiment is: the default size (about 20-25 minutes for ``all`` on two quiet
CPU cores) and ``--quick`` (seconds, for the tests: it checks the machinery, not the claims).

Everything is smaller than the paper's: a two-conv-layer network instead of five, a few
thousand 24x24 training images instead of 1.2 million 224x224, a few epochs instead of 90.
results/README.md says what that may change, claim by claim.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """One size for every experiment.

    train_images / val_images / probe_images: the first N training images trained on, the
    first M validation images scored, and the first P training images scored in eval mode
    (the training error of the train/validation gap, without dropout or augmentation).
    stored_size: side the images are stored at (None: the dataset's own); crop: network input.
    widths, hidden: conv1/conv2 kernels and hidden fc widths of the ablation network.
    epochs: ablation runs (lr / 10 for the last epoch); evals_per_epoch: validation scores.
    curve_epochs: the ReLU-vs-tanh runs; lr_grid: the rates tried for each activation;
    window: batches averaged into one point of the training-error curve.
    """

    name: str
    train_images: int
    val_images: int
    probe_images: int
    stored_size: int | None
    crop: int
    widths: tuple
    hidden: tuple
    epochs: int
    evals_per_epoch: int
    batch_size: int
    lr: float
    weight_decay: float
    curve_epochs: int
    lr_grid: tuple
    window: int

    def describe(self) -> str:
        return (
            f"{self.train_images} training images, {self.crop}x{self.crop} crops, "
            f"conv {self.widths[0]}-{self.widths[1]}, fc {'-'.join(map(str, self.hidden))}, "
            f"{self.epochs} epochs, batch {self.batch_size}"
        )


DEFAULT = Scale(
    name="default",
    train_images=4000,
    val_images=1000,
    probe_images=1000,
    stored_size=None,
    crop=24,
    widths=(24, 48),
    hidden=(192, 96),
    epochs=4,
    evals_per_epoch=2,
    batch_size=64,
    lr=0.015,
    weight_decay=5e-4,
    curve_epochs=2,
    lr_grid=(0.003, 0.01, 0.03, 0.1),
    window=4,
)

QUICK = Scale(
    name="quick",
    train_images=96,
    val_images=48,
    probe_images=32,
    stored_size=None,
    crop=16,
    widths=(4, 8),
    hidden=(16, 8),
    epochs=2,
    evals_per_epoch=1,
    batch_size=32,
    lr=0.005,
    weight_decay=5e-4,
    curve_epochs=1,
    lr_grid=(0.01, 0.1),
    window=1,
)
