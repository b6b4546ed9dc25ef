r"""LSTM: one step, and the whole sequence by the shared driver.

Keras' ``LSTMCell`` with its gate order **i, f, c, o** and weight layout: ``kernel`` Wx
(D, 4H), ``recurrent_kernel`` Wh (H, 4H), one ``bias`` b (4H,) (the book's
8,809 = 4 * (16*8 + 8*8 + 8) + the Dense layer's 9). With the input projection
``a_t = x_t Wx + b`` (all t at once, width 4H) and :math:`\tilde h = h_{t-1} \odot m`::

    z   = a_t + h~ Wh                       (N, 4H), split as [z_i | z_f | z_c | z_o]
    i   = s(z_i)    f = s(z_f)    g = f_act(z_c)    o = s(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * f_act(c_t)

with s = ``recurrent_activation`` (sigmoid) and f_act = ``activation`` (tanh).

Recurrent dropout
-----------------
nprnn draws ONE recurrent mask m, shape (N, H), per sequence (the layer's job), shared by
the four gates and applied to :math:`h_{t-1}` inside the recurrent product only; the cell
state c is never masked. Keras 3 (and Keras 2 before it) switch the cell to
``implementation=1`` when ``recurrent_dropout > 0`` and draw one mask per gate, four in
all, so a Keras LSTM with recurrent dropout drops different units in each gate's product;
without recurrent dropout the two agree exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nprnn.kernels.reference.activations import activation_backward, activation_forward
from nprnn.kernels.reference.recurrence import recurrence_backward, recurrence_forward


class LSTMStepCache(NamedTuple):
    """What :func:`lstm_step_backward` needs from :func:`lstm_step_forward`."""

    h_prev: np.ndarray  # (N, H) previous hidden state as it entered the product (h~)
    c_prev: np.ndarray  # (N, H) previous cell state
    z: np.ndarray  # (N, 4H) pre-activations (relu' needs them)
    gates: np.ndarray  # (N, 4H) [i | f | g | o] after their activations
    c_next: np.ndarray  # (N, H)
    tanh_c: np.ndarray  # (N, H) f_act(c_next)
    Wh: np.ndarray  # (H, 4H)
    recurrent_mask: np.ndarray | None  # (N, H) or None
    activation: str
    recurrent_activation: str


def lstm_step_forward(a, h_prev, c_prev, Wh, recurrent_mask=None, activation="tanh",
                      recurrent_activation="sigmoid"):
    r"""One LSTM step (gate order i, f, c, o as Keras).

    .. math::

        z &= a + (h_{prev} \odot m) W_h, \quad
        i = \sigma(z_i),\ f = \sigma(z_f),\ g = \tanh(z_c),\ o = \sigma(z_o) \\
        c_{next} &= f \odot c_{prev} + i \odot g, \qquad h_{next} = o \odot \tanh(c_{next})

    Parameters
    ----------
    a : ndarray, shape (N, 4H)
        The input projection :math:`a = x W_x + b` of this step.
    h_prev, c_prev : ndarrays, shape (N, H)
    Wh : ndarray, shape (H, 4H)
        Keras' ``recurrent_kernel``.
    recurrent_mask : ndarray, shape (N, H), optional
        Recurrent dropout mask m (0 or 1/(1-p)), one for all four gates; None means none.
    activation : str, default 'tanh'
        f_act, for the candidate g and for the cell state's output.
    recurrent_activation : str, default 'sigmoid'
        s, for the gates i, f, o.

    Returns
    -------
    h_next, c_next : ndarrays, shape (N, H)
    cache : LSTMStepCache
    """
    H = h_prev.shape[1]
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    z = a + h_in @ Wh
    gates = np.empty_like(z)
    gates[:, :2 * H] = activation_forward(recurrent_activation, z[:, :2 * H])  # i, f
    gates[:, 2 * H:3 * H] = activation_forward(activation, z[:, 2 * H:3 * H])  # g
    gates[:, 3 * H:] = activation_forward(recurrent_activation, z[:, 3 * H:])  # o
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c_next = f * c_prev + i * g
    tanh_c = activation_forward(activation, c_next)
    h_next = o * tanh_c
    cache = LSTMStepCache(h_in, c_prev, z, gates, c_next, tanh_c, Wh, recurrent_mask,
                          activation, recurrent_activation)
    return h_next, c_next, cache


def lstm_step_backward(dh_next, dc_next, cache):
    r"""Backward pass of :func:`lstm_step_forward`.

    Each line is the derivative of the forward line it names::

        do      = dh_next * tanh(c)                      # h = o * tanh(c)
        dc      = dc_next + dh_next * o * tanh'(c)       # tanh' = 1 - tanh^2
        df      = dc * c_prev ;  dc_prev = dc * f        # c = f c_prev + i g
        di      = dc * g      ;  dg      = dc * i
        dz      = [di s'(z_i) | df s'(z_f) | dg tanh'(z_c) | do s'(z_o)]   # s' = s (1 - s)
        da      = dz                                     # (N, 4H)
        dh_prev = (dz Wh^T) * m                          # (N, H)
        dWh     = h~^T dz                                # (H, 4H)

    Parameters
    ----------
    dh_next, dc_next : ndarrays, shape (N, H)
    cache : LSTMStepCache

    Returns
    -------
    da, dh_prev, dc_prev, dWh : ndarrays of shapes (N, 4H), (N, H), (N, H), (H, 4H)
    """
    H = dh_next.shape[1]
    act, rec = cache.activation, cache.recurrent_activation
    gates, z = cache.gates, cache.z
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    do = dh_next * cache.tanh_c
    dc = dc_next + activation_backward(act, dh_next * o, cache.c_next, cache.tanh_c)
    df = dc * cache.c_prev
    dc_prev = dc * f
    di = dc * g
    dg = dc * i
    dz = np.empty_like(z)
    dz[:, :H] = activation_backward(rec, di, z[:, :H], i)
    dz[:, H:2 * H] = activation_backward(rec, df, z[:, H:2 * H], f)
    dz[:, 2 * H:3 * H] = activation_backward(act, dg, z[:, 2 * H:3 * H], g)
    dz[:, 3 * H:] = activation_backward(rec, do, z[:, 3 * H:], o)
    dh_prev = dz @ cache.Wh.T
    if cache.recurrent_mask is not None:
        dh_prev = dh_prev * cache.recurrent_mask
    dWh = cache.h_prev.T @ dz
    return dz, dh_prev, dc_prev, dWh


def lstm_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                 activation="tanh", recurrent_activation="sigmoid"):
    r"""An LSTM over a whole sequence: :func:`lstm_step_forward` for t = 1..T.

    Calls the step through :func:`~nprnn.kernels.reference.recurrence.recurrence_forward`, which
    carries both states (h and c) through masked steps.

    Parameters
    ----------
    projected : ndarray, shape (N, T, 4H)
        Input projections :math:`a_t = x_t W_x + b`.
    initial_states : (h0, c0), each of shape (N, H)
    weights : (Wh,), Wh of shape (H, 4H)
    mask : bool ndarray, shape (N, T), optional
    recurrent_mask : ndarray, shape (N, H), optional
    activation, recurrent_activation : str, default 'tanh', 'sigmoid'

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
        h after every step.
    final_states : (h_T, c_T)
    cache
    """

    def step(a, h_prev, c_prev, Wh, recurrent_mask):
        return lstm_step_forward(a, h_prev, c_prev, Wh, recurrent_mask, activation,
                                 recurrent_activation)

    return recurrence_forward(step, projected, initial_states, weights, mask, recurrent_mask)


def lstm_backward(dhidden, dfinal_states, cache):
    r"""Backpropagation through time for :func:`lstm_forward`.

    Calls :func:`lstm_step_backward` from t = T down to 1; the gradient reaching
    :math:`h_t` is ``dhidden[:, t]`` plus what flows back from step t + 1, the gradient
    reaching :math:`c_t` only what flows back (``dfinal_states`` start both at t = T).

    Parameters
    ----------
    dhidden : ndarray, shape (N, T, H), or None
    dfinal_states : (dh_T, dc_T), each (N, H) or None
    cache : from :func:`lstm_forward`

    Returns
    -------
    dprojected : ndarray, shape (N, T, 4H)
        The bias gradient is its sum over N and T.
    dinitial_states : (dh0, dc0)
    dweights : (dWh,)
    """
    return recurrence_backward(lstm_step_backward, dhidden, dfinal_states, cache)
