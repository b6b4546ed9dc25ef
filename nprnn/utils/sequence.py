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
    (Keras truncates 1.5 to 1), and a non-sequence item.

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

    lengths = []
    sample_shape = ()
    found_sample_shape = False
    for position, sequence in enumerate(sequences):
        if isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__"):
            raise ValueError(
                f"sequences: expected every item to be a sequence, item {position} is "
                f"{type(sequence).__name__} {sequence!r}"
            )
        lengths.append(len(sequence))
        if not found_sample_shape and len(sequence):
            sample_shape = np.asarray(sequence).shape[1:]
            found_sample_shape = True
    if maxlen is None:
        maxlen = max(lengths, default=0)

    padded = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
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


def _as_dtype(items, dtype: np.dtype, position: int) -> np.ndarray:
    """Convert one sequence, refusing casts that would change a value."""
    raw = np.asarray(items)
    if raw.dtype == object:
        raw = np.asarray(list(items))
    if np.issubdtype(dtype, np.integer) and raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise ValueError(
                f"sequences: item {position} holds non-integral values such as "
                f"{raw[np.flatnonzero((raw != np.round(raw)) | ~np.isfinite(raw))[0]]!r}; "
                f"dtype {dtype.name} would change them"
            )
    if np.issubdtype(dtype, np.integer) and raw.dtype.kind in "iuf" and raw.size:
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise ValueError(
                f"sequences: item {position} has values outside the range of {dtype.name} "
                f"[{info.min}, {info.max}]"
            )
    return raw.astype(dtype, copy=False)
