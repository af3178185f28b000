"""Training recipes: the settings ``python -m tinyalex.train`` uses for each model and dataset.

``defaults(model, data)`` returns a dict keyed by train.py's argparse names (``lr``,
``epochs``, ``image_size``, ...); the command fills every flag left unset from it, so an
explicit flag always wins. ``PAPER`` holds the paper's own recipe (P §2, §5) for alexnet:

    python -m tinyalex.train --model alexnet --init paper --normalize pixel-mean --batch-size 128 \
        --warmup 0

runs it on the synthetic set (on ``--data folder`` the batch is already 128; on
fashion-mnist add ``--image-size 256 --schedule plateau --epochs 12``).

Where a default leaves the paper, the README's conventions table says why.
"""

from __future__ import annotations

# The paper's recipe (P §2, §5): 256 px images, random 227 crops + flips + PCA colour, the
# per-pixel mean image subtracted (0-255 units), N(0, 0.01^2) weights with biases 1 in
# conv2/4/5 and fc6/7, batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10
# when the validation error stalls (three times).
PAPER = {
    "lr": 0.01,
    "batch_size": 128,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "patience": 2,
    "augment": "paper",
    "init": "paper",
    "image_size": 256,
    "input_size": 227,
    "normalize": "pixel-mean",
    "schedule": "plateau",
    "milestones": [],
    "warmup": 0.0,
    "epochs": 12,
}


def defaults(model: str, data: str) -> dict:
    """The training settings for ``model`` ('alexnet' or 'cifar') on ``data``."""
    if model == "alexnet":
        return _alexnet(data)
    if model == "cifar":
        return _cifar(data)
    raise ValueError(f"no recipe for model {model!r}; choose from alexnet, cifar")


def _alexnet(data: str) -> dict:
    """The paper's recipe, but He init on per-channel standardised inputs.

    With the paper's init, by fc6 the image is ~3% of each activation (the rest is the
    biases of 1), and fc8's inputs are nearly the same large vector for every image, so
    one step at lr 0.01 moves every logit by ~lr * |x|^2 (about 200) times the batch's
    class-frequency noise: with 10 classes that throws the loss from 3 to 35 and the run
    then sits at chance (the same in PyTorch: tests/test_learning.py). He's init keeps the
    image in the activations, and needs inputs of unit scale (0-255 pixels give NaN).
    At full lr from the first step it collapses instead (step 2's loss 8-13, then the same
    outputs for every image within 20 steps), so lr rises linearly over the first epoch.
    """
    recipe = {**PAPER, "init": "he", "normalize": "channel", "warmup": 1.0}
    if data == "synthetic":
        # 6,000 images: batches of 32 give 188 updates an epoch instead of 47
        recipe.update(batch_size=32)
    elif data == "fashion-mnist":
        # grey 28 px garments scaled up to the input whole (a 227 crop of 256 cuts their
        # edges), as d2l's AlexNet chapter feeds them; lr / 10 for the last 3 of 10 epochs
        recipe.update(image_size=227, epochs=10, schedule="step", milestones=[7])
    return recipe


def _cifar(data: str) -> dict:
    """The CIFAR net's settings: its own init, inputs in pixel units and lr 0.002 (0.01
    diverges there), except on the two datasets a 2-core CPU trains by default, where
    inputs standardised per channel take lr 0.01 and learn in half the epochs."""
    recipe = {**PAPER, "lr": 0.002, "init": "paper", "image_size": None, "input_size": 24}
    if data == "synthetic":
        # whole 24 px scenes (a 24 crop of 32 cuts objects off), batch 64 (94 updates an
        # epoch), lr 0.01 on standardised inputs, / 10 for the last 2 of 11 epochs: about
        # 17% error in about 3 minutes on 2 cores
        recipe.update(
            image_size=24,
            batch_size=64,
            normalize="channel",
            lr=0.01,
            epochs=11,
            schedule="step",
            milestones=[9],
        )
    elif data == "fashion-mnist":
        # whole 28 px garments (no crop, no augmentation: 3 epochs do not overfit), conv1
        # drawn by He for the standardised inputs, batch 64, lr 0.01, / 10 for the last epoch
        recipe.update(
            input_size=28,
            augment="none",
            normalize="channel",
            init="he",
            lr=0.01,
            batch_size=64,
            epochs=3,
            schedule="step",
            milestones=[2],
        )
    return recipe
