"""Global settings: the float type of new weights and the kernel backend.

``floatx`` follows Keras' ``keras.config.floatx``: 'float32' by default, 'float64' for
gradient checks. The backend chooses between the Numba-compiled kernels (``'numba'``, the
default) and their readable NumPy twins (``'numpy'``); the environment variable
``NPRNN_BACKEND`` sets the starting value, ``set_backend`` changes it at run time.

``deterministic`` (True by default) makes ``fit``, ``evaluate``, ``predict`` and the other
model calls run the BLAS library (NumPy's matrix products) on one thread while they work:
OpenBLAS partitions a product differently for each thread count, and the rounding then
differs, so without this a seeded run gives other weights under ``OPENBLAS_NUM_THREADS=2``
than under 1 (seen at the book's one-hot sizes). With it, a fixed seed gives bit-identical
weights and history across runs, processes and thread counts (the compiled kernels are
serial already). It needs ``threadpoolctl`` (installed with scikit-learn); without it the
setting has no effect.
"""

from __future__ import annotations

import os

import numpy as np

_FLOATX_CHOICES = ("float32", "float64")
_BACKEND_CHOICES = ("numba", "numpy")

_floatx = "float32"


def floatx() -> str:
    """The default float type for weights and computations, as a string."""
    return _floatx


def set_floatx(value: str) -> None:
    """Set the default float type: 'float32' (default) or 'float64'."""
    global _floatx
    name = np.dtype(value).name if isinstance(value, (type, np.dtype)) else value
    if name not in _FLOATX_CHOICES:
        raise ValueError(f"floatx: expected one of {_FLOATX_CHOICES}, got {value!r}")
    _floatx = name


def _backend_from_environment() -> str:
    value = os.environ.get("NPRNN_BACKEND", "numba").strip().lower()
    if value not in _BACKEND_CHOICES:
        raise ValueError(
            f"NPRNN_BACKEND: expected one of {_BACKEND_CHOICES}, got {value!r}"
        )
    return value


_backend = _backend_from_environment()


def backend() -> str:
    """The kernel backend in use: 'numba' (compiled) or 'numpy' (reference)."""
    return _backend


def set_backend(name: str) -> None:
    """Select the kernel backend: 'numba' (compiled, default) or 'numpy' (reference)."""
    global _backend
    if name not in _BACKEND_CHOICES:
        raise ValueError(f"backend: expected one of {_BACKEND_CHOICES}, got {name!r}")
    _backend = name


_deterministic = True


def deterministic() -> bool:
    """Whether model calls pin BLAS to one thread for thread-count-independent results."""
    return _deterministic


def set_deterministic(value: bool) -> None:
    """True (default): bit-identical results whatever the BLAS thread count; False: let
    BLAS use its threads (maybe faster for large dense products, not reproducible across
    thread counts)."""
    global _deterministic
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"deterministic: expected True or False, got {value!r}")
    _deterministic = bool(value)
