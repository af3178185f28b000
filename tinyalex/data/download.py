"""Downloading a file once, with a checksum, into the cache (standard library only)."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks so a large archive never sits in memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: str | os.PathLike, md5: str, *, timeout: float = 60.0) -> Path:
    """Make sure ``dest`` holds the file at ``url`` with MD5 ``md5``; return its path.

    A ``dest`` already present with the right checksum is used as it is (the cache).
    Otherwise the file is downloaded next to ``dest`` under a temporary name, checked,
    and only then renamed: an interrupted or corrupted download never looks like a
    finished one, and a wrong checksum leaves nothing behind.
    """
    dest = Path(dest)
    if dest.is_file():
        if md5sum(dest) == md5:
            return dest
        dest.unlink()  # a stale or damaged copy: fetch it again

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create cache folder {dest.parent}: {e.strerror}") from e
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while block := resp.read(1 << 20):
                out.write(block)
        got = md5sum(tmp)
        if got != md5:
            raise DataError(
                f"{url} downloaded with md5 {got}, expected {md5} "
                f"(corrupted or changed upstream; put the files in --data-dir instead)"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not download {url}: {reason}; put the files in --data-dir") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest
