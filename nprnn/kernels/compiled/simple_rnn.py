r"""Compiled SimpleRNN sequence pair: :math:`h_t = f(a_t + (h_{t-1} \odot m) W_h)`.

Twins of :func:`nprnn.kernels.reference.simple_rnn.rnn_forward` / ``rnn_backward`` (same signatures,
masks and recurrent mask included). The forward runs in blocks of sequences (256, or 128 per
thread from :data:`~nprnn.kernels.compiled.switches.PARALLEL_MIN_BATCH` sequences on), each block
with its state kept as (H, B).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from nprnn.kernels import reference
from nprnn.kernels._fast_math import JIT_OPTIONS
from nprnn.kernels.compiled import _common, switches
from nprnn.kernels.compiled._loops import (
    KINDS,
    activate,
    add_into,
    add_product,
    add_step,
    backprop_product,
    blend,
    load_keep,
    load_step,
    multiply,
    reduce_sequences,
    scale_by,
    split_gradient,
    store_step,
    times_derivative,
    transpose_into,
)

_SERIAL_BLOCK = 256
_PARALLEL_BLOCK = 128


class RNNSequenceCache(NamedTuple):
    """What the compiled :func:`rnn_backward` needs from the compiled :func:`rnn_forward`."""

    hidden: np.ndarray  # (N, T, H) states after every step (carried through masked steps)
    h0: np.ndarray  # (N, H)
    Wh: np.ndarray  # (H, H)
    mask: np.ndarray  # (N, T) bool, or empty
    has_mask: bool
    recurrent_mask: np.ndarray  # (H, N) transposed, or empty
    has_recurrent_mask: bool
    kind: int  # activation, see _loops.KINDS


@njit(**JIT_OPTIONS)
def _forward_block(projected, Wh, h0, hidden, mask, has_mask, rm, has_rm, kind, fast):
    """All T steps for a block of B sequences; mask (B, T), rm (B, H) as given."""
    B, T, H = projected.shape
    dtype = projected.dtype
    h = np.empty((H, B), dtype=dtype)  # h_{t-1}, batch innermost
    z = np.empty((H, B), dtype=dtype)
    h_in = np.empty((H, B) if has_rm else (0, 0), dtype=dtype)
    m = np.empty((H, B) if has_rm else (0, 0), dtype=dtype)
    new = np.empty((H, B) if has_mask else (0, 0), dtype=dtype)
    keep = np.empty(B if has_mask else 0, dtype=np.bool_)
    transpose_into(h0, h)
    if has_rm:
        transpose_into(rm, m)
    for t in range(T):
        load_step(projected, t, z)
        if has_rm:
            multiply(h, m, h_in)
            add_product(h_in, Wh, 0, z)
        else:
            add_product(h, Wh, 0, z)
        if has_mask:
            activate(kind, fast, z, new)
            load_keep(mask, t, keep)
            blend(keep, new, h)
        else:
            activate(kind, fast, z, h)
        store_step(h, hidden, t % hidden.shape[1])  # a one-step buffer keeps h_T only


@njit(**JIT_OPTIONS)
def _forward_serial(projected, Wh, h0, hidden, mask, has_mask, rm, has_rm, kind, fast, block):
    # Blocks keep the working set in cache when N is large (prediction); sequences are
    # independent in the forward pass, so blocking changes no bit.
    N = projected.shape[0]
    for n0 in range(0, N, block):
        n1 = min(N, n0 + block)
        _forward_block(projected[n0:n1], Wh, h0[n0:n1], hidden[n0:n1],
                       mask[n0:n1] if has_mask else mask, has_mask,
                       rm[n0:n1] if has_rm else rm, has_rm, kind, fast)


@njit(parallel=True, **JIT_OPTIONS)
def _forward_parallel(projected, Wh, h0, hidden, mask, has_mask, rm, has_rm, kind, fast, block):
    N = projected.shape[0]
    num_blocks = (N + block - 1) // block
    for i in prange(num_blocks):
        n0 = i * block
        n1 = min(N, n0 + block)
        _forward_block(projected[n0:n1], Wh, h0[n0:n1], hidden[n0:n1],
                       mask[n0:n1] if has_mask else mask, has_mask,
                       rm[n0:n1] if has_rm else rm, has_rm, kind, fast)


def rnn_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                activation="tanh"):
    r"""Compiled twin of :func:`nprnn.kernels.reference.simple_rnn.rnn_forward`.

    :math:`h_t = f(a_t + (h_{t-1} \odot m) W_h)` for t = 1..T; a masked step carries
    :math:`h_{t-1}`. Same arguments and results; everything is computed in the dtype of
    ``projected``. Activations other than tanh, relu, sigmoid, linear run the reference.
    """
    kind = KINDS.get(activation)
    if kind is None:
        return reference.rnn_forward(projected, initial_states, weights, mask,
                                     recurrent_mask, activation)
    dtype = projected.dtype
    projected = _common.as_array(projected, dtype)
    h0 = _common.as_array(initial_states[0], dtype)
    Wh = _common.as_array(weights[0], dtype)
    N, T, H = projected.shape
    has_mask, mask = _common.mask_or_empty(mask)
    has_rm = recurrent_mask is not None
    rm = _common.as_array(recurrent_mask, dtype) if has_rm else np.zeros((0, 0), dtype)
    hidden = np.empty((N, T, H), dtype=dtype)
    fast = _common.is_fast(dtype)
    args = (projected, Wh, h0, hidden, mask, has_mask, rm, has_rm, kind, fast)
    threshold = switches.PARALLEL_MIN_BATCH
    if threshold and N >= threshold and numba.get_num_threads() > 1:
        with numba.parallel_chunksize(1):  # one block at a time: a busy core takes fewer
            _forward_parallel(*args, _PARALLEL_BLOCK)
    else:
        _forward_serial(*args, _SERIAL_BLOCK)
    h_T = hidden[:, -1].copy() if T else h0.copy()
    rm_t = np.ascontiguousarray(rm.T) if has_rm else rm
    cache = RNNSequenceCache(hidden, h0, Wh, mask, has_mask, rm_t, has_rm, kind)
    return hidden, (h_T,), cache


@njit(**JIT_OPTIONS)
def _backward_core(dhidden, has_dhidden, dh_T, c, dprojected, dWh, dh0, acc, per_sequence):
    (hidden, h0, Wh, mask, has_mask, rm, has_rm, kind) = c
    N, T, H = hidden.shape
    dtype = hidden.dtype
    g = dh_T.copy()  # (H, N) gradient reaching h_t
    dz = np.empty((H, N), dtype=dtype)
    hc = np.empty((H, N), dtype=dtype)  # h_t
    hp = np.empty((H, N), dtype=dtype)  # h_{t-1}
    h_in = np.empty((H, N) if has_rm else (0, 0), dtype=dtype)  # h~ = h_{t-1} m
    carried = np.empty((H, N) if has_mask else (0, 0), dtype=dtype)
    keep = np.empty(N if has_mask else 0, dtype=np.bool_)
    if T > 0:
        load_step(hidden, T - 1, hc)
    for t in range(T - 1, -1, -1):
        if has_dhidden:
            add_step(dhidden, t, g)
        if has_mask:
            load_keep(mask, t, keep)
            split_gradient(keep, g, carried)
        times_derivative(kind, hc, g, dz)  # dz = g * f'(z_t), f' from h_t = f(z_t)
        store_step(dz, dprojected, t)
        if t > 0:
            load_step(hidden, t - 1, hp)
        else:
            transpose_into(h0, hp)
        if has_rm:
            multiply(hp, rm, h_in)
            # dWh += h~^T dz and g = dz Wh^T, in one pass
            backprop_product(h_in, dz, Wh, 0, acc, dWh, per_sequence, g, False)
            scale_by(g, rm)
        else:
            backprop_product(hp, dz, Wh, 0, acc, dWh, per_sequence, g, False)
        if has_mask:
            add_into(carried, g)  # masked steps pass their gradient straight back
        hc, hp = hp, hc  # h_{t-1} is the next step's h_t
    if per_sequence:
        reduce_sequences(acc, dWh)
    for n in range(N):
        for k in range(H):
            dh0[n, k] = g[k, n]


def rnn_backward(dhidden, dfinal_states, cache):
    r"""Compiled twin of :func:`nprnn.kernels.reference.simple_rnn.rnn_backward`.

    From t = T down to 1 (:math:`\kappa_t` the mask, :math:`\tilde h = h_{t-1} \odot m`)::

        g_t   = dhidden_t + dz_{t+1} Wh^T * m + (1 - k_{t+1}) g_{t+1}   (g_T += dh_T)
        dz_t  = k_t g_t * f'(z_t)           da_t = dz_t
        dWh  += h~_{t-1}^T dz_t             dh0  = g_0

    dWh is summed per sequence over t, then over n in order (bitwise reproducible; differs
    from the reference by rounding only). Returns ``(dprojected, (dh0,), (dWh,))``.
    """
    if not isinstance(cache, RNNSequenceCache):  # the forward ran the reference
        return reference.rnn_backward(dhidden, dfinal_states, cache)
    hidden = cache.hidden
    dtype = hidden.dtype
    N, T, H = hidden.shape
    has_dhidden, dhidden = _common.upstream_or_empty(dhidden, dtype)
    dh_T = _common.state_gradient(dfinal_states[0], (N, H), dtype)
    dprojected = np.empty((N, T, H), dtype=dtype)
    dWh = np.zeros((H, H), dtype=dtype)
    dh0 = np.empty((N, H), dtype=dtype)
    acc = _common.accumulator(H, H, N, dtype)
    _backward_core(dhidden, has_dhidden, dh_T, tuple(cache), dprojected, dWh, dh0, acc,
                   _common.per_sequence(H, H, N))
    return dprojected, (dh0,), (dWh,)
