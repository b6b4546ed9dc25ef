r"""Compiled RMSprop update (Keras' form, epsilon inside the square root)."""

from __future__ import annotations

import numpy as np
from numba import njit

from nprnn.kernels._fast_math import JIT_OPTIONS


@njit(**JIT_OPTIONS)
def _rmsprop_core(param, grad, velocity, new_param, new_velocity, lr, rho, eps):
    one_minus_rho = 1.0 - rho
    for i in range(param.shape[0]):
        g = grad[i]
        v = rho * velocity[i] + one_minus_rho * g * g
        new_velocity[i] = v
        new_param[i] = param[i] - lr * g / np.sqrt(v + eps)


def rmsprop_update(param, grad, velocity, learning_rate, rho, epsilon):
    r"""Compiled twin of :func:`nprnn.kernels.reference.optimizers.rmsprop_update`.

    .. math::

        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        w &\leftarrow w - \eta \, g / \sqrt{v + \epsilon}

    (epsilon inside the root, as Keras). ``param``, ``grad``, ``velocity`` share one shape;
    returns ``(new_param, new_velocity)`` as new arrays of the dtypes of ``param`` and
    ``velocity``. Computed elementwise in float64 and rounded once to the output dtype
    (the reference rounds every float32 operation; the two agree to ~1e-7 relative).
    """
    param = np.asarray(param)
    shape = param.shape
    p = np.ascontiguousarray(param).reshape(-1)
    g = np.ascontiguousarray(grad).reshape(-1)
    v = np.ascontiguousarray(velocity).reshape(-1)
    if g.shape != p.shape or v.shape != p.shape:
        raise ValueError(
            f"shapes: param {shape}, grad {np.shape(grad)}, velocity {np.shape(velocity)} "
            "must be equal"
        )
    new_param = np.empty(p.shape, dtype=p.dtype)
    new_velocity = np.empty(v.shape, dtype=v.dtype)
    _rmsprop_core(
        p, g, v, new_param, new_velocity, float(learning_rate), float(rho), float(epsilon)
    )
    return new_param.reshape(shape), new_velocity.reshape(shape)
