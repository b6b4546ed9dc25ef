"""IMDB movie-review sentiment data, loaded the way ``keras.datasets.imdb`` loads it.

25,000 training and 25,000 test reviews, each already turned into a list of word ids
(id ``k`` is the ``k``-th most frequent word of the corpus) and labelled 1 (positive) or
0 (negative). :func:`load_data` reproduces Keras' shuffling, offsets and filtering exactly,
so results match the textbook; :func:`get_word_index` and :func:`decode_review` turn ids
back into words.

Files are found, downloaded and verified by :mod:`nprnn.datasets._files`: the ``path``
argument, then ``$NPRNN_DATA_DIR``, then the cache (``$NPRNN_CACHE_DIR``, default
``~/.nprnn/datasets``), then Keras' cache ``~/.keras/datasets``, then the Keras URL.

Examples
--------
>>> from nprnn.datasets import imdb
>>> (train_input, train_target), (test_input, test_target) = imdb.load_data(
...     num_words=500)                                              # doctest: +SKIP
>>> imdb.decode_review(train_input[0][:7])                          # doctest: +SKIP
'<start> this film was just <unk> <unk>'
"""

from __future__ import annotations

import itertools
import json
import numbers
import os
from collections.abc import Iterable, Mapping

import numpy as np

from nprnn.datasets import _files
from nprnn.datasets._files import (
    DatasetFileError,
    DatasetNotFoundError,
    HashMismatchError,
    RemoteFile,
    UnsafeFileError,
    UnverifiedFileWarning,
)

__all__ = [
    "load_data",
    "get_word_index",
    "decode_review",
    "IMDB_NPZ",
    "IMDB_WORD_INDEX",
    "PAD_TOKEN",
    "START_TOKEN",
    "OOV_TOKEN",
    "DatasetFileError",
    "DatasetNotFoundError",
    "HashMismatchError",
    "UnsafeFileError",
    "UnverifiedFileWarning",
]

IMDB_NPZ = RemoteFile(
    name="imdb.npz",
    url=_files.KERAS_ORIGIN + "imdb.npz",
    sha256=(
        # The file Keras downloads (the hash keras.datasets.imdb passes to get_file).
        "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
        # A faithful local rebuild: same arrays, written by a newer NumPy.
        "6814c0beea01878740d178d45caaf84fa878f5f452bd5f6bb6b5e3add8655f32",
    ),
)

IMDB_WORD_INDEX = RemoteFile(
    name="imdb_word_index.json",
    url=_files.KERAS_ORIGIN + "imdb_word_index.json",
    # Keras checks this file by md5 (bfafd718b763782e994055a2d397834f); this is the
    # sha256 of the same bytes.
    sha256=("027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",),
)

PAD_TOKEN = "<pad>"
START_TOKEN = "<start>"
OOV_TOKEN = "<unk>"

_ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
_MAX_SEED = 2**32 - 1  # np.random.RandomState accepts seeds in [0, 2**32 - 1]
# Ids are computed in int64; this bound on stored ids and offsets keeps sums exact.
_MAX_ID = 2**62 - 1


def load_data(
    path: str | os.PathLike = "imdb.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
):
    """Load the IMDB reviews as Keras' ``keras.datasets.imdb.load_data`` does.

    Keras' recipe, reproduced step by step (so outputs are identical for the same file):

    1. One ``np.random.RandomState(seed)`` shuffles the training set, then, continuing
       the same random stream, the test set (a permutation of ``arange(n)`` each).
    2. Every stored id ``w`` becomes ``w + index_from``; if ``start_char`` is not None it
       is put in front of each review. Ids ``0 .. index_from - 1`` are thus free for
       padding (0), start (1) and out-of-vocabulary (2).
    3. If ``maxlen`` is given, reviews whose length (start mark included) is
       ``>= maxlen`` are *dropped*, with their labels, not truncated (Keras' docstring
       says "truncated", its code drops). If that empties the train or test set, it is
       an error.
    4. If ``num_words`` is None it becomes the largest id present. Every id outside
       ``[skip_top, num_words)`` is replaced by ``oov_char``, or removed when
       ``oov_char`` is None. Two Keras quirks follow and are kept: with
       ``num_words=None`` the single most rare word (the largest id) itself becomes
       ``oov_char``; and ``skip_top`` applies to every id, so ``skip_top > start_char``
       turns the start mark into ``oov_char`` too.

    Parameters
    ----------
    path : str or os.PathLike, default 'imdb.npz'
        An existing file to read (a copy you supply, any hash accepted with a warning if
        unknown), or a bare file name to look for in ``$NPRNN_DATA_DIR``, the cache
        folder (``$NPRNN_CACHE_DIR``, default ``~/.nprnn/datasets``) and
        ``~/.keras/datasets``, and to download into the cache if missing.
    num_words : int or None, default None
        Keep ids below this value; rarer words become ``oov_char``. None keeps all.
    skip_top : int, default 0
        Ids below this value (the most frequent words) become ``oov_char`` as well.
    maxlen : int or None, default None
        Drop reviews of this length or longer (see step 3). None keeps every review.
    seed : int, default 113
        Seed of the shuffle, in ``[0, 2**32 - 1]``.
    start_char : int or None, default 1
        Id put at the start of every review; None adds nothing.
    oov_char : int or None, default 2
        Id that replaces words cut by ``num_words`` or ``skip_top``; None deletes them.
    index_from : int, default 3
        Offset added to every stored word id.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples of numpy.ndarray
        ``x_*`` are 1-D object arrays whose items are Python lists of ints (reviews have
        different lengths), as ``tf.keras`` 2.x returned them (Keras 3 returns plain
        lists; indexing and ``len`` behave the same). ``y_*`` are int arrays of 0/1.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or value (the message names it), or if
        ``maxlen`` filters out every review of the train or the test set.
    DatasetNotFoundError
        If no copy of the file exists locally and it cannot be downloaded; the message
        says where to put one.
    DatasetFileError
        If the file is damaged, has an unknown hash in the cache, or is not in Keras'
        format; :class:`UnsafeFileError` (a subclass) if its pickles ask for anything
        beyond integer lists.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_data(num_words=500)  # doctest: +SKIP
    >>> len(x_train), len(x_train[0]), y_train[:4]                      # doctest: +SKIP
    (25000, 218, array([1, 0, 0, 1]))
    """
    num_words = _check_int("num_words", num_words, minimum=1, allow_none=True)
    skip_top = _check_int("skip_top", skip_top, minimum=0)
    maxlen = _check_int("maxlen", maxlen, minimum=1, allow_none=True)
    seed = _check_int("seed", seed, minimum=0, maximum=_MAX_SEED)
    start_char = _check_int("start_char", start_char, minimum=0, maximum=_MAX_ID, allow_none=True)
    oov_char = _check_int("oov_char", oov_char, minimum=0, maximum=_MAX_ID, allow_none=True)
    index_from = _check_int("index_from", index_from, minimum=0, maximum=_MAX_ID)

    file_path = _files.locate(path, IMDB_NPZ)
    arrays = _files.load_npz(file_path, _ARRAY_KEYS)
    for split in ("train", "test"):
        _check_split(arrays[f"x_{split}"], arrays[f"y_{split}"], split, file_path)
    try:
        return _prepare(
            arrays["x_train"],
            arrays["y_train"],
            arrays["x_test"],
            arrays["y_test"],
            num_words=num_words,
            skip_top=skip_top,
            maxlen=maxlen,
            seed=seed,
            start_char=start_char,
            oov_char=oov_char,
            index_from=index_from,
        )
    except DatasetFileError as error:
        raise DatasetFileError(f"{file_path}: {error}") from None


def _prepare(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    num_words: int | None,
    skip_top: int,
    maxlen: int | None,
    seed: int,
    start_char: int | None,
    oov_char: int | None,
    index_from: int,
):
    """Keras' transformation of the stored arrays, apart from any file handling.

    Keras runs it as nested list comprehensions; here every review is laid end to end in
    one int64 array so each step is a single NumPy operation (about twice as fast on IMDB).
    The test suite checks the result against a literal list-comprehension version.
    """
    # One generator for both shuffles: the test order depends on the train draw.
    rng = np.random.RandomState(seed)
    train_order = np.arange(len(x_train))
    rng.shuffle(train_order)
    test_order = np.arange(len(x_test))
    rng.shuffle(test_order)
    reviews = list(x_train[train_order]) + list(x_test[test_order])
    labels = (y_train[train_order], y_test[test_order])
    is_train = np.arange(len(reviews)) < len(x_train)

    lengths = np.fromiter(map(len, reviews), dtype=np.int64, count=len(reviews))
    try:
        ids = np.fromiter(
            itertools.chain.from_iterable(reviews), dtype=np.int64, count=int(lengths.sum())
        )
    except OverflowError:
        ids = np.array([-1])  # reported just below
    if ids.size and (ids.min() < 0 or ids.max() > _MAX_ID):
        raise DatasetFileError(
            f"expected stored word ids in [0, {_MAX_ID}], found ids outside that range"
        )
    ids += index_from
    if start_char is not None:
        ids = np.insert(ids, _offsets(lengths), start_char)
        lengths += 1

    if maxlen is not None:
        # Keras keeps reviews strictly shorter than maxlen (its remove_long_seq).
        kept = lengths < maxlen
        for split, in_split in (("train", is_train), ("test", ~is_train)):
            if not kept[in_split].any():
                raise ValueError(
                    f"maxlen: every {split} review has {maxlen} or more ids, so none was "
                    f"kept (reviews of length >= maxlen are dropped); got maxlen={maxlen}, "
                    "use a larger value or None"
                )
        ids = ids[np.repeat(kept, lengths)]
        labels = (labels[0][kept[is_train]], labels[1][kept[~is_train]])
        lengths, is_train = lengths[kept], is_train[kept]

    if num_words is None:
        num_words = int(ids.max()) if ids.size else 0
    in_vocabulary = (ids >= skip_top) & (ids < num_words)
    if oov_char is not None:
        ids = np.where(in_vocabulary, ids, oov_char)
    else:
        review_of_id = np.repeat(np.arange(len(lengths)), lengths)
        lengths = np.bincount(review_of_id[in_vocabulary], minlength=len(lengths))
        ids = ids[in_vocabulary]

    # One tolist() gives Python ints, as Keras' lists hold; slicing it is cheap.
    all_ids = ids.tolist()
    bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
    sequences = [all_ids[begin:end] for begin, end in itertools.pairwise(bounds)]
    n_train = int(is_train.sum())
    return (
        (_object_array(sequences[:n_train]), labels[0]),
        (_object_array(sequences[n_train:]), labels[1]),
    )


def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Start position of each review in the concatenated id array."""
    return np.cumsum(lengths) - lengths


def _object_array(sequences: list[list[int]]) -> np.ndarray:
    # np.array(sequences, dtype=object) would build a 2-D array if all lengths happened
    # to be equal; filling an empty 1-D array keeps one list per item, always.
    array = np.empty(len(sequences), dtype=object)
    for position, sequence in enumerate(sequences):
        array[position] = sequence
    return array


def _check_split(x: np.ndarray, y: np.ndarray, split: str, file_path) -> None:
    """Check that a split has Keras' layout: object array of int lists, 1-D int labels."""
    where = f"{file_path} (x_{split}, y_{split})"
    if x.ndim != 1 or x.dtype != object:
        raise DatasetFileError(
            f"{where}: expected x_{split} to be a 1-D object array of lists, got "
            f"dtype {x.dtype} with shape {x.shape}"
        )
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
        raise DatasetFileError(
            f"{where}: expected y_{split} to be a 1-D int array of length {len(x)}, got "
            f"dtype {y.dtype} with shape {y.shape}"
        )
    for position, review in enumerate(x):
        # type() rather than isinstance(): bool is an int subclass and is not a word id.
        if type(review) is not list or not set(map(type, review)) <= {int}:
            raise DatasetFileError(
                f"{where}: expected every review to be a list of ints, item {position} "
                f"is {type(review).__name__} {_preview(review)}"
            )


def _preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def get_word_index(path: str | os.PathLike = "imdb_word_index.json") -> dict[str, int]:
    """Return the dict mapping each word to its frequency rank, as Keras' does.

    Ranks start at 1 for the most frequent word ("the"). In data loaded with
    :func:`load_data` a word of rank ``r`` appears as id ``r + index_from``.

    Parameters
    ----------
    path : str or os.PathLike, default 'imdb_word_index.json'
        An existing JSON file, or a bare file name looked up like
        :func:`load_data`'s ``path`` (``$NPRNN_DATA_DIR``, cache, ``~/.keras``, download).

    Returns
    -------
    dict of str to int

    Raises
    ------
    DatasetNotFoundError
        If there is no local copy and the download fails.
    DatasetFileError
        If the file is not a JSON object of word → int rank.
    """
    file_path = _files.locate(path, IMDB_WORD_INDEX)
    try:
        with open(file_path, encoding="utf-8") as handle:
            word_index = json.load(handle)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetFileError(f"{file_path}: expected a JSON word index ({error})") from error
    if not isinstance(word_index, dict) or not all(
        isinstance(word, str) and type(rank) is int for word, rank in word_index.items()
    ):
        raise DatasetFileError(
            f"{file_path}: expected a JSON object mapping words to int ranks, got "
            f"{_preview(word_index)}"
        )
    return word_index


def decode_review(
    sequence: Iterable[int],
    word_index: Mapping[str, int] | None = None,
    index_from: int = 3,
    start_char: int | None = 1,
    oov_char: int | None = 2,
) -> str:
    """Turn a sequence of word ids back into text, to read what the model reads.

    Id 0 reads ``'<pad>'``, ``start_char`` reads ``'<start>'``, ``oov_char`` and ids
    with no word read ``'<unk>'``; any other id ``i`` is the word of rank
    ``i - index_from``. Use the same ``index_from``, ``start_char`` and ``oov_char`` as
    in :func:`load_data`.

    Parameters
    ----------
    sequence : iterable of int
        One review: a list of ids, or a 1-D array (e.g. a padded row).
    word_index : mapping of str to int, optional
        Word → rank, as returned by :func:`get_word_index`. Read from the file when
        omitted; pass it when decoding many reviews to read the file only once.
    index_from : int, default 3
        Offset that was added to every rank.
    start_char : int or None, default 1
        Id of the start mark, or None if none was added.
    oov_char : int or None, default 2
        Id of the out-of-vocabulary mark, or None.

    Returns
    -------
    str
        The words separated by single spaces.

    Examples
    --------
    >>> decode_review([1, 14, 22, 2, 0], word_index={"this": 11, "film": 19})
    '<start> this film <unk> <pad>'
    """
    index_from = _check_int("index_from", index_from, minimum=0)
    start_char = _check_int("start_char", start_char, minimum=0, allow_none=True)
    oov_char = _check_int("oov_char", oov_char, minimum=0, allow_none=True)
    if isinstance(sequence, (str, bytes)) or not isinstance(sequence, Iterable):
        raise TypeError(
            f"sequence: expected a list or 1-D array of int ids, got "
            f"{type(sequence).__name__} {_preview(sequence)}"
        )
    if isinstance(sequence, np.ndarray) and sequence.ndim != 1:
        raise ValueError(
            f"sequence: expected one review (a 1-D array), got an array of shape "
            f"{sequence.shape}; decode rows one at a time"
        )
    if word_index is None:
        word_index = get_word_index()
    elif not isinstance(word_index, Mapping):
        raise TypeError(
            f"word_index: expected a mapping of word to rank (see get_word_index), got "
            f"{type(word_index).__name__}"
        )

    id_to_word = {rank + index_from: word for word, rank in word_index.items()}
    # The reserved marks win over words, as in Keras' decoding example.
    id_to_word[0] = PAD_TOKEN
    if start_char is not None:
        id_to_word[start_char] = START_TOKEN
    if oov_char is not None:
        id_to_word[oov_char] = OOV_TOKEN
    return " ".join(id_to_word.get(int(word_id), OOV_TOKEN) for word_id in sequence)


def _check_int(
    name: str,
    value,
    *,
    minimum: int,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as an int after checking type and range; errors name ``name``."""
    expected = "an int" + (" or None" if allow_none else "")
    if value is None and allow_none:
        return None
    # bool is an Integral but True as a word count is almost surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}: expected {expected} {bounds}, got {value}")
    return value
