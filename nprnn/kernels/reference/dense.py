r"""The affine map, and the row gather it becomes for token inputs.

A Dense layer is ``out = x W + b``; so is the input projection of every recurrent cell,
``a_t = x_t Wx + b``, computed for all steps at once (x of shape (N, T, D) maps along its last
axis). When x holds token ids standing for rows of a table (an embedding, or the identity for
a one-hot encoding), the projection is a row gather of the projected table, which is exact
algebra::

    x_t Wx + b = table[ids_t] Wx + b = (table Wx + b)[ids_t]
"""

from __future__ import annotations

import numpy as np


def dense_forward(x, W, b):
    """Affine map ``out = x W + b``: x (..., D), W (D, M), b (M,) or None -> (..., M).

    The leading axes are flattened so that (N, T, D) inputs make one (N T, D) x (D, M)
    matrix product, not T small ones.
    """
    out = (x.reshape(-1, x.shape[-1]) @ W).reshape(x.shape[:-1] + (W.shape[1],))
    if b is not None:
        out += b
    return out


def dense_backward(dout, x, W, need_dx=True):
    r"""Gradients of ``out = x W + b`` over all leading axes of x.

    ::

        dx = dout W^T            (..., D)     None when need_dx is False
        dW = sum_rows x^T dout   (D, M)
        db = sum_rows dout       (M,)

    ``db`` is computed as a product with a vector of ones: one BLAS call, much faster than a
    strided ``.sum(axis=0)`` for narrow layers.
    """
    flat_x = x.reshape(-1, x.shape[-1])
    flat_dout = dout.reshape(-1, dout.shape[-1])
    dW = flat_x.T @ flat_dout
    db = np.ones(len(flat_dout), dtype=flat_dout.dtype) @ flat_dout
    dx = (flat_dout @ W.T).reshape(dout.shape[:-1] + (W.shape[0],)) if need_dx else None
    return dx, dW, db


def gather_rows(table, ids):
    """Look up rows of a table: ``out[n, t] = table[ids[n, t]]``.

    Parameters
    ----------
    table : ndarray, shape (V, C)
    ids : integer ndarray, shape (N, T), every value in [0, V)

    Returns
    -------
    ndarray, shape (N, T, C)
    """
    return table[ids]


def scatter_add_rows(values, ids, num_rows):
    """Sum gradient rows into the rows they were gathered from: the adjoint of gather_rows.

    ``out[v] = sum over (n, t) with ids[n, t] == v of values[n, t]``; a repeated id
    accumulates (``np.add.at``, not ``out[ids] = values``, which would keep only the last).

    Parameters
    ----------
    values : ndarray, shape (N, T, C)
    ids : integer ndarray, shape (N, T)
    num_rows : int
        V, the number of rows of the gathered table.

    Returns
    -------
    ndarray, shape (V, C)
    """
    out = np.zeros((num_rows, values.shape[-1]), dtype=values.dtype)
    np.add.at(out, ids.reshape(-1), values.reshape(-1, values.shape[-1]))
    return out


def embedding_forward(ids, embeddings):
    """Embedding lookup ``out[n, t] = E[ids[n, t]]``: (N, T) ids, (V, E) -> (N, T, E)."""
    return gather_rows(embeddings, ids)


def embedding_backward(dout, ids, vocabulary_size):
    r"""Gradient of the lookup: :math:`dE[v] = \sum_{(n,t):\, ids[n,t] = v} dout[n, t]`, (V, E)."""
    return scatter_add_rows(dout, ids, vocabulary_size)


def gathered_projection_forward(table, ids, W, b):
    r"""Input projection of token inputs: :math:`a[n, t] = \mathrm{table}[ids[n,t]] W + b`.

    Computed as ``(table W + b)[ids]``: the table (V rows) is projected once, then rows are
    gathered, instead of projecting N*T gathered rows. The bias rides along bit for bit.

    Parameters
    ----------
    table : ndarray, shape (V, E), or None for the identity (a one-hot encoding, V = E)
    ids : integer ndarray, shape (N, T)
    W : ndarray, shape (E, M)
    b : ndarray, shape (M,), or None

    Returns
    -------
    ndarray, shape (N, T, M)
    """
    projected_table = W if table is None else table @ W
    if b is not None:
        projected_table = projected_table + b
    return gather_rows(projected_table, ids)


def gathered_projection_backward(dprojected, ids, table, W):
    r"""Backward of :func:`gathered_projection_forward`.

    With :math:`G[v] = \sum_{ids[n,t] = v} da[n, t]` (one scatter-add, shape (V, M)), the
    gradient with respect to the rows of the projected table ``table W + b``::

        dW = table^T G     (E, M)      (G itself for a one-hot input)
        db = sum_v G[v]    (M,)

    and the gradient reaching the table is ``dtable = G W^T`` (V, E), which the layer that
    owns the table computes (:func:`projected_rows_backward`).

    Returns
    -------
    G, dW, db : ndarrays of shapes (V, M), (E, M), (M,)
    """
    num_rows = W.shape[0] if table is None else table.shape[0]
    G = scatter_add_rows(dprojected, ids, num_rows)
    dW = G if table is None else table.T @ G
    db = np.ones(num_rows, dtype=G.dtype) @ G
    return G, dW, db


def projected_rows_backward(G, W):
    r"""Gradient reaching a table whose rows were projected by W: :math:`dT = G W^T`, (V, E)."""
    return G @ W.T
