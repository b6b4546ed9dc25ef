r"""The fused training step: a whole batch of the chapter's models in one compiled call.

The models of chapter 9 are ``[Embedding] -> recurrent layer(s) -> Dense(1, sigmoid)``,
trained with binary cross-entropy and RMSprop: one SimpleRNN, LSTM or GRU (9-2, 9-3), or a
stack of them whose lower layers return sequences (9-3's two LSTMs). Per batch the readable
route (:meth:`nprnn.models.Sequential.train_step`) calls a dozen kernels from Python, one
layer after another; at the chapter's sizes (N = 64, T = 100, H = 8) that Python glue costs
as much as the arithmetic. :func:`train_batches` runs the same maths -- the same compiled
cores of :mod:`~nprnn.kernels.compiled.simple_rnn`, :mod:`~nprnn.kernels.compiled.lstm` and
:mod:`~nprnn.kernels.compiled.gru` -- for every batch of a chunk of an epoch in one compiled
call, writing into buffers allocated once. For layers l = 1..L (``m_l`` the layer's input
dropout mask, one per sequence, or 1; with ``Embedding(mask_zero=True)`` every layer's core
skips the steps whose token is 0, carrying its states and output through them, as the
per-layer route's layers do)::

    a_1    = (table Wx_1 + b_1)[ids]          first layer: a row gather (dropout: dense)
    a_l    = (h_{l-1} * m_l) Wx_l + b_l       layers above it, from the full sequence below
    h_l    = cell_l's forward core            all T steps
    p      = sigmoid(h_L,T w + c)             the Dense output
    loss   = mean BCE from the logit          exact for any logit
    dz     = (p - y) / N                      and back: dense, each cell's backward core,
    dh_{l-1} = (da_l Wx_l^T) * m_l            the gradient reaching the layer below
    G      = scatter_add(da_1, ids)           dWx_1 = table^T G, db_1 = sum G, dtable = G Wx^T
    w     <- RMSprop(w, g)                    every weight, staged; written only if finite

It is tested equal to the per-layer route (tests/test_fused.py): float64 to 1e-10, float32
to 1e-5, trained weights after several steps. :mod:`nprnn._fused` decides when a model can
take it and falls back to the per-layer route otherwise.

The layers are given as tuples with one entry per layer (``cells``, ``Wxs``, ...), indexed
by the layer number at run time (homogeneous tuples), so one compiled function serves any
depth. Cells are named by an integer: 0 SimpleRNN (tanh), 1 LSTM (tanh, sigmoid), 2 GRU
(reset_after=True; tanh, sigmoid).
"""

from __future__ import annotations

import numpy as np
from numba import literal_unroll, njit

from nprnn.kernels._fast_math import JIT_OPTIONS, sigmoid_f32
from nprnn.kernels.compiled import gru as gru_module
from nprnn.kernels.compiled import lstm as lstm_module
from nprnn.kernels.compiled import simple_rnn as simple_rnn_module
from nprnn.kernels.compiled._loops import SIGMOID, TANH
from nprnn.kernels.compiled.switches import ACC_MAX_ELEMENTS

SIMPLE_RNN, LSTM, GRU = 0, 1, 2
GATES = (1, 4, 3)

# The fields of one layer's work tuple (see make_work).
PROJECTED, HIDDEN, GATES_, EXTRA, CELLS, DH, DPROJECTED, ACC, DHIDDEN, INPUTS, DINPUTS = range(11)


# -- the input projections ---------------------------------------------------------------------
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
def _dense_project(inputs, Wx, b, projected):
    """``projected[n, t] = inputs[n, t] Wx + b``: (N, T, D) -> (N, T, G).

    Compiled loops, not BLAS: with D = 8 or 16 the product is too thin for BLAS (its
    packing costs more than the arithmetic, and threads make it slower still). Four rows of
    ``Wx`` per pass over the output row, e ascending (a fixed order: reproducible).
    """
    N, T, D = inputs.shape
    G = Wx.shape[1]
    D4 = D - D % 4
    x = inputs.reshape(N * T, D)
    out = projected.reshape(N * T, G)
    for i in range(N * T):
        row = out[i]
        for g in range(G):
            row[g] = b[g]
        for e in range(0, D4, 4):
            x0, x1, x2, x3 = x[i, e], x[i, e + 1], x[i, e + 2], x[i, e + 3]
            for g in range(G):
                v = row[g] + x0 * Wx[e, g]
                v += x1 * Wx[e + 1, g]
                v += x2 * Wx[e + 2, g]
                row[g] = v + x3 * Wx[e + 3, g]
        for e in range(D4, D):
            xe = x[i, e]
            for g in range(G):
                row[g] += xe * Wx[e, g]


@njit(**JIT_OPTIONS)
def _dense_project_backward(inputs, Wx, dprojected, dWx, db, dinputs):
    """Gradients of :func:`_dense_project`: ``dWx = X^T dA`` and ``db = sum dA`` (rows in
    order, four per pass over dWx), ``dinputs = dA Wx^T`` (written; see
    :func:`_rows_times_transposed`)."""
    N, T, G = dprojected.shape
    D = Wx.shape[0]
    M = N * T
    M4 = M - M % 4
    x = inputs.reshape(M, D)
    da = dprojected.reshape(M, G)
    dWx[:] = 0
    for g in range(G):
        db[g] = 0
    for i in range(0, M4, 4):
        d0, d1, d2, d3 = da[i], da[i + 1], da[i + 2], da[i + 3]
        for g in range(G):
            v = db[g] + d0[g]
            v += d1[g]
            v += d2[g]
            db[g] = v + d3[g]
        for e in range(D):
            x0, x1, x2, x3 = x[i, e], x[i + 1, e], x[i + 2, e], x[i + 3, e]
            for g in range(G):
                v = dWx[e, g] + x0 * d0[g]
                v += x1 * d1[g]
                v += x2 * d2[g]
                dWx[e, g] = v + x3 * d3[g]
    for i in range(M4, M):
        for g in range(G):
            db[g] += da[i, g]
        for e in range(D):
            for g in range(G):
                dWx[e, g] += x[i, e] * da[i, g]
    _rows_times_transposed(da, Wx, dinputs.reshape(M, D))


@njit(**JIT_OPTIONS)
def _rows_times_transposed(da, Wx, dx, block=64):
    """``dx = dA Wx^T`` (M, D), in blocks of 64 rows turned batch-innermost, so that the
    sums over G run as products vectorised over the rows (a row at a time, each sum would
    be a chain of G dependent additions)."""
    M, G = da.shape
    D = Wx.shape[0]
    daT = np.empty((G, block), da.dtype)
    dxT = np.empty((D, block), da.dtype)
    for i0 in range(0, M, block):
        n = min(block, M - i0)
        for b in range(n):
            for g in range(G):
                daT[g, b] = da[i0 + b, g]
        for e in range(D):
            for b in range(n):
                dxT[e, b] = 0
            for g in range(G):
                w = Wx[e, g]
                for b in range(n):
                    dxT[e, b] += daT[g, b] * w
        for b in range(n):
            for e in range(D):
                dx[i0 + b, e] = dxT[e, b]


@njit(**JIT_OPTIONS)
def _dropped_rows(ids, table, dmask, offset, inputs):
    """``inputs[n, t] = table[ids[n, t]] * m[offset + n]``: an Embedding's output with
    dropout."""
    N, T = ids.shape
    E = table.shape[1]
    for n in range(N):
        for t in range(T):
            row = ids[n, t]
            for e in range(E):
                inputs[n, t, e] = table[row, e] * dmask[offset + n, e]


@njit(**JIT_OPTIONS)
def _dropped_below(hidden, dmask, offset, inputs):
    """``inputs[n, t] = h[n, t] * m[offset + n]``, the input of a layer above the first."""
    N, T, D = hidden.shape
    for n in range(N):
        for t in range(T):
            for e in range(D):
                inputs[n, t, e] = hidden[n, t, e] * dmask[offset + n, e]


@njit(**JIT_OPTIONS)
def _project_first(ids, table, has_table, Wx, b, dmask, offset, P, work):
    """The first layer's ``a = x Wx + b`` for token inputs (see the module docstring);
    ``dmask`` (rows ``offset`` on: this batch) is empty without dropout."""
    projected = work[PROJECTED]
    if dmask.shape[0] == 0:
        _project_table(table, has_table, Wx, b, P)
        _gather(ids, P, projected)
        return
    if has_table:  # the dropped-out embeddings, kept for the backward
        inputs = work[INPUTS]
        _dropped_rows(ids, table, dmask, offset, inputs)
        _dense_project(inputs, Wx, b, projected)
        return
    N, T = ids.shape
    G = Wx.shape[1]
    for n in range(N):  # one-hot: x = e_row * m[n], so x Wx = m[n, row] Wx[row]
        for t in range(T):
            row = ids[n, t]
            x = dmask[offset + n, row]
            out = projected[n, t]
            for g in range(G):
                out[g] = b[g] + x * Wx[row, g]


@njit(**JIT_OPTIONS)
def _project_first_backward(ids, table, has_table, Wx, dmask, offset, G_rows, work, dWx, db,
                            dtable, need_dtable):
    """Gradients of :func:`_project_first`: dWx, db, and dtable (when the table is trained)."""
    dprojected = work[DPROJECTED]
    N, T, G = dprojected.shape
    has_dmask = dmask.shape[0] > 0
    if has_dmask and has_table:
        dinputs = work[DINPUTS]  # (N, T, E): the gradient reaching the dropped embeddings
        _dense_project_backward(work[INPUTS], Wx, dprojected, dWx, db, dinputs)
        if need_dtable:
            dtable[:] = 0
            for n in range(N):
                for t in range(T):
                    row = ids[n, t]
                    for e in range(table.shape[1]):
                        dtable[row, e] += dinputs[n, t, e] * dmask[offset + n, e]
        return
    for g in range(G):
        db[g] = 0
    if has_dmask:  # one-hot
        dWx[:] = 0
        for n in range(N):
            for t in range(T):
                row = ids[n, t]
                m = dmask[offset + n, row]
                d = dprojected[n, t]
                for g in range(G):
                    db[g] += d[g]
                    dWx[row, g] += m * d[g]
        return
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


# -- the head, the optimizer -------------------------------------------------------------------
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


# -- one recurrent layer -----------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def _forward(cell, Wh, rb, fast, mask, has_mask, work):
    """The cell's compiled forward core over all steps from zero states (no recurrent
    dropout; ``mask`` (N, T), when ``has_mask``, skips the padded steps), from ``work``'s
    projected input into its hidden, gates, ...; buffers of one step keep the latest step
    only (inference)."""
    projected, hidden = work[PROJECTED], work[HIDDEN]
    empty_rm = np.zeros((0, 0), dtype=hidden.dtype)
    N = hidden.shape[0]
    H = hidden.shape[2]
    h0 = np.zeros((H, N), dtype=hidden.dtype)
    c0 = np.zeros((H, N), dtype=hidden.dtype)
    if cell == SIMPLE_RNN:
        simple_rnn_module._forward_block(projected, Wh, h0.T.copy(), hidden, mask,
                                         has_mask, empty_rm, False, TANH, fast)
    elif cell == LSTM:
        lstm_module._forward_core(projected, Wh, h0, c0, mask, has_mask, empty_rm, False,
                                  TANH, SIGMOID, fast, hidden, work[GATES_], work[EXTRA],
                                  work[CELLS])
    else:
        gru_module._forward_core(projected, Wh, rb, h0, mask, has_mask, empty_rm, False,
                                 TANH, SIGMOID, fast, True, hidden, work[GATES_], work[EXTRA])


@njit(**JIT_OPTIONS)
def _backward(cell, Wh, mask, has_mask, work, has_dhidden, dWh, drb):
    """The cell's compiled backward core: from dL/dh_T in ``work[DH]`` (H, N, overwritten),
    plus the gradient on every step's output ``work[DHIDDEN]`` when ``has_dhidden``; into
    ``work[DPROJECTED]``, dWh and drb (``mask`` as in :func:`_forward`)."""
    hidden, dh, acc = work[HIDDEN], work[DH], work[ACC]
    dhidden = work[DHIDDEN]
    empty_rm = np.zeros((0, 0), dtype=hidden.dtype)
    N, T, H = hidden.shape
    h0 = np.zeros((H, N), dtype=hidden.dtype)
    c0 = np.zeros((H, N), dtype=hidden.dtype)
    per_sequence = _per_sequence(H, Wh.shape[1], N)
    dWh[:] = 0
    acc[:] = 0
    if cell == SIMPLE_RNN:
        dh0 = np.empty((N, H), dtype=hidden.dtype)
        cache = (hidden, h0.T.copy(), Wh, mask, has_mask, empty_rm, False, TANH)
        simple_rnn_module._backward_core(dhidden, has_dhidden, dh, cache, work[DPROJECTED],
                                         dWh, dh0, acc, per_sequence)
    elif cell == LSTM:
        dc = np.zeros((H, N), dtype=hidden.dtype)
        cache = (hidden, h0, c0, Wh, work[GATES_], work[EXTRA], work[CELLS], mask, has_mask,
                 empty_rm, False, TANH, SIGMOID)
        lstm_module._backward_core(dhidden, has_dhidden, dh, dc, cache, work[DPROJECTED], dWh,
                                   acc, per_sequence)
    else:
        cache = (hidden, h0, Wh, work[GATES_], work[EXTRA], mask, has_mask, empty_rm, False,
                 TANH, SIGMOID, True)
        gru_module._backward_core(dhidden, has_dhidden, dh, cache, work[DPROJECTED], dWh, drb,
                                  acc, per_sequence)


@njit(**JIT_OPTIONS)
def _per_sequence(units, columns, batch):
    """Same rule as :func:`nprnn.kernels.compiled._common.per_sequence`."""
    return units * columns * batch <= ACC_MAX_ELEMENTS


# -- buffers -----------------------------------------------------------------------------------
def _layer_work(cell, N, T, D, H, dtype, training, top, input_kind):
    """One layer's buffers, in the order of the field numbers (PROJECTED, HIDDEN, ...).

    ``input_kind``: 0 first layer without a dense input, 1 first layer with dropped-out
    embeddings (dense), 2 a layer above the first. Inference keeps the gates (and, for the
    top layer, the states) of the latest step only.
    """
    G = GATES[cell] * H
    kept = T if training else 1
    kept_hidden = T if (training or not top) else 1
    empty3 = np.empty((0, 0, 0), dtype)

    def per_step(rows, wanted):
        return np.empty((kept, rows, N), dtype) if wanted else empty3

    dense_input = input_kind != 0
    return (np.empty((N, T, G), dtype),
            np.empty((N, kept_hidden, H), dtype),
            per_step(G, cell != SIMPLE_RNN),
            per_step(H, cell != SIMPLE_RNN),
            per_step(H, cell == LSTM),
            np.empty((H, N), dtype),
            np.empty((N, T, G), dtype) if training else empty3,
            np.zeros((H, G, N), dtype) if training else empty3,
            np.empty((N, T, H), dtype) if training and not top else empty3,  # dL/d outputs
            np.empty((N, T, D), dtype) if dense_input else empty3,
            np.empty((N, T, D), dtype) if training and input_kind == 1 else empty3)


def make_work(cells, batch_size, T, dims, V, dtype, dropout_first=False, training=True):
    """The buffers of :func:`train_batches` and :func:`predict_logits` for batches of up to
    ``batch_size`` sequences, allocated once: ``(P, G_rows, layers)``, ``layers`` a tuple of
    one work tuple per layer (fields PROJECTED .. INPUTS).

    ``dims`` = (D_1, H_1, ..., H_L): the first layer's input width (the Embedding's output,
    or the one-hot width) and every layer's units. ``dropout_first``: the first layer drops
    out an Embedding's output (a dense projection instead of the row gather).
    """
    L = len(cells)
    layers = tuple(
        _layer_work(cells[i], batch_size, T, dims[i], dims[i + 1], dtype, training,
                    top=(i == L - 1), input_kind=(2 if i else int(dropout_first)))
        for i in range(L))
    G0 = GATES[cells[0]] * dims[1]
    return (np.empty((V, G0), dtype), np.empty((V, G0) if training else (0, 0), dtype), layers)


# -- a batch, an epoch -------------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def _forward_stack(cells, ids, mask, has_mask, dmasks, offset, table, has_table, Wxs, bs, Whs,
                   rbs, fast, P, layers, training):
    """Every layer's forward, bottom to top (``dmasks[l]`` empty: no dropout; rows
    ``offset`` on are this batch's; ``mask``: every layer skips the padded steps). In
    inference ``P`` was projected once for all blocks."""
    first = layers[0]
    if training:
        _project_first(ids, table, has_table, Wxs[0], bs[0], dmasks[0], offset, P, first)
    else:
        _gather(ids, P, first[PROJECTED])
    _forward(cells[0], Whs[0], rbs[0], fast, mask, has_mask, first)
    for i in range(1, len(cells)):
        below, work = layers[i - 1], layers[i]
        dmask = dmasks[i]
        inputs = below[HIDDEN]
        if dmask.shape[0] > 0:
            inputs = work[INPUTS]
            _dropped_below(below[HIDDEN], dmask, offset, inputs)
        _dense_project(inputs, Wxs[i], bs[i], work[PROJECTED])
        _forward(cells[i], Whs[i], rbs[i], fast, mask, has_mask, work)


@njit(**JIT_OPTIONS)
def _run_batch(cells, ids, y, mask, has_mask, dmasks, offset, table, has_table, train_table,
               Wxs, bs, Whs, rbs, Wd, bd, fast, lr, rho, eps, slots, grads, dense_grads, P,
               G_rows, layers):
    """Forward, loss, backward and update on one batch; ``(loss, correct, applied)``."""
    L = len(cells)
    _forward_stack(cells, ids, mask, has_mask, dmasks, offset, table, has_table, Wxs, bs, Whs,
                   rbs, fast, P, layers, True)
    dWd, dbd, dtable = dense_grads
    top = layers[L - 1]
    loss, correct = _head(top[HIDDEN], Wd, bd, y, fast, dWd, dbd, top[DH])
    for i in range(L - 1, -1, -1):
        work = layers[i]
        dWx, db, dWh, drb = grads[i]
        if i < L - 1:
            work[DH][:] = 0  # a lower layer's last state reaches the loss through its output
        _backward(cells[i], Whs[i], mask, has_mask, work, i < L - 1, dWh, drb)
        if i > 0:
            dmask = dmasks[i]
            below = layers[i - 1]
            inputs = work[INPUTS] if dmask.shape[0] > 0 else below[HIDDEN]
            _dense_project_backward(inputs, Wxs[i], work[DPROJECTED], dWx, db, below[DHIDDEN])
            if dmask.shape[0] > 0:  # through x~ = h m
                _scale_rows(below[DHIDDEN], dmask, offset)
        else:
            _project_first_backward(ids, table, has_table, Wxs[0], dmasks[0], offset, G_rows,
                                    work, dWx, db, dtable, train_table)
    if not np.isfinite(loss):
        return loss, correct, False
    return loss, correct, _apply_rmsprop(slots, lr, rho, eps)


@njit(**JIT_OPTIONS)
def _scale_rows(x, dmask, offset):
    """``x[n, t] *= m[offset + n]`` (N, T, D)."""
    N, T, D = x.shape
    for n in range(N):
        for t in range(T):
            for e in range(D):
                x[n, t, e] *= dmask[offset + n, e]


@njit(**JIT_OPTIONS)
def _padding_mask(ids, has_mask):
    """``ids != 0`` (N, T), the mask of ``Embedding(mask_zero=True)``; or an empty one."""
    if not has_mask:
        return np.zeros((0, 0), dtype=np.bool_)
    return ids != 0


@njit(**JIT_OPTIONS)
def train_batches(cells, ids_all, y_all, order, batch_size, first, last, has_mask, dmasks_all,
                  table, has_table, train_table, Wxs, bs, Whs, rbs, Wd, bd, fast, lr, rho, eps,
                  slots, grads, dense_grads, work, last_work, losses, corrects):
    """Train on batches ``first`` .. ``last - 1`` of an epoch; one compiled call.

    Batch i holds the samples ``order[i * batch_size : (i + 1) * batch_size]`` (the last
    batch may be smaller, as Keras keeps it). ``has_mask``: the Embedding has ``mask_zero``,
    and every layer skips the steps whose token is 0. ``dmasks_all[l]`` holds layer l's input
    dropout mask of every sample in ``order``'s order (N_total, D_l), or is empty. ``grads[l]`` =
    (dWx, db, dWh, drb) of layer l, ``dense_grads`` = (dWd, dbd, dtable). ``losses[i]``,
    ``corrects[i]`` receive each batch's mean loss and count of correct predictions.
    ``work`` and ``last_work`` are :func:`make_work`'s buffers for a full batch and for the
    epoch's last, smaller one. Returns the number of batches done: less than
    ``last - first`` when a batch gave a non-finite loss or update (that batch changed
    nothing; its loss is in ``losses``).
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
        P, G_rows, layers = work if N == batch_size else last_work
        loss, correct, applied = _run_batch(cells, ids, y, _padding_mask(ids, has_mask),
                                            has_mask, dmasks_all, start, table, has_table,
                                            train_table, Wxs, bs, Whs, rbs, Wd, bd, fast, lr,
                                            rho, eps, slots, grads, dense_grads, P, G_rows,
                                            layers)
        losses[i] = loss
        corrects[i] = correct
        if not applied:
            return i - first
    return last - first


# -- inference ---------------------------------------------------------------------------------
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
def predict_logits(cells, ids_all, start, stop, has_mask, no_masks, table, has_table, Wxs, bs,
                   Whs, rbs, Wd, bd, fast, P, layers, last_layers, logits):
    """The Dense layer's logit of sequences ``start`` .. ``stop - 1``, in blocks of the
    buffers' size (``last_layers``: the buffers of the last, smaller block); ``P`` =
    table Wx_1 + b_1, projected by the caller once (:func:`project_table`), ``no_masks`` a
    tuple of empty dropout masks, one per layer; ``has_mask`` as in :func:`train_batches`.

    It releases the GIL (``nogil``): ranges of sequences run on several Python threads at
    once, each with buffers of its own, give the serial logits bit for bit (sequences are
    independent in the forward pass and every block runs the same loops).
    """
    batch_size = layers[0][PROJECTED].shape[0]
    for first in range(start, stop, batch_size):
        last = min(stop, first + batch_size)
        block = layers if last - first == batch_size else last_layers
        ids = ids_all[first:last]
        _forward_stack(cells, ids, _padding_mask(ids, has_mask), has_mask, no_masks, 0, table,
                       has_table, Wxs, bs, Whs, rbs, fast, P, block, False)
        _logits(block[len(cells) - 1][HIDDEN], Wd, bd, logits, first)


@njit(**JIT_OPTIONS)
def project_table(table, has_table, Wx, b, P):
    """``P = table Wx + b``, for :func:`predict_logits` (the weights do not change)."""
    _project_table(table, has_table, Wx, b, P)
