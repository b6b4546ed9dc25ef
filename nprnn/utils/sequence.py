"""``pad_sequences``: Keras' semantics, with errors where Keras would silently go wrong."""

from __future__ import annotations

import numbers

import numpy as np

_SIDES = ("pre", "post")


def pad_sequences(
    sequences,
    maxlen=None,
    dtype="int32",
    padding="pre",
    truncating="pre",
    value=0.0,
):
    """Pad (or cut) a list of sequences to one length, giving a 2-D array.

    Same semantics as ``keras.utils.pad_sequences`` (``keras/src/utils/sequence_utils.py``):
    the result has shape ``(len(sequences), maxlen) + sample_shape``, filled with ``value``;
    a sequence longer than ``maxlen`` loses items at the front (``truncating='pre'``, the
    default: the book keeps the *last* 100 words of a review) or at the end ('post'); a shorter
    one is padded at the front (``padding='pre'``, the default) or at the end ('post'). With
    ``maxlen=None`` the longest sequence's length is used. Empty sequences become all
    ``value``.

    Where Keras silently goes wrong, nprnn raises instead: ``maxlen <= 0`` (Keras' ``s[-0:]``
    keeps everything and then fails to fit), non-integral numbers cast to an integer dtype
    (Keras truncates 1.5 to 1), a padding ``value`` the dtype would change (0.5 or 'x' for
    int32), a non-sequence item, a ragged item, and an array too large to allocate.

    Parameters
    ----------
    sequences : sequence of sequences
        For example a list of lists of token ids, or the object array of ``imdb.load_data``.
    maxlen : int or None
    dtype : str or numpy dtype, default 'int32'
    padding, truncating : {'pre', 'post'}
    value : scalar, default 0

    Returns
    -------
    ndarray, shape (num_samples, maxlen) + sample_shape

    Examples
    --------
    >>> pad_sequences([[1, 2, 3], [4, 5, 6, 7, 8]], maxlen=4)
    array([[0, 1, 2, 3],
           [5, 6, 7, 8]], dtype=int32)
    """
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise TypeError(
            f"sequences: expected a list (or array) of sequences, got {type(sequences).__name__}"
        )
    if padding not in _SIDES:
        raise ValueError(f"padding: expected one of {_SIDES}, got {padding!r}")
    if truncating not in _SIDES:
        raise ValueError(f"truncating: expected one of {_SIDES}, got {truncating!r}")
    if maxlen is not None:
        if isinstance(maxlen, bool) or not isinstance(maxlen, numbers.Integral):
            raise TypeError(f"maxlen: expected a positive int or None, got {maxlen!r}")
        if maxlen <= 0:
            raise ValueError(f"maxlen: expected a positive int or None, got {maxlen}")
        maxlen = int(maxlen)
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype: expected a numpy dtype, got {dtype!r}") from error

    if isinstance(sequences, np.ndarray) and sequences.ndim == 0:
        raise TypeError("sequences: expected a list (or array) of sequences, got a 0-d array")
    _check_value(value, dtype)

    lengths = []
    sample_shape = ()
    found_sample_shape = False
    for position, sequence in enumerate(sequences):
        if (isinstance(sequence, (str, bytes, dict, set, frozenset))
                or not hasattr(sequence, "__len__")
                or (isinstance(sequence, np.ndarray) and sequence.ndim == 0)):
            raise ValueError(
                f"sequences: expected every item to be a sequence, item {position} is "
                f"{type(sequence).__name__} {sequence!r}"
            )
        lengths.append(len(sequence))
        if not found_sample_shape and len(sequence):
            sample_shape = _as_array(sequence, position).shape[1:]
            found_sample_shape = True
    if maxlen is None:
        maxlen = max(lengths, default=0)

    shape = (len(lengths), maxlen) + sample_shape
    try:
        padded = np.full(shape, value, dtype=dtype)
    except (MemoryError, ValueError) as error:  # NumPy: "array is too big" is a ValueError
        raise ValueError(f"maxlen: an array of shape {shape} and dtype {dtype.name} cannot be "
                         f"allocated ({type(error).__name__}); choose a smaller maxlen") from None
    if maxlen == 0:
        return padded
    for position, sequence in enumerate(sequences):
        if not len(sequence):
            continue
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        kept = _as_dtype(kept, dtype, position)
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"sequences: item {position} has items of shape {kept.shape[1:]}, expected "
                f"{sample_shape} like the first non-empty item"
            )
        if padding == "pre":
            padded[position, maxlen - len(kept) :] = kept
        else:
            padded[position, : len(kept)] = kept
    return padded


def _check_value(value, dtype: np.dtype) -> None:
    """Refuse a padding ``value`` that ``dtype`` would change or cannot hold."""
    if dtype.kind in "iub":
        if isinstance(value, (str, bytes)) or not isinstance(value, (int, float, np.number,
                                                                     np.bool_, bool)):
            raise ValueError(f"value: {value!r} cannot be stored in dtype {dtype.name}")
        if not np.isfinite(value) or value != np.round(value):
            raise ValueError(f"value: {value!r} is not an integer; dtype {dtype.name} would "
                             "change it")
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if not info.min <= value <= info.max:
                raise ValueError(f"value: {value!r} is outside the range of {dtype.name} "
                                 f"[{info.min}, {info.max}]")
    elif dtype.kind in "fc" and isinstance(value, (str, bytes)):
        raise ValueError(f"value: {value!r} cannot be stored in dtype {dtype.name}")


def _as_array(items, position: int) -> np.ndarray:
    try:
        raw = np.asarray(items)
        if raw.dtype == object:
            raw = np.asarray(list(items))
    except (ValueError, TypeError):
        raise ValueError(f"sequences: item {position} is ragged (its items have different "
                         "shapes)") from None
    return raw


def _as_dtype(items, dtype: np.dtype, position: int) -> np.ndarray:
    """Convert one sequence, refusing casts that would change a value."""
    raw = _as_array(items, position)
    if dtype.kind in "iufb" and raw.dtype.kind not in "biuf":
        raise ValueError(f"sequences: item {position} holds values of dtype {raw.dtype} (such "
                         f"as {raw.flat[0].item()!r}), which dtype {dtype.name} cannot hold")
    if np.issubdtype(dtype, np.integer) and raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            bad = raw.flat[np.flatnonzero((raw != np.round(raw)) | ~np.isfinite(raw))[0]]
            raise ValueError(
                f"sequences: item {position} holds non-integral values such as "
                f"{bad.item()!r}; dtype {dtype.name} would change them"
            )
    if np.issubdtype(dtype, np.integer) and raw.dtype.kind in "iuf" and raw.size:
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise ValueError(
                f"sequences: item {position} has values outside the range of {dtype.name} "
                f"[{info.min}, {info.max}]"
            )
    try:
        return raw.astype(dtype, copy=False)
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"sequences: item {position} cannot be converted to {dtype.name} "
                         f"({error})") from None
