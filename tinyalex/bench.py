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
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import backend, kernels

TF32_ENV = "CUPY_TF32"


# --------------------------------------------------------------------------- setup
def build_model(name: str):
    """A model by its CLI name from tinyalex.models ('cifar' or 'alexnet')."""
    from . import models

    return models.build(name)


def make_optimizer(model, lr: float = 0.01):
    """The paper's SGD from tinyalex.optim; a plain ``p -= lr * g`` if it is missing."""
    try:
        from .optim import SGD
    except ImportError:  # pragma: no cover - only before optim.py existed

        class SGD:
            def __init__(self, model, lr, **_):
                self.model, self.lr = model, lr

            def step(self):
                grads = self.model.grads
                for k, p in self.model.params.items():
                    p -= self.lr * grads[k]

    return SGD(model, lr, momentum=0.9, weight_decay=5e-4)


def make_batch(model, batch_size: int, xp, seed: int = 0):
    """A fixed random batch (pixel-like scale) and labels, on xp's device."""
    rng = np.random.default_rng(seed)
    size = model.input_size
    x = rng.standard_normal((batch_size, 3, size, size), dtype=np.float32) * 50
    num_classes = getattr(model, "num_classes", None) or _num_outputs(model)
    labels = rng.integers(0, num_classes, batch_size)
    return xp.asarray(x), xp.asarray(labels), num_classes


def _num_outputs(model) -> int:
    for layer in reversed(model.layers):
        if hasattr(layer, "out_features"):
            return layer.out_features
    raise ValueError("cannot tell the number of classes of this model")


# --------------------------------------------------------------------------- tinyalex timing
class TinyalexRunner:
    """One training (or inference) step of a tinyalex Sequential on a fixed batch."""

    def __init__(self, model, x, labels, inference: bool = False):
        from .layers import SoftmaxCrossEntropy

        self.model, self.x, self.labels, self.inference = model, x, labels, inference
        self.loss = SoftmaxCrossEntropy()
        self.opt = None if inference else make_optimizer(model)

    def step(self) -> float:
        """Seconds for one step, the device synchronised at the end."""
        t0 = time.perf_counter()
        if self.inference:
            out = self.model.forward(self.x, train=False)
        else:
            logits = self.model.forward(self.x, train=True)
            self.loss.forward(logits, self.labels)
            self.model.backward(self.loss.backward(), input_grad=False)  # images need no dx
            self.opt.step()
            out = logits
        backend.synchronize(out)
        return time.perf_counter() - t0

    def profile_step(self) -> dict:
        """Seconds per layer, forward and backward, plus the loss and the update."""
        sync = backend.synchronize
        times = {}
        h = self.x
        sync(h)
        for name, layer in self.model.named_layers():
            t0 = time.perf_counter()
            h = layer.forward(h, train=not self.inference)
            sync(h)
            times[name] = [time.perf_counter() - t0, 0.0]
        if self.inference:
            return times
        t0 = time.perf_counter()
        self.loss.forward(h, self.labels)
        dy = self.loss.backward()
        sync(dy)
        times["loss"] = [time.perf_counter() - t0, 0.0]
        layers = self.model.named_layers()
        first = next(i for i, (_, layer) in enumerate(layers) if layer.params)
        for name, layer in reversed(layers[first:]):  # as Sequential.backward(input_grad=False)
            t0 = time.perf_counter()
            if layer is layers[first][1]:
                layer.backward(dy, input_grad=False)
            else:
                dy = layer.backward(dy)
            sync(dy)
            times[name][1] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.opt.step()
        sync()
        times["sgd update"] = [0.0, time.perf_counter() - t0]
        return times


def peak_memory(runner: TinyalexRunner, xp) -> dict:
    """Peak bytes of one step: the CuPy pool, or NumPy arrays (tracemalloc) + parameters."""
    if xp is not np:
        pool = xp.get_default_memory_pool()
        runner.step()
        return {"kind": "cupy memory pool total bytes", "bytes": int(pool.total_bytes())}
    import tracemalloc

    params = sum(int(p.nbytes) for p in runner.model.params.values())
    # Buffers the layers keep between steps (conv's im2col workspaces) were allocated before
    # tracing starts, so tracemalloc does not see them: counted here.
    kept = sum(
        int(buf.nbytes)
        for layer in runner.model.layers
        for buf in (getattr(layer, "_workspace", None), getattr(layer, "_dworkspace", None))
        if isinstance(buf, np.ndarray)
    )
    tracemalloc.start()
    try:
        runner.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {
        "kind": "numpy arrays during one step (tracemalloc) + parameters + kept workspaces",
        "bytes": peak + params + kept,
    }


# --------------------------------------------------------------------------- PyTorch timing
class TorchRunner:
    """The same network and step in PyTorch (tinyalex.bench_torch)."""

    def __init__(self, model, x, labels, *, device: str, inference: bool, tf32: bool):
        import torch

        from .bench_torch import torch_sequential

        self.torch = torch
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
        self.device, self.inference = device, inference
        self.net = torch_sequential(model).to(device)
        self.x = torch.from_numpy(backend.to_numpy(x)).to(device)
        self.labels = torch.from_numpy(backend.to_numpy(labels).astype(np.int64)).to(device)
        self.loss = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def _sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def step(self) -> float:
        torch = self.torch
        t0 = time.perf_counter()
        if self.inference:
            self.net.eval()
            with torch.no_grad():
                self.net(self.x)
        else:
            self.net.train()
            self.opt.zero_grad(set_to_none=True)
            self.loss(self.net(self.x), self.labels).backward()
            self.opt.step()
        self._sync()
        return time.perf_counter() - t0

    def peak_memory(self) -> dict | None:
        if self.device != "cuda":
            return None
        torch = self.torch
        torch.cuda.reset_peak_memory_stats()
        self.step()
        return {"kind": "torch.cuda.max_memory_reserved", "bytes": torch.cuda.max_memory_reserved()}


# --------------------------------------------------------------------------- report
def summarise(seconds: list, batch_size: int) -> dict:
    best, median = min(seconds), statistics.median(seconds)
    return {
        "step_ms": {"min": best * 1e3, "median": median * 1e3, "all": [s * 1e3 for s in seconds]},
        "images_per_s": {"best": batch_size / best, "median": batch_size / median},
    }


def layer_table(model, profiles: list, inference: bool) -> list[dict]:
    names = [name for name, _ in model.named_layers()]
    if not inference:
        names = names + ["loss", "sgd update"]
    types = {name: type(layer).__name__ for name, layer in model.named_layers()}
    rows = []
    for name in names:
        fwd = statistics.median(p[name][0] for p in profiles) * 1e3
        bwd = statistics.median(p[name][1] for p in profiles) * 1e3
        rows.append(
            {"name": name, "type": types.get(name, ""), "forward_ms": fwd, "backward_ms": bwd}
        )
    total = sum(r["forward_ms"] + r["backward_ms"] for r in rows) or 1.0
    for r in rows:
        r["share"] = (r["forward_ms"] + r["backward_ms"]) / total
    return rows


def format_report(result: dict) -> str:
    lines = [
        f"tinyalex bench: model {result['model']}, backend {result['backend']}, "
        f"batch {result['batch_size']}, {'inference' if result['inference'] else 'training step'}"
        f", kernels {'on' if result['kernels'] else 'off (plain path)'}"
        + (", TF32" if result["tf32"] else "")
        + f", threads {result['threads']}",
        f"machine: {result['machine']}; {result['date']}",
        "",
        f"{'layer':<11}{'type':<20}{'fwd ms':>9}{'bwd ms':>9}{'share':>8}",
    ]
    for r in result["layers"]:
        lines.append(
            f"{r['name']:<11}{r['type']:<20}{r['forward_ms']:>9.2f}{r['backward_ms']:>9.2f}"
            f"{r['share']:>8.1%}"
        )
    total = sum(r["forward_ms"] + r["backward_ms"] for r in result["layers"])
    lines.append(f"{'sum':<31}{total:>18.2f}")
    lines.append("")
    ours = result["tinyalex"]
    lines.append(
        f"tinyalex: {ours['images_per_s']['best']:.1f} img/s best, "
        f"{ours['images_per_s']['median']:.1f} median "
        f"({ours['step_ms']['min']:.1f} / {ours['step_ms']['median']:.1f} ms per step, "
        f"{result['repeats']} repeats)"
    )
    mem = result["peak_memory"]
    lines.append(f"peak memory: {mem['bytes'] / 2**20:.1f} MiB ({mem['kind']})")
    torch = result.get("torch")
    if torch:
        lines.append(
            f"pytorch {torch['version']}: {torch['images_per_s']['best']:.1f} img/s best, "
            f"{torch['images_per_s']['median']:.1f} median "
            f"({torch['step_ms']['min']:.1f} / {torch['step_ms']['median']:.1f} ms per step)"
        )
        if torch.get("peak_memory"):
            lines.append(f"pytorch peak memory: {torch['peak_memory']['bytes'] / 2**20:.1f} MiB")
        ratio = result["ratio"]
        lines.append(
            f"ratio tinyalex/pytorch: {ratio['best']:.2f}x best-of, {ratio['median']:.2f}x median"
        )
    elif result.get("torch_skipped"):
        lines.append(f"pytorch: skipped ({result['torch_skipped']})")
    return "\n".join(lines)


def machine_line(xp) -> str:
    if xp is not np:
        props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


# --------------------------------------------------------------------------- main
def run(args) -> dict:
    xp = backend.get_module(args.backend)
    threads = args.threads or os.cpu_count() or 1
    if xp is np and kernels.numba_available():
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    model = build_model(args.model)
    model.to(args.backend)
    x, labels, _ = make_batch(model, args.batch_size, xp)
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
    p = argparse.ArgumentParser(prog="python -m tinyalex.bench", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("cifar", "alexnet"), default="cifar")
    p.add_argument("--backend", choices=backend.BACKENDS, default="numpy")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--profile-steps", type=int, default=3, help="steps timed layer by layer")
    p.add_argument("--compare-torch", action="store_true", help="time PyTorch in the same run")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on the GPU")
    p.add_argument("--inference", action="store_true", help="time forward(train=False) only")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 0 or args.profile_steps < 1:
        p.error("--batch-size, --repeats and --profile-steps must be >= 1, --warmup >= 0")
    args.argv = list(argv)
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.tf32 and args.backend == "cupy" and os.environ.get(TF32_ENV) != "1":
        # CuPy reads CUPY_TF32 when it loads, which tinyalex.backend has already done.
        env = {**os.environ, TF32_ENV: "1"}
        os.execve(sys.executable, [sys.executable, "-m", "tinyalex.bench", *argv], env)
    if args.backend == "cupy":
        reason = backend.cupy_unavailable_reason()
        if reason:
            print(f"tinyalex.bench: --backend cupy: {reason}", file=sys.stderr)
            return 2
    if args.tf32 and args.backend != "cupy":
        print("tinyalex.bench: --tf32 only changes the cupy backend; ignored", file=sys.stderr)
        args.tf32 = False
    result = run(args)
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
