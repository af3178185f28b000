"""Benchmark one training step (or inference) per layer, side by side with PyTorch.

    python -m tinyalex.bench --model cifar --backend numpy --batch-size 128 --compare-torch
    python -m tinyalex.bench --model alexnet --backend cupy --batch-size 128 --compare-torch --tf32

A training step is forward + softmax cross-entropy + backward + the paper's SGD update
(tinyalex.optim.SGD: momentum 0.9, weight decay 5e-4); ``--inference`` times
``forward(train=False)`` alone. Each repeat times one step; the report gives the best
(min time) and median images/s over ``--repeats``. With ``--compare-torch`` the same
network (tinyalex.bench_torch: same layers, same weights) runs in PyTorch on the same
threads or device, its steps in blocks alternating with ours so both see the same machine load,
and the ratio tinyalex/PyTorch is printed (above 1 means tinyalex is faster).

Then a per-layer table from ``--profile-steps`` further steps timed layer by layer
(synchronising the GPU after each layer): forward and backward ms and each layer's share
of the step. Peak memory: the GPU memory pool's bytes on CuPy; on NumPy the peak of the
arrays allocated during one step (tracemalloc, which NumPy reports to) plus parameters.

``TINYALEX_KERNELS=0`` times the plain NumPy/CuPy code instead of the kernels. On CuPy,
``--tf32`` sets CuPy's ``CUPY_TF32=1`` (it is read when CuPy loads, so the command
restarts itself with it set) and PyTorch's allow_tf32; it is off by default.

This file is the command; the steps timed are in tinyalex/bench_runners.py, the tables and
summaries in tinyalex/bench_report.py.
"""

from __future__ import annotations

import datetime
import json
import os
import sys

import numpy as np

from . import backend, kernels
from .bench_report import format_report, layer_table, machine_line, summarise
from .bench_runners import TinyalexRunner, TorchRunner, make_batch, peak_memory
from .cli import (
    ArgumentParser,
    OutputError,
    nonnegative_int,
    positive_int,
    run_command,
)
from .layers import Conv2D
from .models import MODELS, build

PROG = "python -m tinyalex.bench"
TF32_ENV = "CUPY_TF32"


# --------------------------------------------------------------------------- main
def run(args) -> dict:
    xp = backend.get_module(args.backend)
    threads = args.threads or os.cpu_count() or 1
    if xp is np and kernels.numba_available():
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    model = build(args.model).to(args.backend)
    if args.winograd:  # the GPU's 3x3 stride-1 convs by F(2x2, 3x3) (bench: cupy only)
        kernels.cuda_kernels().WINOGRAD = True
    keep = {"backend": None, "yes": True, "no": False}[args.keep_cols]
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            layer.keep_cols = keep
    x, labels = make_batch(model, args.batch_size, xp)
    ours = TinyalexRunner(model, x, labels, inference=args.inference)

    theirs, skipped = None, None
    if args.compare_torch:
        from .bench_torch import torch_available

        if not torch_available():
            skipped = "PyTorch is not importable (pip install torch)"
            print(f"--compare-torch: skipped, {skipped}", file=sys.stderr)
        else:
            import torch

            torch.set_num_threads(threads)
            device = "cuda" if xp is not np else "cpu"
            theirs = TorchRunner(
                model, x, labels, device=device, inference=args.inference, tf32=args.tf32
            )

    for _ in range(args.warmup):  # compile kernels, fill memory pools and caches
        ours.step()
        if theirs:
            theirs.step()
    ours_s, theirs_s = [], []
    if theirs is None:
        ours_s = [ours.step() for _ in range(args.repeats)]
    else:
        # Alternating blocks, so both see the same machine load over the run. Not single
        # steps: each library's threads spin for a while after its last call and would
        # steal cores from the other's next step. Each block starts with an untimed step.
        blocks = 2 if args.repeats >= 4 else 1
        sizes = [args.repeats // blocks + (b < args.repeats % blocks) for b in range(blocks)]
        for size in sizes:
            for runner, times in ((ours, ours_s), (theirs, theirs_s)):
                runner.step()
                times.extend(runner.step() for _ in range(size))
    profiles = [ours.profile_step() for _ in range(args.profile_steps)]

    result = {
        "model": args.model,
        "backend": args.backend,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "inference": args.inference,
        "tf32": args.tf32,
        "keep_cols": args.keep_cols,
        "winograd": args.winograd,
        "kernels": kernels.enabled(),
        "threads": threads,
        "machine": machine_line(xp),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m tinyalex.bench " + " ".join(args.argv),
        "tinyalex": summarise(ours_s, args.batch_size),
        "layers": layer_table(model, profiles, args.inference),
        "peak_memory": peak_memory(ours, xp),
        "torch": None,
        "ratio": None,
    }
    if skipped:
        result["torch_skipped"] = skipped
    if theirs:
        result["torch"] = {
            "version": theirs.torch.__version__,
            **summarise(theirs_s, args.batch_size),
            "peak_memory": theirs.peak_memory(),
        }
        ti, to = result["tinyalex"]["images_per_s"], result["torch"]["images_per_s"]
        result["ratio"] = {"best": ti["best"] / to["best"], "median": ti["median"] / to["median"]}
    return result


def parse_args(argv):
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="cifar")
    p.add_argument("--backend", choices=backend.BACKENDS, default="numpy")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--repeats", type=positive_int, default=10, help="timed steps (default 10)")
    p.add_argument(
        "--warmup", type=nonnegative_int, default=2, help="untimed steps first (default 2)"
    )
    p.add_argument(
        "--profile-steps", type=positive_int, default=3, help="steps timed layer by layer"
    )
    p.add_argument("--compare-torch", action="store_true", help="time PyTorch in the same run")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on the GPU")
    p.add_argument("--inference", action="store_true", help="time forward(train=False) only")
    p.add_argument(
        "--threads", type=nonnegative_int, default=0, help="CPU threads (default: all cores)"
    )
    p.add_argument(
        "--keep-cols",
        choices=("backend", "yes", "no"),
        default="backend",
        help="convs keep their im2col for backward (yes) or compute it again into one shared "
        "workspace (no); default: the backend's choice (CPU yes, GPU no)",
    )
    p.add_argument(
        "--winograd",
        action="store_true",
        help="on the GPU, the 3x3 stride-1 convs (alexnet's conv3-5) and their dx by "
        "Winograd's F(2x2, 3x3) (tinyalex/kernels/winograd.py); off by default until timed",
    )
    args = p.parse_args(argv)
    args.argv = list(argv)
    return args


def bench(args) -> int:
    """Check what can be checked, benchmark, print the report, write the JSON."""
    if args.json:  # before minutes of timing, not after
        from .rundir import check_output_file

        check_output_file(args.json, "--json")
    backend.get_module(args.backend)  # BackendError: one line, exit 2
    for flag in ("tf32", "winograd"):
        if getattr(args, flag) and args.backend != "cupy":
            print(f"{PROG}: --{flag} only changes the cupy backend; ignored", file=sys.stderr)
            setattr(args, flag, False)
    result = run(args)
    print(format_report(result))
    if args.json:
        try:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        except OSError as e:
            raise OutputError(f"cannot write {args.json}: {e.strerror or e}") from e
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.tf32 and args.backend == "cupy" and os.environ.get(TF32_ENV) != "1":
        # CuPy reads CUPY_TF32 when it loads, which tinyalex.backend has already done.
        env = {**os.environ, TF32_ENV: "1"}
        os.execve(sys.executable, [sys.executable, "-m", "tinyalex.bench", *argv], env)
    return run_command(PROG, bench, args)


if __name__ == "__main__":
    sys.exit(main())
