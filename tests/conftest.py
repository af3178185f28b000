"""Shared fixtures: one test body runs on every backend (docs/style.md §4)."""

import numpy as np
import pytest

from tinyalex import backend


@pytest.fixture(params=backend.BACKENDS)
def xp(request):
    """The array module of each backend; CuPy cases skip where no GPU works."""
    if request.param == "cupy" and not backend.cupy_available():
        pytest.skip(f"cupy backend: {backend.cupy_unavailable_reason()}")
    return backend.get_module(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
