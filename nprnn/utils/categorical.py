"""``to_categorical`` and the index-backed one-hot array it can return instead of a dense one."""

from __future__ import annotations

import numbers

import numpy as np


def _check_class_ids(x, num_classes, argument="x"):
    """Return ``x`` as an int64 array of class ids in [0, num_classes), or raise."""
    raw = np.asarray(x)
    if raw.dtype == object:
        raise TypeError(
            f"{argument}: expected a rectangular array of integer class ids, got a ragged "
            "object array (pad the sequences first with pad_sequences)"
        )
    if raw.dtype.kind == "b" or raw.dtype.kind not in "iuf":
        raise TypeError(f"{argument}: expected integer class ids, got dtype {raw.dtype}")
    if raw.dtype.kind == "f":
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"{argument}: expected integer class ids, found NaN or infinity")
        if np.any(raw != np.round(raw)):
            raise ValueError(f"{argument}: expected integer class ids, found fractional values")
    if raw.dtype.kind in "uf" and raw.size and raw.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{argument}: expected class ids < 2**63, found {raw.max()}")
    if raw.dtype.kind == "f" and raw.size and raw.min() < 0:
        raise ValueError(f"{argument}: expected class ids >= 0, found {raw.min()}")
    ids = raw.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError(f"{argument}: expected class ids >= 0, found {ids.min()}")
    if num_classes is None:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    else:
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
            raise TypeError(f"num_classes: expected a positive int or None, got {num_classes!r}")
        if num_classes <= 0:
            raise ValueError(f"num_classes: expected a positive int or None, got {num_classes}")
        num_classes = int(num_classes)
        if ids.size and ids.max() >= num_classes:
            raise ValueError(
                f"{argument}: expected class ids < num_classes={num_classes}, found {ids.max()}"
            )
    return ids, num_classes


def to_categorical(x, num_classes=None, dtype="float32", sparse=False):
    """One-hot encode class ids: ``out[..., c] = 1.0 if x[...] == c else 0.0``.

    Keras' semantics (``keras/src/utils/numerical_utils.py``): the output shape is
    ``x.shape + (num_classes,)``, except that a trailing axis of size 1 is dropped first
    (``(N, 1)`` labels give ``(N, C)``); ``num_classes=None`` means ``max(x) + 1``. The dtype
    defaults to float32, as in the TensorFlow 2 Keras of the book (Keras 3 returns float64):
    the book's ``to_categorical(train_seq)`` is 20000 x 100 x 500 x 4 = 4,000,000,000 bytes.

    Unlike Keras, negative or too-large ids raise ValueError (NumPy indexing would wrap a
    negative id to the last class).

    Parameters
    ----------
    x : array-like of non-negative ints, any shape
    num_classes : int or None
    dtype : float dtype, default 'float32'
    sparse : bool, default False
        If True, return a :class:`SparseOneHot`: the same array in meaning, stored as the
        ids alone (``x.nbytes`` instead of ``x.size * num_classes * itemsize``). nprnn's
        SimpleRNN accepts it wherever it accepts the dense array and computes the same
        numbers by gathering rows of its kernel.

    Returns
    -------
    ndarray or SparseOneHot, shape x.shape + (num_classes,)
    """
    argument = "x" if num_classes is None else "num_classes"
    ids, num_classes = _check_class_ids(x, num_classes)
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"dtype: expected a numpy dtype, got {dtype!r}") from error
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids.reshape(ids.shape[:-1])
    if sparse:
        return SparseOneHot(ids, num_classes, dtype=dtype)
    try:
        return dense_one_hot(ids, num_classes, dtype)
    except (MemoryError, ValueError) as error:  # NumPy: "array is too big" is a ValueError
        nbytes = ids.size * num_classes * dtype.itemsize
        raise ValueError(
            f"{argument}: a dense one-hot array of shape {ids.shape + (num_classes,)} needs "
            f"{nbytes / 2**30:,.1f} GiB, which cannot be allocated ({type(error).__name__}); "
            "pass sparse=True for a SparseOneHot that stores the ids alone") from None


def dense_one_hot(ids, num_classes, dtype):
    """``out[..., c] = (ids[...] == c)``, shape ids.shape + (num_classes,), no checks."""
    flat = ids.reshape(-1)
    categorical = np.zeros((flat.size, num_classes), dtype=dtype)
    categorical[np.arange(flat.size), flat] = 1
    return categorical.reshape(ids.shape + (num_classes,))


class SparseOneHot:
    """A one-hot array stored as its indices: shape ``indices.shape + (num_classes,)``.

    It reports the dense array's ``shape``, ``ndim``, ``size`` and ``dtype``; ``nbytes`` is
    what it really holds (the indices), ``dense_nbytes`` what the dense array would take.
    Indexing the first axis (an int, a slice, an index array or a boolean mask) returns
    another SparseOneHot, so models can batch it; any other indexing, ``np.asarray`` and
    :meth:`toarray` build the dense values.

    Parameters
    ----------
    indices : integer array, shape (N, ...)
        The class id of each position, in [0, num_classes).
    num_classes : int
    dtype : float dtype of the dense array it stands for, default float32
    """

    __array_priority__ = 10

    def __init__(self, indices, num_classes, dtype="float32"):
        ids, num_classes = _check_class_ids(indices, num_classes, argument="indices")
        if num_classes is None:
            raise ValueError("num_classes: expected a positive int, got None")
        index_dtype = np.int32 if num_classes <= np.iinfo(np.int32).max else np.int64
        # (reshaped: np.ascontiguousarray turns a 0-d array into shape (1,))
        self.indices = np.ascontiguousarray(ids, dtype=index_dtype).reshape(ids.shape)
        self.num_classes = num_classes
        self.dtype = np.dtype(dtype)

    @property
    def shape(self):
        return self.indices.shape + (self.num_classes,)

    @property
    def ndim(self):
        return self.indices.ndim + 1

    @property
    def size(self):
        return int(self.indices.size) * self.num_classes

    @property
    def nbytes(self):
        """Bytes actually held: those of the indices."""
        return int(self.indices.nbytes)

    @property
    def dense_nbytes(self):
        """Bytes the equivalent dense array would take."""
        return self.size * self.dtype.itemsize

    def __len__(self):
        return len(self.indices)

    def __repr__(self):
        return (
            f"SparseOneHot(shape={self.shape}, dtype={self.dtype.name}, "
            f"nbytes={self.nbytes:,} instead of {self.dense_nbytes:,})"
        )

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if isinstance(key, tuple) or key is Ellipsis or key is None:
            return self.toarray()[key]
        selected = self.indices[key]
        if np.ndim(selected) == 0:
            return self.toarray()[key]
        return SparseOneHot(selected, self.num_classes, dtype=self.dtype)

    def toarray(self):
        """The dense one-hot array, shape ``self.shape``."""
        return dense_one_hot(self.indices, self.num_classes, self.dtype)

    def __array__(self, dtype=None, copy=None):
        dense = self.toarray()
        return dense if dtype is None else dense.astype(dtype)

    def argmax(self, axis=-1):
        """Class ids: the inverse of the encoding along the last axis."""
        if axis not in (-1, self.ndim - 1):
            return self.toarray().argmax(axis=axis)
        return self.indices.copy()
