r"""Optimizer kernels: the RMSprop step (the book's optimizer), in Keras' form."""

from __future__ import annotations

import numpy as np


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
