"""The training command end to end on tiny data: outputs, exact resume, Ctrl-C, NaN, errors."""

import json

import numpy as np
import pytest
from helpers import StopAfter

from tinyalex import backend, checkpoint, evaluate, predict, train

TINY = ["--limit", "48", "--val-limit", "40", "--batch-size", "16", "--seed", "3"]


def run(tmp_path, name, *extra):
    out = tmp_path / name
    return train.main([*TINY, "--out", str(out), *extra]), out


def params_of(out):
    return checkpoint.load(out / "checkpoint.npz")["params"]


def test_cli_end_to_end(tmp_path, capsys):
    rc, out = run(tmp_path, "a", "--epochs", "2", "--eval-crops", "10")
    assert rc == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("tinyalex.train: synthetic (embedded, nothing downloaded)")
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2]
    keys = {
        "epoch",
        "lr",
        "train_loss",
        "train_error",
        "val_loss",
        "val_top1_error",
        "val_top5_error",
        "seconds",
        "images_per_second",
    }
    assert keys <= set(rows[0])
    assert all(np.isfinite(r["val_loss"]) and 0 <= r["val_top1_error"] <= 1 for r in rows)
    assert (out / "curves.png").stat().st_size > 1000
    ckpt = checkpoint.load(out / "checkpoint.npz")
    assert ckpt["meta"]["epoch"] == 2 and "conv1.W" in ckpt["params"]
    assert ckpt["params"]["conv1.W"].dtype == np.float32

    assert evaluate.main([str(out / "checkpoint.npz"), "--limit", "20", "--crops", "10"]) == 0
    assert "top-1 error" in capsys.readouterr().out

    from PIL import Image

    Image.fromarray(np.full((40, 50, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    assert predict.main([str(out / "checkpoint.npz"), str(tmp_path / "grey.png")]) == 0
    line = capsys.readouterr().out
    assert line.startswith(str(tmp_path / "grey.png")) and line.count("%") == 5


def test_exact_resume(tmp_path):
    """2 epochs straight == 1 epoch, then --resume to 2: bit for bit (numpy backend)."""
    assert run(tmp_path, "straight", "--epochs", "2")[0] == 0
    assert run(tmp_path, "split", "--epochs", "1")[0] == 0
    ckpt = tmp_path / "split" / "checkpoint.npz"
    assert train.main(["--resume", str(ckpt), "--epochs", "2"]) == 0  # writes beside ckpt
    a, b = params_of(tmp_path / "straight"), params_of(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not np.array_equal(a["fc5.W"], params_of(tmp_path / "split")["fc5.W"] * 0)


def test_ctrl_c_saves_and_resume_is_exact(tmp_path, monkeypatch):
    assert run(tmp_path, "straight", "--epochs", "2")[0] == 0
    with monkeypatch.context() as m:
        m.setattr(train, "StopRequest", StopAfter(4))  # 3 batches per epoch: stop mid-epoch 2
        rc, out = run(tmp_path, "stopped", "--epochs", "2")
    assert rc == 130
    meta = checkpoint.load(out / "checkpoint.npz")["meta"]
    assert (meta["epoch"], meta["batch"]) == (1, 2)
    assert (
        train.main(["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--out", str(out)])
        == 0
    )
    a, b = params_of(tmp_path / "straight"), params_of(out)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    rc, out = run(tmp_path, "a", "--epochs", "1")
    assert rc == 0
    before = (out / "checkpoint.npz").read_bytes()
    original = train.SoftmaxCrossEntropy.forward
    monkeypatch.setattr(
        train.SoftmaxCrossEntropy, "forward", lambda self, z, y: original(self, z, y) * np.nan
    )
    rc = train.main(["--resume", str(out / "checkpoint.npz"), "--epochs", "2", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "loss became nan at epoch 2, batch 1" in err and "Traceback" not in err
    assert (out / "checkpoint.npz").read_bytes() == before


def test_crash_mid_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    args = {"optimizer": {"lr": 0.1}, "data": {}, "meta": {"epoch": 1}}
    checkpoint.save(path, params={"w": np.ones(3)}, **args)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, params={"w": np.zeros(3)}, **args)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    np.testing.assert_array_equal(checkpoint.load(path)["params"]["w"], np.ones(3))


def test_checkpoint_refuses_pickles_and_garbage(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, meta=np.array([{"format": 1}], dtype=object))
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.load(bad)
    bad.write_bytes(b"not a zip")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.load(bad)
    with pytest.raises(checkpoint.CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--backend", "cupy"], "--backend cupy: "),
        (["--data", "cifar10", "--data-dir", "{tmp}/none"], "cifar10: "),
        (["--resume", "{tmp}/missing.npz"], "checkpoint"),
        (["--model", "vgg"], "invalid choice: 'vgg'"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--input-size", "5"], "--input-size: the CIFAR net takes 8 pixels or more, got 5"),
        (["--model", "alexnet", "--input-size", "100"], "--input-size: alexnet takes 224, or"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, argv, message):
    from tinyalex import backend

    if argv[:2] == ["--backend", "cupy"] and backend.cupy_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("urllib.request.urlopen", _no_network)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv] + ["--out", str(tmp_path / "o")]
    try:
        rc = train.main(argv)
    except SystemExit as e:  # argparse's own exit for bad flags
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def _no_network(*args, **kwargs):
    raise OSError("network disabled in tests")


def test_channel_normalisation_and_step_schedule(tmp_path, capsys):
    rc, out = run(
        tmp_path,
        "c",
        "--epochs",
        "2",
        "--normalize",
        "channel",
        "--schedule",
        "step",
        "--milestones",
        "1",
        "--lr",
        "0.004",
    )
    assert rc == 0
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["lr"] for r in rows] == pytest.approx([0.004, 0.0004])
    data = checkpoint.load(out / "checkpoint.npz")["data"]
    assert data["mean"].shape == (3,) and data["std"].shape == (3,) and data["std"].min() > 1
    assert evaluate.main([str(out / "checkpoint.npz"), "--limit", "10"]) == 0
    assert "top-1 error" in capsys.readouterr().out


def test_input_size_crops_to_it_and_is_kept_on_resume(tmp_path, capsys):
    """--input-size is the model's input (whole 28 px images here, not 24 px crops); a
    resumed run keeps it, and refuses another."""
    rc, out = run(tmp_path, "s", "--epochs", "1", "--image-size", "28", "--input-size", "28")
    assert rc == 0
    ckpt = checkpoint.load(out / "checkpoint.npz")
    assert ckpt["meta"]["crop_size"] == 28 and ckpt["meta"]["stored_size"] == 28
    assert ckpt["params"]["fc3.W"].shape == (64 * 7 * 7, 384)  # 28 -> 14 -> 7, not 24's 6
    capsys.readouterr()
    rc = train.main(["--resume", str(out / "checkpoint.npz"), "--epochs", "2"])
    assert rc == 0 and checkpoint.load(out / "checkpoint.npz")["meta"]["epoch"] == 2
    resume = ["--resume", str(out / "checkpoint.npz"), "--epochs", "3", "--input-size", "24"]
    assert train.main(resume) == 2
    assert "--input-size 24 differs from the checkpoint's 28" in capsys.readouterr().err


def test_cifar_init_he_draws_conv1_for_unit_inputs():
    """init='he' changes conv1's draw only: std sqrt(2/75) instead of the paper's 0.01."""
    from tinyalex.models import cifar_alexnet

    paper, he = cifar_alexnet(init="paper", seed=4), cifar_alexnet(init="he", seed=4)
    w_paper, w_he = paper.params["conv1.W"], he.params["conv1.W"]
    assert abs(w_paper.std() - 0.01) < 0.001
    assert abs(w_he.std() - np.sqrt(2 / 75)) < 0.01
    for name in ("conv2", "fc3", "fc4", "fc5"):
        np.testing.assert_array_equal(paper.params[f"{name}.W"], he.params[f"{name}.W"])
    with pytest.raises(ValueError, match="init must be"):
        cifar_alexnet(init="xavier")


def test_warmup_raises_lr_linearly_and_resumes_exactly(tmp_path, monkeypatch):
    """--warmup 2 over 3 batches an epoch: steps at lr * 1/6 ... 6/6, then lr; a run
    stopped mid-warm-up and resumed equals the straight run bit for bit."""
    seen = []
    real_step = train.Trainer.step

    def spy(self, xb, yb):
        seen.append(self.opt.lr)
        return real_step(self, xb, yb)

    with monkeypatch.context() as m:
        m.setattr(train.Trainer, "step", spy)
        rc, out = run(tmp_path, "straight", "--epochs", "3", "--warmup", "2", "--lr", "0.006")
    assert rc == 0
    assert seen == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.006, 0.006, 0.006])
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    assert [r["lr"] for r in rows] == pytest.approx([0.006] * 3)  # the schedule's, not scaled
    with monkeypatch.context() as m:
        m.setattr(train, "StopRequest", StopAfter(2))  # stop after batch 2 of epoch 1
        rc, split = run(tmp_path, "split", "--epochs", "3", "--warmup", "2", "--lr", "0.006")
    assert rc == 130
    resume = ["--resume", str(split / "checkpoint.npz"), "--epochs", "3", "--out", str(split)]
    assert train.main(resume) == 0
    a, b = params_of(out), params_of(split)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_train_step_is_the_four_lines(xp):
    """train_step == forward, loss, backward(input_grad=False), update, done by hand; its loss
    stays a 0-d array on the batch's backend."""
    from tinyalex.layers import SoftmaxCrossEntropy
    from tinyalex.models import build
    from tinyalex.optim import SGD
    from tinyalex.step import train_step

    backend_name = "numpy" if xp is np else "cupy"
    rng = np.random.default_rng(0)
    x = xp.asarray(rng.standard_normal((4, 3, 24, 24), dtype=np.float32) * 50)
    y = xp.asarray(rng.integers(0, 10, 4))
    a, b = (build("cifar", num_classes=10, seed=1).to(backend_name) for _ in range(2))
    opt_a, opt_b = SGD(a, 0.002), SGD(b, 0.002)
    loss_fn = SoftmaxCrossEntropy()
    for _ in range(2):
        loss, logits = train_step(a, loss_fn, opt_a, x, y)
        assert loss.shape == () and type(loss) is type(x) and logits.shape == (4, 10)
        z = b.forward(x, train=True)
        expected = loss_fn.forward(z, y)
        b.backward(loss_fn.backward(), input_grad=False)
        opt_b.step()
        assert float(loss) == float(expected)
    for name, p in a.params.items():
        np.testing.assert_array_equal(
            backend.to_numpy(p), backend.to_numpy(b.params[name]), err_msg=name
        )


def test_flags_left_out_come_from_the_recipe(monkeypatch):
    """Unset flags take recipes.defaults(model, data); a flag given wins; args stay as given."""
    from tinyalex import recipes

    args = train.parse_args(["--model", "alexnet", "--data", "folder", "--batch-size", "7"])
    config, notes = train.run_settings(args, None)
    expected = recipes.defaults("alexnet", "folder")
    assert config["lr"] == expected["lr"] and config["image_size"] == expected["image_size"]
    assert config["batch_size"] == 7 and notes == []
    assert args.lr is None and args.image_size is None  # the command line is not rewritten
    monkeypatch.setattr(recipes, "defaults", lambda model, data: {**expected, "lr": 0.123})
    assert train.run_settings(train.parse_args([]), None)[0]["lr"] == 0.123
