"""python -m tinyalex.experiments NAME [--quick] [--seeds N] [--data ...] [--backend ...]
[--out DIR]: run one claim (or ``all``), write NAME.json and NAME.png into --out and
regenerate its README.md table."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from .. import rundir
from ..backend import BACKENDS
from ..cli import ArgumentParser, positive_int, run_command
from . import CLAIMS
from .context import Context
from .report import COMMAND, write_json, write_readme
from .scale import DEFAULT, QUICK

# ``all`` runs ten-crop right after lrn: it only scores the baseline nets lrn trained.
RUN_ORDER = (
    "lrn",
    "ten-crop",
    "relu-vs-tanh",
    "overlapping-pool",
    "dropout",
    "pca-colour",
    "groups",
)
DATA_CHOICES = ("fashion-mnist", "cifar10", "synthetic")


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog=COMMAND, description="Reproduce the paper's claims at small scale.")
    p.add_argument(
        "name", choices=[*CLAIMS, "all"], metavar="NAME", help=", ".join([*CLAIMS, "all"])
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (seconds): checks machinery")
    p.add_argument(
        "--seeds", type=positive_int, default=None, help="seeds per arm (default 3; quick 2)"
    )
    p.add_argument("--data", choices=DATA_CHOICES, default="fashion-mnist")
    p.add_argument("--data-dir", default=None, help="where the dataset's files are")
    p.add_argument("--backend", choices=BACKENDS, default="numpy")
    p.add_argument("--out", default="results", help="folder for JSON, PNG and README.md")
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = 2 if args.quick else 3
    return args


def machine() -> str:
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load} (shared)"


def command_line(args, name: str) -> str:
    parts = [COMMAND, name]
    if args.quick:
        parts.append("--quick")
    if args.seeds != (2 if args.quick else 3):
        parts += ["--seeds", str(args.seeds)]
    for flag, default in (("data", "fashion-mnist"), ("backend", "numpy"), ("out", "results")):
        value = getattr(args, flag)
        if value != default:
            parts += [f"--{flag}", shlex.quote(str(value))]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Run the named claims in turn; each writes its JSON, plot and README row when done."""
    names = list(RUN_ORDER) if args.name == "all" else [args.name]
    out = Path(args.out)
    rundir.check_folder(out)  # before the training, not after it
    rundir.make_folder(out)
    ctx = Context(
        QUICK if args.quick else DEFAULT,
        data=args.data,
        data_dir=args.data_dir,
        backend=args.backend,
        seeds=args.seeds,
        log=lambda msg: print(msg, flush=True),
    )
    started = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        print(f"{name}:", flush=True)
        body = CLAIMS[name].run(ctx, out)
        body = {
            "claim": name,
            "title": CLAIMS[name].TITLE,
            "command": command_line(args, name),
            "data": ctx.data_name,
            "backend": args.backend,
            "seeds": ctx.seeds,
            "scale": {k: v for k, v in vars(ctx.scale).items()},
            "wall_seconds": time.perf_counter() - t0,
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            **body,
        }
        write_json(out / f"{name}.json", body)
        readme = write_readme(out, CLAIMS)
        for row in body["rows"]:
            print(f"  {row['claim']}: {row['ours']} -> {row['verdict']}", flush=True)
        print(f"  wrote {out / (name + '.json')}, {out / body['plot']}, {readme}", flush=True)
    print(f"done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


def main(argv=None) -> int:
    return run_command(COMMAND, run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
