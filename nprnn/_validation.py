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
    if (value is not None and not isinstance(value, str)) or value not in choices:
        listed = sorted(c for c in choices if c is not None) + [None] * (None in choices)
        raise ValueError(f"{name}: expected one of {listed}, got {value!r}")
    return value


def check_bool(value, name):
    """Return ``value`` as a bool if it is a bool (Python's or NumPy's), else raise.

    The integers 0 and 1 are accepted too; strings such as ``'no'`` are refused
    (``bool('no')`` is True).
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_str(value, name):
    """Return ``value`` if it is a non-empty str, else raise."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name}: expected a non-empty str, got ''")
    return value


def check_float_dtype(dtype, name="dtype"):
    """Return the name of ``dtype`` if it is float32 or float64 (what the kernels compute in)."""
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected 'float32' or 'float64', got {dtype!r}") from None
    if resolved.name not in ("float32", "float64"):
        raise ValueError(f"{name}: expected 'float32' or 'float64', got {resolved.name!r}")
    return resolved.name


_PAD_HINT = "; pad token sequences with pad_sequences first"


def as_array(x, name, hint=_PAD_HINT):
    """``np.asarray(x)``, with errors that name the argument.

    None, and ragged nested lists (which NumPy refuses or turns into object arrays), raise.
    """
    if x is None:
        raise ValueError(f"{name}: expected an array, got None")
    try:
        raw = np.asarray(x)
    except (ValueError, TypeError):
        raise ValueError(f"{name}: expected a rectangular array, got a ragged nested sequence "
                         f"(items of different lengths){hint}") from None
    if raw.dtype == object:
        raise TypeError(f"{name}: expected a rectangular numeric array, got an object array "
                        f"(ragged sequences, or items that are not numbers){hint}")
    return raw


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
    raw = as_array(x, name)
    if raw.dtype.kind == "b" or raw.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected integer token ids, got dtype {raw.dtype}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"{name}: expected integer token ids, found NaN or infinity")
        fractional = raw != np.floor(raw)
        if np.any(fractional):
            raise ValueError(f"{name}: expected integer token ids, found fractional values "
                             f"such as {float(raw[fractional].flat[0])}")
    if raw.size:
        low, high = raw.min(), raw.max()
        if low < 0:
            raise ValueError(f"{name}: expected token ids >= 0, found {low}")
        if vocabulary_size is not None and high >= vocabulary_size:
            raise ValueError(
                f"{name}: expected token ids in [0, {vocabulary_size}) (input_dim), found {high}"
            )
        if raw.dtype.kind != "i" and high > np.iinfo(np.intp).max:
            raise ValueError(f"{name}: token id {high} is too large for an index")
    return raw.astype(np.intp, copy=False) if raw.dtype.kind != "i" else raw


def all_finite(array, block_bytes=1 << 22) -> bool:
    """``np.isfinite(array).all()`` for float arrays, in blocks of rows.

    The book's dense one-hot training set is 4 GB; a whole-array ``isfinite`` would allocate
    a 1 GB boolean temporary, blocks of about 4 MB do not.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "fc" or array.size == 0:
        return True
    if array.ndim == 0 or array.nbytes <= block_bytes:
        return bool(np.isfinite(array).all())
    rows_per_block = max(1, block_bytes // max(1, array[0].nbytes))
    return all(bool(np.isfinite(array[start:start + rows_per_block]).all())
               for start in range(0, len(array), rows_per_block))


def as_float_array(x, name, dtype):
    """Return ``x`` as a finite float array of ``dtype``, or raise."""
    raw = as_array(x, name)
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {raw.dtype}")
    if raw.dtype.kind == "f" and not all_finite(raw):
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    with np.errstate(over="ignore"):
        values = raw.astype(dtype, copy=False)
    if values is not raw and values.dtype.kind == "f" and not all_finite(values):
        limit = np.finfo(values.dtype).max
        raise ValueError(f"{name}: values up to {np.abs(raw).max():.3g} overflow {values.dtype} "
                         f"(largest finite {limit:.3g}); scale the inputs")
    return values


def check_verbose(verbose, name="verbose", allow_auto=True):
    """Keras' verbosity: 0 (silent), 1, 2, or 'auto' (= 1) where ``allow_auto``; bools count
    as 0 and 1."""
    if allow_auto and isinstance(verbose, str) and verbose == "auto":
        return 1
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if isinstance(verbose, numbers.Integral) and 0 <= int(verbose) <= 2:
        return int(verbose)
    expected = "0, 1, 2 or 'auto'" if allow_auto else "0, 1 or 2"
    raise ValueError(f"{name}: expected {expected}, got {verbose!r}")
