"""pad_sequences and to_categorical: Keras' semantics, as properties over random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nprnn.preprocessing.sequence import pad_sequences as pad_from_old_path
from nprnn.utils import SparseOneHot, pad_sequences, to_categorical

sequences_strategy = st.lists(st.lists(st.integers(1, 499), max_size=30), min_size=1, max_size=12)


def test_old_import_path_is_the_same_function():
    assert pad_from_old_path is pad_sequences


def test_book_example():
    # Keep the LAST words; pad at the FRONT.
    padded = pad_sequences([[1, 2, 3], [4, 5, 6, 7, 8]], maxlen=4)
    np.testing.assert_array_equal(padded, [[0, 1, 2, 3], [5, 6, 7, 8]])
    assert padded.dtype == np.int32


@settings(max_examples=60, deadline=None)
@given(sequences=sequences_strategy, maxlen=st.integers(1, 40),
       padding=st.sampled_from(["pre", "post"]), truncating=st.sampled_from(["pre", "post"]))
def test_pad_sequences_properties(sequences, maxlen, padding, truncating):
    padded = pad_sequences(sequences, maxlen=maxlen, padding=padding, truncating=truncating)
    assert padded.shape == (len(sequences), maxlen)
    for row, sequence in zip(padded, sequences):
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        if padding == "pre":
            assert list(row[maxlen - len(kept):]) == kept
            assert not row[:maxlen - len(kept)].any()
        else:
            assert list(row[:len(kept)]) == kept
            assert not row[len(kept):].any()


@settings(max_examples=30, deadline=None)
@given(sequences=sequences_strategy)
def test_maxlen_none_uses_the_longest(sequences):
    padded = pad_sequences(sequences)
    assert padded.shape == (len(sequences), max(len(s) for s in sequences))


def test_value_dtype_and_empty_sequences():
    padded = pad_sequences([[], [1.5, 2.5]], maxlen=3, dtype="float32", value=-1.0)
    np.testing.assert_array_equal(padded, [[-1, -1, -1], [-1, 1.5, 2.5]])
    assert pad_sequences([], maxlen=5).shape == (0, 5)


def test_object_array_of_lists_like_imdb():
    reviews = np.empty(2, dtype=object)
    reviews[0], reviews[1] = [1, 14, 22], [1, 194]
    np.testing.assert_array_equal(pad_sequences(reviews, maxlen=2), [[14, 22], [1, 194]])


@pytest.mark.parametrize("kwargs, message", [
    ({"maxlen": 0}, "maxlen"), ({"maxlen": -3}, "maxlen"), ({"maxlen": 2.5}, "maxlen"),
    ({"padding": "middle"}, "padding"), ({"truncating": "both"}, "truncating"),
])
def test_pad_sequences_rejects_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        pad_sequences([[1, 2, 3]], **kwargs)


def test_pad_sequences_refuses_to_truncate_fractions():
    with pytest.raises(ValueError, match="non-integral"):
        pad_sequences([[1.5, 2.0]], maxlen=3)
    with pytest.raises(ValueError, match="item 1"):
        pad_sequences([[1, 2], 5])


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), classes=st.integers(1, 9),
       seed=st.integers(0, 2**16))
def test_to_categorical_properties(shape, classes, seed):
    ids = np.random.default_rng(seed).integers(0, classes, size=shape)
    one_hot = to_categorical(ids, num_classes=classes)
    expected_shape = tuple(shape[:-1]) if len(shape) > 1 and shape[-1] == 1 else tuple(shape)
    assert one_hot.shape == expected_shape + (classes,)
    assert one_hot.dtype == np.float32
    np.testing.assert_array_equal(one_hot.sum(axis=-1), 1)  # exactly one 1 per row
    np.testing.assert_array_equal(one_hot.argmax(axis=-1), ids.reshape(expected_shape))
    sparse = to_categorical(ids, num_classes=classes, sparse=True)
    assert sparse.shape == one_hot.shape
    np.testing.assert_array_equal(np.asarray(sparse), one_hot)


def test_to_categorical_infers_num_classes_like_the_book():
    seq = np.array([[0, 3, 499], [2, 2, 1]])
    assert to_categorical(seq).shape == (2, 3, 500)
    assert to_categorical(np.array([[1], [0]])).shape == (2, 2)  # trailing 1 dropped


def test_book_memory_figures():
    """train_seq.nbytes = 8,000,000 and the one-hot 4,000,000,000 bytes, at 1/100 scale."""
    seq = np.zeros((200, 100), dtype=np.int32)
    assert seq.nbytes == 80_000
    sparse = to_categorical(seq, num_classes=500, sparse=True)
    assert sparse.dense_nbytes == 40_000_000 == to_categorical(seq, num_classes=500).nbytes
    assert sparse.nbytes == 80_000


def test_sparse_one_hot_slicing():
    ids = np.arange(12).reshape(4, 3) % 5
    sparse = to_categorical(ids, num_classes=5, sparse=True)
    assert isinstance(sparse[1:3], SparseOneHot) and sparse[1:3].shape == (2, 3, 5)
    assert isinstance(sparse[[0, 2]], SparseOneHot)
    assert len(sparse) == 4 and sparse.ndim == 3 and sparse.size == 60
    np.testing.assert_array_equal(sparse[1], to_categorical(ids[1], num_classes=5))
    np.testing.assert_array_equal(sparse[:, 0], to_categorical(ids[:, 0], num_classes=5))


@pytest.mark.parametrize("ids, kwargs, message", [
    ([-1, 2], {}, ">= 0"), ([1, 5], {"num_classes": 5}, "< num_classes"),
    ([0.5, 1], {}, "fractional"), ([1, 2], {"num_classes": 0}, "num_classes"),
    (["a"], {}, "dtype"),
])
def test_to_categorical_rejects_bad_input(ids, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_categorical(np.array(ids), **kwargs)
