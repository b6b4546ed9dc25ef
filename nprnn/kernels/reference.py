r"""NumPy reference kernels: the maths of the chapter, one pure function per equation.

Every function here is *pure*: it reads its arguments, never writes into them, and returns
new arrays. Each hot kernel has a Numba twin in :mod:`nprnn.kernels.compiled` with the same
name and signature; these NumPy versions are the readable definition that the twins are
tested against, and what runs when ``nprnn.config.set_backend('numpy')`` is selected.

Shapes use the letters of CS231n's ``rnn_layers.py``:

==========  ===========================================================
``N``       batch size (number of sequences)
``T``       time steps (sequence length)
``D``       input features per step (one-hot depth or embedding size)
``H``       hidden units of the SimpleRNN
``V``       vocabulary size (rows of an embedding table)
``E``       embedding size (columns of an embedding table)
==========  ===========================================================

The SimpleRNN has ONE bias, as in Keras (the book's 4072 = 500*8 + 8*8 + 8)::

    h_t = tanh(x_t Wx + h_{t-1} Wh + b),    h_0 = 0

Backpropagation through time splits the cell in two parts so that the expensive input
projection ``x_t Wx + b`` can be done for all steps at once (one matrix product, or a row
gather when ``x`` is one-hot or an embedding lookup), leaving only the recurrence inside the
time loop::

    a_t = x_t Wx + b                  (input projection, all t at once)
    h_t = tanh(a_t + h_{t-1} Wh)      (recurrence, step by step)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "StepCache",
    "SequenceCache",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_recurrence_forward",
    "rnn_recurrence_backward",
    "rnn_forward",
    "rnn_backward",
    "gather_rows",
    "scatter_add_rows",
    "embedding_forward",
    "embedding_backward",
    "dense_forward",
    "dense_backward",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "sigmoid_binary_crossentropy_backward",
    "rmsprop_update",
]


# --------------------------------------------------------------------------------------
# SimpleRNN: one time step
# --------------------------------------------------------------------------------------
class StepCache(NamedTuple):
    """What :func:`rnn_step_backward` needs from :func:`rnn_step_forward`."""

    x: np.ndarray  # (N, D) input at this step
    h_prev: np.ndarray  # (N, H) previous hidden state
    h_next: np.ndarray  # (N, H) tanh output, reused for tanh' = 1 - h^2
    Wx: np.ndarray  # (D, H)
    Wh: np.ndarray  # (H, H)


def rnn_step_forward(x, h_prev, Wx, Wh, b):
    r"""One step of a SimpleRNN: :math:`h_{next} = \tanh(x W_x + h_{prev} W_h + b)`.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    h_prev : ndarray, shape (N, H)
    Wx : ndarray, shape (D, H)
        Keras' ``kernel``.
    Wh : ndarray, shape (H, H)
        Keras' ``recurrent_kernel``.
    b : ndarray, shape (H,)
        Keras' ``bias`` (one bias, not two as in PyTorch).

    Returns
    -------
    h_next : ndarray, shape (N, H)
    cache : StepCache
    """
    h_next = np.tanh(x @ Wx + h_prev @ Wh + b)
    return h_next, StepCache(x, h_prev, h_next, Wx, Wh)


def rnn_step_backward(dh_next, cache):
    r"""Backward pass of :func:`rnn_step_forward`.

    With :math:`z = x W_x + h_{prev} W_h + b` and :math:`h = \tanh z`::

        dz      = dh_next * (1 - h^2)          # tanh'(z) = 1 - tanh(z)^2
        dx      = dz Wx^T                      # (N, D)
        dh_prev = dz Wh^T                      # (N, H)
        dWx     = x^T dz                       # (D, H)
        dWh     = h_prev^T dz                  # (H, H)
        db      = sum_n dz                     # (H,)

    Parameters
    ----------
    dh_next : ndarray, shape (N, H)
        Gradient of the loss with respect to ``h_next``.
    cache : StepCache

    Returns
    -------
    dx, dh_prev, dWx, dWh, db : ndarrays of shapes (N, D), (N, H), (D, H), (H, H), (H,)
    """
    dz = dh_next * (1.0 - cache.h_next * cache.h_next)
    dx = dz @ cache.Wx.T
    dh_prev = dz @ cache.Wh.T
    dWx = cache.x.T @ dz
    dWh = cache.h_prev.T @ dz
    db = dz.sum(axis=0)
    return dx, dh_prev, dWx, dWh, db


# --------------------------------------------------------------------------------------
# SimpleRNN: the recurrence over a whole sequence (the hot loop)
# --------------------------------------------------------------------------------------
def rnn_recurrence_forward(projected, Wh, h0):
    r"""Run the recurrence :math:`h_t = \tanh(a_t + h_{t-1} W_h)` over all T steps.

    Parameters
    ----------
    projected : ndarray, shape (N, T, H)
        The input projections :math:`a_t = x_t W_x + b`, bias included.
    Wh : ndarray, shape (H, H)
    h0 : ndarray, shape (N, H)
        Initial hidden state (zeros in Keras' SimpleRNN).

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
        Every hidden state :math:`h_1 \dots h_T`; ``hidden[:, -1]`` is the layer's output
        when ``return_sequences=False``.
    """
    N, T, H = projected.shape
    hidden = np.empty((N, T, H), dtype=projected.dtype)
    h = h0
    for t in range(T):
        h = np.tanh(projected[:, t] + h @ Wh)
        hidden[:, t] = h
    return hidden


def rnn_recurrence_backward(dhidden, hidden, Wh, h0):
    r"""Backpropagation through time for :func:`rnn_recurrence_forward`.

    Walking back from t = T to 1, the gradient reaching :math:`h_t` is the upstream
    ``dhidden[:, t]`` plus what flows back from step t + 1::

        g_t    = dhidden_t + dz_{t+1} Wh^T     (dz_{T+1} = 0)
        dz_t   = g_t * (1 - h_t^2)             # tanh' = 1 - tanh^2
        da_t   = dz_t                          # a_t enters z_t with coefficient 1
        dWh   += h_{t-1}^T dz_t
        dh0    = dz_1 Wh^T

    Parameters
    ----------
    dhidden : ndarray, shape (N, T, H)
        Upstream gradient on every hidden state; only ``[:, -1]`` is non-zero when the layer
        returns the last state only. Not modified.
    hidden : ndarray, shape (N, T, H)
        Output of :func:`rnn_recurrence_forward`.
    Wh : ndarray, shape (H, H)
    h0 : ndarray, shape (N, H)

    Returns
    -------
    dprojected : ndarray, shape (N, T, H)
        Gradient with respect to :math:`a_t`; the bias gradient is its sum over N and T.
    dWh : ndarray, shape (H, H)
    dh0 : ndarray, shape (N, H)
    """
    N, T, H = hidden.shape
    dprojected = np.empty_like(hidden)
    dWh = np.zeros_like(Wh)
    dh_from_next = np.zeros((N, H), dtype=hidden.dtype)
    for t in range(T - 1, -1, -1):
        h_prev = hidden[:, t - 1] if t > 0 else h0
        dz = (dhidden[:, t] + dh_from_next) * (1.0 - hidden[:, t] * hidden[:, t])
        dprojected[:, t] = dz
        dWh += h_prev.T @ dz
        dh_from_next = dz @ Wh.T
    return dprojected, dWh, dh_from_next


class SequenceCache(NamedTuple):
    """What :func:`rnn_backward` needs from :func:`rnn_forward`."""

    x: np.ndarray  # (N, T, D)
    hidden: np.ndarray  # (N, T, H)
    h0: np.ndarray  # (N, H)
    Wx: np.ndarray  # (D, H)
    Wh: np.ndarray  # (H, H)


def rnn_forward(x, h0, Wx, Wh, b):
    r"""A SimpleRNN over a whole sequence: :math:`h_t = \tanh(x_t W_x + h_{t-1} W_h + b)`.

    The input projection is hoisted out of the time loop (one product for all steps), then
    :func:`rnn_recurrence_forward` runs the recurrence.

    Parameters
    ----------
    x : ndarray, shape (N, T, D)
    h0 : ndarray, shape (N, H)
    Wx : ndarray, shape (D, H)
    Wh : ndarray, shape (H, H)
    b : ndarray, shape (H,)

    Returns
    -------
    hidden : ndarray, shape (N, T, H)
    cache : SequenceCache
    """
    projected = x @ Wx + b
    hidden = rnn_recurrence_forward(projected, Wh, h0)
    return hidden, SequenceCache(x, hidden, h0, Wx, Wh)


def rnn_backward(dhidden, cache):
    r"""Full backpropagation through time for :func:`rnn_forward`.

    With :math:`da_t` from :func:`rnn_recurrence_backward`::

        dx_t = da_t Wx^T            dWx = sum_t x_t^T da_t            db = sum_{n,t} da_t

    Parameters
    ----------
    dhidden : ndarray, shape (N, T, H)
    cache : SequenceCache

    Returns
    -------
    dx, dh0, dWx, dWh, db : ndarrays of shapes (N, T, D), (N, H), (D, H), (H, H), (H,)
    """
    dprojected, dWh, dh0 = rnn_recurrence_backward(dhidden, cache.hidden, cache.Wh, cache.h0)
    D, H = cache.Wx.shape
    dx = dprojected @ cache.Wx.T
    dWx = cache.x.reshape(-1, D).T @ dprojected.reshape(-1, H)
    db = dprojected.sum(axis=(0, 1))
    return dx, dh0, dWx, dWh, db


# --------------------------------------------------------------------------------------
# Row gather and scatter-add: the embedding lookup and its gradient
# --------------------------------------------------------------------------------------
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
    """Embedding lookup ``out[n, t] = embeddings[ids[n, t]]``: (N, T) ids, (V, E) -> (N, T, E)."""
    return gather_rows(embeddings, ids)


def embedding_backward(dout, ids, vocabulary_size):
    """Gradient of the lookup: ``dE[v] = sum_{ids[n, t] = v} dout[n, t]``, shape (V, E)."""
    return scatter_add_rows(dout, ids, vocabulary_size)


# --------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------
def dense_forward(x, W, b):
    """Affine map ``out = x W + b``: x (N, D), W (D, M), b (M,) -> (N, M)."""
    return x @ W + b


def dense_backward(dout, x, W):
    """Gradients of ``out = x W + b``.

    ``dx = dout W^T`` (N, D); ``dW = x^T dout`` (D, M); ``db = sum_n dout`` (M,).
    """
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


# --------------------------------------------------------------------------------------
# Sigmoid output with binary cross-entropy
# --------------------------------------------------------------------------------------
def sigmoid(z):
    r"""Numerically stable logistic function :math:`\sigma(z) = 1 / (1 + e^{-z})`.

    Computed as ``exp(min(z, 0)) / (1 + exp(-|z|))`` so that no exponent overflows.
    """
    z = np.asarray(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def sigmoid_binary_crossentropy(logits, targets):
    r"""Mean binary cross-entropy of ``sigmoid(logits)`` against 0/1 targets.

    For one example with logit :math:`z` and target :math:`y`,

    .. math:: \ell = -y \log\sigma(z) - (1-y)\log(1-\sigma(z))
                   = \max(z, 0) - z y + \log(1 + e^{-|z|}),

    the second form being exact and finite for any :math:`z` (it never takes the log of a
    probability that rounded to 0 or 1). Keras does the same with the TensorFlow backend when
    the output layer is a sigmoid (``tf.nn.sigmoid_cross_entropy_with_logits``); otherwise it
    clips probabilities to [1e-7, 1 - 1e-7].

    Parameters
    ----------
    logits : ndarray, shape (N,) or (N, 1)
    targets : ndarray, same size as ``logits``

    Returns
    -------
    float
        The mean over the batch (Keras' default ``sum_over_batch_size`` reduction).
    """
    z = np.asarray(logits).reshape(-1)
    y = np.asarray(targets, dtype=z.dtype).reshape(-1)
    per_example = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return per_example.mean()


def sigmoid_binary_crossentropy_backward(logits, targets):
    r"""Gradient of :func:`sigmoid_binary_crossentropy` with respect to the logits.

    :math:`\partial \ell / \partial z = \sigma(z) - y`, divided by N for the mean. Returns the
    shape of ``logits``.
    """
    z = np.asarray(logits)
    y = np.asarray(targets, dtype=z.dtype).reshape(z.shape)
    return (sigmoid(z) - y) / z.shape[0]


# --------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------
def rmsprop_update(param, grad, velocity, learning_rate, rho, epsilon):
    r"""One RMSprop step in Keras' form, returning the new parameter and velocity.

    .. math::

        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        w &\leftarrow w - \eta \, g / \sqrt{v + \epsilon}

    Epsilon is *inside* the square root, as in Keras and TensorFlow's ``ApplyRMSProp``;
    PyTorch's ``RMSprop`` adds it outside (:math:`g / (\sqrt{v} + \epsilon)`).

    Parameters
    ----------
    param, grad, velocity : ndarrays of one shape
    learning_rate, rho, epsilon : float

    Returns
    -------
    new_param, new_velocity : ndarrays of that shape
    """
    new_velocity = rho * velocity + (1.0 - rho) * grad * grad
    new_param = param - learning_rate * grad / np.sqrt(new_velocity + epsilon)
    return new_param.astype(param.dtype, copy=False), new_velocity.astype(
        velocity.dtype, copy=False
    )
