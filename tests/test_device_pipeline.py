"""The device-side data pipeline (tinyalex/data/device.py, tinyalex/augment/device.py).

With NumPy as the "device" the same code runs here: batches must equal the host pipeline's
(BatchLoader with its transform) bit for bit, in resident and streamed modes, fused and
composed; evaluation must give run.score's numbers exactly. The CUDA kernel is compiled to
PTX here and compared with its NumPy twin where a GPU works (the cupy cases of ``xp``).
"""

import json
import shutil
import subprocess

import numpy as np
import pytest

from tinyalex import backend
from tinyalex.augment import device as aug_device
from tinyalex.augment import make_eval, make_pipeline, pca_colour_stats
from tinyalex.data import BatchLoader, channel_stats, device, mean_image
from tinyalex.models import build
from tinyalex.run import score as host_score


def _images(n=23, size=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    return x, y


def _pipeline(preset, x, crop, normalize="pixel-mean"):
    eigvals, eigvecs = pca_colour_stats(x)
    if normalize == "pixel-mean":
        mean, std = mean_image(x), None
    else:
        mean, std = channel_stats(x)
        eigvecs = eigvecs / std[:, None]
    view = make_pipeline(preset, crop, mean=mean, std=std, pca=(eigvals, eigvecs))
    return view, mean, std


@pytest.mark.parametrize("normalize", ["pixel-mean", "channel"])
@pytest.mark.parametrize("preset", ["paper", "none"])
def test_fused_crop_equals_composed_pipeline_bit_for_bit(preset, normalize):
    x, _ = _images()
    view, _, _ = _pipeline(preset, x, 9, normalize)
    fused = aug_device.FusedCrop.from_pipeline(view)
    assert fused is not None
    src = np.array([4, 0, 22, 4, 7])  # repeats and any order
    composed_rng, fused_rng = np.random.default_rng(3), np.random.default_rng(3)
    want = view(x[src].astype(np.float32), composed_rng)
    got = fused(x, fused.draw(src, 12, 12, fused_rng))
    assert got.dtype == np.float32 and got.shape == want.shape == (5, 3, 9, 9)
    np.testing.assert_array_equal(got, want)
    # the same draws, in the same order: both generators end in the same state
    assert composed_rng.random() == fused_rng.random()


def test_fused_crop_flips_and_shifts_what_it_should():
    """Against a hand-made case: a mirrored crop and a colour shift, no mean."""
    x = np.arange(2 * 3 * 4 * 4, dtype=np.uint8).reshape(2, 3, 4, 4)
    views = aug_device.Views(
        src=np.array([1, 0]),
        oy=np.array([1, 0]),
        ox=np.array([2, 0]),
        flip=np.array([True, False]),
        shift=np.array([[1.5, 0, 0], [0, 0, -2]], dtype=np.float32),
    )
    out = aug_device.crop_views_reference(x, views, 2)
    np.testing.assert_array_equal(out[0, 0], x[1, 0, 1:3, 2:4][:, ::-1] + 1.5)
    np.testing.assert_array_equal(out[1, 2], x[0, 2, 0:2, 0:2] - 2.0)
    np.testing.assert_array_equal(out[1, 1], x[0, 1, 0:2, 0:2])


@pytest.mark.parametrize("preset", ["tf", "geometric", "all"])
def test_pipelines_with_other_steps_are_not_fused(preset):
    x, _ = _images()
    view, _, _ = _pipeline(preset, x, 9)
    assert aug_device.FusedCrop.from_pipeline(view) is None


def test_fused_crop_rejects_a_mean_of_another_size():
    x, _ = _images()
    fused = aug_device.FusedCrop(9, None, mean=np.zeros((3, 10, 10), np.float32))
    views = aug_device.Views(np.array([0]), np.array([0]), np.array([0]), np.array([False]))
    with pytest.raises(ValueError, match="does not match"):
        fused(x, views)


@pytest.mark.parametrize("resident", [True, False])
@pytest.mark.parametrize("preset", ["paper", "geometric"])
def test_train_batches_equal_the_host_loader_bit_for_bit(preset, resident):
    """Same order, same augmentation draws, mid-epoch start, a short last batch."""
    x, y = _images(n=23)
    view, _, _ = _pipeline(preset, x, 9)

    def augment(xb, yb, rng):
        return view(xb.astype(np.float32), rng), yb

    host = BatchLoader(x, y, 5, seed=7, transform=augment, prefetch=0)
    plain = BatchLoader(x, y, 5, seed=7)
    batches = device.TrainBatches(plain, view, np, resident=resident)
    assert batches.set.resident is resident and len(batches) == len(host) == 5
    for epoch, start in ((0, 0), (2, 3)):
        host.set_epoch(epoch, start_batch=start)
        plain.set_epoch(epoch, start_batch=start)
        want, got = list(host), list(batches)
        assert len(got) == len(want) == 5 - start
        for (wx, wy), (gx, gy) in zip(want, got, strict=True):
            np.testing.assert_array_equal(gx, wx)
            np.testing.assert_array_equal(gy, wy)


def test_streamed_batches_stop_cleanly_when_the_consumer_breaks():
    x, y = _images(n=23)
    loader = BatchLoader(x, y, 4, seed=1)
    batches = device.TrainBatches(loader, _pipeline("paper", x, 9)[0], np, resident=False)
    for i, _ in enumerate(batches):
        if i == 1:
            break
    assert len(list(batches)) == len(loader)  # a fresh iteration starts from the beginning


@pytest.mark.parametrize("resident", [True, False])
@pytest.mark.parametrize("crops", [1, 10])
@pytest.mark.parametrize(
    "preset,normalize", [("paper", "pixel-mean"), ("paper", "channel"), ("tf", "pixel-mean")]
)
def test_device_score_equals_run_score_exactly(preset, normalize, crops, resident):
    x, y = _images(n=13, size=36)
    model = build("cifar", num_classes=10, seed=0)
    _, mean, std = _pipeline(preset, x, 24, normalize)
    view = make_eval(preset, 24, mean=mean, std=std, crops=crops)
    want = host_score(model, x, y, view, 4, "numpy")
    fused = device.fused_eval(preset, 24, mean=mean, std=std)
    assert (fused is None) == (preset == "tf")
    batches = device.EvalBatches(x, y, 4, np, view, fused=fused, crops=crops, resident=resident)
    got = device.score(model, batches)
    assert got == want


@pytest.mark.parametrize(
    "nbytes,free,resident",
    [
        (60000 * 3 * 256 * 256, 78 * 2**30, True),  # Fashion-MNIST at 256 px on an H100
        (60000 * 3 * 256 * 256, 15 * 2**30, False),  # ... on a 16 GB card
        (1_281_167 * 3 * 256 * 256, 139 * 2**30, False),  # ImageNet's 252 GB on an H200
        (50000 * 3 * 32 * 32, 2**30, True),  # CIFAR-10 (150 MB) fits anywhere
        (2**30, 2**31, True),  # exactly half of the free memory: still resident
        (2**30 + 1, 2**31, False),
    ],
)
def test_memory_fit_decisions(nbytes, free, resident):
    assert device.fits_on_device(nbytes, free) is resident


def test_device_set_decides_by_free_memory(monkeypatch):
    """A set too large for the (pretended) free memory is streamed, else kept resident."""
    x, y = _images(n=10)
    monkeypatch.setattr(device, "free_device_bytes", lambda xp: 2 * x.nbytes)
    assert device.DeviceSet(x, y, _FakeDevice, batch_size=4).resident
    monkeypatch.setattr(device, "free_device_bytes", lambda xp: 2 * x.nbytes - 1)
    assert not device.DeviceSet(x, y, _FakeDevice, batch_size=4).resident
    assert device.DeviceSet(x, y, np).resident  # NumPy: the host is the device


class _FakeDevice:
    """Just enough of an array module for DeviceSet's decision (host arrays underneath)."""

    asarray = staticmethod(np.asarray)
    empty = staticmethod(np.empty)
    float32 = np.float32

    class cuda:  # noqa: N801 - mirrors cupy.cuda
        class Stream:
            def __init__(self, non_blocking=False):
                pass

        @staticmethod
        def alloc_pinned_memory(nbytes):
            return bytearray(nbytes)


def test_a_failing_fused_kernel_on_the_gpu_falls_back_to_the_composed_steps(monkeypatch):
    """On a (pretended) GPU, an error in the fused pass warns once and the same batches come
    from the composed steps, drawn from the same generator; on NumPy it would raise."""
    x, y = _images(n=13)
    view, _, _ = _pipeline("paper", x, 9)

    def augment(xb, yb, rng):
        return view(xb.astype(np.float32), rng), yb

    class Broken(aug_device.FusedCrop):
        def __call__(self, images, views):
            raise RuntimeError("NVRTC said no")

    batches = device.TrainBatches(BatchLoader(x, y, 5, seed=2), view, _FakeDevice, resident=True)
    batches.fused = Broken.from_pipeline(view)
    monkeypatch.setattr(device, "FALLBACKS", [])
    with pytest.warns(UserWarning, match="NVRTC said no"):
        got = list(batches)
    assert batches.fused is None and len(device.FALLBACKS) == 1
    want = list(BatchLoader(x, y, 5, seed=2, transform=augment, prefetch=0))
    for (wx, wy), (gx, gy) in zip(want, got, strict=True):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)
    numpy_batches = device.TrainBatches(BatchLoader(x, y, 5, seed=2), view, np)
    numpy_batches.fused = Broken.from_pipeline(view)
    with pytest.raises(RuntimeError, match="NVRTC said no"):
        next(iter(numpy_batches))


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_crop_kernel_compiles_to_ptx(tmp_path):
    src = tmp_path / "crop_views.cu"
    src.write_text(aug_device.SOURCE + aug_device.instantiations())
    ptx = tmp_path / "crop_views.ptx"
    cmd = ["nvcc", "--ptx", "-arch=sm_90", *aug_device.OPTIONS, "-Werror", "all-warnings"]
    proc = subprocess.run(
        [*cmd, str(src), "-o", str(ptx)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert ptx.read_text().count(".entry") == len(aug_device.NAME_EXPRESSIONS)


# ----------------------------------------------------------------- GPU only (skip here)
@pytest.fixture
def cp():
    if not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    return backend.cupy


@pytest.mark.parametrize("normalize", ["pixel-mean", "channel"])
def test_cupy_crop_kernel_equals_numpy_twin(cp, normalize):
    x, _ = _images(n=31, size=40)
    view, _, _ = _pipeline("paper", x, 33, normalize)
    fused = aug_device.FusedCrop.from_pipeline(view)
    views = fused.draw(np.arange(31)[::-1], 40, 40, np.random.default_rng(0))
    want = fused(x, views)
    got = fused(cp.asarray(x), views)
    np.testing.assert_array_equal(cp.asnumpy(got), want)
    ten = fused.ten_crop(np.arange(5), 40, 40)
    np.testing.assert_array_equal(cp.asnumpy(fused(cp.asarray(x), ten)), fused(x, ten))


@pytest.mark.parametrize("resident", [True, False])
def test_cupy_train_batches_equal_the_host_loader(cp, resident):
    x, y = _images(n=23, size=40)
    view, _, _ = _pipeline("paper", x, 33)

    def augment(xb, yb, rng):
        return view(xb.astype(np.float32), rng), yb

    host = BatchLoader(x, y, 5, seed=7, transform=augment, prefetch=0)
    batches = device.TrainBatches(BatchLoader(x, y, 5, seed=7), view, cp, resident=resident)
    for (wx, wy), (gx, gy) in zip(host, batches, strict=True):
        np.testing.assert_array_equal(cp.asnumpy(gx), wx)
        np.testing.assert_array_equal(cp.asnumpy(gy), wy)


@pytest.mark.parametrize("crops", ["1", "10"])
def test_trainer_gpu_path_run_on_numpy_equals_the_host_path(tmp_path, crops):
    """train.Trainer with its GPU pipelines switched on (NumPy as the device): the same
    parameters and validation numbers as the host pipeline, bit for bit."""
    from tinyalex import checkpoint, train

    tiny = ["--limit", "40", "--val-limit", "24", "--batch-size", "16", "--epochs", "2"]
    tiny += ["--eval-crops", crops, "--seed", "5"]
    runs = {}
    for name in ("host", "device"):
        trainer = train.Trainer(train.parse_args([*tiny, "--out", str(tmp_path / name)]))
        if name == "device":
            trainer.device_train, trainer.device_eval = trainer._device_pipelines()
            assert trainer.device_train.fused is not None  # the default preset is fused
        assert trainer.run() == 0
        rows = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        params = checkpoint.load(tmp_path / name / "checkpoint.npz")["params"]
        runs[name] = ([json.loads(r) for r in rows], params)
    (host_rows, host_params), (dev_rows, dev_params) = runs["host"], runs["device"]
    for key in ("train_loss", "train_error", "val_loss", "val_top1_error", "val_top5_error"):
        assert [r[key] for r in dev_rows] == [r[key] for r in host_rows], key
    for key in host_params:
        np.testing.assert_array_equal(dev_params[key], host_params[key], err_msg=key)
