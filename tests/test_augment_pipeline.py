"""Crops, flips, composition, presets, seeding, backends and the --show command."""

import numpy as np
import pytest

from tinyalex import augment as A
from tinyalex.augment.__main__ import main
from tinyalex.backend import cupy_available, get_module, to_numpy


def _coords(xp, n=5, h=32, w=32):
    """Images whose channel 0 holds the row index and channel 1 the column index."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([y, x, y * 0 + 1])
    return xp.asarray(np.repeat(img[None], n, axis=0))


def test_random_crop_lies_inside_and_varies(xp):
    x = _coords(xp, n=200)
    out = to_numpy(A.RandomCrop(24)(x, np.random.default_rng(0)))
    assert out.shape == (200, 3, 24, 24)
    oy, ox = out[:, 0, 0, 0], out[:, 1, 0, 0]
    assert oy.min() == 0 and oy.max() == 8 and ox.min() == 0 and ox.max() == 8  # ends included
    step = np.arange(24, dtype=np.float32)
    np.testing.assert_array_equal(
        out[:, 0], np.broadcast_to((oy[:, None] + step)[:, :, None], (200, 24, 24))
    )
    np.testing.assert_array_equal(
        out[:, 1], np.broadcast_to((ox[:, None] + step)[:, None, :], (200, 24, 24))
    )


def test_crop_window_view_matches_gather():
    """NumPy crops through a window view; CuPy through index arrays. Both give the same."""
    from tinyalex.augment.crop import _crop_gather

    x = np.random.default_rng(0).uniform(0, 255, (6, 3, 20, 17)).astype(np.float32)
    oy, ox = np.array([0, 9, 3, 9, 1, 5]), np.array([0, 6, 2, 1, 6, 3])
    np.testing.assert_array_equal(A.crop_at(x, oy, ox, 11), _crop_gather(x, oy, ox, 11))


def test_center_crop(xp):
    out = to_numpy(A.CenterCrop(227)(_coords(xp, n=1, h=256, w=256)))
    assert out.shape == (1, 3, 227, 227)
    assert (out[0, 0, 0, 0], out[0, 1, 0, 0]) == (14, 14)  # (256 - 227) // 2


def test_crop_too_big_raises(xp):
    with pytest.raises(ValueError, match="does not fit"):
        A.RandomCrop(40)(_coords(xp), np.random.default_rng(0))


def test_flip_twice_is_identity_and_random_flip_flips_some(xp):
    x = _coords(xp, n=64)
    np.testing.assert_array_equal(to_numpy(A.hflip(A.hflip(x))), to_numpy(x))
    out = to_numpy(A.RandomFlip(0.5)(x, np.random.default_rng(0)))
    flipped = out[:, 1, 0, 0] == 31
    kept = out[:, 1, 0, 0] == 0
    assert np.all(flipped | kept) and 15 < flipped.sum() < 49
    np.testing.assert_array_equal(out[flipped], to_numpy(x)[flipped][..., ::-1])


def test_ten_crop_positions_and_order(xp):
    views = to_numpy(A.ten_crop(_coords(xp, n=2, h=10, w=12), 6))
    assert views.shape == (10, 2, 3, 6, 6)
    tl = [(v[0, 0, 0, 0], v[0, 1, 0, 0]) for v in views]  # (row, col) of the top-left pixel
    assert tl[:5] == [(0, 0), (0, 6), (4, 0), (4, 6), (2, 3)]
    assert tl[5:] == [(0, 5), (0, 11), (4, 5), (4, 11), (2, 8)]  # mirrored: left col is the right
    np.testing.assert_array_equal(views[5:], views[:5, ..., ::-1])
    assert len(A.TEN_CROP_ORDER) == 10


def test_sometimes_and_oneof(xp):
    x = _coords(xp, n=40)
    add = lambda b, rng: b + 1000  # noqa: E731
    sub = lambda b, rng: b - 1000  # noqa: E731
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(to_numpy(A.Sometimes(0.0, add)(x, rng)), to_numpy(x))
    np.testing.assert_array_equal(to_numpy(A.Sometimes(1.0, add)(x, rng)), to_numpy(x) + 1000)
    out = to_numpy(A.Sometimes(0.5, add)(x, rng))
    changed = out[:, 2, 0, 0] > 500
    assert 5 < changed.sum() < 35
    np.testing.assert_array_equal(out[~changed], to_numpy(x)[~changed])
    out = to_numpy(A.OneOf([add, sub])(x, rng))
    assert set(np.unique(out[:, 2, 0, 0])) == {1001.0, -999.0}
    with pytest.raises(ValueError, match="shape"):
        A.Sometimes(1.0, A.CenterCrop(8))(x, rng)


def _stats(h=32, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (4, 3, h, h)).astype(np.uint8)
    return raw.mean(axis=0).astype(np.float32), A.pca_colour_stats(raw)


@pytest.mark.parametrize("preset", A.PRESETS)
def test_presets_shape_and_dtype(xp, preset):
    mean, pca = _stats()
    x = xp.asarray(np.random.default_rng(1).uniform(0, 255, (6, 3, 32, 32)).astype(np.float32))
    for train in (True, False):
        out = A.make_pipeline(preset, 24, mean=mean, pca=pca, train=train)(
            x, np.random.default_rng(0)
        )
        assert out.shape == (6, 3, 24, 24) and out.dtype == np.float32
        assert type(out) is type(x)
    for crops in (1, 10):
        out = A.make_eval(preset, 24, mean=mean, crops=crops)(x)
        assert out.shape == (crops, 6, 3, 24, 24) and out.dtype == np.float32
    if preset == "tf":  # standardised per image, in train and eval
        out = to_numpy(A.make_eval(preset, 24, crops=10)(x))
        np.testing.assert_allclose(out.mean(axis=(2, 3, 4)), 0, atol=1e-4)


def test_eval_single_crop_is_ten_crop_centre(xp):
    mean, _ = _stats()
    x = xp.asarray(np.random.default_rng(1).uniform(0, 255, (3, 3, 32, 32)).astype(np.float32))
    one = to_numpy(A.make_eval("paper", 24, mean=mean)(x))
    ten = to_numpy(A.make_eval("paper", 24, mean=mean, crops=10)(x))
    np.testing.assert_allclose(one[0], ten[4], atol=1e-5)


def test_unknown_preset_and_bad_crops_raise():
    with pytest.raises(ValueError, match="choose from paper, tf, none, geometric, all"):
        A.make_pipeline("imagenet", 24)
    with pytest.raises(ValueError, match="choose from"):
        A.make_eval("nope", 24)
    with pytest.raises(ValueError, match="crops"):
        A.make_eval("paper", 24, crops=5)


@pytest.mark.parametrize("preset", ["paper", "tf", "all"])
def test_same_seed_same_batch(xp, preset):
    mean, pca = _stats()
    x = xp.asarray(np.random.default_rng(1).uniform(0, 255, (8, 3, 32, 32)).astype(np.float32))
    pipe = A.make_pipeline(preset, 24, mean=mean, pca=pca)
    a = to_numpy(pipe(x, np.random.default_rng(7)))
    b = to_numpy(pipe(x, np.random.default_rng(7)))
    c = to_numpy(pipe(x, np.random.default_rng(8)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("preset", A.PRESETS)
def test_numpy_and_cupy_agree(preset):
    cp = get_module("cupy")
    mean, pca = _stats(h=40)
    host = np.random.default_rng(1).uniform(0, 255, (8, 3, 40, 40)).astype(np.float32)
    pipe = A.make_pipeline(preset, 32, mean=mean, pca=pca)
    on_cpu = pipe(host, np.random.default_rng(3))
    on_gpu = to_numpy(pipe(cp.asarray(host), np.random.default_rng(3)))
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-2)
    ten_cpu = A.make_eval(preset, 32, mean=mean, crops=10)(host)
    ten_gpu = to_numpy(A.make_eval(preset, 32, mean=mean, crops=10)(cp.asarray(host)))
    np.testing.assert_allclose(ten_gpu, ten_cpu, rtol=1e-4, atol=1e-3)


def test_show_writes_png(tmp_path):
    from PIL import Image

    src = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), np.uint8)).save(src)
    out = tmp_path / "grid.png"
    assert main(["--show", str(src), "--out", str(out), "--size", "32", "--cols", "2"]) == 0
    assert out.stat().st_size > 1000
    assert Image.open(out).format == "PNG"


def test_show_missing_image_exits_2(tmp_path, capsys):
    assert main(["--show", str(tmp_path / "nope.png"), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not found" in err
