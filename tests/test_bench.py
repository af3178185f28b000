"""python -m tinyalex.bench runs end to end on a tiny configuration and writes its JSON."""

import json
import subprocess
import sys

import pytest

from tinyalex import backend, bench

TINY = ["--model", "cifar", "--batch-size", "4", "--repeats", "2", "--warmup", "0"]
TINY += ["--profile-steps", "1"]


def test_bench_json_has_the_expected_keys(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "img/s" in printed and "conv1" in printed and "share" in printed
    result = json.loads(out.read_text())
    for key in ("model", "backend", "batch_size", "repeats", "kernels", "threads", "machine"):
        assert key in result
    assert result["model"] == "cifar" and result["batch_size"] == 4
    assert set(result["tinyalex"]) == {"step_ms", "images_per_s"}
    assert set(result["tinyalex"]["images_per_s"]) == {"best", "median"}
    assert len(result["tinyalex"]["step_ms"]["all"]) == 2
    ips = result["tinyalex"]["images_per_s"]
    assert ips["best"] >= ips["median"] > 0
    names = [row["name"] for row in result["layers"]]
    assert names[0] == "conv1" and names[-2:] == ["loss", "sgd update"]
    for row in result["layers"]:
        assert set(row) == {"name", "type", "forward_ms", "backward_ms", "share"}
    assert abs(sum(row["share"] for row in result["layers"]) - 1) < 1e-6
    assert result["peak_memory"]["bytes"] > 0
    assert result["torch"] is None and result["ratio"] is None


def test_gpu_only_flags_are_ignored_on_numpy_with_a_note(tmp_path, capsys):
    """--tf32 and --winograd change only the cupy backend: on NumPy each says so, and the
    JSON records what ran (both off)."""
    out = tmp_path / "bench.json"
    assert bench.main([*TINY, "--tf32", "--winograd", "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--tf32 only changes the cupy backend" in err
    assert "--winograd only changes the cupy backend" in err
    result = json.loads(out.read_text())
    assert result["tf32"] is False and result["winograd"] is False


def test_bench_inference_and_plain_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYALEX_KERNELS", "0")
    out = tmp_path / "inf.json"
    assert bench.main([*TINY, "--inference", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["inference"] is True and result["kernels"] is False
    assert "loss" not in [row["name"] for row in result["layers"]]


def test_bench_keep_cols_reaches_the_convs_and_the_memory_figure(tmp_path, capsys):
    """--keep-cols yes: each conv keeps its patch matrix between steps (conv1's 75 x N*24*24
    and conv2's 1600 x N*12*12 float32; conv2's dx writes over its own); --keep-cols no:
    one workspace the size of the larger, shared. The peak counts them, and is lower."""
    from tinyalex import kernels

    n = 16
    conv1, conv2 = 75 * n * 24 * 24 * 4, 1600 * n * 12 * 12 * 4
    kept = {"yes": conv1 + conv2, "no": max(conv1, conv2)}
    peaks = {}
    for choice in ("yes", "no"):
        kernels.clear_workspaces()
        out = tmp_path / f"{choice}.json"
        argv = [*TINY, "--batch-size", str(n), "--keep-cols", choice, "--json", str(out)]
        assert bench.main(argv) == 0
        assert f"keep-cols {choice}" in capsys.readouterr().out
        result = json.loads(out.read_text())
        assert result["keep_cols"] == choice
        peaks[choice] = result["peak_memory"]["bytes"]
        assert result["peak_memory"]["kept_bytes"] == kept[choice]
    assert peaks["no"] < peaks["yes"]
    kernels.clear_workspaces()


def test_bench_compare_torch(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "torch.json"
    assert bench.main([*TINY, "--compare-torch", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["torch"]["version"]
    assert set(result["ratio"]) == {"best", "median"} and result["ratio"]["best"] > 0


@pytest.mark.skipif(backend.cupy_available(), reason="a GPU works here")
def test_cupy_without_gpu_is_one_line_and_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "tinyalex.bench", *TINY, "--backend", "cupy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--backend cupy" in proc.stderr
    assert proc.stdout == ""


def test_bench_times_the_training_step_train_uses(tmp_path, monkeypatch):
    """The timed step is tinyalex.step.train_step: one call per warm-up and timed repeat."""
    from tinyalex import bench_runners

    calls, real = [], bench_runners.train_step

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(bench_runners, "train_step", counting)
    argv = ["--batch-size", "2", "--repeats", "3", "--warmup", "1", "--profile-steps", "1"]
    assert bench.main(argv) == 0
    assert len(calls) == 1 + 3 + 1  # warm-up, repeats, the peak-memory step


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "vgg"], "invalid choice: 'vgg'"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--repeats", "-1"], "--repeats must be at least 1"),
        (["--warmup", "-1"], "--warmup must be an integer, 0 or more"),
    ],
)
def test_bench_bad_flags_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
