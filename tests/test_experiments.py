"""python -m tinyalex.experiments: the machinery and the file formats at --quick size (seconds
each, on the embedded synthetic data). These do not test the paper's claims; results/README.md
does that at the default size."""

import json
import math

import numpy as np
import pytest

from tinyalex.experiments import CLAIMS
from tinyalex.experiments.__main__ import main
from tinyalex.experiments.dropout import converged_at
from tinyalex.experiments.net import small_alexnet
from tinyalex.experiments.relu_vs_tanh import reached
from tinyalex.experiments.trial import Record
from tinyalex.experiments.verdict import paired, verdict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_quick(tmp_path, name, *extra):
    code = main([name, "--quick", "--data", "synthetic", "--out", str(tmp_path), *extra])
    assert code == 0
    return json.loads((tmp_path / f"{name}.json").read_text())


def check_body(tmp_path, body, name, seeds=2):
    assert body["claim"] == name and body["seeds"] == list(range(seeds))
    assert body["command"].startswith(f"python -m tinyalex.experiments {name} --quick")
    assert body["wall_seconds"] > 0 and body["scale"]["name"] == "quick"
    assert (tmp_path / body["plot"]).read_bytes()[:8] == PNG_MAGIC
    for row in body["rows"]:
        assert row["verdict"] in ("holds", "direction only", "does not hold", "inconclusive")
        assert row["ours"] and row["paper"] and row["our_setting"]
    for arm in body["arms"].values():
        assert len(arm["runs"]) == seeds
        for run in arm["runs"]:
            assert 0.0 <= run["val_error"] <= 1.0 and 0.0 <= run["probe_error"] <= 1.0
            assert run["iterations"] > 0 and run["curve"]


def test_ablation_writes_json_plot_and_table(tmp_path):
    body = run_quick(tmp_path, "lrn")
    check_body(tmp_path, body, "lrn")
    assert set(body["arms"]) == {"LRN", "no LRN"}
    assert body["arms"]["no LRN"]["spec"]["net"]["lrn"] is False
    # the baseline's validation error is scored during training (evals_per_epoch)
    assert body["arms"]["LRN"]["runs"][0]["evals"]
    readme = (tmp_path / "README.md").read_text()
    assert "| claim | paper (setting) | our setting |" in readme
    assert "LRN lowers the error" in readme and "![lrn](lrn.png)" in readme
    assert "- Method: Baseline (LRN after conv1 and conv2)" in readme
    # claims not run yet say how to run them
    for name in CLAIMS:
        if name != "lrn":
            assert f"not yet run: `python -m tinyalex.experiments {name}`" in readme


def test_readme_keeps_earlier_claims(tmp_path):
    run_quick(tmp_path, "groups", "--seeds", "3")
    body = run_quick(tmp_path, "ten-crop", "--seeds", "3")
    check_body(tmp_path, body, "ten-crop", seeds=3)
    run = body["arms"]["baseline"]["runs"][0]
    assert 0.0 <= run["val_error_ten_crop"] <= 1.0
    readme = (tmp_path / "README.md").read_text()
    assert "two towers beat one tower" in readme and "ten-crop testing lowers" in readme
    assert "not yet run: `python -m tinyalex.experiments groups`" not in readme


def test_relu_vs_tanh_tunes_each_activation(tmp_path):
    body = run_quick(tmp_path, "relu-vs-tanh")
    check_body(tmp_path, body, "relu-vs-tanh")
    grid = body["scale"]["lr_grid"]
    for act in ("relu", "tanh"):
        assert [t["lr"] for t in body["tuning"][act]] == grid
        assert body["arms"][act]["spec"]["lr"] in grid
        assert body["arms"][act]["spec"]["weight_decay"] == 0.0  # no regularisation
        assert body["arms"][act]["spec"]["net"]["dropout"] == 0.0
    assert set(body["thresholds"]) == {"0.25", "0.20", "0.15"}


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["no-such-claim", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(["lrn", "--seeds", "0", "--out", str(tmp_path)])
    assert e.value.code == 2


def test_missing_gpu_is_a_user_error(tmp_path, capsys):
    from tinyalex import backend

    if backend.cupy_available():
        pytest.skip("a GPU is available here")
    code = main(["lrn", "--quick", "--backend", "cupy", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "error" in err[0]


def test_paired_statistics():
    s = paired([0.02, 0.04, 0.03])
    assert s["mean"] == pytest.approx(0.03)
    assert s["sd"] == pytest.approx(0.01)
    assert s["se"] == pytest.approx(0.01 / math.sqrt(3))
    assert s["z"] == pytest.approx(0.03 / (0.01 / math.sqrt(3)))
    assert paired([0.5])["z"] is None


@pytest.mark.parametrize(
    "diffs, factor, paper_factor, expected",
    [
        ([0.02, 0.04, 0.03], None, None, "holds"),
        ([0.02, 0.04, 0.03], 2.0, 6.0, "direction only"),  # significant, a third of the factor
        ([0.02, 0.04, 0.03], 3.0, 6.0, "holds"),
        ([-0.02, -0.04, -0.03], None, None, "does not hold"),
        ([0.02, 0.04, -0.005], None, None, "direction only"),  # 1 <= z < 2
        ([0.01, -0.01, 0.002], None, None, "inconclusive"),
        ([0.05], None, None, "inconclusive"),  # one seed
    ],
)
def test_verdict_rule(diffs, factor, paper_factor, expected):
    assert verdict(paired(diffs), factor=factor, paper_factor=paper_factor) == expected


def test_threshold_and_convergence_points():
    r = Record(seed=0)
    r.curve = [
        {"iteration": i, "seconds": i / 10, "epoch": i / 4, "train_error": e, "loss": 1.0}
        for i, e in ((1, 0.8), (2, 0.3), (3, 0.25), (4, 0.1))
    ]
    assert reached(r, 0.25) == (3, 0.3, 0.75)
    assert reached(r, 0.05) is None
    r.evals = [{"iteration": i, "val_error": e} for i, e in ((10, 0.5), (20, 0.21), (30, 0.2))]
    assert converged_at(r) == 20  # 0.21 <= 1.1 * 0.2
    assert converged_at(r, tolerance=0.01) == 30


def test_small_alexnet_ablations_keep_sizes():
    x = np.random.default_rng(0).normal(size=(2, 3, 24, 24)).astype(np.float32)
    base = small_alexnet(widths=(8, 16), hidden=(32, 16))
    assert base.forward(x, train=False).shape == (2, 10)
    two = sum(p.size for p in base.params.values())
    one = small_alexnet(widths=(4, 16), hidden=(32, 16), groups=1)
    ones = sum(p.size for p in one.params.values())
    assert abs(two - ones) / two < 0.02  # the paper's comparison: about the same parameters
    non_overlap = small_alexnet(widths=(8, 16), hidden=(32, 16), pool=(2, 2))
    assert sum(p.size for p in non_overlap.params.values()) == two  # same pooled sizes
    names = [n for n, _ in small_alexnet(lrn=False, dropout=0.0).named_layers()]
    assert not any(n.startswith(("lrn", "drop")) for n in names)
    with pytest.raises(ValueError, match="activation"):
        small_alexnet(activation="sigmoid")


def test_all_runs_every_claim_once():
    from tinyalex.experiments.__main__ import RUN_ORDER

    assert sorted(RUN_ORDER) == sorted(CLAIMS)


def test_an_unwritable_out_is_refused_before_training(tmp_path, capsys, monkeypatch):
    from tinyalex.experiments import CLAIMS

    monkeypatch.setattr(CLAIMS["lrn"], "run", lambda *a: pytest.fail("trained before checking"))
    (tmp_path / "file").write_text("not a folder")
    code = main(["lrn", "--quick", "--out", str(tmp_path / "file" / "results")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is a file" in err[0]
