"""What every command (train, evaluate, predict, augment, bench) shares: an argument parser
whose errors are one line, argument types that refuse out-of-range values, and the rule
that a user's mistake is one line on stderr and exit code 2.

Only the project's own error types are user errors (``USER_ERRORS``): a missing GPU, bad
or missing data, an unusable checkpoint, an output that cannot be written, a flag that
contradicts another. Anything else (a ``ValueError`` from a shape bug, say) is a bug in
tinyalex and keeps its traceback.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

from .backend import BackendError
from .checkpoint import CheckpointError
from .data import DataError


class UserError(Exception):
    """A mistake the user can fix: the message is one line saying what and how."""


class OutputError(UserError):
    """An output file or folder cannot be written (a file in the way, read-only, disk full)."""


# What a user's mistake raises; the commands print it as one line and exit with code 2.
USER_ERRORS = (UserError, BackendError, DataError, CheckpointError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (and exit code 2), not usage + error."""

    def error(self, message):
        # "argument --epochs: must be at least 1, got '0'" -> "--epochs must be at least 1, ..."
        message = re.sub(r"^argument (\S+): must be ", r"\1 must be ", message)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def report(prog: str, error: BaseException) -> int:
    """Print a user error as ``PROG: error: MESSAGE`` on stderr; return the exit code 2."""
    print(f"{prog}: error: {error}", file=sys.stderr, flush=True)
    return 2


def run_command(prog: str, body, *args, **kwargs) -> int:
    """``body(*args, **kwargs)``, with USER_ERRORS turned into one line and exit code 2."""
    try:
        return body(*args, **kwargs)
    except USER_ERRORS as e:
        return report(prog, e)


# --------------------------------------------------------------------------- argument types
# Each raises ArgumentTypeError("must be ..."); the parser prints "--flag must be ..., got X".
def _number(kind, text: str, ok, must: str):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {must}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (epochs, batch size, image counts, pixels)."""
    return _number(int, text, lambda v: v >= 1, "at least 1")


def nonnegative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "an integer, 0 or more")


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate): 'nan', 'inf' and 0 are refused."""
    return _number(float, text, lambda v: v > 0, "a finite number above 0")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (weight decay)."""
    return _number(float, text, lambda v: v >= 0, "a finite number, 0 or more")


def fraction(text: str) -> float:
    """A finite number in [0, 1) (momentum)."""
    return _number(float, text, lambda v: 0 <= v < 1, "a number in [0, 1)")


def int_list(text: str) -> list[int]:
    """Comma-separated positive integers, e.g. '30,60' (epochs)."""
    try:
        return [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers of at least 1, got {text!r}"
        ) from None
