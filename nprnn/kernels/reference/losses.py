r"""Loss kernels: binary cross-entropy taken from the logits of a sigmoid output."""

from __future__ import annotations

import numpy as np

from nprnn.kernels.reference.activations import sigmoid


def sigmoid_binary_crossentropy(logits, targets, sample_weight=None):
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
    sample_weight : ndarray, shape (N,), optional
        Per-example weights :math:`w_n`.

    Returns
    -------
    float
        :math:`\frac{1}{N K}\sum_{n,k} w_n \ell_{nk}`: the mean over the batch and the K
        outputs (Keras' default ``sum_over_batch_size`` reduction divides by N whatever the
        weights).
    """
    z = np.asarray(logits)
    z = z.reshape(len(z), -1) if z.ndim else z.reshape(1, 1)
    y = np.asarray(targets, dtype=z.dtype).reshape(z.shape)
    per_entry = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    if sample_weight is not None:  # each sample's K outputs share its weight
        per_entry = per_entry * np.asarray(sample_weight, dtype=z.dtype).reshape(-1, 1)
    return per_entry.mean()


def sigmoid_binary_crossentropy_backward(logits, targets, sample_weight=None):
    r"""Gradient of :func:`sigmoid_binary_crossentropy` with respect to the logits.

    :math:`\partial \ell / \partial z_{nk} = w_n (\sigma(z_{nk}) - y_{nk}) / (N K)` for N
    samples of K outputs (the loss is the mean over all N K entries). Returns the shape of
    ``logits``.
    """
    z = np.asarray(logits)
    y = np.asarray(targets, dtype=z.dtype).reshape(z.shape)
    dz = (sigmoid(z) - y) / z.size
    if sample_weight is not None:
        dz = dz * np.asarray(sample_weight, dtype=z.dtype).reshape((-1,) + (1,) * (z.ndim - 1))
    return dz
