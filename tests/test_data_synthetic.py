"""The embedded synthetic-shapes dataset: deterministic, balanced, any size, not trivial."""

import numpy as np
import pytest

from tinyalex.data import load_dataset
from tinyalex.data.synthetic import CLASSES, VAL_STREAM, load_synthetic, make_images


def test_shapes_dtypes_and_labels():
    x, y = make_images(200, 32, seed=0)
    assert x.shape == (200, 3, 32, 32) and x.dtype == np.uint8
    assert y.shape == (200,) and y.dtype == np.int64
    # exactly balanced: 20 of each class
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 20))
    assert x.std() > 20  # not a blank or constant image set


def test_same_seed_same_arrays_other_seed_differs():
    a, ya = make_images(60, 32, seed=3)
    b, yb = make_images(60, 32, seed=3)
    c, _ = make_images(60, 32, seed=4)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert not np.array_equal(a, c)


def test_train_and_val_streams_differ():
    train, _ = make_images(50, 32, seed=0)
    val, _ = make_images(50, 32, seed=0, stream=VAL_STREAM)
    assert not np.array_equal(train, val)


@pytest.mark.parametrize("size", [32, 64, 227])
def test_renders_natively_at_any_size(size):
    x, y = make_images(20, size, seed=1)
    assert x.shape == (20, 3, size, size)
    assert np.array_equal(y, make_images(20, 32, seed=1)[1])  # same scenes, other resolution


def test_dataset_fields_limit_and_size():
    d = load_dataset("synthetic", size=40, limit=100, seed=2)
    assert d.train_x.shape == (100, 3, 40, 40) and d.val_x.shape == (1000, 3, 40, 40)
    assert d.classes == CLASSES and d.num_classes == 10 and d.image_size == 40
    assert "100 train / 1000 val" in d.description and "\n" not in d.description
    assert set(np.unique(d.val_y)) == set(range(10))


def test_limit_keeps_the_first_images():
    full = load_synthetic(n_train=120, n_val=10, seed=5)
    first = load_synthetic(n_train=120, n_val=10, seed=5, limit=30)
    assert np.array_equal(first.train_x, full.train_x[:30])
    assert np.array_equal(first.train_y, full.train_y[:30])
    assert np.array_equal(first.val_x, full.val_x)


def test_classes_not_separable_by_mean_pixels():
    # a nearest-class-mean classifier on raw pixels: near chance (10%), far from 100%
    d = load_synthetic(n_train=2000, n_val=500, seed=0)
    x_train = d.train_x.reshape(len(d.train_x), -1).astype(np.float32)
    x_val = d.val_x.reshape(len(d.val_x), -1).astype(np.float32)
    means = np.stack([x_train[d.train_y == k].mean(0) for k in range(10)])
    dist = (x_val**2).sum(1)[:, None] - 2 * x_val @ means.T + (means**2).sum(1)[None]
    accuracy = (dist.argmin(1) == d.val_y).mean()
    print(f"nearest class mean accuracy: {accuracy:.3f} (chance 0.1)")
    assert accuracy < 0.25
