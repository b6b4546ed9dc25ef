r"""One sequence driver for every cell: run a step function over T steps, and back.

A recurrent cell is a pair of pure step functions
(:mod:`~nprnn.kernels.reference.simple_rnn`, :mod:`~nprnn.kernels.reference.lstm`,
:mod:`~nprnn.kernels.reference.gru`). Every cell splits its maths in two parts: the *input
projection* :math:`a_t = x_t W_x + b`, which does not depend on the state and is computed
for all steps at once before the loop (one matrix product, or a row gather for token
inputs), and the *recurrent step*, which does::

    states_t, cache_t = step_forward(a_t, *states_{t-1}, *weights, recurrent_mask=...)
    da_t, *dstates_{t-1}, *dweights_t = step_backward(*dstates_t, cache_t)

The first state is the cell's output ``h`` (the SimpleRNN and the GRU have only ``h``; the
LSTM has ``(h, c)``). This module runs any such pair over a sequence; it owns what does not
depend on the cell, as Keras' ``RNN`` layer does:

* **masks.** ``mask[n, t] = False`` makes step t of sequence n a no-op: every state is
  carried forward unchanged (Keras' ``backend.rnn`` with a mask)::

      s_t = m_t * step(a_t, s_{t-1}) + (1 - m_t) * s_{t-1}

  and in the backward pass the gradient reaching :math:`s_t` splits the same way:
  :math:`m_t` of it enters the step, :math:`1 - m_t` goes straight to :math:`s_{t-1}`.
* **recurrent dropout.** ``recurrent_mask`` (N, H), drawn once per sequence, is handed to
  every step; each cell says where it multiplies it in.
* **the returned sequence.** ``hidden[:, t]`` is the first state after step t (carried through
  masked steps); the final states are returned apart, for ``return_state`` and ``stateful``.

Reversal (``go_backwards``), what a masked step *outputs* (``zero_output_for_mask``) and
input dropout are done by the layer on whole arrays, before and after these functions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class RecurrenceCache(NamedTuple):
    """What :func:`recurrence_backward` needs from :func:`recurrence_forward`."""

    step_caches: list  # T caches, one per step, as the step function returned them
    mask: np.ndarray | None  # (N, T) bool, or None
    num_states: int  # 1 for SimpleRNN and GRU, 2 for LSTM
    num_weights: int  # recurrent weights the step takes (Wh, or Wh and a recurrent bias)
    dtype: np.dtype


def recurrence_forward(step_forward, projected, initial_states, weights, mask=None,
                       recurrent_mask=None):
    r"""Run ``step_forward`` over every time step.

    Parameters
    ----------
    step_forward : callable
        ``step_forward(a_t, *states, *weights, recurrent_mask=m) -> (*new_states, cache)``.
    projected : ndarray, shape (N, T, G*H)
        Input projections :math:`a_t`, bias included (G = 1, 4, 3 for SimpleRNN, LSTM, GRU).
    initial_states : tuple of ndarrays, each (N, H)
    weights : tuple of ndarrays
        The cell's recurrent weights, passed to every step.
    mask : bool ndarray, shape (N, T), optional
        False where a step is skipped (its states carried forward).
    recurrent_mask : ndarray, shape (N, H), optional
        Recurrent dropout mask, the same at every step.

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
        The first state (the cell's output ``h``) after each step.
    final_states : tuple of ndarrays, each (N, H)
    cache : RecurrenceCache
    """
    N, T, _ = projected.shape
    states = tuple(initial_states)
    H = states[0].shape[1]
    hidden = np.empty((N, T, H), dtype=projected.dtype)
    step_caches = []
    for t in range(T):
        *new_states, cache = step_forward(projected[:, t], *states, *weights,
                                          recurrent_mask=recurrent_mask)
        if mask is not None:
            keep = mask[:, t, None]  # (N, 1): carry the old state where the step is masked
            new_states = [np.where(keep, new, old) for new, old in zip(new_states, states)]
        states = tuple(new_states)
        hidden[:, t] = states[0]
        step_caches.append(cache)
    cache = RecurrenceCache(step_caches, mask, len(states), len(weights), projected.dtype)
    return hidden, states, cache


def recurrence_backward(step_backward, dhidden, dfinal_states, cache):
    r"""Backpropagation through time for :func:`recurrence_forward`.

    Walking back from t = T to 1, the gradient reaching the states after step t is what the
    layer sends to them (``dhidden[:, t]`` on ``h``, plus ``dfinal_states`` at t = T) and
    what flows back from step t + 1. With a mask it splits between the step and the carry::

        ds_t          = dhidden_t (on h) + ds_t^{from t+1}
        da_t, ds_in   = step_backward(m_t * ds_t)
        ds_{t-1}      = ds_in + (1 - m_t) * ds_t
        dweights     += the step's weight gradients

    Parameters
    ----------
    step_backward : callable
        ``step_backward(*dstates, cache) -> (da_t, *dprevious_states, *dweights)``.
    dhidden : ndarray, shape (N, T, H), or None
        Upstream gradient on every returned ``h``; None when only the final states receive
        gradient (``return_sequences=False``). Not modified.
    dfinal_states : tuple of ndarrays (N, H), or of None
        Upstream gradient on the final states (``return_state`` or the last output).
    cache : RecurrenceCache

    Returns
    -------
    dprojected : ndarray, shape (N, T, G*H)
    dinitial_states : tuple of ndarrays, each (N, H)
    dweights : tuple of ndarrays, shaped like the weights
    """
    T = len(cache.step_caches)
    dstates = None
    dprojected = None
    dweights = None
    for t in range(T - 1, -1, -1):
        if dstates is None:  # the last step: start from the final states' gradient
            shape = _state_shape(cache.step_caches[t])
            dstates = [np.zeros(shape, cache.dtype) if d is None else np.array(d, cache.dtype)
                       for d in dfinal_states]
        if dhidden is not None:
            dstates[0] = dstates[0] + dhidden[:, t]
        if cache.mask is not None:
            keep = cache.mask[:, t, None]
            into_step = [np.where(keep, d, 0) for d in dstates]
            carried = [np.where(keep, 0, d) for d in dstates]
        else:
            into_step, carried = dstates, None
        da, *rest = step_backward(*into_step, cache.step_caches[t])
        dprevious, dweights_t = rest[:cache.num_states], rest[cache.num_states:]
        if dprojected is None:
            dprojected = np.empty((da.shape[0], T, da.shape[1]), dtype=da.dtype)
            dweights = [np.zeros_like(dw) for dw in dweights_t]
        dprojected[:, t] = da
        for total, dw in zip(dweights, dweights_t):
            total += dw
        dstates = dprevious if carried is None else [
            d + c for d, c in zip(dprevious, carried)]
    return dprojected, tuple(dstates), tuple(dweights)


def _state_shape(step_cache):
    """(N, H) of a step's states, read from its cache's ``h_prev``."""
    return step_cache.h_prev.shape


def masked_output_factor(mask, zero_output_for_mask=False):
    r"""What a masked layer outputs at each step, as a 0/1 factor on the carried ``h``.

    Keras (``backend.rnn``) outputs at a masked step the output of the step before, which
    is the carried state, except before the first unmasked step, where it is 0; with
    ``zero_output_for_mask`` a masked step outputs 0::

        factor[n, t] = m[n, t]                        (zero_output_for_mask)
                     = 1 if any m[n, :t+1] else 0     (otherwise)

    Parameters
    ----------
    mask : bool ndarray, shape (N, T)
    zero_output_for_mask : bool

    Returns
    -------
    bool ndarray, shape (N, T)
    """
    if zero_output_for_mask:
        return mask
    return np.logical_or.accumulate(mask, axis=1)
