"""The benchmark's report: summaries of step times, the per-layer table, the text printed.

Step times are summarised as best (min) and median over the repeats; a layer's share is its
forward + backward time over the sum of all rows (the loss and the update included).
"""

from __future__ import annotations

import os
import platform
import statistics

import numpy as np


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
        + (
            f", keep-cols {result['keep_cols']}"
            if result.get("keep_cols", "backend") != "backend"
            else ""
        )
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
