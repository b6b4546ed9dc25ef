r"""Compiled row gather and scatter-add, and the gathered input projection built on them.

Ids (any integer dtype, any shape) are checked in the compiled core before any read, with one
min/max pass; an id outside [0, V) raises ``ValueError`` naming ``ids``, the range and the bad
value. This guard cannot be reached through the public API (the layers validate token ids
once, where the user's data enters); it is kept because it is cheap and it means a compiled
gather can never read out of bounds.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nprnn.kernels._fast_math import JIT_OPTIONS


def _as_ids(ids):
    """Ids as a flat C-contiguous int32/int64 array (other integer dtypes converted)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64):
        if ids.dtype.kind == "u" and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"ids: every id must lie in [0, V); got {int(ids.max())}, beyond int64"
            )
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids).reshape(-1)


def _raise_bad_id(ids, position, num_rows):
    bad = np.asarray(ids).reshape(-1)[position]
    raise ValueError(
        f"ids: every id must lie in [0, {num_rows}) (the rows of the table); got {bad} "
        f"at flat position {position}"
    )


@njit(**JIT_OPTIONS)
def _first_bad_id(ids, num_rows):
    """-1 when every id is in [0, num_rows), else the flat position of the first bad one.

    One vectorised min/max pass; the position is searched for only on failure."""
    lo = ids[0]
    hi = ids[0]
    for i in range(ids.shape[0]):
        v = ids[i]
        lo = min(lo, v)
        hi = max(hi, v)
    if lo >= 0 and hi < num_rows:
        return -1
    for i in range(ids.shape[0]):
        if ids[i] < 0 or ids[i] >= num_rows:
            return i
    return -1


@njit(**JIT_OPTIONS)
def _gather_core(table, ids, out):
    if ids.shape[0] == 0:
        return -1
    bad = _first_bad_id(ids, table.shape[0])
    if bad >= 0:
        return bad
    C = table.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for c in range(C):
            out[i, c] = table[row, c]
    return -1


def gather_rows(table, ids):
    """Compiled twin of :func:`nprnn.kernels.reference.dense.gather_rows`.

    ``out[n, t] = table[ids[n, t]]``: table (V, C), integer ids (N, T) (any shape, any
    integer dtype) -> (N, T, C) in the table's dtype.

    Raises
    ------
    ValueError
        If an id lies outside [0, V); checked before anything is read.
    """
    table_in = np.asarray(table)
    table = np.ascontiguousarray(table_in)
    if table.ndim != 2:
        raise ValueError(f"table: expected shape (V, C), got {table.shape}")
    shape = np.shape(ids)
    flat = _as_ids(ids)
    out = np.empty((flat.shape[0], table.shape[1]), dtype=table.dtype)
    bad = _gather_core(table, flat, out)
    if bad >= 0:
        _raise_bad_id(ids, bad, table.shape[0])
    return out.reshape(shape + (table.shape[1],))


@njit(**JIT_OPTIONS)
def _scatter_core(values, ids, out):
    if ids.shape[0] == 0:
        return -1
    bad = _first_bad_id(ids, out.shape[0])
    if bad >= 0:
        return bad
    C = values.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for c in range(C):
            out[row, c] += values[i, c]
    return -1


def scatter_add_rows(values, ids, num_rows):
    """Compiled twin of :func:`nprnn.kernels.reference.dense.scatter_add_rows`.

    ``out[v] = sum over (n, t) with ids[n, t] == v of values[n, t]``: values (N, T, C),
    ids (N, T) -> (num_rows, C) in the dtype of ``values``. Repeated ids accumulate, in
    the flat order of ``ids`` (the order of ``np.add.at``, so float results are identical).

    Raises
    ------
    ValueError
        If an id lies outside [0, num_rows); checked before anything is written.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise TypeError(f"values: expected a numeric array, got dtype {values.dtype}")
    num_rows = int(num_rows)
    flat = _as_ids(ids)
    C = values.shape[-1]
    if values.size != flat.shape[0] * C:
        raise ValueError(f"shapes: values {values.shape} do not match ids {np.shape(ids)} + (C,)")
    values2 = np.ascontiguousarray(values).reshape(flat.shape[0], C)
    out = np.zeros((num_rows, C), dtype=values.dtype)
    bad = _scatter_core(values2, flat, out)
    if bad >= 0:
        _raise_bad_id(ids, bad, num_rows)
    return out


def embedding_forward(ids, embeddings):
    """Embedding lookup ``out[n, t] = embeddings[ids[n, t]]``: (N, T) ids, (V, E) -> (N, T, E).

    The reference's twin, calling the compiled :func:`gather_rows`."""
    return gather_rows(embeddings, ids)


def embedding_backward(dout, ids, vocabulary_size):
    """Gradient of the lookup: ``dE[v] = sum_{ids[n, t] = v} dout[n, t]``, shape (V, E).

    The reference's twin, calling the compiled :func:`scatter_add_rows`."""
    return scatter_add_rows(dout, ids, vocabulary_size)


def gathered_projection_forward(table, ids, W, b):
    r"""Twin of :func:`nprnn.kernels.reference.dense.gathered_projection_forward`:
    ``a[n, t] = (table W + b)[ids[n, t]]`` (``table`` None for the identity), with the
    compiled :func:`gather_rows`. Returns (N, T, M)."""
    projected_table = W if table is None else table @ W
    if b is not None:
        projected_table = projected_table + b
    return gather_rows(projected_table, ids)


def gathered_projection_backward(dprojected, ids, table, W):
    r"""Twin of :func:`nprnn.kernels.reference.dense.gathered_projection_backward`, with the
    compiled :func:`scatter_add_rows`: ``G = scatter(da)`` (V, M), ``dW = table^T G`` (G for
    the identity), ``db = sum_v G[v]``. Returns ``(G, dW, db)``."""
    num_rows = W.shape[0] if table is None else table.shape[0]
    G = scatter_add_rows(dprojected, ids, num_rows)
    dW = G if table is None else table.T @ G
    db = np.ones(num_rows, dtype=G.dtype) @ G
    return G, dW, db
