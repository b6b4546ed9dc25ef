r"""The fused training step: a whole batch of the chapter's models in one compiled call.

The models of chapter 9 are ``[Embedding] -> one recurrent layer -> Dense(1, sigmoid)``,
trained with binary cross-entropy and RMSprop. Per batch the readable route
(:meth:`nprnn.models.Sequential.train_step`) calls a dozen kernels from Python, one layer
after another; at the chapter's sizes (N = 64, T = 100, H = 8) that Python glue costs as
much as the arithmetic. :func:`train_epoch` runs the same maths -- the same compiled cores
of :mod:`~nprnn.kernels.compiled.simple_rnn`, :mod:`~nprnn.kernels.compiled.lstm` and
:mod:`~nprnn.kernels.compiled.gru` -- for every batch of an epoch in one compiled call,
writing into buffers allocated once::

    a      = (table Wx + b)[ids]             input projection (row gather; masked: dense)
    h      = cell's forward core              all T steps
    p      = sigmoid(h_T w + c)               the Dense output
    loss   = mean BCE from the logit          exact for any logit
    dz     = (p - y) / N                      and back: dense, cell's backward core,
    G      = scatter_add(da, ids)             dWx = table^T G, db = sum G, dtable = G Wx^T
    w     <- RMSprop(w, g)                    every weight, staged; written only if finite

It is tested equal to the per-layer route (tests/test_fused.py): float64 to 1e-10, float32
to 1e-5, trained weights after several steps. :mod:`nprnn._fused` decides when a model can
take it and falls back to the per-layer route otherwise.

Cells are named by an integer: 0 SimpleRNN (tanh), 1 LSTM (tanh, sigmoid), 2 GRU
(reset_after=True; tanh, sigmoid).
"""

from __future__ import annotations

import numpy as np
from numba import literal_unroll, njit, prange

from nprnn.kernels._fast_math import JIT_OPTIONS, sigmoid_f32
from nprnn.kernels.compiled import gru as gru_module
from nprnn.kernels.compiled import lstm as lstm_module
from nprnn.kernels.compiled import simple_rnn as simple_rnn_module
from nprnn.kernels.compiled._loops import SIGMOID, TANH
from nprnn.kernels.compiled.switches import ACC_MAX_ELEMENTS

SIMPLE_RNN, LSTM, GRU = 0, 1, 2
GATES = (1, 4, 3)


@njit(**JIT_OPTIONS)
def _project_table(table, has_table, Wx, b, P):
    """``P = table Wx + b`` (V, G): row v is the input projection of token v."""
    if has_table:
        P[:] = np.dot(table, Wx)
    else:  # one-hot: the identity table
        P[:] = Wx
    for v in range(P.shape[0]):
        for g in range(Wx.shape[1]):
            P[v, g] += b[g]


@njit(**JIT_OPTIONS)
def _gather(ids, P, projected):
    """``projected[n, t] = P[ids[n, t]]``."""
    N, T = ids.shape
    for n in range(N):
        for t in range(T):
            row = ids[n, t]
            for g in range(P.shape[1]):
                projected[n, t, g] = P[row, g]


@njit(**JIT_OPTIONS)
def _project(ids, table, has_table, Wx, b, dmask, has_dmask, P, projected):
    """``projected[n, t] = x[n, t] Wx + b`` for token inputs (see the module docstring)."""
    N, T = ids.shape
    G = Wx.shape[1]
    if not has_dmask:
        _project_table(table, has_table, Wx, b, P)
        _gather(ids, P, projected)
        return
    E = Wx.shape[0]
    for n in range(N):
        for t in range(T):
            row = ids[n, t]
            out = projected[n, t]
            for g in range(G):
                out[g] = b[g]
            if has_table:
                for e in range(E):
                    x = table[row, e] * dmask[n, e]
                    for g in range(G):
                        out[g] += x * Wx[e, g]
            else:  # one-hot: x = e_row * m[n]
                x = dmask[n, row]
                for g in range(G):
                    out[g] += x * Wx[row, g]


@njit(**JIT_OPTIONS)
def _project_backward(dprojected, ids, table, has_table, Wx, dmask, has_dmask, G_rows,
                      dWx, db, dtable, need_dtable):
    """Gradients of :func:`_project`: dWx, db, and dtable (when the table is trained)."""
    N, T, G = dprojected.shape
    for g in range(G):
        db[g] = 0
    if not has_dmask:
        G_rows[:] = 0
        for n in range(N):
            for t in range(T):
                row = ids[n, t]
                for g in range(G):
                    G_rows[row, g] += dprojected[n, t, g]
        for v in range(G_rows.shape[0]):
            for g in range(G):
                db[g] += G_rows[v, g]
        if has_table:
            dWx[:] = np.dot(table.T, G_rows)
            if need_dtable:
                dtable[:] = np.dot(G_rows, Wx.T)
        else:
            dWx[:] = G_rows
        return
    E = Wx.shape[0]
    dWx[:] = 0
    if need_dtable:
        dtable[:] = 0
    for n in range(N):
        for t in range(T):
            row = ids[n, t]
            d = dprojected[n, t]
            for g in range(G):
                db[g] += d[g]
            if has_table:
                for e in range(E):
                    m = dmask[n, e]
                    x = table[row, e] * m
                    s = 0.0
                    for g in range(G):
                        dWx[e, g] += x * d[g]
                        s += d[g] * Wx[e, g]
                    if need_dtable:
                        dtable[row, e] += s * m
            else:
                m = dmask[n, row]
                for g in range(G):
                    dWx[row, g] += m * d[g]


@njit(**JIT_OPTIONS)
def _head(hidden, Wd, bd, y, fast, dWd, dbd, dh):
    """Dense(1, sigmoid) on h_T with BCE from the logit: loss, correct count, gradients.

    ``dh`` (H, N) receives dL/dh_T. Returns ``(loss, correct)``.
    """
    N, T, H = hidden.shape
    one = hidden.dtype.type(1)
    loss = 0.0
    correct = 0
    dWd[:] = 0
    dbd[0] = 0
    for n in range(N):
        z = bd[0]
        for k in range(H):
            z += hidden[n, T - 1, k] * Wd[k, 0]
        if fast:
            p = sigmoid_f32(z)
        else:
            e = np.exp(-abs(z))
            p = (one if z >= 0 else e) / (one + e)
        target = y[n]
        loss += max(z, 0.0) - z * target + np.log1p(np.exp(-abs(z)))
        if (p > 0.5) == (target > 0.5):
            correct += 1
        dz = (p - target) / N
        dbd[0] += dz
        for k in range(H):
            dWd[k, 0] += hidden[n, T - 1, k] * dz
            dh[k, n] = dz * Wd[k, 0]
    return loss / N, correct


@njit(**JIT_OPTIONS)
def _stage_rmsprop(param, grad, velocity, new_param, new_velocity, lr, rho, eps):
    """Keras' RMSprop into staging buffers (flat views); False if anything is non-finite."""
    p = param.reshape(-1)
    g = grad.reshape(-1)
    v = velocity.reshape(-1)
    new_p = new_param.reshape(-1)
    new_v = new_velocity.reshape(-1)
    non_finite = False
    for i in range(p.shape[0]):
        gi = np.float64(g[i])
        vi = rho * v[i] + (1.0 - rho) * gi * gi
        wi = p[i] - lr * gi / np.sqrt(vi + eps)
        new_v[i] = vi
        new_p[i] = wi
        # |x| < inf is False for inf and NaN; an OR of flags, not a branch, so it vectorises
        non_finite |= not (abs(new_v[i]) < np.inf and abs(new_p[i]) < np.inf)
    return not non_finite


@njit(**JIT_OPTIONS)
def _forward(cell, projected, Wh, rb, fast, hidden, gates, extra, cells):
    """The cell's compiled forward core over all steps from zero states (no mask, no
    recurrent dropout)."""
    empty_mask = np.zeros((0, 0), dtype=np.bool_)
    empty_rm = np.zeros((0, 0), dtype=hidden.dtype)
    N, T, H = hidden.shape
    h0 = np.zeros((H, N), dtype=hidden.dtype)
    c0 = np.zeros((H, N), dtype=hidden.dtype)
    if cell == SIMPLE_RNN:
        simple_rnn_module._forward_block(projected, Wh, h0.T.copy(), hidden, empty_mask,
                                         False, empty_rm, False, TANH, fast)
    elif cell == LSTM:
        lstm_module._forward_core(projected, Wh, h0, c0, empty_mask, False, empty_rm, False,
                                  TANH, SIGMOID, fast, hidden, gates, extra, cells)
    else:
        gru_module._forward_core(projected, Wh, rb, h0, empty_mask, False, empty_rm, False,
                                 TANH, SIGMOID, fast, True, hidden, gates, extra)


@njit(**JIT_OPTIONS)
def _backward(cell, dh, Wh, hidden, gates, extra, cells, dprojected, dWh, drb, acc,
              per_sequence):
    """The cell's compiled backward core from dL/dh_T alone (``dh`` (H, N), overwritten)."""
    empty_mask = np.zeros((0, 0), dtype=np.bool_)
    empty_rm = np.zeros((0, 0), dtype=hidden.dtype)
    no_upstream = np.zeros((0, 0, 0), dtype=hidden.dtype)
    N, T, H = hidden.shape
    h0 = np.zeros((H, N), dtype=hidden.dtype)
    c0 = np.zeros((H, N), dtype=hidden.dtype)
    dWh[:] = 0
    acc[:] = 0
    if cell == SIMPLE_RNN:
        dh0 = np.empty((hidden.shape[0], Wh.shape[0]), dtype=hidden.dtype)
        cache = (hidden, h0.T.copy(), Wh, empty_mask, False, empty_rm, False, TANH)
        simple_rnn_module._backward_core(no_upstream, False, dh, cache, dprojected, dWh, dh0,
                                         acc, per_sequence)
    elif cell == LSTM:
        dc = np.zeros((H, N), dtype=hidden.dtype)
        cache = (hidden, h0, c0, Wh, gates, extra, cells, empty_mask, False, empty_rm, False,
                 TANH, SIGMOID)
        lstm_module._backward_core(no_upstream, False, dh, dc, cache, dprojected, dWh, acc,
                                   per_sequence)
    else:
        cache = (hidden, h0, Wh, gates, extra, empty_mask, False, empty_rm, False, TANH,
                 SIGMOID, True)
        gru_module._backward_core(no_upstream, False, dh, cache, dprojected, dWh, drb, acc,
                                  per_sequence)


@njit(**JIT_OPTIONS)
def _apply_rmsprop(slots, lr, rho, eps):
    """Stage every weight's RMSprop step; write them all only if every value is finite."""
    finite = True
    for slot in literal_unroll(slots):
        weight, grad, velocity, staged_w, staged_v = slot
        if not _stage_rmsprop(weight, grad, velocity, staged_w, staged_v, lr, rho, eps):
            finite = False
    if finite:
        for slot in literal_unroll(slots):
            weight, grad, velocity, staged_w, staged_v = slot
            weight[...] = staged_w
            velocity[...] = staged_v
    return finite


def make_work(cell, batch_size, T, H, V, dtype, training=True):
    """Buffers of :func:`train_batches` and :func:`predict_logits` for batches of up to
    ``batch_size`` sequences, allocated once: (P, projected, hidden, gates, extra, cells, dh,
    dprojected, acc, G_rows).

    ``training=False`` (inference): the states and gates are kept for the latest step only
    (the cores store step t into slot ``t % steps kept``) and the gradient buffers are empty.
    """
    G = GATES[cell] * H
    N = batch_size
    kept = T if training else 1
    gates = np.empty((kept, G, N) if cell != SIMPLE_RNN else (0, 0, 0), dtype=dtype)
    extra = np.empty((kept, H, N) if cell != SIMPLE_RNN else (0, 0, 0), dtype=dtype)
    cells = np.empty((kept, H, N) if cell == LSTM else (0, 0, 0), dtype=dtype)
    if not training:
        return (np.empty((V, G), dtype), np.empty((N, T, G), dtype),
                np.empty((N, kept, H), dtype), gates, extra, cells, np.empty((H, N), dtype),
                np.empty((0, 0, 0), dtype), np.zeros((0, 0, 0), dtype),
                np.empty((0, 0), dtype))
    return (np.empty((V, G), dtype), np.empty((N, T, G), dtype), np.empty((N, T, H), dtype),
            gates, extra, cells, np.empty((H, N), dtype), np.empty((N, T, G), dtype),
            np.zeros((H, G, N), dtype), np.empty((V, G), dtype))


@njit(**JIT_OPTIONS)
def _run_batch(cell, ids, y, dmask, has_dmask, table, has_table, train_table, Wx, b, Wh, rb,
               Wd, bd, fast, lr, rho, eps, slots, grads, work):
    """Forward, loss, backward and update on one batch; ``(loss, correct, applied)``."""
    dWx, db, dWh, drb, dWd, dbd, dtable = grads
    P, projected, hidden, gates, extra, cells, dh, dprojected, acc, G_rows = work
    H = Wh.shape[0]
    _project(ids, table, has_table, Wx, b, dmask, has_dmask, P, projected)
    _forward(cell, projected, Wh, rb, fast, hidden, gates, extra, cells)
    loss, correct = _head(hidden, Wd, bd, y, fast, dWd, dbd, dh)
    _backward(cell, dh, Wh, hidden, gates, extra, cells, dprojected, dWh, drb, acc,
              per_sequence(H, Wh.shape[1], ids.shape[0]))
    _project_backward(dprojected, ids, table, has_table, Wx, dmask, has_dmask, G_rows, dWx,
                      db, dtable, train_table)
    if not np.isfinite(loss):
        return loss, correct, False
    return loss, correct, _apply_rmsprop(slots, lr, rho, eps)


@njit(**JIT_OPTIONS)
def train_batches(cell, ids_all, y_all, order, batch_size, first, last, dmask_all, has_dmask,
                  table, has_table, train_table, Wx, b, Wh, rb, Wd, bd, fast, lr, rho, eps,
                  slots, grads, work, losses, corrects):
    """Train on batches ``first`` .. ``last - 1`` of an epoch; one compiled call.

    Batch i holds the samples ``order[i * batch_size : (i + 1) * batch_size]`` (the last
    batch may be smaller, as Keras keeps it). ``dmask_all`` holds the input dropout mask of
    every sample in ``order``'s order (N_total, D), or is empty. ``losses[i]``,
    ``corrects[i]`` receive each batch's mean loss and count of correct predictions. Returns
    the number of batches done: less than ``last - first`` when a batch gave a non-finite
    loss or update (that batch changed nothing; its loss is in ``losses``).
    """
    total = order.shape[0]
    T = ids_all.shape[1]
    for i in range(first, last):
        start = i * batch_size
        stop = min(total, start + batch_size)
        N = stop - start
        ids = np.empty((N, T), dtype=ids_all.dtype)
        y = np.empty(N, dtype=y_all.dtype)
        for n in range(N):
            ids[n] = ids_all[order[start + n]]
            y[n] = y_all[order[start + n]]
        dmask = dmask_all[start:stop] if has_dmask else dmask_all
        if N == batch_size:
            batch_work = work
        else:  # the epoch's last, smaller batch: buffers of its own size
            batch_work = _resized(work, N)
        loss, correct, applied = _run_batch(cell, ids, y, dmask, has_dmask, table, has_table,
                                            train_table, Wx, b, Wh, rb, Wd, bd, fast, lr, rho,
                                            eps, slots, grads, batch_work)
        losses[i] = loss
        corrects[i] = correct
        if not applied:
            return i - first
    return last - first


@njit(**JIT_OPTIONS)
def _resized(work, N):
    P, projected, hidden, gates, extra, cells, dh, dprojected, acc, G_rows = work
    T = projected.shape[1]
    return (P, np.empty((N, T, projected.shape[2]), projected.dtype),
            np.empty((N, hidden.shape[1], hidden.shape[2]), hidden.dtype),
            np.empty((gates.shape[0], gates.shape[1], N if gates.size else 0), gates.dtype),
            np.empty((extra.shape[0], extra.shape[1], N if extra.size else 0), extra.dtype),
            np.empty((cells.shape[0], cells.shape[1], N if cells.size else 0), cells.dtype),
            np.empty((dh.shape[0], N), dh.dtype),
            np.empty((N, dprojected.shape[1], dprojected.shape[2]), dprojected.dtype),
            np.zeros((acc.shape[0], acc.shape[1], N if acc.size else 0), acc.dtype), G_rows)


@njit(**JIT_OPTIONS)
def _logits(hidden, Wd, bd, logits, start):
    """``logits[start + n] = h_T[n] w + c``, the Dense layer's logit of each sequence
    (``hidden`` (N, steps kept, H): its last step is h_T)."""
    N, T, H = hidden.shape
    for n in range(N):
        z = bd[0]
        for k in range(H):
            z += hidden[n, T - 1, k] * Wd[k, 0]
        logits[start + n] = z


@njit(**JIT_OPTIONS)
def predict_logits(cell, ids_all, table, has_table, Wx, b, Wh, rb, Wd, bd, fast, work,
                   logits):
    """The Dense layer's logit for every sequence, in batches of the work buffers' size."""
    P, projected, hidden, gates, extra, cells, dh, dprojected, acc, G_rows = work
    batch_size = projected.shape[0]
    total = ids_all.shape[0]
    _project_table(table, has_table, Wx, b, P)  # once: the weights do not change
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        N = stop - start
        batch_work = work if N == batch_size else _resized(work, N)
        proj, hid = batch_work[1], batch_work[2]
        _gather(ids_all[start:stop], P, proj)
        _forward(cell, proj, Wh, rb, fast, hid, batch_work[3], batch_work[4], batch_work[5])
        _logits(hid, Wd, bd, logits, start)


@njit(parallel=True, **JIT_OPTIONS)
def predict_logits_parallel(cell, ids_all, table, has_table, Wx, b, Wh, rb, Wd, bd, fast,
                            block, logits):
    """:func:`predict_logits` with blocks of ``block`` sequences shared among Numba's threads.

    Sequences are independent in the forward pass and each block runs the same loops, so
    the logits are bitwise those of the serial function, whatever the thread count.
    """
    total, T = ids_all.shape
    G = Wx.shape[1]
    H = Wh.shape[0]
    dtype = Wx.dtype
    P = np.empty((table.shape[0] if has_table else Wx.shape[0], G), dtype=dtype)
    _project_table(table, has_table, Wx, b, P)  # once, shared read-only by the blocks
    blocks = (total + block - 1) // block
    for i in prange(blocks):
        start = i * block
        stop = min(total, start + block)
        N = stop - start
        proj = np.empty((N, T, G), dtype=dtype)
        hid = np.empty((N, 1, H), dtype=dtype)  # the latest step only, as make_work(training=False)
        gates = np.empty((1, G, N) if cell != SIMPLE_RNN else (0, 0, 0), dtype=dtype)
        extra = np.empty((1, H, N) if cell != SIMPLE_RNN else (0, 0, 0), dtype=dtype)
        cells = np.empty((1, H, N) if cell == LSTM else (0, 0, 0), dtype=dtype)
        _gather(ids_all[start:stop], P, proj)
        _forward(cell, proj, Wh, rb, fast, hid, gates, extra, cells)
        _logits(hid, Wd, bd, logits, start)


@njit(**JIT_OPTIONS)
def per_sequence(units, columns, batch):
    """Same rule as :func:`nprnn.kernels.compiled._common.per_sequence`."""
    return units * columns * batch <= ACC_MAX_ELEMENTS
