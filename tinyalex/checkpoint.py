"""Checkpoints: one .npz file holding everything a run needs to continue exactly.

Layout (all plain arrays, so it loads with ``allow_pickle=False``):

    param/<name>   the model's parameters by dotted name ("param/conv1.W", ...)
    opt/<key>      the optimiser's state (velocities; lr etc. as 0-d arrays)
    data/mean      the per-pixel mean image the run subtracts, float32 (3, H, W)
    data/pca_eigvals, data/pca_eigvecs   the PCA colour statistics (3,), (3, 3)
    meta           a JSON string: format version, epochs and batches done, the run's
                   config, the model's name and config, class names, scheduler state and
                   the dropout layers' random-generator states

Writing goes to a temporary file in the same folder, flushed to disk, then renamed over the
old checkpoint: a crash mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .backend import to_numpy

FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable or not a tinyalex checkpoint."""


def save(path, *, params: dict, optimizer: dict, data: dict, meta: dict) -> Path:
    """Atomically write a checkpoint (see the module doc for the layout)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"param/{k}": to_numpy(v) for k, v in params.items()}
    arrays.update({f"opt/{k}": np.asarray(to_numpy(v)) for k, v in optimizer.items()})
    arrays.update({f"data/{k}": to_numpy(v) for k, v in data.items()})
    arrays["meta"] = np.array(json.dumps({"format": FORMAT_VERSION, **meta}))
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb"):
    """Write ``path`` all or nothing: yields a temporary file in the same folder, which is
    flushed to disk and renamed over ``path`` when the block ends, or removed if it raises."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


GROUPS = {"param": "params", "opt": "optimizer", "data": "data"}


def load(path) -> dict:
    """{"params": {...}, "optimizer": {...}, "data": {...}, "meta": {...}, "path": str}
    from a checkpoint.

    CheckpointError (one line) for a missing, damaged or foreign file: not a zip of plain
    arrays, a meta that is not a JSON object of this format, or an array outside the layout.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} is a folder; give the file, e.g. {path}/checkpoint.npz"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as e:  # zip, npy-header or JSON damage, no meta: all mean "not usable"
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{path} is not a tinyalex checkpoint (format {found})")
    out = {"params": {}, "optimizer": {}, "data": {}, "meta": meta, "path": str(path)}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        if group not in GROUPS or not name:
            raise CheckpointError(f"{path} is not a tinyalex checkpoint (unknown array {key!r})")
        out[GROUPS[group]][name] = value
    return out


def require(ckpt: dict, path, *keys: str) -> None:
    """CheckpointError unless ``ckpt["meta"]`` has each dotted key ("config.augment", ...)."""
    for key in keys:
        node = ckpt["meta"]
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise CheckpointError(f"checkpoint {path} is incomplete: its meta lacks {key!r}")
            node = node[part]
