"""Where downloaded and cached data lives."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tinyalex cache folder: ``cache_dir`` if given, else ``$TINYALEX_CACHE``,
    else ``~/.cache/tinyalex``. Each dataset keeps its files in a subfolder of it."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("TINYALEX_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "tinyalex"
