r"""Compiled LSTM sequence pair (gate order i, f, c, o as Keras).

Twins of :func:`nprnn.kernels.reference.lstm.lstm_forward` / ``lstm_backward``. The forward
keeps h and c as (H, N) and stores, time-major, what the backward reads: the four gates
after their activations ``gates[t]`` (4H, N), ``f_act(c_t)`` and the cell states ``c_t``
(H, N each), so that the backward recomputes nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from nprnn.kernels import reference
from nprnn.kernels._fast_math import JIT_OPTIONS
from nprnn.kernels.compiled import _common
from nprnn.kernels.compiled._loops import (
    KINDS,
    STEPS_PER_PASS,
    activate,
    add_into,
    add_product,
    add_step,
    blend,
    load_keep,
    load_step,
    multiply,
    pass_step_terms,
    product_transposed,
    reduce_sequences,
    scale_by,
    split_gradient,
    store_step,
    times_derivative,
)


class LSTMSequenceCache(NamedTuple):
    """What the compiled :func:`lstm_backward` needs from the compiled :func:`lstm_forward`."""

    hidden: np.ndarray  # (N, T, H) h after every step (carried through masked steps)
    h0: np.ndarray  # (H, N)
    c0: np.ndarray  # (H, N)
    Wh: np.ndarray  # (H, 4H)
    gates: np.ndarray  # (T, 4H, N) [i | f | g | o] after their activations
    tanh_c: np.ndarray  # (T, H, N) f_act(c) of the step's own c (before any mask)
    cells: np.ndarray  # (T, H, N) cell state after every step (carried through masks)
    mask: np.ndarray  # (N, T) bool, or empty
    has_mask: bool
    recurrent_mask: np.ndarray  # (H, N), or empty
    has_recurrent_mask: bool
    kind: int  # activation
    recurrent_kind: int  # recurrent_activation


@njit(**JIT_OPTIONS)
def _forward_core(projected, Wh, h0, c0, mask, has_mask, rm, has_rm, kind, rkind, fast,
                  hidden, gates, tanh_c, cells):
    N, T, G = projected.shape
    H = G // 4
    dtype = projected.dtype
    h = h0.copy()
    c = c0.copy()
    z = np.empty((G, N), dtype=dtype)
    h_in = np.empty((H, N) if has_rm else (0, 0), dtype=dtype)
    new_h = np.empty((H, N), dtype=dtype)
    new_c = np.empty((H, N), dtype=dtype)
    keep = np.empty(N if has_mask else 0, dtype=np.bool_)
    for t in range(T):
        load_step(projected, t, z)  # z = a_t
        if has_rm:
            multiply(h, rm, h_in)
            add_product(h_in, Wh, 0, z)  # z += h~ Wh
        else:
            add_product(h, Wh, 0, z)
        slot = t % gates.shape[0]  # one-step buffers (inference) keep the latest step only
        gt = gates[slot]
        activate(rkind, fast, z[:2 * H], gt[:2 * H])  # i, f
        activate(kind, fast, z[2 * H:3 * H], gt[2 * H:3 * H])  # g
        activate(rkind, fast, z[3 * H:], gt[3 * H:])  # o
        for j in range(H):
            for n in range(N):  # c_t = f c_{t-1} + i g
                new_c[j, n] = gt[H + j, n] * c[j, n] + gt[j, n] * gt[2 * H + j, n]
        tc = tanh_c[slot]
        activate(kind, fast, new_c, tc)
        for j in range(H):
            for n in range(N):  # h_t = o f_act(c_t)
                new_h[j, n] = gt[3 * H + j, n] * tc[j, n]
        if has_mask:
            load_keep(mask, t, keep)
            blend(keep, new_c, c)
            blend(keep, new_h, h)
        else:
            c, new_c = new_c, c
            h, new_h = new_h, h
        cells[slot] = c
        store_step(h, hidden, t % hidden.shape[1])
    return h, c


def lstm_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                 activation="tanh", recurrent_activation="sigmoid"):
    r"""Compiled twin of :func:`nprnn.kernels.reference.lstm.lstm_forward`.

    Same arguments and results, computed in the dtype of ``projected``; activations other
    than tanh, sigmoid, relu, linear run the reference.
    """
    kind = KINDS.get(activation)
    rkind = KINDS.get(recurrent_activation)
    if kind is None or rkind is None:
        return reference.lstm_forward(projected, initial_states, weights, mask, recurrent_mask,
                                      activation, recurrent_activation)
    dtype = projected.dtype
    projected = _common.as_array(projected, dtype)
    h0 = _common.transposed(initial_states[0], dtype)
    c0 = _common.transposed(initial_states[1], dtype)
    Wh = _common.as_array(weights[0], dtype)
    N, T, G = projected.shape
    H = G // 4
    has_mask, mask = _common.mask_or_empty(mask)
    has_rm, rm = _common.recurrent_mask_or_empty(recurrent_mask, dtype)
    hidden = np.empty((N, T, H), dtype=dtype)
    gates = np.empty((T, G, N), dtype=dtype)
    tanh_c = np.empty((T, H, N), dtype=dtype)
    cells = np.empty((T, H, N), dtype=dtype)
    h_T, c_T = _forward_core(projected, Wh, h0, c0, mask, has_mask, rm, has_rm, kind, rkind,
                             _common.is_fast(dtype), hidden, gates, tanh_c, cells)
    cache = LSTMSequenceCache(hidden, h0, c0, Wh, gates, tanh_c, cells, mask, has_mask, rm,
                              has_rm, kind, rkind)
    return hidden, (np.ascontiguousarray(h_T.T), np.ascontiguousarray(c_T.T)), cache


@njit(**JIT_OPTIONS)
def _backward_core(dhidden, has_dhidden, dh, dc, c, dprojected, dWh, acc, per_sequence):
    (hidden, h0, c0, Wh, gates, tanh_c, cells, mask, has_mask, rm, has_rm, kind, rkind) = c
    N, T, H = hidden.shape
    G = 4 * H
    dtype = hidden.dtype
    # dz and h~_{t-1} of the last steps, whose dWh terms go into acc in one pass
    ring = STEPS_PER_PASS if per_sequence else 1
    dzs = np.empty((ring, G, N), dtype=dtype)
    hvs = np.empty((ring, H, N), dtype=dtype)
    pending = 0
    dtc = np.empty((H, N), dtype=dtype)
    carried_h = np.empty((H, N) if has_mask else (0, 0), dtype=dtype)
    carried_c = np.empty((H, N) if has_mask else (0, 0), dtype=dtype)
    keep = np.empty(N if has_mask else 0, dtype=np.bool_)
    for t in range(T - 1, -1, -1):
        if has_dhidden:
            add_step(dhidden, t, dh)
        if has_mask:
            load_keep(mask, t, keep)
            split_gradient(keep, dh, carried_h)
            split_gradient(keep, dc, carried_c)
        gt = gates[t]
        tc = tanh_c[t]
        c_prev = cells[t - 1] if t > 0 else c0
        dz = dzs[pending]
        hv = hvs[pending]
        for j in range(H):
            for n in range(N):
                dz[3 * H + j, n] = dh[j, n] * tc[j, n]  # do = dh f_act(c)
                dtc[j, n] = dh[j, n] * gt[3 * H + j, n]  # d f_act(c) = dh o
        times_derivative(kind, tc, dtc, dtc)
        for j in range(H):
            for n in range(N):
                d = dc[j, n] + dtc[j, n]  # dc_t, both paths
                dz[H + j, n] = d * c_prev[j, n]  # df = dc c_{t-1}
                dz[j, n] = d * gt[2 * H + j, n]  # di = dc g
                dz[2 * H + j, n] = d * gt[j, n]  # dg = dc i
                dc[j, n] = d * gt[H + j, n]  # dc_{t-1} = dc f
        times_derivative(rkind, gt[:2 * H], dz[:2 * H], dz[:2 * H])
        times_derivative(kind, gt[2 * H:3 * H], dz[2 * H:3 * H], dz[2 * H:3 * H])
        times_derivative(rkind, gt[3 * H:], dz[3 * H:], dz[3 * H:])
        store_step(dz, dprojected, t)  # da = dz
        if t > 0:
            load_step(hidden, t - 1, hv)
        else:
            hv[:] = h0
        if has_rm:
            scale_by(hv, rm)  # h~ = h_{t-1} m
        product_transposed(dz, Wh, 0, dh, False)  # dh_{t-1} = dz Wh^T
        pending = pass_step_terms(hvs, dzs, pending, t == 0, acc, dWh, per_sequence)  # dWh
        if has_rm:
            scale_by(dh, rm)
        if has_mask:
            add_into(carried_h, dh)
            add_into(carried_c, dc)
    if per_sequence:
        reduce_sequences(acc, dWh)


def lstm_backward(dhidden, dfinal_states, cache):
    r"""Compiled twin of :func:`nprnn.kernels.reference.lstm.lstm_backward`.

    The equations of :func:`nprnn.kernels.reference.lstm.lstm_step_backward`, from t = T down to
    1, with the mask's split of each state gradient between the step and the carry. dWh is
    summed per sequence over t, then over n in order (bitwise reproducible). Returns
    ``(dprojected, (dh0, dc0), (dWh,))``.
    """
    if not isinstance(cache, LSTMSequenceCache):  # the forward ran the reference
        return reference.lstm_backward(dhidden, dfinal_states, cache)
    hidden = cache.hidden
    dtype = hidden.dtype
    N, T, H = hidden.shape
    has_dhidden, dhidden = _common.upstream_or_empty(dhidden, dtype)
    dh = _common.state_gradient(dfinal_states[0], (N, H), dtype)
    dc = _common.state_gradient(dfinal_states[1], (N, H), dtype)
    dprojected = np.empty((N, T, 4 * H), dtype=dtype)
    dWh = np.zeros((H, 4 * H), dtype=dtype)
    acc = _common.accumulator(H, 4 * H, N, dtype)
    _backward_core(dhidden, has_dhidden, dh, dc, tuple(cache), dprojected, dWh, acc,
                   _common.per_sequence(H, 4 * H, N))
    return dprojected, (np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T)), (dWh,)
