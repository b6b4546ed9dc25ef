r"""SimpleRNN: one step, and the whole sequence by the shared driver.

The SimpleRNN has ONE bias, as in Keras (the book's 4072 = 500*8 + 8*8 + 8)::

    h_t = f(x_t Wx + h_{t-1} Wh + b),    h_0 = 0,    f = tanh by default

split into the input projection ``a_t = x_t Wx + b`` (all t at once, by
:func:`~nprnn.kernels.reference.dense.dense_forward` or a row gather) and the recurrent step
``h_t = f(a_t + h_{t-1} Wh)`` below.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nprnn.kernels.reference.activations import activation_backward, activation_forward
from nprnn.kernels.reference.recurrence import recurrence_backward, recurrence_forward


class StepCache(NamedTuple):
    """What :func:`rnn_step_backward` needs from :func:`rnn_step_forward`."""

    h_prev: np.ndarray  # (N, H) previous hidden state, as it entered the product
    z: np.ndarray  # (N, H) pre-activation a_t + h_prev Wh (relu' needs it)
    h_next: np.ndarray  # (N, H) f(z), reused for tanh' = 1 - h^2
    Wh: np.ndarray  # (H, H)
    recurrent_mask: np.ndarray | None  # (N, H) or None
    activation: str


def rnn_step_forward(a, h_prev, Wh, recurrent_mask=None, activation="tanh"):
    r"""One step of a SimpleRNN: :math:`h_{next} = f(a + (h_{prev} \odot m) W_h)`.

    Parameters
    ----------
    a : ndarray, shape (N, H)
        The input projection :math:`a = x W_x + b` of this step (Keras' ``kernel`` and
        ``bias``; one bias, not two as in PyTorch).
    h_prev : ndarray, shape (N, H)
    Wh : ndarray, shape (H, H)
        Keras' ``recurrent_kernel``.
    recurrent_mask : ndarray, shape (N, H), optional
        Recurrent dropout mask m (0 or 1/(1-p)), applied to :math:`h_{prev}` before the
        product; None means no dropout.
    activation : {'tanh', 'relu', 'sigmoid', 'linear'}

    Returns
    -------
    h_next : ndarray, shape (N, H)
    cache : StepCache
    """
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    z = a + h_in @ Wh
    h_next = activation_forward(activation, z)
    return h_next, StepCache(h_in, z, h_next, Wh, recurrent_mask, activation)


def rnn_step_backward(dh_next, cache):
    r"""Backward pass of :func:`rnn_step_forward`.

    With :math:`z = a + \tilde h W_h`, :math:`\tilde h = h_{prev} \odot m`, :math:`h = f(z)`::

        dz      = dh_next * f'(z)              # tanh'(z) = 1 - tanh(z)^2 = 1 - h^2
        da      = dz                           # a enters z with coefficient 1
        dh_prev = (dz Wh^T) * m                # (N, H)
        dWh     = h~^T dz                      # (H, H)

    Parameters
    ----------
    dh_next : ndarray, shape (N, H)
    cache : StepCache

    Returns
    -------
    da, dh_prev, dWh : ndarrays of shapes (N, H), (N, H), (H, H)
    """
    dz = activation_backward(cache.activation, dh_next, cache.z, cache.h_next)
    dh_prev = dz @ cache.Wh.T
    if cache.recurrent_mask is not None:
        dh_prev = dh_prev * cache.recurrent_mask
    dWh = cache.h_prev.T @ dz
    return dz, dh_prev, dWh


def rnn_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                activation="tanh"):
    r"""A SimpleRNN over a whole sequence: :math:`h_t = f(a_t + h_{t-1} W_h)`, t = 1..T.

    Calls :func:`rnn_step_forward` once per step through
    :func:`~nprnn.kernels.reference.recurrence.recurrence_forward`.

    Parameters
    ----------
    projected : ndarray, shape (N, T, H)
        Input projections :math:`a_t = x_t W_x + b`.
    initial_states : (h0,), h0 of shape (N, H)
    weights : (Wh,), Wh of shape (H, H)
    mask : bool ndarray, shape (N, T), optional
    recurrent_mask : ndarray, shape (N, H), optional
    activation : str, default 'tanh'

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
    final_states : (h_T,)
    cache
    """

    def step(a, h_prev, Wh, recurrent_mask):
        return rnn_step_forward(a, h_prev, Wh, recurrent_mask, activation)

    return recurrence_forward(step, projected, initial_states, weights, mask, recurrent_mask)


def rnn_backward(dhidden, dfinal_states, cache):
    r"""Backpropagation through time for :func:`rnn_forward`.

    Calls :func:`rnn_step_backward` from t = T down to 1; the gradient reaching :math:`h_t`
    is ``dhidden[:, t]`` plus what flows back from step t + 1::

        g_t  = dhidden_t + dz_{t+1} Wh^T        (dz_{T+1} = 0; at T add dfinal_states)
        dz_t = g_t * f'(z_t)                     da_t = dz_t
        dWh  = sum_t h_{t-1}^T dz_t              dh0 = dz_1 Wh^T

    Parameters
    ----------
    dhidden : ndarray, shape (N, T, H), or None
    dfinal_states : (dh_T,), dh_T of shape (N, H) or None
    cache : from :func:`rnn_forward`

    Returns
    -------
    dprojected : ndarray, shape (N, T, H)
        The bias gradient is its sum over N and T.
    dinitial_states : (dh0,)
    dweights : (dWh,)
    """
    return recurrence_backward(rnn_step_backward, dhidden, dfinal_states, cache)
