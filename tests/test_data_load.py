"""load_dataset(): the one entry point, and its argument checks."""

import pytest

from tinyalex.data import DATASETS, DataError, Dataset, load_dataset


def test_names():
    assert DATASETS == ("synthetic", "fashion-mnist", "cifar10", "folder")


def test_synthetic_is_the_default_that_always_works():
    d = load_dataset("synthetic", limit=50)
    assert isinstance(d, Dataset) and d.image_size == 32 and len(d.train_x) == 50


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "imagenet"}, "unknown dataset 'imagenet'; choose from synthetic, "),
        ({"name": "synthetic", "limit": 0}, "limit"),
        ({"name": "synthetic", "size": -3}, "size"),
    ],
)
def test_bad_arguments_raise_one_line_data_error(kwargs, message):
    with pytest.raises(DataError, match=message) as e:
        load_dataset(**kwargs)
    assert "\n" not in str(e.value)
