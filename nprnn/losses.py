r"""Losses. The book uses one: binary cross-entropy, averaged over the batch.

A loss object computes the mean loss from the model's output and, for the backward pass,
its gradient with respect to that output. When the model ends in ``Dense(1,
activation='sigmoid')`` and the loss is binary cross-entropy, :class:`~nprnn.models.Sequential`
uses the exact logit form instead (:func:`nprnn.kernels.reference.sigmoid_binary_crossentropy`),
as Keras does with the TensorFlow backend.
"""

from __future__ import annotations

import numpy as np

from nprnn._validation import as_array
from nprnn.kernels import reference

_EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities


def _pair(y_true, y_pred):
    """(y_true, y_pred) as float arrays of y_pred's shape; ValueError/TypeError otherwise."""
    y_pred = as_array(y_pred, "y_pred", hint="")
    y_true = as_array(y_true, "y_true", hint="")
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected numbers, got dtype {value.dtype}")
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float64)
    if y_true.size != y_pred.size:
        raise ValueError(f"y_true, y_pred: expected the same number of values, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    return y_true.astype(y_pred.dtype).reshape(y_pred.shape), y_pred


class Loss:
    """Base class: ``__call__(y_true, y_pred) -> float`` and ``gradient(y_true, y_pred)``."""

    name = "loss"

    def __call__(self, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, y_true, y_pred):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name}


class BinaryCrossentropy(Loss):
    r"""Mean binary cross-entropy :math:`-\frac1N\sum y\log p + (1-y)\log(1-p)`.

    On probabilities, p is clipped to [1e-7, 1 - 1e-7] first, as Keras does. Targets must lie
    in [0, 1]. ``from_logits=True`` takes logits z and uses the exact form
    :math:`\max(z,0) - zy + \log(1+e^{-|z|})`.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred):
        y_true, y_pred = _pair(y_true, y_pred)
        if self.from_logits:
            return reference.sigmoid_binary_crossentropy(y_pred, y_true)
        p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
        return float(np.mean(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))))

    def gradient(self, y_true, y_pred):
        """dL/dy_pred, shape of y_pred (zero where the clip is active, as in Keras)."""
        y_true, y_pred = _pair(y_true, y_pred)
        if self.from_logits:
            return reference.sigmoid_binary_crossentropy_backward(y_pred, y_true)
        p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
        inside = (y_pred > _EPSILON) & (y_pred < 1 - _EPSILON)
        return (p - y_true) / (p * (1 - p)) / y_pred.size * inside

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(Loss):
    r"""Mean squared error :math:`\frac1N\sum (y - \hat y)^2` (for regression examples)."""

    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        y_true, y_pred = _pair(y_true, y_pred)
        return float(np.mean((y_pred - y_true) ** 2))

    def gradient(self, y_true, y_pred):
        y_true, y_pred = _pair(y_true, y_pred)
        return 2 * (y_pred - y_true) / y_pred.size


_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier):
    """A loss object from a name ('binary_crossentropy', 'mse') or an instance."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        raise TypeError(f"loss: got the class {identifier.__name__}; pass an instance such as "
                        f"{identifier.__name__}() or a name from {sorted(_BY_NAME)}")
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(f"loss: expected one of {sorted(_BY_NAME)} or a Loss, got {identifier!r}")


binary_crossentropy = BinaryCrossentropy()
