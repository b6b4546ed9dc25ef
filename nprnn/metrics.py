r"""Accuracy metrics with Keras 3's names, how Keras 3 resolves 'accuracy', and sample weights.

Each metric is a function ``f(y_true, y_pred, sample_weight=None) -> float``: the per-sample
matches :math:`m_i \in \{0, 1\}` (a mean over the last axis for several binary outputs)
averaged as Keras' ``Mean`` metric does,

.. math:: \mathrm{acc} = \frac{\sum_i w_i m_i}{\sum_i w_i},

with :math:`w_i = 1` without weights, and 0 when every weight is 0 (Keras' divide_no_nan).
Unlike a loss (divided by the number of samples), a weighted metric is divided by the sum
of the weights. In Keras 3's ``fit``, ``compile(metrics=...)`` are computed *without* the
sample or class weights; only ``compile(weighted_metrics=...)`` use them.

'accuracy' (or 'acc') is resolved as Keras 3's ``compile_utils.get_metric``: from the
shapes of y_true and y_pred, binary when y_pred's last axis is 1, sparse categorical when
y_true has one axis fewer than y_pred or a last axis of 1 (and y_pred more than one class),
categorical otherwise. A BinaryCrossentropy over several outputs therefore gets categorical
accuracy in Keras 3 (Keras 2 chose binary accuracy from the loss).
"""

from __future__ import annotations

import numpy as np

from nprnn import losses as losses_module

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "get",
    "resolve_accuracy",
    "sparse_categorical_accuracy",
]


def _weighted_mean(matches, sample_weight):
    """Keras' Mean: sum(w m) / sum(w); per-sample means over trailing axes first."""
    matches = np.asarray(matches, dtype=np.float64)
    if sample_weight is None:
        return float(np.mean(matches)) if matches.size else 0.0
    weights = losses_module.check_sample_weight(sample_weight, matches.shape[0])
    per_sample = matches.reshape(matches.shape[0], -1).mean(axis=1) if matches.ndim > 1 \
        else matches
    total = float(np.sum(weights))
    return float(np.sum(weights * per_sample) / total) if total > 0 else 0.0


def binary_accuracy(y_true, y_pred, threshold=0.5, sample_weight=None):
    """Fraction of predictions on the right side of the threshold.

    ``mean(float(y_pred > threshold) == y_true)``, as Keras' ``binary_accuracy`` (a
    prediction of exactly 0.5 counts as class 0). Labels are compared after the same
    threshold (a label 1 or 0 is unchanged by it). A rank-1 y_pred (N,) is N samples.
    """
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    outputs = y_pred.reshape(-1, 1) if y_pred.ndim == 1 else y_pred
    labels = y_true.reshape(outputs.shape) if y_true.size == outputs.size else y_true
    if labels.shape != outputs.shape:
        raise ValueError(f"y_true, y_pred: expected the same number of values, got shapes "
                         f"{y_true.shape} and {y_pred.shape}")
    return _weighted_mean((outputs > threshold) == (labels > threshold), sample_weight)


def categorical_accuracy(y_true, y_pred, sample_weight=None):
    """Fraction of samples whose largest score is at the one-hot target's class:
    ``argmax(y_pred) == argmax(y_true)`` (the first maximum on ties, as Keras)."""
    y_pred = np.asarray(y_pred)
    y_true = np.asarray(y_true)
    if y_pred.ndim < 2 or y_true.shape != y_pred.shape:
        raise ValueError(f"y_true, y_pred: expected one-hot targets of y_pred's shape (N, C), "
                         f"got shapes {y_true.shape} and {y_pred.shape}")
    return _weighted_mean(np.argmax(y_pred, -1) == np.argmax(y_true, -1), sample_weight)


def sparse_categorical_accuracy(y_true, y_pred, sample_weight=None):
    """Fraction of samples whose largest score is at the integer label:
    ``argmax(y_pred) == y_true``, labels of shape (N,) or (N, 1)."""
    y_pred = np.asarray(y_pred)
    labels = np.asarray(y_true)
    if y_pred.ndim < 2:
        raise ValueError(f"y_pred: expected shape (N, C), got {y_pred.shape}")
    if labels.shape == (*y_pred.shape[:-1], 1):
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(f"y_true: expected class labels of shape {y_pred.shape[:-1]}, got "
                         f"shape {labels.shape}")
    return _weighted_mean(np.argmax(y_pred, -1) == labels, sample_weight)


def resolve_accuracy(y_true_shape, y_pred_shape):
    """The accuracy that Keras 3 picks for 'accuracy' from the two shapes.

    Keras 3's ``is_binary_or_sparse_categorical``: binary if y_pred's last axis is 1 (or
    y_pred has one axis, N samples of one output, nprnn's addition); else sparse categorical
    if y_true has fewer axes than y_pred, or a last axis of 1; else categorical.
    """
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    if len(y_pred_shape) < 2 or y_pred_shape[-1] == 1:
        return binary_accuracy
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape and y_true_shape[-1] == 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def accuracy(y_true, y_pred, sample_weight=None):
    """'accuracy' as Keras 3 resolves it, from the shapes (:func:`resolve_accuracy`)."""
    function = resolve_accuracy(np.shape(y_true), np.shape(y_pred))
    return function(y_true, y_pred, sample_weight=sample_weight)


_BY_NAME = {"accuracy": accuracy, "acc": accuracy, "binary_accuracy": binary_accuracy,
            "categorical_accuracy": categorical_accuracy,
            "sparse_categorical_accuracy": sparse_categorical_accuracy}


def get(identifier, loss=None):
    """``(name, function)`` for a metric name or a callable.

    'accuracy' and 'acc' (logged as 'accuracy') resolve as in Keras 3 from the shapes at
    each call (:func:`accuracy`); with a ``loss`` (a name or a Loss) whose targets fix the
    choice, it is made now: sparse categorical accuracy for SparseCategoricalCrossentropy,
    categorical accuracy for CategoricalCrossentropy (what Keras 3 picks for their valid
    targets). Other names map to their function.
    """
    if isinstance(identifier, str) and identifier in _BY_NAME:
        function = _BY_NAME[identifier]
        if function is accuracy and loss is not None:
            resolved = losses_module.get(loss)
            if isinstance(resolved, losses_module.SparseCategoricalCrossentropy):
                function = sparse_categorical_accuracy
            elif isinstance(resolved, losses_module.CategoricalCrossentropy):
                function = categorical_accuracy
        return ("accuracy" if identifier == "acc" else identifier), function
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    raise ValueError(
        f"metrics: expected names from {sorted(_BY_NAME)} or callables, got {identifier!r}"
    )
