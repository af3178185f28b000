"""The README's training commands still run.

Each ``python -m tinyalex.train ...`` that README.md names (its tables of measured runs and
its examples) runs here for one epoch on a few images: the flags, the recipe's defaults and the
checks on the data are the README's, only the size is cut. A default that changes under a
documented command (as when the Fashion-MNIST recipe began to feed 28 px garments and an old
``--image-size 24`` command stopped) fails here instead of in a reader's terminal.
"""

import re
import shlex
from pathlib import Path

import pytest

from tinyalex import train

README = Path(__file__).resolve().parent.parent / "README.md"
# Commands that need what a test cannot have here: a GPU, a checkpoint, data on disk.
NEEDS = {
    "--backend cupy": "a GPU",
    "--resume": "a checkpoint",
    "--data folder": "an image folder",
    "--data cifar10": "CIFAR-10's files",
}


def readme_train_commands() -> list[str]:
    """Every distinct ``python -m tinyalex.train`` command line in the README, as written."""
    found = []
    for m in re.finditer(r"python -m tinyalex\.train\b([^`#;\n]*)", README.read_text()):
        line = m.group(1).strip()
        if "|" not in line and "..." not in line and line not in found:
            found.append(line)
    return found


def test_the_readme_names_the_runs_it_measures():
    commands = readme_train_commands()
    assert "" in commands  # the main job, with no flags
    assert "--data fashion-mnist" in commands
    assert any("--model alexnet" in c for c in commands)


@pytest.mark.parametrize("line", readme_train_commands())
def test_readme_train_command_runs(tmp_path, line):
    for flag, what in NEEDS.items():
        if flag in line:
            pytest.skip(f"needs {what}")
    if "fashion-mnist" in line and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    cut = ["--limit", "64", "--val-limit", "32", "--epochs", "1", "--out", str(tmp_path / "run")]
    assert train.main([*shlex.split(line), *cut]) == 0
    assert (tmp_path / "run" / "checkpoint.npz").is_file()
