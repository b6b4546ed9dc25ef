"""Kernels: the maths as pure functions, in two twins with one signature each.

:mod:`nprnn.kernels.reference` is plain NumPy, written to be read line by line.
:mod:`nprnn.kernels.compiled` holds Numba twins of the hot ones (the sequence pairs of
SimpleRNN, LSTM and both GRU variants, row gather and scatter-add, the gathered input
projection, the RMSprop update) and re-exports the reference for the rest.
:func:`active` returns the module that the layers call, chosen by
``nprnn.config.backend()`` (environment variable ``NPRNN_BACKEND``, or
``nprnn.config.set_backend``).
"""

from __future__ import annotations

from types import ModuleType

from nprnn import config
from nprnn.kernels import reference

_compiled: ModuleType | None = None  # imported on first use: importing it loads Numba


def active() -> ModuleType:
    """The kernel module selected by ``nprnn.config.backend()``."""
    global _compiled
    if config.backend() != "numba":
        return reference
    if _compiled is None:
        from nprnn.kernels import compiled

        _compiled = compiled
    return _compiled


__all__ = ["active", "reference"]
