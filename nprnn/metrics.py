"""Metrics. The book asks for 'accuracy', which for one sigmoid output is binary accuracy."""

from __future__ import annotations

import numpy as np


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Fraction of predictions on the right side of the threshold.

    ``mean(float(y_pred > threshold) == y_true)``, as Keras' ``binary_accuracy`` (a
    prediction of exactly 0.5 counts as class 0).
    """
    y_pred = np.asarray(y_pred).reshape(-1)
    y_true = np.asarray(y_true).reshape(-1)
    return float(np.mean((y_pred > threshold) == (y_true > threshold)))


_BY_NAME = {"accuracy": binary_accuracy, "acc": binary_accuracy,
            "binary_accuracy": binary_accuracy}


def get(identifier):
    """Return ``(name, function)`` for a metric name; 'accuracy' means binary accuracy here."""
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return ("accuracy" if identifier == "acc" else identifier), _BY_NAME[identifier]
    if callable(identifier):
        return getattr(identifier, "__name__", "metric"), identifier
    raise ValueError(
        f"metrics: expected names from {sorted(_BY_NAME)} or callables, got {identifier!r}"
    )
