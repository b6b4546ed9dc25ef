r"""Keras' default weight initializers, drawn from nprnn's seeded generator.

=====================  ===============================================  ===================
initializer            rule                                             Keras default for
=====================  ===============================================  ===================
``glorot_uniform``     U(-l, l), l = sqrt(6 / (fan_in + fan_out))       Dense/SimpleRNN kernel
``orthogonal``         Q of the QR decomposition of a normal matrix,    recurrent kernel
                       columns' signs fixed by sign(diag(R))
``uniform``            U(-0.05, 0.05)                                   Embedding
``zeros``              0                                                biases
=====================  ===============================================  ===================
"""

from __future__ import annotations

import numpy as np

from nprnn import _random


def glorot_uniform(shape, dtype, rng=None):
    """Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).

    For a 2-D kernel of shape (fan_in, fan_out), as Keras computes fans.
    """
    rng = rng or _random.generator()
    fan_in, fan_out = shape[0], shape[-1]
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape, dtype, gain=1.0, rng=None):
    """Random orthogonal matrix, as Keras' ``Orthogonal`` builds it.

    Draw A ~ N(0, 1) of shape (max(r, c), min(r, c)); take A = QR; multiply each column of Q
    by sign(R_ii) so that the distribution is uniform (Haar) over orthogonal matrices;
    transpose if r < c; scale by ``gain``.
    """
    rng = rng or _random.generator()
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    flat_shape = (max(rows, cols), min(rows, cols))
    normal = rng.standard_normal(flat_shape)
    q, r = np.linalg.qr(normal)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q.reshape(shape)).astype(dtype)


def random_uniform(shape, dtype, minval=-0.05, maxval=0.05, rng=None):
    """U(minval, maxval), Keras' ``RandomUniform`` (the Embedding default)."""
    rng = rng or _random.generator()
    return rng.uniform(minval, maxval, size=shape).astype(dtype)


def zeros(shape, dtype, rng=None):
    """All zeros (Keras' bias default)."""
    return np.zeros(shape, dtype=dtype)


_BY_NAME = {
    "glorot_uniform": glorot_uniform,
    "orthogonal": orthogonal,
    "uniform": random_uniform,
    "random_uniform": random_uniform,
    "zeros": zeros,
}


def get(identifier):
    """Look an initializer up by name, or return a callable ``f(shape, dtype)`` unchanged."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(f"initializer: expected one of {sorted(_BY_NAME)} or a callable, "
                     f"got {identifier!r}")
