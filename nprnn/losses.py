r"""Losses with Keras 3's definitions, their gradients, and sample weights.

The maths comes first, as pure NumPy functions that trust their callers: for each loss a
function giving the *per-sample* losses :math:`\ell_i` (shape ``y_pred.shape[:-1]``) and one
giving :math:`\partial \ell_i / \partial \hat y_i` (shape of ``y_pred``), and the reduction
shared by all of them. The loss classes below check the user's arrays once and call them.

Reduction: Keras' default ``'sum_over_batch_size'``,

.. math:: L = \frac{1}{n} \sum_i w_i \ell_i,

where n is the number of per-sample losses (N, or N*T for sequence outputs) and
:math:`w_i` the optional ``sample_weight`` (shape (N,), 1 when omitted; for sequence
outputs a weight of shape (N,) repeats over the time steps of its sample, or (N, T) gives
one per step, which is what Keras 3 requires there). The divisor is n, not
:math:`\sum w_i`: weights of 2 double the loss. Its gradient is
:math:`\partial L / \partial \hat y_i = w_i \, \partial \ell_i / \partial \hat y_i / n`.

When the model ends in ``Dense(1, activation='sigmoid')`` and the loss is binary
cross-entropy, :class:`~nprnn.models.Sequential` takes the loss from the logits instead
(:func:`nprnn.kernels.reference.losses.sigmoid_binary_crossentropy`), as Keras does with the
TensorFlow backend, which does the same for a softmax output with categorical
cross-entropy (``softmax(z)`` carries its logits z, and ``softmax_cross_entropy_with_logits``
is used).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from nprnn._validation import as_array
from nprnn.kernels import reference

_EPSILON = 1e-7  # Keras' backend epsilon, used to clip probabilities

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Loss",
    "MeanSquaredError",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "binary_crossentropy_gradient",
    "categorical_crossentropy",
    "categorical_crossentropy_gradient",
    "check_sample_weight",
    "deserialize",
    "get",
    "log_softmax",
    "mean_squared_error",
    "mean_squared_error_gradient",
    "reduce_gradient",
    "reduce_loss",
    "sample_weights_from_class_weight",
    "softmax",
    "sparse_categorical_crossentropy",
    "sparse_categorical_crossentropy_gradient",
]


# ============================================================================================
# The maths: pure functions (no checks)
# ============================================================================================
def softmax(logits, axis=-1):
    r"""Numerically stable softmax :math:`s_k = e^{z_k - m} / \sum_j e^{z_j - m}`, m = max z.

    Subtracting the maximum changes nothing mathematically and keeps every exponent <= 0, so
    no exp overflows (``softmax([1000, 0])`` is [1, 0], not NaN).
    """
    z = np.asarray(logits)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(logits, axis=-1):
    r""":math:`\log s_k = (z_k - m) - \log \sum_j e^{z_j - m}`, finite for any finite logits."""
    z = np.asarray(logits)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _clipped_probabilities(y_pred):
    r"""Keras' preparation of probabilities: :math:`q = p / \sum_k p_k`, then
    :math:`c = \mathrm{clip}(q, \epsilon, 1-\epsilon)`, :math:`\epsilon = 10^{-7}`.

    Returns (c, q, s, inside) with s the row sums and ``inside`` where the clip is inactive.
    """
    s = np.sum(y_pred, axis=-1, keepdims=True)
    q = y_pred / s
    inside = (q > _EPSILON) & (q < 1 - _EPSILON)
    return np.clip(q, _EPSILON, 1 - _EPSILON), q, s, inside


def _through_normalisation(dq, q, s):
    r"""Chain a gradient through :math:`q = p / s`: :math:`\partial \ell / \partial p_j =
    (g_j - \sum_k g_k q_k) / s` with :math:`g = \partial \ell / \partial q`."""
    return (dq - np.sum(dq * q, axis=-1, keepdims=True)) / s


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    r"""Per-sample categorical cross-entropy :math:`\ell = -\sum_k y_k \log c_k`.

    From probabilities (``from_logits=False``), as Keras 3's NumPy and TensorFlow backends:
    each row is renormalised to sum to 1, :math:`q = p / \sum_k p_k`, then clipped to
    :math:`c = \mathrm{clip}(q, 10^{-7}, 1 - 10^{-7})`. From logits z:
    :math:`\ell = -\sum_k y_k \, \mathrm{log\_softmax}(z)_k` (exact, finite).

    Parameters
    ----------
    y_true : ndarray, shape (..., C)
        One-hot (or any non-negative weights over the classes).
    y_pred : ndarray, shape (..., C)
        Probabilities, or logits with ``from_logits=True``.

    Returns
    -------
    ndarray, shape (...,)
    """
    if from_logits:
        return -np.sum(y_true * log_softmax(y_pred), axis=-1)
    c, _, _, _ = _clipped_probabilities(y_pred)
    return -np.sum(y_true * np.log(c), axis=-1)


def categorical_crossentropy_gradient(y_true, y_pred, from_logits=False):
    r""":math:`\partial \ell / \partial \hat y` of :func:`categorical_crossentropy`, per sample.

    From logits: :math:`\partial \ell / \partial z = \mathrm{softmax}(z) \sum_k y_k - y`,
    which is the familiar :math:`\mathrm{softmax}(z) - y` for a one-hot y.
    From probabilities: with :math:`g_k = -y_k / q_k` where the clip is inactive (0 where it
    clips, as the clip's derivative is 0 there),
    :math:`\partial \ell / \partial p_j = (g_j - \sum_k g_k q_k) / \sum_k p_k`; for a one-hot
    y and rows that already sum to 1 this is :math:`1 - y_j / p_j`.
    """
    if from_logits:
        return softmax(y_pred) * np.sum(y_true, axis=-1, keepdims=True) - y_true
    c, q, s, inside = _clipped_probabilities(y_pred)
    dq = np.where(inside, -y_true / c, 0.0)
    return _through_normalisation(dq, q, s).astype(y_pred.dtype, copy=False)


def _one_hot_like(labels, y_pred):
    one_hot = np.zeros_like(y_pred)
    np.put_along_axis(one_hot, labels[..., None], 1.0, axis=-1)
    return one_hot


def sparse_categorical_crossentropy(labels, y_pred, from_logits=False):
    r"""Per-sample cross-entropy against integer labels: :math:`\ell = -\log c_{y}`.

    The same as :func:`categorical_crossentropy` with ``y = onehot(labels)``: probabilities
    are renormalised and clipped to [1e-7, 1 - 1e-7] as Keras does; from logits
    :math:`\ell = \log\sum_k e^{z_k} - z_y`.

    Parameters
    ----------
    labels : int ndarray, shape (...,), values in [0, C)
    y_pred : ndarray, shape (..., C)
    """
    if from_logits:
        picked = np.take_along_axis(log_softmax(y_pred), labels[..., None], axis=-1)
        return -picked[..., 0]
    c, _, _, _ = _clipped_probabilities(y_pred)
    return -np.log(np.take_along_axis(c, labels[..., None], axis=-1)[..., 0])


def sparse_categorical_crossentropy_gradient(labels, y_pred, from_logits=False):
    r""":math:`\partial \ell / \partial \hat y` of :func:`sparse_categorical_crossentropy`.

    From logits: :math:`\mathrm{softmax}(z) - \mathrm{onehot}(y)`; from probabilities as
    :func:`categorical_crossentropy_gradient` with the one-hot labels.
    """
    return categorical_crossentropy_gradient(_one_hot_like(labels, y_pred), y_pred, from_logits)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    r"""Per-sample binary cross-entropy, the mean over the last axis of
    :math:`-y \log p - (1 - y) \log(1 - p)`.

    From probabilities p is clipped to [1e-7, 1 - 1e-7] first (Keras); from logits z the
    exact form :math:`\max(z, 0) - z y + \log(1 + e^{-|z|})` is used.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (..., K)

    Returns
    -------
    ndarray, shape (...,)
    """
    if from_logits:
        z = y_pred
        elementwise = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
    else:
        p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
        elementwise = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return np.mean(elementwise, axis=-1)


def binary_crossentropy_gradient(y_true, y_pred, from_logits=False):
    r""":math:`\partial \ell / \partial \hat y` of :func:`binary_crossentropy`.

    From logits :math:`(\sigma(z) - y) / K`; from probabilities
    :math:`\frac{p - y}{p (1 - p)} / K`, 0 where the clip is active (as in Keras).
    """
    size = y_pred.shape[-1]
    if from_logits:
        return (reference.sigmoid(y_pred) - y_true) / size
    p = np.clip(y_pred, _EPSILON, 1 - _EPSILON)
    inside = (y_pred > _EPSILON) & (y_pred < 1 - _EPSILON)
    return (p - y_true) / (p * (1 - p)) / size * inside


def mean_squared_error(y_true, y_pred):
    r"""Per-sample mean squared error, :math:`\ell = \frac1K \sum_k (\hat y_k - y_k)^2`."""
    return np.mean((y_pred - y_true) ** 2, axis=-1)


def mean_squared_error_gradient(y_true, y_pred):
    r""":math:`\partial \ell / \partial \hat y = 2 (\hat y - y) / K`."""
    return 2 * (y_pred - y_true) / y_pred.shape[-1]


def reduce_loss(per_sample, sample_weight=None):
    r"""Keras' ``'sum_over_batch_size'``: :math:`L = \frac1n \sum_i w_i \ell_i`.

    ``per_sample`` has shape (N,) or (N, T, ...); ``sample_weight`` (N,) is broadcast over
    the trailing axes, or has ``per_sample``'s shape; n = ``per_sample.size``. Without
    weights this is the plain mean.
    """
    if sample_weight is None:
        return float(np.mean(per_sample))
    weights = _broadcast_weights(sample_weight, per_sample)
    return float(np.sum(per_sample * weights) / per_sample.size)


def reduce_gradient(per_sample_gradient, sample_weight=None):
    r"""Gradient of :func:`reduce_loss`: :math:`w_i \, \partial\ell_i/\partial\hat y_i / n`.

    ``per_sample_gradient`` has the shape of y_pred, (N, ..., K); n is the number of
    per-sample losses, ``size / K``.
    """
    count = per_sample_gradient.size // max(1, per_sample_gradient.shape[-1])
    if sample_weight is None:
        return per_sample_gradient / count
    weights = _broadcast_weights(sample_weight, per_sample_gradient)
    return per_sample_gradient * weights / count


def _broadcast_weights(sample_weight, values):
    """(N,) weights reshaped to broadcast against ``values`` of shape (N, ...), in its dtype."""
    weights = np.asarray(sample_weight, dtype=values.dtype)
    return weights.reshape(weights.shape + (1,) * (values.ndim - weights.ndim))


# ============================================================================================
# Checks of user input
# ============================================================================================
def _numbers(value, name):
    array = as_array(value, name, hint="")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got dtype {array.dtype}")
    return array


def _pair(y_true, y_pred):
    """(y_true, y_pred) as float arrays of y_pred's shape; ValueError/TypeError otherwise."""
    y_pred = _numbers(y_pred, "y_pred")
    y_true = _numbers(y_true, "y_true")
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(np.float64)
    if y_true.size != y_pred.size:
        raise ValueError(f"y_true, y_pred: expected the same number of values, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    return y_true.astype(y_pred.dtype).reshape(y_pred.shape), y_pred


def _as_outputs(y_pred):
    """A rank-1 y_pred (N,) is N samples of one output, (N, 1); others keep their shape."""
    return y_pred.reshape(-1, 1) if y_pred.ndim == 1 else y_pred


def _class_scores(y_pred):
    y_pred = _numbers(y_pred, "y_pred")
    if y_pred.ndim < 2:
        raise ValueError(f"y_pred: expected shape (N, C), one row of class scores per sample, "
                         f"got shape {y_pred.shape}")
    return y_pred.astype(np.float64) if y_pred.dtype.kind != "f" else y_pred


def _labels(y_true, y_pred):
    """Integer class labels of shape y_pred.shape[:-1] (a trailing axis of 1 is squeezed)."""
    labels = _numbers(y_true, "y_true")
    expected = y_pred.shape[:-1]
    if labels.shape != expected and labels.shape == (*expected, 1):
        labels = labels[..., 0]
    if labels.shape != expected:
        raise ValueError(f"y_true: expected integer class labels of shape {expected} for "
                         f"y_pred of shape {y_pred.shape}, got shape {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all() or np.any(labels != np.round(labels)):
            raise ValueError("y_true: expected integer class labels, found NaN, infinity or "
                             "fractional values (one-hot targets need categorical_crossentropy)")
    classes = y_pred.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"y_true: expected class labels in [0, {classes}) for {classes} "
                         f"outputs, got values in [{labels.min()}, {labels.max()}]")
    return labels.astype(np.intp)


def check_sample_weight(sample_weight, count, name="sample_weight", loss_shape=None):
    """``sample_weight`` as float64 of shape (count,), or a ValueError/TypeError naming it.

    Accepted: shape (count,) or (count, 1), or, for losses per time step, ``loss_shape``
    (N, T) itself (Keras 3 needs (N, T) there: it cannot broadcast (N,) over the steps,
    which nprnn does); finite and >= 0 (Keras does not refuse negative weights; nprnn
    does, as they would turn descent into ascent for those samples).
    """
    weights = _numbers(sample_weight, name)
    if weights.shape == (count, 1):
        weights = weights[:, 0]
    if weights.shape != (count,) and (loss_shape is None or weights.shape != tuple(loss_shape)):
        also = f" or {tuple(loss_shape)}" if loss_shape is not None and len(loss_shape) > 1 \
            else ""
        raise ValueError(f"{name}: expected one weight per sample, shape ({count},){also}, got "
                         f"shape {weights.shape}")
    weights = weights.astype(np.float64)
    if not np.isfinite(weights).all():
        raise ValueError(f"{name}: expected finite weights, found NaN or infinity")
    if weights.size and weights.min() < 0:
        raise ValueError(f"{name}: expected weights >= 0, found {weights.min()}")
    return weights


def sample_weights_from_class_weight(y, class_weight):
    """One weight per sample from ``fit(class_weight={class: weight})``, as Keras 3 does.

    Each sample's class is ``argmax(y[i])`` for one-hot rows (N, C), ``round(y[i])`` for
    labels of shape (N,) or (N, 1) (binary 0/1 or sparse class ids); its weight is
    ``class_weight[class]``. A class absent from ``class_weight`` gets weight 1.0, as in
    Keras 3 with NumPy arrays (``class_weight.get(c, 1.0)``; with a ``tf.data`` dataset
    Keras instead fails on classes above the largest key). Keras refuses ``class_weight``
    together with ``sample_weight``; that check belongs to ``fit``.

    Parameters
    ----------
    y : array, shape (N,), (N, 1) or (N, C)
    class_weight : dict of int -> float
        Keys are class ids (ints, or integral floats, which Python's dict finds for the
        same int); values finite and >= 0.

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"class_weight: expected a dict of class id -> weight, got "
                        f"{type(class_weight).__name__}")
    table = {}
    for key, value in class_weight.items():
        integral_float = isinstance(key, float) and key.is_integer()
        if isinstance(key, bool) or not (isinstance(key, numbers.Integral) or integral_float):
            raise TypeError(f"class_weight: keys must be integer class ids, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"class_weight: the weight of class {key!r} must be a number, got "
                            f"{value!r}")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"class_weight: the weight of class {key!r} must be finite and "
                             f">= 0, got {value}")
        table[int(key)] = float(value)
    targets = _numbers(y, "y")
    if targets.ndim == 2 and targets.shape[1] != 1:
        classes = np.argmax(targets, axis=-1)
    elif targets.ndim in (1, 2):
        values = targets.reshape(-1)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError("y: expected finite class labels, found NaN or infinity")
        classes = np.round(values).astype(np.int64)
    else:
        raise ValueError(f"y: class_weight needs one class per sample, shape (N,), (N, 1) or "
                         f"(N, C), got shape {targets.shape}")
    return np.array([table.get(int(c), 1.0) for c in classes], dtype=np.float64)


# ============================================================================================
# Loss objects
# ============================================================================================
class Loss:
    """Base class: ``__call__(y_true, y_pred, sample_weight=None) -> float`` and
    ``gradient(y_true, y_pred, sample_weight=None)`` (dL/dy_pred, the shape of y_pred).

    Subclasses define ``call(y_true, y_pred)``, the per-sample losses (Keras' name), and
    ``per_sample_gradient``; the base class checks ``sample_weight`` and reduces
    (``'sum_over_batch_size'``).
    """

    name = "loss"

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def per_sample_gradient(self, y_true, y_pred):
        raise NotImplementedError

    def _weights(self, sample_weight, y_pred):
        if sample_weight is None:
            return None
        shape = np.shape(y_pred)
        count = shape[0] if shape else 1
        return check_sample_weight(sample_weight, count, loss_shape=shape[:-1])

    def __call__(self, y_true, y_pred, sample_weight=None):
        return reduce_loss(self.call(y_true, y_pred), self._weights(sample_weight, y_pred))

    def gradient(self, y_true, y_pred, sample_weight=None):
        return reduce_gradient(self.per_sample_gradient(y_true, y_pred),
                               self._weights(sample_weight, y_pred))

    def get_config(self):
        return {"name": self.name}


def _check_from_logits(from_logits):
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"from_logits: expected True or False, got {from_logits!r}")
    return bool(from_logits)


class _ElementwiseLoss(Loss):
    """Losses whose targets have y_pred's shape (BCE, MSE): a rank-1 y_pred is (N, 1)."""

    def _prepared(self, y_true, y_pred):
        y_true, y_pred = _pair(y_true, y_pred)
        return _as_outputs(y_true), _as_outputs(y_pred), y_pred.shape

    def gradient(self, y_true, y_pred, sample_weight=None):
        y_true, outputs, shape = self._prepared(y_true, y_pred)
        weights = self._weights(sample_weight, outputs)
        return reduce_gradient(self._elementwise_gradient(y_true, outputs), weights).reshape(shape)

    def call(self, y_true, y_pred):
        y_true, outputs, _ = self._prepared(y_true, y_pred)
        return self._per_sample(y_true, outputs)

    def per_sample_gradient(self, y_true, y_pred):
        y_true, outputs, shape = self._prepared(y_true, y_pred)
        return self._elementwise_gradient(y_true, outputs).reshape(shape)


class BinaryCrossentropy(_ElementwiseLoss):
    r"""Binary cross-entropy,
    :math:`\frac1n\sum_i w_i \, \mathrm{mean}_k[-y\log p - (1-y)\log(1-p)]`.

    On probabilities, p is clipped to [1e-7, 1 - 1e-7] first, as Keras does. Targets should
    lie in [0, 1]. ``from_logits=True`` takes logits z and uses the exact form
    :math:`\max(z,0) - zy + \log(1+e^{-|z|})`. See :func:`binary_crossentropy`.
    """

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = _check_from_logits(from_logits)

    def _per_sample(self, y_true, y_pred):
        return binary_crossentropy(y_true, y_pred, self.from_logits)

    def _elementwise_gradient(self, y_true, y_pred):
        return binary_crossentropy_gradient(y_true, y_pred, self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class MeanSquaredError(_ElementwiseLoss):
    r"""Mean squared error :math:`\frac1n\sum_i w_i \, \mathrm{mean}_k (\hat y - y)^2`."""

    name = "mean_squared_error"

    def _per_sample(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)

    def _elementwise_gradient(self, y_true, y_pred):
        return mean_squared_error_gradient(y_true, y_pred)


class CategoricalCrossentropy(Loss):
    r"""Categorical cross-entropy against one-hot targets,
    :math:`\frac1n \sum_i w_i \left(-\sum_k y_{ik} \log c_{ik}\right)`.

    ``y_pred`` (N, C) holds probabilities (a softmax output): Keras 3 renormalises each row
    to sum 1 and clips to [1e-7, 1 - 1e-7] before the log. With ``from_logits=True`` it holds
    logits and the loss is exact; its gradient is :math:`(\mathrm{softmax}(z) - y) / N`.
    ``y_true`` has y_pred's shape. See :func:`categorical_crossentropy`.
    """

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = _check_from_logits(from_logits)

    def _prepared(self, y_true, y_pred):
        y_pred = _class_scores(y_pred)
        y_true = _numbers(y_true, "y_true")
        if y_true.shape != y_pred.shape:
            hint = (" (integer labels need sparse_categorical_crossentropy)"
                    if y_true.shape in (y_pred.shape[:-1], (*y_pred.shape[:-1], 1)) else "")
            raise ValueError(f"y_true: expected one-hot targets of y_pred's shape "
                             f"{y_pred.shape}, got shape {y_true.shape}{hint}")
        if y_true.dtype.kind == "f" and not np.isfinite(y_true).all():
            raise ValueError("y_true: expected finite targets, found NaN or infinity")
        return y_true.astype(y_pred.dtype), y_pred

    def call(self, y_true, y_pred):
        return categorical_crossentropy(*self._prepared(y_true, y_pred), self.from_logits)

    def per_sample_gradient(self, y_true, y_pred):
        return categorical_crossentropy_gradient(*self._prepared(y_true, y_pred),
                                                 self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    r"""Cross-entropy against integer class labels,
    :math:`\frac1n \sum_i w_i \left(-\log c_{i, y_i}\right)`.

    ``y_true`` holds class ids of shape (N,) or (N, 1) (or y_pred.shape[:-1]), in [0, C);
    ``y_pred`` (N, C) probabilities (renormalised and clipped as in Keras) or, with
    ``from_logits=True``, logits, whose gradient is :math:`(\mathrm{softmax}(z) -
    \mathrm{onehot}(y)) / N`. Labels out of range raise ValueError (Keras' NumPy backend
    gives them a silent loss of 0, TensorFlow raises).
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = _check_from_logits(from_logits)

    def _prepared(self, y_true, y_pred):
        y_pred = _class_scores(y_pred)
        return _labels(y_true, y_pred), y_pred

    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(*self._prepared(y_true, y_pred), self.from_logits)

    def per_sample_gradient(self, y_true, y_pred):
        return sparse_categorical_crossentropy_gradient(*self._prepared(y_true, y_pred),
                                                        self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


_CLASSES = (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
            MeanSquaredError)
_BY_NAME = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}
_BY_CLASS_NAME = {cls.__name__: cls for cls in _CLASSES}
# Keras' functions (keras.losses.binary_crossentropy ...) passed to compile mean their class.
_BY_FUNCTION = {binary_crossentropy: BinaryCrossentropy,
                categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                mean_squared_error: MeanSquaredError}


def deserialize(config):
    """A loss from a configuration: nprnn's ``{'name': ..., 'from_logits': ...}`` (what
    ``get_config`` returns) or Keras' ``{'class_name': ..., 'config': {...}}``.

    Keras' options that nprnn does not implement must have their neutral values
    (``reduction='sum_over_batch_size'``, ``label_smoothing=0``, ``axis=-1``); others raise.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"loss: expected a configuration dict, got {type(config).__name__}")
    if "class_name" in config:
        cls = _BY_CLASS_NAME.get(config["class_name"]) or _BY_NAME.get(config["class_name"])
        options = dict(config.get("config") or {})
        options.pop("name", None)
    elif "name" in config:
        cls = _BY_NAME.get(config["name"])
        options = {k: v for k, v in config.items() if k != "name"}
    else:
        raise ValueError(f"loss: expected a dict with 'name' or 'class_name', got {config!r}")
    if cls is None:
        raise ValueError(f"loss: expected one of {sorted(_BY_NAME)} or "
                         f"{sorted(_BY_CLASS_NAME)}, got {dict(config)!r}")
    neutral = {"reduction": ("sum_over_batch_size", "auto", None), "label_smoothing": (0, 0.0),
               "axis": (-1,), "dtype": (None,), "ignore_class": (None,)}
    for key, allowed in neutral.items():
        if key in options:
            value = options.pop(key)
            if value not in allowed:
                raise ValueError(f"loss: {cls.__name__}({key}={value!r}) is not supported; "
                                 f"nprnn implements {key}={allowed[0]!r}")
    try:
        return cls(**options)
    except TypeError as error:
        raise ValueError(f"loss: {cls.__name__} cannot be built from {dict(config)}: "
                         f"{error}") from None


def get(identifier):
    """A loss object from a name ('binary_crossentropy', 'categorical_crossentropy',
    'sparse_categorical_crossentropy', 'mse', or a class name such as
    'CategoricalCrossentropy'), a configuration dict (:func:`deserialize`), an instance, or
    one of this module's per-sample functions (``losses.categorical_crossentropy``, as
    Keras' ``compile(loss=keras.losses.categorical_crossentropy)``)."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        raise TypeError(f"loss: got the class {identifier.__name__}; pass an instance such as "
                        f"{identifier.__name__}() or a name from {sorted(_BY_NAME)}")
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, str) and identifier in _BY_CLASS_NAME:
        return _BY_CLASS_NAME[identifier]()
    if isinstance(identifier, Mapping):
        return deserialize(identifier)
    if callable(identifier) and identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    raise ValueError(f"loss: expected one of {sorted(_BY_NAME)} or a Loss, got {identifier!r}")

