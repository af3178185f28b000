"""ImageNet-style folder loader on a tiny tree of PNG/JPEG files written here."""

import numpy as np
import PIL.Image
import pytest

from tinyalex.data import DataError, load_dataset
from tinyalex.data.folder import resize_and_crop

RED, BLUE = (255, 0, 0), (0, 0, 255)


def halves(w, h, first, second, vertical=True) -> PIL.Image.Image:
    """A w x h image, left/right (or top/bottom) halves in two colours."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    if vertical:
        a[:, : w // 2], a[:, w // 2 :] = first, second
    else:
        a[: h // 2], a[h // 2 :] = first, second
    return PIL.Image.fromarray(a)


@pytest.fixture
def tree(tmp_path):
    """train/{cat,dog,eel}/ and val/{cat,dog}/ with PNG and JPEG files."""
    root = tmp_path / "pets"
    for split, counts in (("train", {"dog": 3, "cat": 2, "eel": 2}), ("val", {"cat": 1, "dog": 2})):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                shade = 40 * i + {"cat": 10, "dog": 100, "eel": 200}[cls]
                image = PIL.Image.new("RGB", (30 + i, 24), (shade, shade, shade))
                image.save(root / split / cls / f"{i}.{'png' if i % 2 else 'jpg'}")
        (root / split / "cat" / "notes.txt").write_text("not an image")
    return root


def load(root, tmp_path, **kw):
    return load_dataset("folder", data_dir=root, cache_dir=tmp_path / "cache", **kw)


def test_shorter_side_resize_then_centre_crop():
    wide = resize_and_crop(halves(40, 20, RED, BLUE), 10)  # -> 20x10, crop columns 5..14
    assert wide.shape == (3, 10, 10) and wide.dtype == np.uint8
    assert (wide[:, :, :4].transpose(1, 2, 0) == RED).all()
    assert (wide[:, :, 6:].transpose(1, 2, 0) == BLUE).all()
    tall = resize_and_crop(halves(20, 40, RED, BLUE, vertical=False), 10)
    assert (tall[:, :4].transpose(1, 2, 0) == RED).all()
    assert (tall[:, 6:].transpose(1, 2, 0) == BLUE).all()
    # a wide image with a narrow red strip on the left: the centre crop cuts it away
    strip = np.zeros((20, 60, 3), dtype=np.uint8)
    strip[:, :10] = RED
    assert resize_and_crop(PIL.Image.fromarray(strip), 20).max() == 0


def test_grey_image_becomes_rgb():
    out = resize_and_crop(PIL.Image.new("L", (8, 8), 90), 8)
    assert out.shape == (3, 8, 8) and (out == 90).all()


def test_classes_labels_and_shapes(tree, tmp_path):
    d = load(tree, tmp_path, size=16)
    assert d.classes == ["cat", "dog", "eel"]
    assert d.train_x.shape == (7, 3, 16, 16) and d.val_x.shape == (3, 3, 16, 16)
    assert np.array_equal(np.bincount(d.train_y), [2, 3, 2])
    assert sorted(d.val_y) == [0, 1, 1]
    # each image is a flat grey whose shade says its class (10-50 cat, 100-180 dog, 200+ eel)
    images, labels = np.concatenate([d.train_x, d.val_x]), np.concatenate([d.train_y, d.val_y])
    for x, y in zip(images, labels, strict=True):
        shade = int(x.mean())
        assert {0: shade < 60, 1: 90 < shade < 190, 2: shade > 190}[int(y)]


def test_second_load_reads_the_cache(tree, tmp_path, monkeypatch):
    first = load(tree, tmp_path, size=16)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded an image although the cache should have been used")

    monkeypatch.setattr(PIL.Image, "open", refuse)
    second = load(tree, tmp_path, size=16)
    assert np.array_equal(first.train_x, second.train_x)
    assert np.array_equal(first.val_x, second.val_x)
    assert np.array_equal(first.train_y, second.train_y)
    with pytest.raises(AssertionError, match="decoded"):
        load(tree, tmp_path, size=20)  # another size is another cache file


def test_limit_keeps_a_mix_of_classes(tree, tmp_path):
    d = load(tree, tmp_path, size=8, limit=4)
    assert len(d.train_x) == len(d.train_y) == 4 and len(d.val_x) == 3


def test_unreadable_image_names_the_file(tree, tmp_path):
    bad = tree / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not really a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load(tree, tmp_path)


def test_val_class_missing_from_train(tree, tmp_path):
    (tree / "val" / "fox").mkdir()
    with pytest.raises(DataError, match="fox"):
        load(tree, tmp_path)


def test_missing_layout(tmp_path):
    with pytest.raises(DataError, match="train/<class>"):
        load(tmp_path / "nothing", tmp_path)
    with pytest.raises(DataError, match="--data-dir"):
        load(None, tmp_path)
