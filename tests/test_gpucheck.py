"""python -m tinyalex.gpucheck: the plan it runs on a GPU, and well-formed reports.

Nothing here needs a GPU: ``--dry-run`` writes the planned GPU check, and the runner is
driven with small real commands (a bench on NumPy, a failing and a hanging step).
"""

import json
import sys

import pytest

from tinyalex import gpucheck


def _report(out):
    report = json.loads((out / "report.json").read_text())
    return report, (out / "report.md").read_text()


def test_dry_run_plans_the_whole_gpu_check(tmp_path):
    data = tmp_path / "fmnist"
    data.mkdir()
    out = tmp_path / "out"
    code = gpucheck.main(["--dry-run", "--data-dir", str(data), "--out", str(out)])
    assert code == 0
    report, md = _report(out)
    assert report["dry_run"] and report["backend"] == "cupy"
    names = [s["name"] for s in report["steps"]]
    assert names[0] == "preflight"
    assert names[-1] == "tests"  # last: a short budget cuts the tests, not the figures
    for model in ("alexnet", "cifar"):
        for variant in ("fp32", "tf32", "inference"):
            assert f"bench {model} {variant}" in names
    assert "train alexnet fashion-mnist" in names
    steps = {s["name"]: s for s in report["steps"]}
    assert all(s["status"] == "planned" for s in report["steps"])
    assert "'cupy or gpu'" in steps["tests"]["command"]
    assert "addopts=" in steps["tests"]["command"]  # nbmake is not on the GPU machine
    tf32 = steps["bench alexnet tf32"]["command"]
    assert "--compare-torch" in tf32 and "--tf32" in tf32 and "--batch-size 128" in tf32
    assert "--inference" in steps["bench cifar inference"]["command"]
    train = steps["train alexnet fashion-mnist"]["command"]
    assert f"--data-dir {data}" in train and "--backend cupy" in train
    assert "DRY RUN" in md and "| bench alexnet tf32 | planned |" in md
    assert (out / "gpucheck.log").exists()


def test_bad_data_dir_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpucheck.main(["--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "is not a folder" in err and len(err.splitlines()) == 1


def test_runner_records_results_failures_and_timeouts(tmp_path, monkeypatch):
    """A real (tiny) bench and training run, a failing step and a hanging one."""
    py = sys.executable

    def small_plan(args, work):
        bench_json = work / "bench.json"
        bench = [py, "-m", "tinyalex.bench", "--model", "cifar", "--batch-size", "2"]
        bench += ["--repeats", "1", "--warmup", "0", "--profile-steps", "1"]
        bench += ["--json", str(bench_json)]
        train_out = work / "train"
        train = [py, "-m", "tinyalex.train", "--model", "cifar", "--limit", "16"]
        train += ["--val-limit", "8", "--epochs", "1", "--batch-size", "8", "--out", str(train_out)]
        return [
            gpucheck.Step(
                "bench cifar fp32",
                "bench",
                bench,
                300,
                {"model": "cifar", "variant": "fp32", "json": str(bench_json)},
            ),
            gpucheck.Step(
                "train cifar synthetic",
                "train",
                train,
                300,
                {"model": "cifar", "data": "synthetic", "out": str(train_out)},
            ),
            gpucheck.Step("broken", "bench", [py, "-c", "raise SystemExit(3)"], 60, {}),
            gpucheck.Step("hangs", "bench", [py, "-c", "import time; time.sleep(60)"], 2, {}),
        ]

    monkeypatch.setattr(gpucheck, "plan", small_plan)
    out = tmp_path / "out"
    code = gpucheck.main(["--backend", "numpy", "--quick", "--out", str(out)])
    assert code == 1  # a step failed
    report, md = _report(out)
    status = {s["name"]: s["status"] for s in report["steps"]}
    assert status == {
        "bench cifar fp32": "ok",
        "train cifar synthetic": "ok",
        "broken": "failed",
        "hangs": "timeout",
    }
    hangs = next(s for s in report["steps"] if s["name"] == "hangs")
    assert hangs["seconds"] < 30 and "stopped after" in hangs["output_tail"]
    (bench,) = report["summary"]["bench"]
    assert bench["model"] == "cifar" and bench["tinyalex_img_s"] > 0
    assert bench["torch_img_s"] is None and bench["ratio_median"] is None  # no --compare-torch
    (train,) = report["summary"]["train"]
    assert train["images_per_second"] > 0 and 0 <= train["val_top1_error"] <= 1
    assert train["ratio"] == pytest.approx(train["images_per_second"] / bench["tinyalex_img_s"])
    assert "| broken | failed |" in md and "| hangs | timeout |" in md
    assert "| cifar | fp32 | 2 |" in md
    log = (out / "gpucheck.log").read_text()
    assert "===== broken: failed" in log and "tinyalex bench" in log


def test_out_of_budget_steps_are_skipped(tmp_path, monkeypatch):
    py = sys.executable
    steps = [gpucheck.Step(f"s{i}", "bench", [py, "-c", "pass"], 60, {}) for i in range(2)]
    monkeypatch.setattr(gpucheck, "plan", lambda args, work: steps)
    gpucheck.main(["--backend", "numpy", "--out", str(tmp_path), "--budget", "0.5"])
    report, _ = _report(tmp_path)
    assert [s["status"] for s in report["steps"]] == ["skipped", "skipped"]
    assert report["exit_code"] == 0


def test_test_counts_reads_junit_xml(tmp_path):
    xml = tmp_path / "t.xml"
    xml.write_text(
        '<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.a" name="ok"/>'
        '<testcase classname="tests.a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.a" name="skip"><skipped/></testcase>'
        '<testcase classname="tests.b" name="ok2"/>'
        "</testsuite></testsuites>"
    )
    counts = gpucheck.test_counts(xml)
    assert counts["passed"] == 2 and counts["failures"] == 1 and counts["skipped"] == 1
    assert counts["failed_tests"] == ["tests.a::bad"]


def _bench(img_s, torch_img_s, peak, torch_peak):
    return {
        "batch_size": 128,
        "machine": "NVIDIA H100 80GB HBM3",
        "tinyalex": {"images_per_s": {"median": img_s, "best": img_s * 1.01}},
        "torch": {
            "images_per_s": {"median": torch_img_s, "best": torch_img_s},
            "peak_memory": {"bytes": torch_peak * 2**20},
        },
        "ratio": {"median": img_s / torch_img_s, "best": img_s * 1.01 / torch_img_s},
        "peak_memory": {"bytes": peak * 2**20},
    }


def test_report_tables_from_fake_gpu_results():
    """Made-up GPU figures in, the README's tables out: ratios, MiB, train/bench."""
    fp32 = gpucheck.Step(
        "bench alexnet fp32", "bench", [], 1, {"model": "alexnet", "variant": "fp32"}
    )
    fp32.result = _bench(4000.0, 5000.0, 3072, 3482)
    tf32 = gpucheck.Step(
        "bench alexnet tf32", "bench", [], 1, {"model": "alexnet", "variant": "tf32"}
    )
    tf32.result = _bench(9000.0, 8863.0, 3072, 3482)
    run = gpucheck.Step(
        "train alexnet fashion-mnist", "train", [], 1, {"model": "alexnet", "data": "fashion-mnist"}
    )
    run.result = {
        "epochs": [
            {"images_per_second": 1000.0, "val_top1_error": 0.5, "seconds": 8.0},
            {"images_per_second": 3700.0, "val_top1_error": 0.2, "seconds": 2.2},
            {"images_per_second": 3900.0, "val_top1_error": 0.15, "seconds": 2.1},
        ]
    }
    tests = gpucheck.Step("tests", "tests", [], 1)
    tests.result = {"tests": 3, "failures": 1, "errors": 0, "skipped": 0, "passed": 2,
                    "failed_tests": ["tests.test_x::test_y[cupy]"]}  # fmt: skip
    steps = [fp32, tf32, run, tests]
    for s in steps:
        s.status = "ok"
    summary = gpucheck.summarise(steps)
    row = summary["train"][0]
    assert row["images_per_second"] == 3800.0  # median of epochs 2 and 3
    assert row["ratio"] == pytest.approx(0.95) and row["val_top1_error"] == 0.15
    assert [b["ratio_median"] for b in summary["bench"]] == [0.8, pytest.approx(9000 / 8863)]
    report = {
        "date": "2026-11-27 15:00 UTC",
        "device": "NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04",
        "backend": "cupy",
        "quick": False,
        "dry_run": False,
        "command": "python -m tinyalex.gpucheck --out x",
        "seconds": 400.0,
        "exit_code": 0,
        "steps": [{"name": s.name, "status": s.status, "seconds": 1.0} for s in steps],
        "summary": summary,
    }
    md = gpucheck.markdown(report)
    assert "NVIDIA H100 80GB HBM3" in md and "2026-11-27" in md
    assert "| alexnet | fp32 | 128 | 4,000 | 5,000 | 0.80 |" in md
    assert "| alexnet | tf32 | 128 | 9,000 | 8,863 | 1.02 |" in md
    assert "| 3,072 | 3,482 |" in md
    assert "| alexnet | fashion-mnist | 3 | 3,800 | 4,000 | 95% | 15.0% |" in md
    assert "2 passed, 1 failed" in md and "FAILED tests.test_x::test_y[cupy]" in md
