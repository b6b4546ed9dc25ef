"""Python-side helpers of the compiled twins: normalise arrays before one compiled call."""

from __future__ import annotations

import numpy as np

from nprnn.kernels.compiled import switches

_FLOATS = (np.float32, np.float64)


def as_array(array, dtype):
    """``array`` as a C-contiguous array of ``dtype`` (no copy when it already is)."""
    return np.ascontiguousarray(array, dtype=dtype)


def transposed(array, dtype):
    """An (N, R) array as a C-contiguous (R, N) array: the kernels' batch-innermost layout."""
    return np.ascontiguousarray(np.asarray(array, dtype=dtype).T)


def mask_or_empty(mask):
    """(has_mask, C-contiguous bool (N, T) mask, or an empty one standing for None)."""
    if mask is None:
        return False, np.zeros((0, 0), dtype=np.bool_)
    return True, np.ascontiguousarray(mask, dtype=np.bool_)


def recurrent_mask_or_empty(recurrent_mask, dtype):
    """(has_mask, (H, N) transposed recurrent dropout mask, or an empty one)."""
    if recurrent_mask is None:
        return False, np.zeros((0, 0), dtype=dtype)
    return True, transposed(recurrent_mask, dtype)


def upstream_or_empty(dhidden, dtype):
    """(has_dhidden, dhidden as C-contiguous, or an empty (0, 0, 0) array for None)."""
    if dhidden is None:
        return False, np.zeros((0, 0, 0), dtype=dtype)
    return True, as_array(dhidden, dtype)


def state_gradient(d, shape, dtype):
    """An upstream gradient on a final state as a new (H, N) array (the kernels write into
    it); zeros for None."""
    if d is None:
        return np.zeros(shape[::-1], dtype=dtype)
    return np.array(np.asarray(d).T, dtype=dtype, order="C")


def is_fast(dtype):
    """Use the vectorised float32 tanh and sigmoid for this dtype."""
    return bool(switches.USE_FAST_TANH_FLOAT32 and dtype == np.float32)


def per_sequence(units, columns, batch):
    """Accumulate dWh per sequence (vectorised) while the accumulator stays small."""
    return units * columns * batch <= switches.ACC_MAX_ELEMENTS


def accumulator(units, columns, batch, dtype):
    """The per-sequence dWh accumulator (H, G*H, N), or an empty one."""
    if per_sequence(units, columns, batch):
        return np.zeros((units, columns, batch), dtype=dtype)
    return np.zeros((0, 0, 0), dtype=dtype)
