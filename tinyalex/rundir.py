"""A run's output folder, kept safe: nothing a run writes destroys another run.

    checkpoint.npz   the run's state (tinyalex.checkpoint), replaced atomically
    metrics.jsonl    one JSON line an epoch, each line flushed to disk as it is written
    curves.png       drawn from metrics.jsonl
    .tinyalex.lock   held (an flock) while a process writes into the folder

A folder "holds a run" when any of the first three files is there. The checks here run
before any data is loaded, so a mistake costs seconds, not an epoch: a file where the
folder should be, a folder that cannot be written, a folder holding another run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .checkpoint import atomic_file
from .cli import OutputError, UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the other checks still run
    fcntl = None

RUN_FILES = ("checkpoint.npz", "metrics.jsonl", "curves.png")
LOCK_NAME = ".tinyalex.lock"


def run_files(folder: Path) -> list[str]:
    """The run files already in ``folder`` (empty if none, or no folder)."""
    return [name for name in RUN_FILES if (Path(folder) / name).exists()]


def check_folder(folder: Path, flag: str = "--out") -> None:
    """OutputError unless ``folder`` is, or can be made, a writable folder.

    Catches a file at ``folder`` or at one of its parents, and an existing folder (the
    nearest one up the path) that this user cannot write into.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder} is a file, not a folder")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise OutputError(f"{flag} {folder}: {existing} is a file, so no folder can be made there")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {folder}: {existing} is not writable")


def check_output_file(path, flag: str) -> Path:
    """OutputError unless ``path`` names a file that can be written: its folder exists and
    is writable, and ``path`` is not itself a folder. Returns ``path`` as a Path."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name")
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise OutputError(f"{flag} {path}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{flag} {path}: the folder {parent} is not writable")
    return path


def make_folder(folder: Path, flag: str = "--out") -> None:
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {flag} {folder}: {e.strerror or e}") from e


def free_folder(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... : the first that holds no run and no lock."""
    base, n = Path(base), 1
    while True:
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if not run_files(folder) and not (folder / LOCK_NAME).exists():
            return folder
        n += 1


class FolderLocked(UserError):
    """Another process holds the folder's lock."""


class FolderLock:
    """``.tinyalex.lock`` in a folder, held with flock while one process writes there.

    flock is released by the kernel when the process dies, so a killed run leaves no
    stale lock; the file is removed on a clean release.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock; FolderLocked naming the other process if one holds it."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise OutputError(f"cannot write into {self.path.parent}: {e.strerror or e}") from e
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise FolderLocked(
                    f"another run (pid {pid}) is writing into {self.path.parent}; "
                    "wait for it to finish or choose another --out"
                ) from None
            try:  # the holder before us may have removed the file: lock the one on disk
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as e:
            os.close(fd)
            raise OutputError(f"cannot write into {self.path.parent}: {e.strerror or e}") from e
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        os.close(self.fd)  # closing the descriptor drops the flock
        self.fd = None


def read_metrics(path: Path) -> tuple[list[dict], list[int]]:
    """The JSON objects of a metrics.jsonl file, and the numbers of lines that are not one
    (a line torn by a crash, say): those are skipped, never fatal. ([], []) if no file."""
    rows, bad = [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad.append(number)
            continue
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append(row)
        else:
            bad.append(number)
    return rows, bad


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Replace ``path`` with ``rows``, one JSON line each (temporary file, then rename)."""
    path = Path(path)
    try:
        with atomic_file(path, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


def append_metrics(path: Path, row: dict) -> None:
    """Add one line to metrics.jsonl, flushed to disk before returning."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e
