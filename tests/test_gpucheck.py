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
