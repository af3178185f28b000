import numpy as np
import pytest

from tinyalex import backend


def test_numpy_roundtrip(xp):
    x = np.arange(6.0).reshape(2, 3)
    name = "cupy" if xp is not np else "numpy"
    d = backend.to_device(x, name)
    assert backend.array_module(d) is xp
    assert backend.backend_name(d) == name
    np.testing.assert_array_equal(backend.to_numpy(d), x)


def test_array_module_of_plain_values_is_numpy():
    assert backend.array_module([1, 2]) is np
    assert backend.array_module(3.0) is np


def test_unknown_backend():
    with pytest.raises(backend.BackendError, match="unknown backend 'jax'"):
        backend.get_module("jax")


@pytest.mark.skipif(backend.cupy_available(), reason="this machine has a working GPU")
def test_cupy_without_gpu_is_a_clear_error():
    assert backend.cupy_unavailable_reason()
    with pytest.raises(
        backend.BackendError, match="--backend cupy: .*(not installed|no CUDA device)"
    ):
        backend.to_device(np.zeros(2), "cupy")
