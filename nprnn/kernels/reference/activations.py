r"""Activation functions and their derivatives, written with the output where that is exact.

=======  ============================================  =============================
name     :math:`f(z)`                                  :math:`f'(z)` as computed
=======  ============================================  =============================
linear   :math:`z`                                     1
tanh     :math:`\tanh z`                               :math:`1 - f^2`
sigmoid  :math:`1 / (1 + e^{-z})`                      :math:`f (1 - f)`
relu     :math:`\max(z, 0)`                            :math:`[z > 0]`
softmax  :math:`e^{z_i} / \sum_j e^{z_j}` (last axis)  Jacobian-vector product below
=======  ============================================  =============================
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")


def sigmoid(z):
    r"""Numerically stable logistic function :math:`\sigma(z) = 1 / (1 + e^{-z})`.

    Computed as ``exp(min(z, 0)) / (1 + exp(-|z|))`` so that no exponent overflows; keeps the
    float dtype of ``z``.
    """
    z = np.asarray(z)
    e = np.exp(-np.abs(z))
    out = np.where(z >= 0, 1.0, e) / (1.0 + e)
    return out.astype(z.dtype, copy=False) if z.dtype.kind == "f" else out


def softmax(z):
    r"""Softmax over the last axis, :math:`e^{z_i - \max z} / \sum_j e^{z_j - \max z}`.

    Subtracting the maximum changes nothing mathematically and keeps every exponent <= 0.
    """
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def activation_forward(name, z):
    """``f(z)`` for one of :data:`ACTIVATIONS`; same shape and dtype as ``z``."""
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "softmax":
        return softmax(z)
    return z  # linear


def activation_backward(name, dout, z, out):
    r"""Gradient with respect to ``z`` of ``out = f(z)``, given ``dout`` = dL/dout.

    Softmax couples the last axis: :math:`dz = y \odot (d - \sum_i d_i y_i)` with
    :math:`y = \mathrm{softmax}(z)`, :math:`d` = ``dout``.
    """
    if name == "tanh":
        return dout * (1 - out * out)  # tanh' = 1 - tanh^2
    if name == "sigmoid":
        return dout * out * (1 - out)  # sigma' = sigma (1 - sigma)
    if name == "relu":
        return dout * (z > 0)
    if name == "softmax":
        return out * (dout - (dout * out).sum(axis=-1, keepdims=True))
    return dout  # linear
