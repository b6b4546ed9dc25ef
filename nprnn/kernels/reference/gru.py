r"""GRU: Keras 3's two variants, one step each, and their sequences by the shared driver.

Keras' ``GRUCell``, gate order **z, r, h** (update, reset, candidate), ``kernel`` Wx
(D, 3H), ``recurrent_kernel`` Wh (H, 3H). The input projection ``a_t = x_t Wx + b_in`` (width
3H) is computed for all t before the loop; :math:`\tilde h = h_{t-1} \odot m`.

``reset_after=True`` (Keras 3's default, cuDNN's form; bias of shape (2, 3H): row 0 the
input bias ``b_in``, row 1 the recurrent bias ``b_rec``; the book's 8,633 parameters)::

    inner = h~ Wh + b_rec                                  (N, 3H) = [inner_z | inner_r | inner_h]
    z  = s(a_z + inner_z)      r = s(a_r + inner_r)
    hh = f(a_h + r * inner_h)                              reset applied AFTER the product
    h_t = z * h_{t-1} + (1 - z) * hh

``reset_after=False`` (Keras 2.2's layout; one bias (3H,), all of it in ``a``)::

    z  = s(a_z + h~ Wh_z)      r = s(a_r + h~ Wh_r)
    hh = f(a_h + (r * h~) Wh_h)                            reset applied BEFORE the product
    h_t = z * h_{t-1} + (1 - z) * hh

with s = ``recurrent_activation`` (sigmoid), f = ``activation`` (tanh), and ``Wh_z``,
``Wh_r``, ``Wh_h`` the three H-column blocks of Wh. The interpolation uses the *unmasked*
:math:`h_{t-1}`, as Keras does.

Recurrent dropout
-----------------
nprnn draws ONE recurrent mask m, shape (N, H), per sequence (the layer's job), shared by
the three gates and applied to :math:`h_{t-1}` inside the recurrent products only. Keras 3
(and Keras 2 before it) switch the cell to ``implementation=1`` when
``recurrent_dropout > 0`` and draw one mask per gate, three in all; without recurrent
dropout the two agree exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from nprnn.kernels.reference.activations import activation_backward, activation_forward
from nprnn.kernels.reference.recurrence import recurrence_backward, recurrence_forward


class GRUStepCache(NamedTuple):
    """What :func:`gru_step_backward` needs from :func:`gru_step_forward`."""

    h_prev: np.ndarray  # (N, H) previous hidden state, unmasked (the interpolation's)
    h_in: np.ndarray  # (N, H) h_prev * m, as it entered the product
    x_pre: np.ndarray  # (N, 3H) pre-activations [a_z + inner_z | a_r + inner_r | a_h + r inner_h]
    gates: np.ndarray  # (N, 3H) [z | r | hh] after their activations
    inner_h: np.ndarray  # (N, H) h~ Wh_h + b_rec_h
    Wh: np.ndarray  # (H, 3H)
    recurrent_mask: np.ndarray | None
    activation: str
    recurrent_activation: str


class GRUResetBeforeStepCache(NamedTuple):
    """What :func:`gru_reset_before_step_backward` needs from its forward."""

    h_prev: np.ndarray  # (N, H) previous hidden state, unmasked
    h_in: np.ndarray  # (N, H) h_prev * m
    x_pre: np.ndarray  # (N, 3H) pre-activations of z, r and hh
    gates: np.ndarray  # (N, 3H) [z | r | hh]
    Wh: np.ndarray  # (H, 3H)
    recurrent_mask: np.ndarray | None
    activation: str
    recurrent_activation: str


def _gates(gates):
    """The three (N, H) blocks [z | r | hh] of an (N, 3H) array."""
    H = gates.shape[1] // 3
    return gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]


def gru_step_forward(a, h_prev, Wh, recurrent_bias, recurrent_mask=None, activation="tanh",
                     recurrent_activation="sigmoid"):
    r"""One GRU step, ``reset_after=True`` (Keras 3's default).

    .. math::

        \mathrm{inner} &= (h_{prev} \odot m) W_h + b_{rec}, \quad
        z = \sigma(a_z + \mathrm{inner}_z), \quad r = \sigma(a_r + \mathrm{inner}_r) \\
        \hat h &= \tanh(a_h + r \odot \mathrm{inner}_h), \qquad
        h_{next} = z \odot h_{prev} + (1 - z) \odot \hat h

    Parameters
    ----------
    a : ndarray, shape (N, 3H)
        The input projection :math:`a = x W_x + b_{in}` (``bias[0]`` in Keras).
    h_prev : ndarray, shape (N, H)
    Wh : ndarray, shape (H, 3H)
        Keras' ``recurrent_kernel``.
    recurrent_bias : ndarray, shape (3H,)
        :math:`b_{rec}` (``bias[1]`` in Keras; zeros for ``use_bias=False``).
    recurrent_mask : ndarray, shape (N, H), optional
        Recurrent dropout mask m, one for all three gates.
    activation, recurrent_activation : str, default 'tanh', 'sigmoid'

    Returns
    -------
    h_next : ndarray, shape (N, H)
    cache : GRUStepCache
    """
    H = h_prev.shape[1]
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    inner = h_in @ Wh + recurrent_bias
    x_pre = np.empty_like(a)
    x_pre[:, :2 * H] = a[:, :2 * H] + inner[:, :2 * H]
    gates = np.empty_like(a)
    gates[:, :2 * H] = activation_forward(recurrent_activation, x_pre[:, :2 * H])  # z, r
    r = gates[:, H:2 * H]
    inner_h = inner[:, 2 * H:]
    x_pre[:, 2 * H:] = a[:, 2 * H:] + r * inner_h
    gates[:, 2 * H:] = activation_forward(activation, x_pre[:, 2 * H:])  # hh
    z, _, hh = _gates(gates)
    h_next = z * h_prev + (1 - z) * hh
    cache = GRUStepCache(h_prev, h_in, x_pre, gates, inner_h, Wh, recurrent_mask, activation,
                         recurrent_activation)
    return h_next, cache


def gru_step_backward(dh_next, cache):
    r"""Backward pass of :func:`gru_step_forward`.

    ::

        dz       = dh_next * (h_prev - hh) * s'(.)        # h = z h_prev + (1 - z) hh
        dp_h     = dh_next * (1 - z) * f'(.)              # hh = f(a_h + r inner_h)
        dr       = dp_h * inner_h * s'(.)
        dinner   = [dz | dr | dp_h * r]                   # (N, 3H)
        da       = [dz | dr | dp_h]                       # (N, 3H)
        dWh      = h~^T dinner ;  db_rec = sum_n dinner   # (H, 3H), (3H,)
        dh_prev  = dh_next * z + (dinner Wh^T) * m        # direct path + through the product

    Parameters
    ----------
    dh_next : ndarray, shape (N, H)
    cache : GRUStepCache

    Returns
    -------
    da, dh_prev, dWh, drecurrent_bias : ndarrays of shapes (N, 3H), (N, H), (H, 3H), (3H,)
    """
    H = dh_next.shape[1]
    act, rec = cache.activation, cache.recurrent_activation
    z, r, hh = _gates(cache.gates)
    pz, pr, ph = _gates(cache.x_pre)
    dz = activation_backward(rec, dh_next * (cache.h_prev - hh), pz, z)
    dp_h = activation_backward(act, dh_next * (1 - z), ph, hh)
    dr = activation_backward(rec, dp_h * cache.inner_h, pr, r)
    da = np.concatenate([dz, dr, dp_h], axis=1)
    dinner = da.copy()
    dinner[:, 2 * H:] *= r
    dWh = cache.h_in.T @ dinner
    drecurrent_bias = dinner.sum(axis=0)
    dh_in = dinner @ cache.Wh.T
    if cache.recurrent_mask is not None:
        dh_in = dh_in * cache.recurrent_mask
    dh_prev = dh_next * z + dh_in
    return da, dh_prev, dWh, drecurrent_bias


def gru_reset_before_step_forward(a, h_prev, Wh, recurrent_mask=None, activation="tanh",
                                  recurrent_activation="sigmoid"):
    r"""One GRU step, ``reset_after=False`` (Keras 2.2's layout, one bias inside ``a``).

    .. math::

        z &= \sigma(a_z + \tilde h W_{h,z}), \quad r = \sigma(a_r + \tilde h W_{h,r}),
        \quad \tilde h = h_{prev} \odot m \\
        \hat h &= \tanh(a_h + (r \odot \tilde h) W_{h,h}), \qquad
        h_{next} = z \odot h_{prev} + (1 - z) \odot \hat h

    Parameters
    ----------
    a : ndarray, shape (N, 3H)
        The input projection :math:`a = x W_x + b`.
    h_prev : ndarray, shape (N, H)
    Wh : ndarray, shape (H, 3H)
    recurrent_mask : ndarray, shape (N, H), optional
    activation, recurrent_activation : str, default 'tanh', 'sigmoid'

    Returns
    -------
    h_next : ndarray, shape (N, H)
    cache : GRUResetBeforeStepCache
    """
    H = h_prev.shape[1]
    h_in = h_prev if recurrent_mask is None else h_prev * recurrent_mask
    x_pre = np.empty_like(a)
    x_pre[:, :2 * H] = a[:, :2 * H] + h_in @ Wh[:, :2 * H]
    gates = np.empty_like(a)
    gates[:, :2 * H] = activation_forward(recurrent_activation, x_pre[:, :2 * H])  # z, r
    r = gates[:, H:2 * H]
    x_pre[:, 2 * H:] = a[:, 2 * H:] + (r * h_in) @ Wh[:, 2 * H:]
    gates[:, 2 * H:] = activation_forward(activation, x_pre[:, 2 * H:])  # hh
    z, _, hh = _gates(gates)
    h_next = z * h_prev + (1 - z) * hh
    cache = GRUResetBeforeStepCache(h_prev, h_in, x_pre, gates, Wh, recurrent_mask, activation,
                                    recurrent_activation)
    return h_next, cache


def gru_reset_before_step_backward(dh_next, cache):
    r"""Backward pass of :func:`gru_reset_before_step_forward`.

    ::

        dz       = dh_next * (h_prev - hh) * s'(.)
        dp_h     = dh_next * (1 - z) * f'(.)
        dq       = dp_h Wh_h^T                 # q = r * h~ entered the candidate's product
        dr       = dq * h~ * s'(.)
        dWh      = [h~^T dz | h~^T dr | q^T dp_h]                  # (H, 3H)
        dh~      = dq * r + [dz | dr] [Wh_z | Wh_r]^T
        dh_prev  = dh_next * z + dh~ * m
        da       = [dz | dr | dp_h]                                # (N, 3H)

    Parameters
    ----------
    dh_next : ndarray, shape (N, H)
    cache : GRUResetBeforeStepCache

    Returns
    -------
    da, dh_prev, dWh : ndarrays of shapes (N, 3H), (N, H), (H, 3H)
    """
    H = dh_next.shape[1]
    act, rec = cache.activation, cache.recurrent_activation
    Wh, h_in = cache.Wh, cache.h_in
    z, r, hh = _gates(cache.gates)
    pz, pr, ph = _gates(cache.x_pre)
    dz = activation_backward(rec, dh_next * (cache.h_prev - hh), pz, z)
    dp_h = activation_backward(act, dh_next * (1 - z), ph, hh)
    dq = dp_h @ Wh[:, 2 * H:].T
    dr = activation_backward(rec, dq * h_in, pr, r)
    da = np.concatenate([dz, dr, dp_h], axis=1)
    dWh = np.empty_like(Wh)
    dWh[:, :2 * H] = h_in.T @ da[:, :2 * H]
    dWh[:, 2 * H:] = (r * h_in).T @ dp_h
    dh_in = dq * r + da[:, :2 * H] @ Wh[:, :2 * H].T
    if cache.recurrent_mask is not None:
        dh_in = dh_in * cache.recurrent_mask
    dh_prev = dh_next * z + dh_in
    return da, dh_prev, dWh


def gru_forward(projected, initial_states, weights, mask=None, recurrent_mask=None,
                activation="tanh", recurrent_activation="sigmoid"):
    r"""A GRU (``reset_after=True``) over a whole sequence: :func:`gru_step_forward` for
    t = 1..T, through :func:`~nprnn.kernels.reference.recurrence.recurrence_forward`.

    Parameters
    ----------
    projected : ndarray, shape (N, T, 3H)
        Input projections :math:`a_t = x_t W_x + b_{in}`.
    initial_states : (h0,), h0 of shape (N, H)
    weights : (Wh, recurrent_bias), shapes (H, 3H) and (3H,)
    mask : bool ndarray, shape (N, T), optional
    recurrent_mask : ndarray, shape (N, H), optional
    activation, recurrent_activation : str, default 'tanh', 'sigmoid'

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
    final_states : (h_T,)
    cache
    """

    def step(a, h_prev, Wh, recurrent_bias, recurrent_mask):
        return gru_step_forward(a, h_prev, Wh, recurrent_bias, recurrent_mask, activation,
                                recurrent_activation)

    return recurrence_forward(step, projected, initial_states, weights, mask, recurrent_mask)


def gru_backward(dhidden, dfinal_states, cache):
    r"""Backpropagation through time for :func:`gru_forward`.

    Parameters
    ----------
    dhidden : ndarray, shape (N, T, H), or None
    dfinal_states : (dh_T,), dh_T of shape (N, H) or None
    cache : from :func:`gru_forward`

    Returns
    -------
    dprojected : ndarray, shape (N, T, 3H)
        The input bias gradient is its sum over N and T.
    dinitial_states : (dh0,)
    dweights : (dWh, drecurrent_bias)
    """
    return recurrence_backward(gru_step_backward, dhidden, dfinal_states, cache)


def gru_reset_before_forward(projected, initial_states, weights, mask=None,
                             recurrent_mask=None, activation="tanh",
                             recurrent_activation="sigmoid"):
    r"""A GRU (``reset_after=False``) over a whole sequence:
    :func:`gru_reset_before_step_forward` for t = 1..T.

    Parameters
    ----------
    projected : ndarray, shape (N, T, 3H)
    initial_states : (h0,), h0 of shape (N, H)
    weights : (Wh,), Wh of shape (H, 3H)
    mask, recurrent_mask, activation, recurrent_activation : as :func:`gru_forward`

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
    final_states : (h_T,)
    cache
    """

    def step(a, h_prev, Wh, recurrent_mask):
        return gru_reset_before_step_forward(a, h_prev, Wh, recurrent_mask, activation,
                                             recurrent_activation)

    return recurrence_forward(step, projected, initial_states, weights, mask, recurrent_mask)


def gru_reset_before_backward(dhidden, dfinal_states, cache):
    r"""Backpropagation through time for :func:`gru_reset_before_forward`.

    Returns
    -------
    dprojected : ndarray, shape (N, T, 3H)
    dinitial_states : (dh0,)
    dweights : (dWh,)
    """
    return recurrence_backward(gru_reset_before_step_backward, dhidden, dfinal_states, cache)
