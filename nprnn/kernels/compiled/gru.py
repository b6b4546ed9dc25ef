r"""Compiled GRU sequence pairs, Keras 3's two variants (gate order z, r, h).

Twins of :func:`nprnn.kernels.reference.gru.gru_forward` / ``gru_backward`` (``reset_after=True``)
and ``gru_reset_before_forward`` / ``gru_reset_before_backward`` (``reset_after=False``). The
forward keeps h as (H, N) and stores, time-major, the gates after their activations
``gates[t] = [z | r | hh]`` (3H, N), and for ``reset_after=True`` the recurrent candidate
``inner_h[t] = h~ Wh_h + b_rec_h`` (H, N).
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
    accumulate_outer,
    activate,
    add_into,
    add_product,
    add_step,
    backprop_product,
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


class GRUSequenceCache(NamedTuple):
    """What the compiled GRU backward passes need from their forward passes."""

    hidden: np.ndarray  # (N, T, H) h after every step (carried through masked steps)
    h0: np.ndarray  # (H, N)
    Wh: np.ndarray  # (H, 3H)
    gates: np.ndarray  # (T, 3H, N) [z | r | hh]
    inner_h: np.ndarray  # (T, H, N) for reset_after=True; empty otherwise
    mask: np.ndarray  # (N, T) bool, or empty
    has_mask: bool
    recurrent_mask: np.ndarray  # (H, N), or empty
    has_recurrent_mask: bool
    kind: int
    recurrent_kind: int
    reset_after: bool


@njit(**JIT_OPTIONS)
def _forward_core(projected, Wh, rb, h0, mask, has_mask, rm, has_rm, kind, rkind, fast,
                  reset_after, hidden, gates, inner_h):
    N, T, G = projected.shape
    H = G // 3
    dtype = projected.dtype
    h = h0.copy()
    x = np.empty((G, N), dtype=dtype)  # a_t, then the pre-activations
    inner = np.empty((2 * H, N), dtype=dtype)
    h_in = np.empty((H, N) if has_rm else (0, 0), dtype=dtype)
    q = np.empty((H, N), dtype=dtype)
    new_h = np.empty((H, N), dtype=dtype)
    keep = np.empty(N if has_mask else 0, dtype=np.bool_)
    for t in range(T):
        load_step(projected, t, x)
        src = h
        if has_rm:
            multiply(h, rm, h_in)
            src = h_in
        slot = t % gates.shape[0]  # one-step buffers (inference) keep the latest step only
        gt = gates[slot]
        if reset_after:
            for r in range(2 * H):
                for n in range(N):
                    inner[r, n] = rb[r]
            add_product(src, Wh, 0, inner)  # inner_zr = h~ Wh_zr + b_rec_zr
            ih = inner_h[slot]
            for j in range(H):
                for n in range(N):
                    ih[j, n] = rb[2 * H + j]
            add_product(src, Wh, 2 * H, ih)  # inner_h = h~ Wh_h + b_rec_h
            for r in range(2 * H):
                for n in range(N):
                    x[r, n] += inner[r, n]
            activate(rkind, fast, x[:2 * H], gt[:2 * H])  # z, r
            for j in range(H):
                for n in range(N):  # a_h + r inner_h
                    x[2 * H + j, n] += gt[H + j, n] * ih[j, n]
        else:
            add_product(src, Wh, 0, x[:2 * H])  # a_zr + h~ Wh_zr
            activate(rkind, fast, x[:2 * H], gt[:2 * H])  # z, r
            for j in range(H):
                for n in range(N):
                    q[j, n] = gt[H + j, n] * src[j, n]  # q = r h~
            add_product(q, Wh, 2 * H, x[2 * H:])  # a_h + q Wh_h
        activate(kind, fast, x[2 * H:], gt[2 * H:])  # hh
        for j in range(H):
            for n in range(N):  # h_t = z h_{t-1} + (1 - z) hh
                zv = gt[j, n]
                new_h[j, n] = zv * h[j, n] + (1 - zv) * gt[2 * H + j, n]
        if has_mask:
            load_keep(mask, t, keep)
            blend(keep, new_h, h)
        else:
            h, new_h = new_h, h
        store_step(h, hidden, t % hidden.shape[1])
    return h


def _forward(projected, initial_states, Wh, recurrent_bias, mask, recurrent_mask, kind, rkind,
             reset_after):
    dtype = projected.dtype
    projected = _common.as_array(projected, dtype)
    h0 = _common.transposed(initial_states[0], dtype)
    Wh = _common.as_array(Wh, dtype)
    N, T, G = projected.shape
    H = G // 3
    rb = (_common.as_array(recurrent_bias, dtype) if reset_after
          else np.zeros(0, dtype=dtype))
    has_mask, mask = _common.mask_or_empty(mask)
    has_rm, rm = _common.recurrent_mask_or_empty(recurrent_mask, dtype)
    hidden = np.empty((N, T, H), dtype=dtype)
    gates = np.empty((T, G, N), dtype=dtype)
    inner_h = np.empty((T, H, N) if reset_after else (0, 0, 0), dtype=dtype)
    h_T = _forward_core(projected, Wh, rb, h0, mask, has_mask, rm, has_rm, kind, rkind,
                        _common.is_fast(dtype), reset_after, hidden, gates, inner_h)
    cache = GRUSequenceCache(hidden, h0, Wh, gates, inner_h, mask, has_mask, rm, has_rm, kind,
                             rkind, reset_after)
    return hidden, (np.ascontiguousarray(h_T.T),), cache


@njit(**JIT_OPTIONS)
def _backward_core(dhidden, has_dhidden, dh, c, dprojected, dWh, drb, acc, per_sequence):
    (hidden, h0, Wh, gates, inner_h, mask, has_mask, rm, has_rm, kind, rkind, reset_after) = c
    N, T, H = hidden.shape
    G = 3 * H
    dtype = hidden.dtype
    da = np.empty((G, N), dtype=dtype)
    hp = np.empty((H, N), dtype=dtype)  # h_{t-1}
    # dinner and h~ = h_{t-1} m of the last steps: with reset_after, their dWh terms go into
    # acc in one pass every STEPS_PER_PASS steps
    ring = STEPS_PER_PASS if per_sequence and reset_after else 1
    dinners = np.empty((ring, G, N), dtype=dtype)
    h_ins = np.empty((ring, H, N), dtype=dtype)
    pending = 0
    q = np.empty((H, N), dtype=dtype)
    dq = np.empty((H, N), dtype=dtype)
    direct = np.empty((H, N), dtype=dtype)
    bias_acc = np.zeros((G, N) if reset_after else (0, 0), dtype=dtype)
    carried = np.empty((H, N) if has_mask else (0, 0), dtype=dtype)
    keep = np.empty(N if has_mask else 0, dtype=np.bool_)
    for t in range(T - 1, -1, -1):
        if has_dhidden:
            add_step(dhidden, t, dh)
        if has_mask:
            load_keep(mask, t, keep)
            split_gradient(keep, dh, carried)
        gt = gates[t]
        h_in = h_ins[pending]
        dinner = dinners[pending]
        if t > 0:
            load_step(hidden, t - 1, hp)
        else:
            hp[:] = h0
        h_in[:] = hp
        if has_rm:
            scale_by(h_in, rm)
        for j in range(H):
            for n in range(N):
                d = dh[j, n]
                zv = gt[j, n]
                da[j, n] = d * (hp[j, n] - gt[2 * H + j, n])  # dz, before s'
                da[2 * H + j, n] = d * (1 - zv)  # dp_h, before f'
                direct[j, n] = d * zv  # h_{t-1} enters h_t with weight z
        times_derivative(kind, gt[2 * H:], da[2 * H:], da[2 * H:])
        if reset_after:
            ih = inner_h[t]
            for j in range(H):
                for n in range(N):
                    da[H + j, n] = da[2 * H + j, n] * ih[j, n]  # dr = dp_h inner_h
            times_derivative(rkind, gt[:2 * H], da[:2 * H], da[:2 * H])
            dinner[:2 * H] = da[:2 * H]
            for j in range(H):
                for n in range(N):
                    dinner[2 * H + j, n] = da[2 * H + j, n] * gt[H + j, n]  # dinner_h = dp_h r
            add_into(dinner, bias_acc)  # db_rec += dinner, per sequence
            product_transposed(dinner, Wh, 0, dh, False)  # dh~ = dinner Wh^T
            pending = pass_step_terms(h_ins, dinners, pending, t == 0, acc, dWh,
                                      per_sequence)  # dWh += h~^T dinner
        else:
            for j in range(H):
                for n in range(N):
                    q[j, n] = gt[H + j, n] * h_in[j, n]  # q = r h~
            accumulate_outer(q, da[2 * H:], acc, dWh, 2 * H, per_sequence)  # dWh_h
            product_transposed(da[2 * H:], Wh, 2 * H, dq, False)  # dq = dp_h Wh_h^T
            for j in range(H):
                for n in range(N):
                    da[H + j, n] = dq[j, n] * h_in[j, n]  # dr = dq h~
                    dh[j, n] = dq[j, n] * gt[H + j, n]  # dh~ = dq r + ...
            times_derivative(rkind, gt[:2 * H], da[:2 * H], da[:2 * H])
            backprop_product(h_in, da[:2 * H], Wh, 0, acc, dWh, per_sequence, dh, True)
        store_step(da, dprojected, t)
        if has_rm:
            scale_by(dh, rm)
        add_into(direct, dh)
        if has_mask:
            add_into(carried, dh)
    if per_sequence:
        reduce_sequences(acc, dWh)
    if reset_after:
        for r in range(G):
            s = dtype.type(0)
            for n in range(N):
                s += bias_acc[r, n]
            drb[r] = s


def _backward(dhidden, dfinal_states, cache):
    hidden = cache.hidden
    dtype = hidden.dtype
    N, T, H = hidden.shape
    has_dhidden, dhidden = _common.upstream_or_empty(dhidden, dtype)
    dh = _common.state_gradient(dfinal_states[0], (N, H), dtype)
    dprojected = np.empty((N, T, 3 * H), dtype=dtype)
    dWh = np.zeros((H, 3 * H), dtype=dtype)
    drb = np.zeros(3 * H if cache.reset_after else 0, dtype=dtype)
    acc = _common.accumulator(H, 3 * H, N, dtype)
    _backward_core(dhidden, has_dhidden, dh, tuple(cache), dprojected, dWh, drb, acc,
                   _common.per_sequence(H, 3 * H, N))
    dweights = (dWh, drb) if cache.reset_after else (dWh,)
    return dprojected, (np.ascontiguousarray(dh.T),), dweights


def _kinds(activation, recurrent_activation):
    return KINDS.get(activation), KINDS.get(recurrent_activation)


def gru_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                activation="tanh", recurrent_activation="sigmoid"):
    r"""Compiled twin of :func:`nprnn.kernels.reference.gru.gru_forward` (``reset_after=True``).

    Same arguments and results (weights ``(Wh, recurrent_bias)``), computed in the dtype of
    ``projected``; activations other than tanh, sigmoid, relu, linear run the reference.
    """
    kind, rkind = _kinds(activation, recurrent_activation)
    if kind is None or rkind is None:
        return reference.gru_forward(projected, initial_states, weights, mask, recurrent_mask,
                                     activation, recurrent_activation)
    Wh, recurrent_bias = weights
    return _forward(projected, initial_states, Wh, recurrent_bias, mask, recurrent_mask, kind,
                    rkind, True)


def gru_backward(dhidden, dfinal_states, cache):
    r"""Compiled twin of :func:`nprnn.kernels.reference.gru.gru_backward`.

    The equations of :func:`nprnn.kernels.reference.gru.gru_step_backward` from t = T down to 1;
    dWh and the recurrent bias gradient are summed per sequence over t, then over n in order.
    Returns ``(dprojected, (dh0,), (dWh, drecurrent_bias))``.
    """
    if not isinstance(cache, GRUSequenceCache):
        return reference.gru_backward(dhidden, dfinal_states, cache)
    return _backward(dhidden, dfinal_states, cache)


def gru_reset_before_forward(projected, initial_states, weights, mask=None,
                             recurrent_mask=None, activation="tanh",
                             recurrent_activation="sigmoid"):
    r"""Compiled twin of :func:`nprnn.kernels.reference.gru.gru_reset_before_forward`
    (``reset_after=False``, weights ``(Wh,)``)."""
    kind, rkind = _kinds(activation, recurrent_activation)
    if kind is None or rkind is None:
        return reference.gru_reset_before_forward(projected, initial_states, weights, mask,
                                                  recurrent_mask, activation,
                                                  recurrent_activation)
    return _forward(projected, initial_states, weights[0], None, mask, recurrent_mask, kind,
                    rkind, False)


def gru_reset_before_backward(dhidden, dfinal_states, cache):
    r"""Compiled twin of :func:`nprnn.kernels.reference.gru.gru_reset_before_backward`.

    Returns ``(dprojected, (dh0,), (dWh,))``.
    """
    if not isinstance(cache, GRUSequenceCache):
        return reference.gru_reset_before_backward(dhidden, dfinal_states, cache)
    return _backward(dhidden, dfinal_states, cache)
