"""Argument checks shared by the public API: each error names the argument, what was
expected and what came."""

from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(value, name):
    """Return ``value`` as an int if it is an integer > 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def check_non_negative_int(value, name):
    """Return ``value`` as an int if it is an integer >= 0, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name}: expected a non-negative int, got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value}")
    return int(value)


def check_float(value, name, low=None, high=None, low_open=False, high_open=False):
    """Return ``value`` as a finite float inside the given bounds, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    value = float(value)
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"{name}: expected a number in {interval}, got {value}")
    return value


def check_choice(value, name, choices):
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def as_token_ids(x, name, vocabulary_size=None):
    """Return ``x`` as an integer array of token ids in [0, vocabulary_size), or raise.

    Float arrays are accepted when every value is integral (Keras feeds float ids to an
    Embedding after a cast); anything else that is not an integer raises.
    """
    if isinstance(x, list) and x and any(isinstance(item, (list, tuple, np.ndarray)) for item in x):
        lengths = {len(item) for item in x if hasattr(item, "__len__")}
        if len(lengths) > 1:
            raise ValueError(
                f"{name}: expected a rectangular array of token ids, got a ragged list with "
                f"sequence lengths {sorted(lengths)[:5]}...; pad it with pad_sequences first"
            )
    raw = np.asarray(x)
    if raw.dtype == object:
        raise TypeError(
            f"{name}: expected a rectangular integer array of token ids, got an object array "
            "(ragged sequences? pad them with pad_sequences first)"
        )
    if raw.dtype.kind == "b" or raw.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected integer token ids, got dtype {raw.dtype}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"{name}: expected integer token ids, found NaN or infinity")
        if np.any(raw != np.floor(raw)):
            raise ValueError(f"{name}: expected integer token ids, found fractional values")
    if raw.size:
        low, high = raw.min(), raw.max()
        if low < 0:
            raise ValueError(f"{name}: expected token ids >= 0, found {low}")
        if vocabulary_size is not None and high >= vocabulary_size:
            raise ValueError(
                f"{name}: expected token ids in [0, {vocabulary_size}) (input_dim), found {high}"
            )
    return raw.astype(np.intp, copy=False) if raw.dtype.kind != "i" else raw


def as_float_array(x, name, dtype):
    """Return ``x`` as a finite float array of ``dtype``, or raise."""
    raw = np.asarray(x)
    if raw.dtype == object:
        raise TypeError(f"{name}: expected a rectangular numeric array, got an object array")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {raw.dtype}")
    values = raw.astype(dtype, copy=False)
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    return values
