"""Shared fixtures: float64 for gradient checks, both kernel backends, a fresh seed.

Under CI (``CI`` set) hypothesis runs the ``ci`` profile: derandomized, so every run draws
the same examples and a red run is reproducible, never a one-off draw.
"""

import os

import numpy as np
import pytest
from hypothesis import settings

import nprnn
from nprnn import config

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _with_floatx(name):
    previous = config.floatx()
    config.set_floatx(name)
    yield name
    config.set_floatx(previous)


@pytest.fixture
def float64():
    """Build layers and models in float64 for the duration of a test."""
    yield from _with_floatx("float64")


def _with_backend(name):
    previous = config.backend()
    config.set_backend(name)
    yield name
    config.set_backend(previous)


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run a test once with the NumPy reference kernels and once with the compiled ones."""
    yield from _with_backend(request.param)


@pytest.fixture
def numba_backend():
    yield from _with_backend("numba")


@pytest.fixture(params=["float64", "float32"])
def floatx(request):
    """Run a test once in float64 and once in float32."""
    yield from _with_floatx(request.param)


@pytest.fixture
def numpy_backend():
    yield from _with_backend("numpy")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seed and fresh layer names."""
    nprnn.utils.set_random_seed(1234)
    nprnn.layers.clear_session()
    yield


def rel_error(a, b):
    """CS231n's relative error: max|a-b| / max(1e-8, max(|a|+|b|))."""
    return nprnn.gradcheck.rel_error(a, b)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
