"""One seeded random generator for everything nprnn draws: initial weights and shuffles."""

from __future__ import annotations

import random

import numpy as np

_generator: np.random.Generator | None = None


def set_seed(seed: int) -> None:
    """Seed nprnn's generator, NumPy's global one and Python's ``random`` (as Keras does)."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    seed = int(seed)
    _generator = np.random.default_rng(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - users' own np.random calls, as Keras does
    random.seed(seed)


def generator() -> np.random.Generator:
    """The shared generator; seeded from the operating system until ``set_seed`` is called."""
    global _generator
    if _generator is None:
        _generator = np.random.default_rng()
    return _generator
