"""Check a GPU in one command: tests, benchmarks against PyTorch, a short training run.

    python -m tinyalex.gpucheck --data-dir .data/fashion-mnist --out gpucheck-out

Runs, each step in its own process under its own timeout, the whole under ``--budget``
seconds (default 450, so it ends inside 8 minutes on an H100), after a seconds-long
preflight (versions, NVRTC compiles, the cuBLAS GEMM in FP32 and TF32 against cupy.matmul):

1. ``python -m tinyalex.bench --compare-torch`` at batch 128 for alexnet and the CIFAR net:
   the fp32 training step, ``--tf32``, and ``--inference``; and alexnet's fp32 step with
   ``--keep-cols yes`` (time and peak memory against the default, which recomputes im2col)
   and with ``--winograd`` (conv3-5 by F(2x2, 3x3), off by default until this is timed);
2. a short alexnet training run on Fashion-MNIST (``--data-dir``: the four idx.gz files) and
   a short CIFAR-net run on the synthetic set, and each one's images/s (median of the epochs
   after the first) against the fp32 bench of the same model and batch (the GPU work asks
   for at least 90%);
3. the CuPy test cases (``pytest -k "cupy or gpu"``, 4 processes with pytest-xdist and a
   per-test timeout with pytest-timeout where installed), last: a short budget cuts them.

It writes ``report.json`` (everything, the bench JSONs and epoch records included),
``report.md`` (the tables the README's GPU section is made from, with date and card) and
``gpucheck.log`` (every step's output) into ``--out``. A step that fails or runs out of
time is recorded as such and the others still run; the exit code is 1 if any step failed.

Without a GPU: ``--dry-run`` writes the reports with every step planned but not run;
``--backend numpy --quick`` runs small versions of the same steps on the CPU (how the
tests check the report's format).

On this project's lent GPU machines (the ``run`` tool), from the repository root, with the
dataset copied into a git-ignored folder first (``.data/`` is in .gitignore)::

    mkdir -p .data && cp -r /usr/share/datasets/fashion-mnist .data/

    run(command="PYTHONUNBUFFERED=1 python3 -m tinyalex.gpucheck "
                "--data-dir .data/fashion-mnist --out $OUT",
        carry=[".data/fashion-mnist"], timeout_s=540)

The machine's image has CuPy, PyTorch, numba, pytest and pytest-timeout (but not nbmake,
which the pytest step switches off); ``report.md`` comes back under the reply's files_at.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: tests/ and tinyalex/
BENCH_VARIANTS = {
    "fp32": [],
    "tf32": ["--tf32"],
    "inference": ["--inference"],
    # the GPU's default leaves each conv's im2col in a shared workspace and computes it again
    # in backward; this one keeps them, so the report gives both sides of that trade
    "fp32 keep-cols": ["--keep-cols", "yes"],
    # Winograd's F(2x2, 3x3) for alexnet's 3x3 convs, off by default until this row says
    "fp32 winograd": ["--winograd"],
}
TAIL = 4000  # characters of each step's output kept in report.json


# A first, seconds-long look at the device: versions, both CUDA modules compiled by NVRTC,
# the cuBLAS GEMM against cupy.matmul in FP32 and TF32. One JSON line on stdout.
PREFLIGHT = """
import json, time
from tinyalex import backend
out = {"cupy": backend.cupy_unavailable_reason() or "ok"}
if backend.cupy_available():
    import cupy as cp
    from tinyalex.augment import device as aug
    from tinyalex.kernels import cublas, cuda
    dev = cp.cuda.Device().id
    out["cupy_version"] = cp.__version__
    out["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
    t = time.perf_counter()
    cuda.module(dev).compile()  # a RawModule compiles lazily: at its first get_function
    aug._function("int", dev)
    out["nvrtc_seconds"] = round(time.perf_counter() - t, 2)
    a = cp.random.standard_normal((2, 512, 1024), dtype=cp.float32)
    b = cp.random.standard_normal((2, 1024, 512), dtype=cp.float32)
    ref = cp.matmul(a.astype(cp.float64), b.astype(cp.float64))
    scale = float(cp.abs(ref).max())
    for tf32 in (False, True):
        backend.set_tf32(tf32)
        c = cublas.gemm(a, b.transpose(0, 2, 1).copy().transpose(0, 2, 1))
        key = "tf32" if tf32 else "fp32"
        out[key + "_max_rel_error"] = float(cp.abs(c - ref).max()) / scale
    out["cublas_fallbacks"] = cublas.FALLBACKS
print(json.dumps(out))
"""


@dataclass
class Step:
    """One command of the check: what it runs, for how long at most, what it reads back."""

    name: str
    kind: str  # "tests", "bench" or "train"
    argv: list
    timeout: float
    info: dict = field(default_factory=dict)
    status: str = "planned"  # ok, failed, timeout, skipped, planned (dry run)
    rc: int | None = None
    seconds: float = 0.0
    output: str = ""
    result: dict | None = None


def plan(args, work: Path) -> list[Step]:
    """The steps for ``args`` (see the module doc); files go to the scratch folder ``work``.

    Measurements first, the tests last: if the budget runs short, the tests are cut.
    """
    py = sys.executable
    gpu = args.backend == "cupy"
    batch = 128 if gpu else 8
    models = ("alexnet", "cifar") if gpu or not args.quick else ("cifar",)
    steps = [Step("preflight", "preflight", [py, "-c", PREFLIGHT], 60)]

    alexnet_only = ("fp32 winograd", "fp32 keep-cols")  # cifar has no 3x3 conv
    pairs = [(m, v) for m in models for v in BENCH_VARIANTS if v not in alexnet_only]
    if gpu and "alexnet" in models:  # alexnet's questions on the GPU; last, as a short
        pairs += [("alexnet", v) for v in alexnet_only]  # budget cuts from the end
    for model, variant in pairs:
        flags = BENCH_VARIANTS[variant]
        if variant == "tf32" and not gpu:
            continue  # TF32 is a GPU setting
        name = variant.replace(" ", "-")
        out = work / f"bench-{model}-{name}.json"
        argv = [py, "-m", "tinyalex.bench", "--model", model, "--backend", args.backend]
        argv += ["--batch-size", str(batch), "--compare-torch", "--json", str(out), *flags]
        if not gpu:
            argv += ["--repeats", "2", "--warmup", "1", "--profile-steps", "1"]
        info = {"model": model, "variant": variant, "batch_size": batch, "json": str(out)}
        steps.append(Step(f"bench {model} {variant}", "bench", argv, 75, info))

    # (model, data, training images, epochs): enough steps per epoch to time the loop;
    # the ratio uses the epochs after the first (which compiles the kernels).
    runs = [("alexnet", "fashion-mnist", 8000, 3), ("cifar", "synthetic", 6000, 5)]
    for model, data, limit, epochs in runs:
        if model not in models:
            continue
        out = work / f"train-{model}"
        argv = [py, "-m", "tinyalex.train", "--backend", args.backend, "--model", model]
        argv += ["--data", data, "--batch-size", str(batch), "--out", str(out)]
        if data == "fashion-mnist" and args.data_dir:
            argv += ["--data-dir", str(args.data_dir)]
        if not gpu:
            limit, epochs = 64, 2
        argv += ["--limit", str(limit), "--val-limit", "2000" if gpu else "32"]
        argv += ["--epochs", str(epochs)]
        info = {"model": model, "data": data, "batch_size": batch, "out": str(out)}
        steps.append(Step(f"train {model} {data}", "train", argv, 150 if gpu else 120, info))

    pytest_argv = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    pytest_argv += ["-rfs", f"--junitxml={work / 'tests.xml'}"]
    if _has_module("pytest_timeout"):  # loaded by its entry point ("-p" would register it twice)
        pytest_argv += ["--timeout=120"]
    if gpu and _has_module("xdist"):
        pytest_argv += ["-n", "4"]  # four processes share the GPU: small tests, many launches
    if gpu:
        pytest_argv += ["tests", "-k", "cupy or gpu", "--ignore=tests/test_gpucheck.py"]
    else:  # a small file that runs here, so the report's test table is filled in
        pytest_argv += ["tests/test_device_pipeline.py", "-k", "memory_fit or ptx"]
    steps.append(Step("tests", "tests", pytest_argv, 170 if gpu else 120))
    return steps


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def run_step(step: Step, budget_left: float, log) -> None:
    """Run one step in its own process group, killed at its timeout; fill in the outcome."""
    limit = min(step.timeout, budget_left)
    if limit < 1:
        step.status, step.output = "skipped", "skipped: the check's time budget is spent"
        return
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        step.argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=limit)
        step.rc = proc.returncode
        step.status = "ok" if proc.returncode == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the step and anything it started
        output, _ = proc.communicate()
        step.rc, step.status = None, "timeout"
        output += f"\n[gpucheck: stopped after {limit:.0f} s]"
    step.seconds = time.perf_counter() - t0
    step.output = output or ""
    log.write(f"===== {step.name}: {step.status} in {step.seconds:.1f} s\n$ ")
    log.write(shlex.join(step.argv) + "\n" + step.output + "\n")
    log.flush()
    step.result = read_result(step)


def read_result(step: Step) -> dict | None:
    """What the step left behind: test counts, the bench JSON, the epoch records."""
    try:
        if step.kind == "tests":
            xml = next(a for a in step.argv if a.startswith("--junitxml=")).split("=", 1)[1]
            return test_counts(Path(xml))
        if step.kind == "bench":
            return json.loads(Path(step.info["json"]).read_text())
        if step.kind == "train":
            lines = (Path(step.info["out"]) / "metrics.jsonl").read_text().splitlines()
            return {"epochs": [json.loads(line) for line in lines if line.strip()]}
        if step.kind == "preflight":
            return json.loads(step.output.strip().splitlines()[-1])
    # IndexError: a preflight that printed nothing; ParseError: a truncated JUnit file
    except (OSError, ValueError, KeyError, IndexError, StopIteration, ET.ParseError):
        return None
    return None


def test_counts(xml: Path) -> dict:
    """Totals of a pytest JUnit XML file, and the names of the tests that failed."""
    root = ET.parse(xml).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed = []
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failed_tests"] = failed
    return counts


def summarise(steps: list[Step]) -> dict:
    """The report's tables: bench ratios, train-vs-bench images/s, test totals."""
    bench, train, tests, preflight = [], [], None, None
    fp32 = {}
    for s in steps:
        r = s.result
        if s.kind == "preflight":
            preflight = r
        elif s.kind == "tests":
            tests = r
        elif s.kind == "bench" and r:
            torch = r.get("torch") or {}
            row = {
                "model": s.info["model"],
                "variant": s.info["variant"],
                "batch_size": r["batch_size"],
                "tinyalex_img_s": r["tinyalex"]["images_per_s"]["median"],
                "torch_img_s": (torch.get("images_per_s") or {}).get("median"),
                "ratio_median": (r.get("ratio") or {}).get("median"),
                "ratio_best": (r.get("ratio") or {}).get("best"),
                "peak_mib": r["peak_memory"]["bytes"] / 2**20,
                "torch_peak_mib": _mib(torch.get("peak_memory")),
                "machine": r.get("machine"),
            }
            bench.append(row)
            if s.info["variant"] == "fp32":
                fp32[s.info["model"]] = row["tinyalex_img_s"]
    for s in steps:
        if s.kind != "train" or not s.result or not s.result["epochs"]:
            continue
        epochs = s.result["epochs"]
        last = epochs[-1]
        rates = [e.get("images_per_second") or 0 for e in epochs[1:] or epochs]
        img_s = statistics.median(rates)  # the first epoch also compiles kernels
        bench_img_s = fp32.get(s.info["model"])
        train.append(
            {
                "model": s.info["model"],
                "data": s.info["data"],
                "epochs": len(s.result["epochs"]),
                "images_per_second": img_s,
                "bench_img_s": bench_img_s,
                "ratio": img_s / bench_img_s if img_s and bench_img_s else None,
                "val_top1_error": last.get("val_top1_error"),
                "train_loss": last.get("train_loss"),
                "seconds": sum(e.get("seconds", 0) for e in s.result["epochs"]),
            }
        )
    return {"preflight": preflight, "tests": tests, "bench": bench, "train": train}


def _mib(mem):
    return None if not mem else mem["bytes"] / 2**20


def device_line(backend: str) -> str:
    """The card (nvidia-smi's name, memory, driver) or the CPU, for the report's header."""
    if backend == "cupy" and shutil.which("nvidia-smi"):
        query = "--query-gpu=name,memory.total,driver_version"
        try:
            out = subprocess.run(
                ["nvidia-smi", query, "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
            if out:
                return out.splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _commit() -> str | None:
    """The checkout's commit, when git and the .git folder are there (not on every copy)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def markdown(report: dict) -> str:
    """report.md: the header, then one table per kind of step."""
    s = report["summary"]
    lines = [
        f"# tinyalex GPU check, {report['date']}",
        "",
        f"- device: {report['device']}",
        f"- commit: {report.get('commit') or 'unknown'}",
        f"- backend: {report['backend']}{' (quick)' if report['quick'] else ''}"
        + (" — DRY RUN, nothing was run" if report["dry_run"] else ""),
        f"- command: `{report['command']}`",
        f"- total: {report['seconds']:.0f} s; exit code {report['exit_code']}",
        "",
        "## Steps",
        "",
        "| step | status | seconds |",
        "|---|---|---:|",
    ]
    lines += [f"| {st['name']} | {st['status']} | {st['seconds']:.1f} |" for st in report["steps"]]
    lines += ["", "## Preflight", ""]
    pre = s.get("preflight")
    lines += [f"- {k}: {v}" for k, v in pre.items()] if pre else ["no preflight result"]
    lines += ["", "## Tests", ""]
    t = s["tests"]
    if t:
        lines.append(
            f"{t['passed']} passed, {t['failures'] + t['errors']} failed, "
            f"{t['skipped']} skipped (of {t['tests']})"
        )
        lines += [f"- FAILED {name}" for name in t["failed_tests"]]
    else:
        lines.append("no test results")
    lines += [
        "",
        "## Benchmark against PyTorch (median img/s; ratio > 1: tinyalex faster)",
        "",
        "| model | step | batch | tinyalex img/s | PyTorch img/s | ratio (median) | "
        "ratio (best) | peak MiB | PyTorch peak MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in s["bench"]:
        lines.append(
            f"| {b['model']} | {b['variant']} | {b['batch_size']} | {_f(b['tinyalex_img_s'])} | "
            f"{_f(b['torch_img_s'])} | {_f(b['ratio_median'], 2)} | {_f(b['ratio_best'], 2)} | "
            f"{_f(b['peak_mib'])} | {_f(b['torch_peak_mib'])} |"
        )
    lines += [
        "",
        "## Training runs against the fp32 bench (img/s: median of the epochs after the first;"
        " error: last epoch)",
        "",
        "| model | data | epochs | train img/s | bench img/s | train / bench | "
        "val top-1 error | seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in s["train"]:
        err = "–" if r["val_top1_error"] is None else f"{r['val_top1_error']:.1%}"
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.0%}"
        lines.append(
            f"| {r['model']} | {r['data']} | {r['epochs']} | {_f(r['images_per_second'])} | "
            f"{_f(r['bench_img_s'])} | {ratio} | {err} | {_f(r['seconds'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def _f(v, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m tinyalex.gpucheck", description=__doc__.split("\n")[0]
    )
    p.add_argument("--out", required=True, help="folder for report.json, report.md, the log")
    p.add_argument("--data-dir", default=None, help="folder with Fashion-MNIST's idx.gz files")
    p.add_argument("--backend", choices=("cupy", "numpy"), default="cupy")
    p.add_argument("--quick", action="store_true", help="small sizes (for --backend numpy)")
    p.add_argument("--dry-run", action="store_true", help="write the plan as the report")
    p.add_argument("--budget", type=float, default=450.0, help="seconds for all steps")
    p.add_argument(
        "--only", default=None, help="run only the steps whose names contain one of these (a,b)"
    )
    args = p.parse_args(argv)
    if args.data_dir and not Path(args.data_dir).is_dir():
        p.exit(2, f"{p.prog}: error: --data-dir {args.data_dir} is not a folder\n")
    if args.budget <= 0:
        p.exit(2, f"{p.prog}: error: --budget must be positive\n")
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinyalex-gpucheck-") as tmp:
        steps = plan(args, Path(tmp))
        if args.only:  # comma-separated parts of step names
            parts = [part.strip() for part in args.only.split(",")]
            steps = [s for s in steps if any(part in s.name for part in parts)]
        with open(out / "gpucheck.log", "w") as log:
            for step in steps:
                if args.dry_run:
                    continue
                print(f"gpucheck: {step.name} ...", flush=True)
                run_step(step, args.budget - (time.perf_counter() - t0), log)
                print(f"gpucheck: {step.name}: {step.status} ({step.seconds:.1f} s)", flush=True)
        summary = summarise(steps)
    bad = [s for s in steps if s.status in ("failed", "timeout")]
    report = {
        "tool": "tinyalex.gpucheck",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device_line(args.backend),
        "commit": _commit(),
        "backend": args.backend,
        "quick": args.quick,
        "dry_run": args.dry_run,
        "command": shlex.join(["python", "-m", "tinyalex.gpucheck", *argv]),
        "seconds": time.perf_counter() - t0,
        "exit_code": 1 if bad else 0,
        "steps": [
            {
                "name": s.name,
                "kind": s.kind,
                "command": shlex.join(s.argv),
                "timeout": s.timeout,
                "status": s.status,
                "rc": s.rc,
                "seconds": s.seconds,
                "output_tail": s.output[-TAIL:],
                "result": s.result,
            }
            for s in steps
        ],
        "summary": summary,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(markdown(report))
    print((out / "report.md").read_text())
    return report["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
