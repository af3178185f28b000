"""Nothing lost, ever: each case of a careless (or unlucky) user, on tiny runs.

A run never destroys another; a checkpoint only ever holds finite weights and the message
names the file that truly holds the last good state; --resume keeps every setting and is
bit for bit in the README's own form; every I/O and argument mistake is one line, exit 2.
"""

import errno
import json
import os
import shutil
import signal

import numpy as np
import pytest

from tinyalex import bench, checkpoint, evaluate, predict, rundir, train
from tinyalex.augment import __main__ as augment_cli
from tinyalex.data import DataError
from tinyalex.data.folder import load_folder

TINY = ["--limit", "64", "--val-limit", "32", "--batch-size", "32"]  # 2 steps an epoch
TIMING = ("seconds", "images_per_second", "eval_seconds")


def cli(main, argv) -> int:
    """A command's exit code, argparse's own exit included."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


def one_line(capsys) -> str:
    """The command's stderr, checked to be one line without a traceback."""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def metrics(folder):
    return [json.loads(line) for line in open(folder / "metrics.jsonl")]


def without_timing(rows):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def assert_same_state(a, b):
    ca, cb = checkpoint.load(a / "checkpoint.npz"), checkpoint.load(b / "checkpoint.npz")
    for group in ("params", "optimizer"):
        assert ca[group].keys() == cb[group].keys()
        for name in ca[group]:
            np.testing.assert_array_equal(ca[group][name], cb[group][name], err_msg=name)
    assert without_timing(metrics(a)) == without_timing(metrics(b))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert train.main([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run."""
    return shutil.copytree(trained, tmp_path / "run")


def image_folder(root, classes=("cat", "dog"), n_train=4, n_val=2, seed=0):
    """An ImageNet-style folder of small random PNGs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


# --------------------------------------------------------------------------- 1. NaN never saved
def test_nan_weights_after_an_epochs_last_step_are_not_saved(run, monkeypatch, capsys):
    ckpt = run / "checkpoint.npz"
    before = ckpt.read_bytes()
    real, calls = train.train_step, []

    def blow_up(model, *args):
        out = real(model, *args)
        calls.append(1)
        if len(calls) == 2:  # the last step of epoch 2: its loss was still finite
            model.params["fc5.W"][...] = np.nan
        return out

    monkeypatch.setattr(train, "train_step", blow_up)
    assert train.main(["--resume", str(ckpt), "--epochs", "3"]) == 1
    err = one_line(capsys)
    assert "after epoch 2" in err and f"the last good state is in {ckpt} (epoch 1)" in err
    assert ckpt.read_bytes() == before
    assert [row["epoch"] for row in metrics(run)] == [1]


def test_nan_weights_are_not_saved_on_ctrl_c_either(run, monkeypatch, capsys):
    ckpt = run / "checkpoint.npz"
    before = ckpt.read_bytes()
    real = train.train_step

    def blow_up_and_stop(model, *args):
        out = real(model, *args)
        model.params["conv1.b"][0] = np.inf
        os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(train, "train_step", blow_up_and_stop)
    assert train.main(["--resume", str(ckpt), "--epochs", "2"]) == 1
    err = one_line(capsys)
    assert "weight conv1.b became non-finite by epoch 2, batch 1" in err
    assert f"the last good state is in {ckpt} (epoch 1)" in err
    assert ckpt.read_bytes() == before


def test_a_real_divergence_leaves_only_finite_checkpoints(tmp_path, capsys):
    """The issue's case, a learning rate far too large, blowing up after a good epoch or two.
    The issue's --lr 20 sits near the edge: whether it reaches inf within 8 epochs depends on
    the float32 rounding of conv's sums (it stopped doing so when the CPU's patch matrix went
    channels last); --lr 300 reaches NaN in epoch 3 with either layout."""
    out = tmp_path / "lr300"
    assert train.main([*TINY, "--epochs", "8", "--lr", "300", "--out", str(out)]) == 1
    err = one_line(capsys)
    ckpt = checkpoint.load(out / "checkpoint.npz")
    assert all(np.isfinite(p).all() for p in ckpt["params"].values())
    epoch = ckpt["meta"]["epoch"]
    assert f"the last good state is in {out / 'checkpoint.npz'} (epoch {epoch})" in err
    assert [row["epoch"] for row in metrics(out)] == list(range(1, epoch + 1))


def test_no_checkpoint_yet_is_said_so(tmp_path, monkeypatch, capsys):
    original = train.SoftmaxCrossEntropy.forward
    monkeypatch.setattr(
        train.SoftmaxCrossEntropy, "forward", lambda self, z, y: original(self, z, y) * np.inf
    )
    out = tmp_path / "o"
    assert train.main([*TINY, "--epochs", "1", "--out", str(out)]) == 1
    err = one_line(capsys)
    assert "loss became inf at epoch 1, batch 1" in err and "no checkpoint was written" in err
    assert not (out / "checkpoint.npz").exists()


# --------------------------------------------------------------------------- 2. runs kept apart
def test_out_holding_a_run_is_refused(trained, capsys):
    before = (trained / "checkpoint.npz").read_bytes()
    rows = metrics(trained)
    assert cli(train.main, [*TINY, "--epochs", "1", "--out", trained]) == 2
    err = one_line(capsys)
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (trained / "checkpoint.npz").read_bytes() == before and metrics(trained) == rows


def test_overwrite_replaces_the_run_on_purpose(run):
    assert (
        train.main([*TINY, "--epochs", "1", "--seed", "4", "--out", str(run), "--overwrite"]) == 0
    )
    assert [row["epoch"] for row in metrics(run)] == [1]
    assert checkpoint.load(run / "checkpoint.npz")["meta"]["config"]["seed"] == 4


def test_default_output_folders_are_unique(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert train.main([*TINY, "--epochs", "1"]) == 0
    first = (tmp_path / "runs/synthetic-cifar/checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert train.main([*TINY, "--epochs", "1", "--seed", "2"]) == 0
    assert "runs/synthetic-cifar-2" in capsys.readouterr().out
    assert (tmp_path / "runs/synthetic-cifar/checkpoint.npz").read_bytes() == first
    second = checkpoint.load(tmp_path / "runs/synthetic-cifar-2/checkpoint.npz")
    assert second["meta"]["config"]["seed"] == 2


def test_a_second_writer_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    lock = rundir.FolderLock(out).acquire()  # stands in for a run in another process
    try:
        assert train.main([*TINY, "--epochs", "1", "--out", str(out)]) == 2
        err = one_line(capsys)
        assert f"another run (pid {os.getpid()}) is writing into {out}" in err
        assert rundir.run_files(out) == []
    finally:
        lock.release()
    assert train.main([*TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert not (out / rundir.LOCK_NAME).exists()  # released at the end


def test_resume_into_another_runs_folder_is_refused(trained, tmp_path, capsys):
    other = shutil.copytree(trained, tmp_path / "other")
    before = (other / "checkpoint.npz").read_bytes()
    argv = ["--resume", trained / "checkpoint.npz", "--epochs", "2", "--out", other]
    assert cli(train.main, argv) == 2
    assert "already holds a run" in one_line(capsys)
    assert (other / "checkpoint.npz").read_bytes() == before


def test_resume_into_a_new_folder_carries_the_metrics(trained, tmp_path):
    out = tmp_path / "continued"
    assert (
        train.main(
            ["--resume", str(trained / "checkpoint.npz"), "--epochs", "2", "--out", str(out)]
        )
        == 0
    )
    assert [row["epoch"] for row in metrics(out)] == [1, 2]
    assert [row["epoch"] for row in metrics(trained)] == [1]  # the source is left alone


# --------------------------------------------------------------------------- 3. the resume rule
@pytest.mark.parametrize(
    "flag,value",
    [
        ("--model", "alexnet"),
        ("--data", "fashion-mnist"),
        ("--limit", "48"),
        ("--val-limit", "16"),
        ("--batch-size", "16"),
        ("--seed", "5"),
        ("--augment", "none"),
        ("--normalize", "pixel-mean"),
        ("--schedule", "step"),
        ("--image-size", "28"),
        ("--input-size", "20"),
    ],
)
def test_resume_refuses_a_different_defining_flag(trained, capsys, flag, value):
    before = (trained / "checkpoint.npz").read_bytes()
    if flag == "--schedule":  # the one the trained run's recipe did not pick
        stored = checkpoint.load(trained / "checkpoint.npz")["meta"]["config"]["schedule"]
        value = {"step": "plateau", "plateau": "step"}[stored]
    argv = ["--resume", trained / "checkpoint.npz", "--epochs", "2", flag, value]
    assert cli(train.main, argv) == 2
    err = one_line(capsys)
    assert f"{flag} {value} differs from the checkpoint's" in err
    assert (trained / "checkpoint.npz").read_bytes() == before


def test_resume_accepts_the_same_flags_repeated(run):
    ckpt = run / "checkpoint.npz"
    assert train.main([*TINY, "--resume", str(ckpt), "--epochs", "2", "--out", str(run)]) == 0
    assert [row["epoch"] for row in metrics(run)] == [1, 2]


def test_resume_with_a_new_lr_uses_it_with_a_note(run, capsys):
    ckpt = run / "checkpoint.npz"
    assert train.main(["--resume", str(ckpt), "--epochs", "2", "--lr", "0.0005"]) == 0
    first = metrics(run)[0]["lr"]  # the recipe's
    assert first != 0.0005
    assert f"note: --lr 0.0005 replaces the checkpoint's {first:g}" in capsys.readouterr().out
    assert [row["lr"] for row in metrics(run)] == [first, 0.0005]
    saved = checkpoint.load(ckpt)
    assert saved["meta"]["config"]["lr"] == 0.0005 and float(saved["optimizer"]["lr"]) == 0.0005


def test_tf32_is_a_setting_of_the_run(run, tmp_path, monkeypatch, capsys):
    """--tf32 changes a GPU run's numbers: stored, kept on resume, changed with a note; a
    checkpoint from before the flag existed resumes with it off."""
    from tinyalex import backend

    monkeypatch.setattr(backend, "_tf32", backend.tf32_enabled())  # restored afterwards
    on = tmp_path / "on"
    assert train.main([*TINY, "--epochs", "1", "--tf32", "--out", str(on)]) == 0
    assert checkpoint.load(on / "checkpoint.npz")["meta"]["config"]["tf32"] is True
    backend.set_tf32(False)
    assert train.main(["--resume", str(on / "checkpoint.npz"), "--epochs", "2"]) == 0
    assert checkpoint.load(on / "checkpoint.npz")["meta"]["config"]["tf32"] is True
    assert backend.tf32_enabled()
    capsys.readouterr()
    assert train.main(["--resume", str(on / "checkpoint.npz"), "--epochs", "3", "--no-tf32"]) == 0
    assert "note: --tf32 off replaces the checkpoint's on" in capsys.readouterr().out
    assert not backend.tf32_enabled()

    with np.load(run / "checkpoint.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    del meta["config"]["tf32"]
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(run / "checkpoint.npz", **arrays)
    assert train.main(["--resume", str(run / "checkpoint.npz"), "--epochs", "2"]) == 0
    assert checkpoint.load(run / "checkpoint.npz")["meta"]["config"]["tf32"] is False


def test_resume_needs_more_epochs_than_done(run, capsys):
    assert cli(train.main, ["--resume", run / "checkpoint.npz", "--epochs", "1"]) == 2
    assert "already trained 1 epochs" in one_line(capsys)


def test_a_moved_data_dir_is_honoured(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    old, new, out = tmp_path / "old", tmp_path / "new", tmp_path / "run"
    image_folder(old)
    argv = ["--data", "folder", "--data-dir", old, "--image-size", "32", "--batch-size", "4"]
    assert cli(train.main, [*argv, "--epochs", "1", "--out", out]) == 0
    old.rename(new)
    capsys.readouterr()
    ckpt = out / "checkpoint.npz"
    assert cli(train.main, ["--resume", ckpt, "--epochs", "2"]) == 2
    assert str(old) in one_line(capsys)
    assert cli(train.main, ["--resume", ckpt, "--epochs", "2", "--data-dir", new]) == 0
    assert f"note: --data-dir {new} replaces the checkpoint's {old}" in capsys.readouterr().out
    assert checkpoint.load(ckpt)["meta"]["config"]["data_dir"] == str(new)


# --------------------------------------------------------------------------- 4. exact resume
@pytest.mark.parametrize(
    "settings",
    [
        ["--patience", "1"],  # the plateau schedule reads the validation error every epoch
        ["--schedule", "step", "--milestones", "1", "--eval-crops", "10"],
    ],
)
def test_resume_in_the_readme_form_is_bit_for_bit(tmp_path, settings):
    """`--resume FILE --epochs N` alone: every setting comes from the checkpoint."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train.main([*TINY, *settings, "--epochs", "2", "--out", str(straight)]) == 0
    assert train.main([*TINY, *settings, "--epochs", "1", "--out", str(split)]) == 0
    assert train.main(["--resume", str(split / "checkpoint.npz"), "--epochs", "2"]) == 0
    assert_same_state(straight, split)


def test_sigterm_saves_and_the_epochs_train_loss_counts_every_batch(tmp_path, monkeypatch):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert train.main([*TINY, "--epochs", "2", "--out", str(straight)]) == 0
    real, calls = train.train_step, []

    def terminate_after_3(*args):
        out = real(*args)
        calls.append(1)
        if len(calls) == 3:  # epoch 2, batch 1
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    with monkeypatch.context() as m:
        m.setattr(train, "train_step", terminate_after_3)
        assert train.main([*TINY, "--epochs", "2", "--out", str(stopped)]) == 143
    meta = checkpoint.load(stopped / "checkpoint.npz")["meta"]
    assert (meta["epoch"], meta["batch"]) == (1, 1)
    assert train.main(["--resume", str(stopped / "checkpoint.npz"), "--epochs", "2"]) == 0
    assert_same_state(straight, stopped)  # metrics' train_loss and train_error included


def test_a_second_ctrl_c_stops_at_once_and_says_what_is_kept(run, monkeypatch, capsys):
    ckpt = run / "checkpoint.npz"
    before = ckpt.read_bytes()
    real = train.train_step

    def two_ctrl_c(*args):
        os.kill(os.getpid(), signal.SIGINT)  # asks to stop after this step
        os.kill(os.getpid(), signal.SIGINT)  # insists: KeyboardInterrupt here
        return real(*args)

    monkeypatch.setattr(train, "train_step", two_ctrl_c)
    assert train.main(["--resume", str(ckpt), "--epochs", "2"]) == 130
    err = one_line(capsys)
    assert f"interrupted, not saved: the last good state is in {ckpt} (epoch 1)" in err
    assert ckpt.read_bytes() == before and not (run / rundir.LOCK_NAME).exists()


def test_resume_given_a_folder(run, capsys):
    assert cli(train.main, ["--resume", run, "--epochs", "2"]) == 2
    assert f"give the file, e.g. {run}/checkpoint.npz" in one_line(capsys)


# --------------------------------------------------------------------------- 5. write errors
def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert cli(train.main, [*TINY, "--out", tmp_path / "f"]) == 2
    assert "is a file" in one_line(capsys)
    assert cli(train.main, [*TINY, "--out", tmp_path / "f" / "sub"]) == 2
    assert "is a file" in one_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_found_before_training(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert cli(train.main, [*TINY, "--out", folder / "run"]) == 2
        assert "not writable" in one_line(capsys)
    finally:
        folder.chmod(0o700)


def test_unwritable_out_is_found_before_training(tmp_path, monkeypatch, capsys):
    """As the read-only case, for a user (root) whom permissions do not stop: the lock file
    is the first write, before any data is loaded."""
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "ro")):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rundir.os, "open", refuse)
    assert cli(train.main, [*TINY, "--out", tmp_path / "ro"]) == 2
    captured = capsys.readouterr()
    assert "cannot write into" in captured.err and "Permission denied" in captured.err
    assert "epoch" not in captured.out  # found before training


def test_disk_full_while_saving_keeps_the_last_good_checkpoint(run, monkeypatch, capsys):
    ckpt = run / "checkpoint.npz"
    before = ckpt.read_bytes()

    def full(f, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", full)
    assert train.main(["--resume", str(ckpt), "--epochs", "2"]) == 2
    err = one_line(capsys)
    assert "No space left on device" in err and f"the last good state is in {ckpt}" in err
    assert ckpt.read_bytes() == before
    assert sorted(p.name for p in run.iterdir()) == sorted(rundir.RUN_FILES)


def test_disk_full_while_writing_metrics(tmp_path, monkeypatch, capsys):
    real_fsync = os.fsync

    def full_for_metrics(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("metrics.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    monkeypatch.setattr(rundir.os, "fsync", full_for_metrics)
    out = tmp_path / "o"
    assert train.main([*TINY, "--epochs", "1", "--out", str(out)]) == 2
    err = one_line(capsys)
    assert f"cannot write {out / 'metrics.jsonl'}: No space left on device" in err


def test_augment_show_into_a_missing_folder(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "im.png")
    argv = ["--show", tmp_path / "im.png", "--size", "32", "--out", tmp_path / "no" / "g.png"]
    assert cli(augment_cli.main, argv) == 2
    assert "does not exist" in one_line(capsys)


def test_bench_json_under_a_file_fails_before_timing(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert cli(bench.main, ["--batch-size", "2", "--json", tmp_path / "f" / "b.json"]) == 2
    assert "is a file" in one_line(capsys)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- 6. torn metrics
def test_a_torn_metrics_line_does_not_block_resume(run, capsys):
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # a crash mid-line
    train.plot_curves(run / "metrics.jsonl", run / "curves.png")  # drawing skips it
    assert train.main(["--resume", str(run / "checkpoint.npz"), "--epochs", "2"]) == 0
    assert "skipped unreadable line(s) [2]" in capsys.readouterr().out
    assert [row["epoch"] for row in metrics(run)] == [1, 2]


# --------------------------------------------------------------------------- 7. evaluate, predict
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--batch-size", "-3"], "--batch-size must be at least 1"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--limit", "-5"], "--limit must be at least 1"),
        (["--crops", "3"], "invalid choice"),
    ],
)
def test_evaluate_validates_its_arguments(trained, capsys, argv, message):
    assert cli(evaluate.main, [trained / "checkpoint.npz", *argv]) == 2
    assert message in one_line(capsys)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--crops", "3"], "invalid choice"),
        (["{tmp}/missing.png"], "not found"),
    ],
)
def test_predict_validates_its_arguments(trained, tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if not any(a.endswith(".png") for a in argv):
        argv.append(str(tmp_path / "missing.png"))
    assert cli(predict.main, [trained / "checkpoint.npz", *argv]) == 2
    assert message in one_line(capsys)


# --------------------------------------------------------------------------- 8. crafted files
def craft(trained, tmp_path, kind):
    with np.load(trained / "checkpoint.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    if kind == "meta is a list":
        arrays["meta"] = np.array(json.dumps([1, 2]))
    elif kind == "meta is a string":
        arrays["meta"] = np.array(json.dumps("hello"))
    elif kind == "unknown key prefix":
        arrays["weights/conv1.W"] = np.zeros(3)
    elif kind == "no meta":
        del arrays["meta"]
    elif kind == "meta lacks classes":
        del meta["classes"]
        arrays["meta"] = np.array(json.dumps(meta))
    elif kind == "model config not an object":
        meta["model"]["config"] = [1]
        arrays["meta"] = np.array(json.dumps(meta))
    elif kind == "a parameter missing":
        del arrays["param/conv1.W"]
    elif kind == "a parameter misshapen":
        arrays["param/fc5.W"] = np.zeros((2, 2), np.float32)
    path = tmp_path / "crafted.npz"
    np.savez(path, **arrays)
    return path


KINDS = [
    "meta is a list",
    "meta is a string",
    "unknown key prefix",
    "no meta",
    "meta lacks classes",
    "model config not an object",
    "a parameter missing",
    "a parameter misshapen",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_crafted_checkpoints_are_one_line(trained, tmp_path, capsys, kind, command):
    path = craft(trained, tmp_path, kind)
    from PIL import Image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "im.png")
    argv = {
        "train": (train.main, ["--resume", path, "--epochs", "2", "--out", tmp_path / "o"]),
        "evaluate": (evaluate.main, [path, "--limit", "4"]),
        "predict": (predict.main, [path, tmp_path / "im.png"]),
    }[command]
    assert cli(*argv) == 2
    assert str(path) in one_line(capsys)  # the message names the file


@pytest.mark.parametrize(
    "kind,message",
    [
        ("a velocity missing", "optimiser state does not fit"),
        ("epoch is text", "epoch and batch are not counts"),
        ("dropout state of a conv", "training state does not fit"),
    ],
)
def test_crafted_training_state_is_one_line(trained, tmp_path, capsys, kind, message):
    """What only a resume reads: the optimiser, the progress, the generators."""
    with np.load(trained / "checkpoint.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    if kind == "a velocity missing":
        del arrays["opt/velocity.conv1.W"]
    elif kind == "epoch is text":
        meta["epoch"] = "one"
    else:
        meta["dropout_rng"]["conv1"] = {"bit_generator": "PCG64"}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "c.npz", **arrays)
    argv = ["--resume", tmp_path / "c.npz", "--epochs", "2", "--out", tmp_path / "o"]
    assert cli(train.main, argv) == 2
    assert message in one_line(capsys)


# --------------------------------------------------------------------------- 9. out of range
@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lr", "nan"], "--lr must be a finite number above 0"),
        (["--lr", "inf"], "--lr must be a finite number above 0"),
        (["--lr", "0"], "--lr must be a finite number above 0"),
        (["--lr", "-1"], "--lr must be a finite number above 0"),
        (["--val-limit", "0"], "--val-limit must be at least 1"),
        (["--val-limit", "-2"], "--val-limit must be at least 1"),
        (["--limit", "0"], "--limit must be at least 1"),
        (["--image-size", "0"], "--image-size must be at least 1"),
        (["--patience", "-1"], "--patience must be at least 1"),
        (["--momentum", "1.5"], "--momentum must be a number in [0, 1)"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number, 0 or more"),
        (["--milestones", "0,3"], "--milestones must be comma-separated integers"),
        (["--schedule", "plateau", "--milestones", "2"], "--milestones needs --schedule step"),
    ],
)
def test_out_of_range_values_are_refused(tmp_path, capsys, argv, message):
    assert cli(train.main, [*argv, "--out", tmp_path / "o"]) == 2
    assert message in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_a_folder_dataset_with_one_class_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYALEX_CACHE", str(tmp_path / "cache"))
    image_folder(tmp_path / "d", classes=("cat",))
    argv = ["--data", "folder", "--data-dir", tmp_path / "d", "--out", tmp_path / "o"]
    assert cli(train.main, argv) == 2
    assert "a classifier needs at least two" in one_line(capsys)


def test_an_internal_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the project's own errors are user errors: a ValueError from a bug propagates."""

    def buggy(*args):
        raise ValueError("shapes (3,4) and (5,6) not aligned")

    monkeypatch.setattr(train, "train_step", buggy)
    with pytest.raises(ValueError, match="not aligned"):
        train.main([*TINY, "--epochs", "1", "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / rundir.LOCK_NAME).exists()  # the lock is released anyway


# --------------------------------------------------------------------------- 10. predict batches
def test_predict_scores_in_batches(trained, tmp_path, monkeypatch, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)).save(paths[-1])
    ckpt = trained / "checkpoint.npz"
    assert predict.main([str(ckpt), *map(str, paths), "--batch-size", "100"]) == 0
    whole = capsys.readouterr().out
    sizes, real = [], predict.predict_probs

    def counting(model, batch, view):
        sizes.append(len(batch))
        return real(model, batch, view)

    monkeypatch.setattr(predict, "predict_probs", counting)
    assert predict.main([str(ckpt), *map(str, paths), "--batch-size", "2"]) == 0
    assert sizes == [2, 2, 1]
    assert capsys.readouterr().out == whole and whole.count("\n") == 5


# --------------------------------------------------------------------------- 11. folder cache
def test_the_folder_cache_notices_a_replaced_image(tmp_path):
    from PIL import Image

    root, cache = image_folder(tmp_path / "d"), tmp_path / "cache"
    first = load_folder(data_dir=root, size=32, cache_dir=cache)
    image = root / "val" / "cat" / "0.png"
    Image.fromarray(np.full((36, 40, 3), 7, np.uint8)).save(image)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later write
    second = load_folder(data_dir=root, size=32, cache_dir=cache)
    fresh = load_folder(data_dir=root, size=32, cache_dir=tmp_path / "empty-cache")
    np.testing.assert_array_equal(second.val_x, fresh.val_x)
    assert not np.array_equal(second.val_x, first.val_x)
    image.write_bytes(b"not a png at all")  # replaced by a corrupt file
    with pytest.raises(DataError, match="0.png"):
        load_folder(data_dir=root, size=32, cache_dir=cache)
