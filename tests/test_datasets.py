"""Tests of nprnn.datasets.imdb and the fetching/caching beneath it.

Everything runs on small files written in Keras' format into ``tmp_path``; the network is
replaced by fakes. Tests on the real IMDB file run only when ``NPRNN_DATA_DIR`` names a
folder holding ``imdb.npz`` (e.g. ``NPRNN_DATA_DIR=/path/to/data pytest``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pooch
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib import format as npy_format

from nprnn.datasets import _files, imdb
from nprnn.datasets.imdb import (
    DatasetFileError,
    DatasetNotFoundError,
    HashMismatchError,
    UnsafeFileError,
    UnverifiedFileWarning,
)

# Read before the autouse fixture clears the variable for every test.
REAL_DATA_DIR = os.environ.get("NPRNN_DATA_DIR")
HAS_REAL_DATA = bool(REAL_DATA_DIR) and (Path(REAL_DATA_DIR) / "imdb.npz").is_file()
needs_real_data = pytest.mark.skipif(
    not HAS_REAL_DATA,
    reason="set NPRNN_DATA_DIR to a folder holding the real imdb.npz to run this",
)


# ----------------------------------------------------------------------------- helpers


def object_array(sequences) -> np.ndarray:
    """1-D object array with one list per item, whatever the lengths."""
    array = np.empty(len(sequences), dtype=object)
    for position, sequence in enumerate(sequences):
        array[position] = list(sequence)
    return array


def write_imdb_npz(path, x_train, y_train, x_test, y_test) -> Path:
    """Write a file laid out like Keras' imdb.npz: object arrays of lists, int labels."""
    np.savez(
        path,
        x_train=object_array(x_train),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=object_array(x_test),
        y_test=np.asarray(y_test, dtype=np.int64),
    )
    return Path(path)


def write_sized_npz(path, n_train: int) -> Path:
    """A tiny dataset whose train size tells which copy was loaded."""
    x_train = [[1 + (i % 7), 2, 3 + i] for i in range(n_train)]
    return write_imdb_npz(path, x_train, [i % 2 for i in range(n_train)], [[4, 5]], [1])


def trust(monkeypatch, path) -> str:
    """Add the hash of ``path`` to the known IMDB hashes for this test."""
    digest = pooch.file_hash(str(path))
    # First: a download must match the first hash, the one the URL serves.
    known = (digest,) + imdb.IMDB_NPZ.sha256
    monkeypatch.setattr(imdb, "IMDB_NPZ", dataclasses.replace(imdb.IMDB_NPZ, sha256=known))
    return digest


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def keras_reference(
    x_train,
    y_train,
    x_test,
    y_test,
    *,
    num_words=None,
    skip_top=0,
    maxlen=None,
    seed=113,
    start_char=1,
    oov_char=2,
    index_from=3,
):
    """Keras' recipe written out literally with Python lists (the oracle for _prepare)."""
    rng = np.random.RandomState(seed)
    train_order = list(range(len(x_train)))
    rng.shuffle(train_order)  # the same generator then shuffles the test set
    test_order = list(range(len(x_test)))
    rng.shuffle(test_order)
    train = [list(x_train[i]) for i in train_order]
    test = [list(x_test[i]) for i in test_order]
    train_labels = [int(y_train[i]) for i in train_order]
    test_labels = [int(y_test[i]) for i in test_order]

    def offset(review):
        shifted = [w + index_from for w in review]
        return shifted if start_char is None else [start_char] + shifted

    train, test = [offset(r) for r in train], [offset(r) for r in test]
    if maxlen:
        train_labels = [y for r, y in zip(train, train_labels, strict=True) if len(r) < maxlen]
        train = [r for r in train if len(r) < maxlen]
        test_labels = [y for r, y in zip(test, test_labels, strict=True) if len(r) < maxlen]
        test = [r for r in test if len(r) < maxlen]
        if not train or not test:
            raise ValueError("maxlen filtered everything")
    everything = train + test
    if not num_words:
        num_words = max((max(r) for r in everything if r), default=0)
    if oov_char is not None:
        everything = [[w if skip_top <= w < num_words else oov_char for w in r] for r in everything]
    else:
        everything = [[w for w in r if skip_top <= w < num_words] for r in everything]
    return (everything[: len(train)], train_labels), (everything[len(train) :], test_labels)


def as_plain(result):
    (x_train, y_train), (x_test, y_test) = result
    return ([list(r) for r in x_train], [int(y) for y in y_train]), (
        [list(r) for r in x_test],
        [int(y) for y in y_test],
    )


def fake_downloader(payload: bytes, calls: list, fail_after: int | None = None, error=None):
    """Stands in for pooch's HTTP downloader: writes ``payload`` where pooch asks.

    With ``fail_after``, it writes that many bytes and then raises ``error``, as a
    connection that breaks mid-transfer would.
    """

    def download(url, output_file, pooch_instance):
        calls.append(url)
        with open(output_file, "wb") as handle:
            if fail_after is None:
                handle.write(payload)
                return
            handle.write(payload[:fail_after])
            handle.flush()
            raise error or ConnectionResetError("connection reset by peer")

    return download


TINY = {
    "x_train": [[1, 2, 3], [4, 5], [6], [7, 8, 9, 10], [2, 2, 2]],
    "y_train": [1, 0, 1, 0, 1],
    "x_test": [[2, 2], [11, 1, 3], [5]],
    "y_test": [0, 1, 1],
}


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """Fresh HOME, no nprnn/Keras variables and no network, for every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable in ("NPRNN_DATA_DIR", "NPRNN_CACHE_DIR", "KERAS_HOME"):
        monkeypatch.delenv(variable, raising=False)

    def network_disabled(url, output_file, pooch_instance):
        raise requests.exceptions.ConnectionError("network disabled in tests")

    monkeypatch.setattr(_files, "_downloader", network_disabled)
    return home


@pytest.fixture
def tiny_file(tmp_path) -> Path:
    """TINY written as an .npz in a folder of its own (its hash is unknown)."""
    folder = tmp_path / "given"
    folder.mkdir()
    return write_imdb_npz(folder / "imdb.npz", **TINY)


def load_quietly(**kwargs):
    """load_data while ignoring the expected 'unknown hash' warning of test files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedFileWarning)
        return imdb.load_data(**kwargs)


# ----------------------------------------------------------------------------- semantics

small_reviews = st.lists(st.lists(st.integers(0, 30), max_size=8), min_size=1, max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    x_train=small_reviews,
    x_test=small_reviews,
    labels_seed=st.integers(0, 2**16),
    num_words=st.none() | st.integers(1, 40),
    skip_top=st.integers(0, 6),
    maxlen=st.none() | st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    start_char=st.none() | st.integers(0, 5),
    oov_char=st.none() | st.integers(0, 5),
    index_from=st.integers(0, 5),
)
def test_prepare_matches_the_literal_keras_recipe(x_train, x_test, labels_seed, **options):
    labels = np.random.default_rng(labels_seed)
    y_train = labels.integers(0, 2, len(x_train))
    y_test = labels.integers(0, 2, len(x_test))
    try:
        expected = keras_reference(x_train, y_train, x_test, y_test, **options)
    except ValueError:
        with pytest.raises(ValueError, match="maxlen"):
            imdb._prepare(object_array(x_train), y_train, object_array(x_test), y_test, **options)
        return
    result = imdb._prepare(object_array(x_train), y_train, object_array(x_test), y_test, **options)
    assert as_plain(result) == expected
    (x_out, y_out), (x_test_out, _) = result
    assert x_out.dtype == object and x_out.ndim == 1 and x_test_out.ndim == 1
    assert all(type(w) is int for review in x_out for w in review)
    assert y_out.dtype == np.int64


def test_shuffle_uses_one_generator_for_train_then_test(tiny_file):
    (x_train, y_train), (x_test, y_test) = load_quietly(
        path=tiny_file, seed=0, index_from=0, start_char=None, num_words=100
    )
    rng = np.random.RandomState(0)
    train_order, test_order = np.arange(5), np.arange(3)
    rng.shuffle(train_order)
    rng.shuffle(test_order)
    # RandomState's stream is frozen by NumPy's compatibility policy, so these are fixed.
    assert train_order.tolist() == [2, 0, 1, 3, 4] and test_order.tolist() == [0, 2, 1]
    assert [list(r) for r in x_train] == [TINY["x_train"][i] for i in train_order]
    assert list(y_train) == [TINY["y_train"][i] for i in train_order]
    assert [list(r) for r in x_test] == [TINY["x_test"][i] for i in test_order]
    assert list(y_test) == [TINY["y_test"][i] for i in test_order]
    # A fresh generator for the test set would give another order (Keras reuses one).
    fresh = np.arange(3)
    np.random.RandomState(0).shuffle(fresh)
    assert fresh.tolist() != test_order.tolist()


def test_start_char_index_from_and_oov_by_hand(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", [[1, 5, 9]], [1], [[2]], [0])
    (x_train, _), (x_test, _) = load_quietly(path=path, num_words=10, seed=0)
    # ids shift by 3, the start mark 1 is prepended, 12 >= num_words becomes oov 2.
    assert list(x_train[0]) == [1, 4, 8, 2]
    assert list(x_test[0]) == [1, 5]


def test_skip_top_also_hits_the_start_mark_as_in_keras(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", [[1, 5]], [1], [[2]], [0])
    (x_train, _), _ = load_quietly(path=path, skip_top=5, num_words=100, seed=0)
    assert list(x_train[0]) == [2, 2, 8]  # start 1 and id 4 are below skip_top


def test_oov_char_none_deletes_instead_of_replacing(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", [[1, 50, 2]], [1], [[60]], [0])
    (x_train, _), (x_test, _) = load_quietly(path=path, num_words=10, oov_char=None, seed=0)
    assert list(x_train[0]) == [1, 4, 5]
    assert list(x_test[0]) == [1]


def test_num_words_none_uses_the_largest_id_which_itself_becomes_oov(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", [[1, 7]], [1], [[3]], [0])
    (x_train, _), (x_test, _) = load_quietly(path=path, seed=0)
    # Largest id is 7 + 3 = 10; Keras keeps ids < num_words, so 10 turns into oov 2.
    assert list(x_train[0]) == [1, 4, 2]
    assert list(x_test[0]) == [1, 6]


def test_maxlen_drops_reviews_of_length_maxlen_or_more_with_their_labels(tmp_path):
    x_train = [[1], [1, 2], [1, 2, 3], [4]]
    path = write_imdb_npz(tmp_path / "a.npz", x_train, [0, 1, 1, 0], [[1], [1, 2, 3]], [1, 0])
    (x_out, y_out), (x_test_out, y_test_out) = load_quietly(path=path, maxlen=3, seed=0)
    # With the start mark, lengths are 2, 3, 4, 2: only those < 3 remain.
    assert sorted(map(len, x_out)) == [2, 2]
    assert sorted(y_out.tolist()) == [0, 0]
    assert [len(r) for r in x_test_out] == [2] and y_test_out.tolist() == [1]


def test_maxlen_that_keeps_nothing_is_an_error(tiny_file):
    with pytest.raises(ValueError, match=r"maxlen.*none was kept.*maxlen=2"):
        load_quietly(path=tiny_file, maxlen=2)


def test_start_char_none_and_index_from_zero_copy_ids(tiny_file):
    (x_train, _), _ = load_quietly(path=tiny_file, start_char=None, index_from=0, num_words=1000)
    assert sorted(map(tuple, x_train)) == sorted(map(tuple, TINY["x_train"]))


def test_equal_length_reviews_still_give_a_1d_object_array(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", [[1, 2], [3, 4]], [0, 1], [[5, 6]], [1])
    (x_train, _), (x_test, _) = load_quietly(path=path)
    assert x_train.shape == (2,) and x_test.shape == (1,)
    assert all(isinstance(r, list) for r in x_train)


@pytest.mark.parametrize(
    ("argument", "value", "error", "expected"),
    [
        ("num_words", 0, ValueError, ">= 1"),
        ("num_words", -5, ValueError, ">= 1"),
        ("num_words", 2.5, TypeError, "an int or None"),
        ("num_words", "100", TypeError, "an int or None"),
        ("num_words", True, TypeError, "an int or None"),
        ("maxlen", 0, ValueError, ">= 1"),
        ("maxlen", 1.0, TypeError, "an int or None"),
        ("skip_top", -1, ValueError, ">= 0"),
        ("skip_top", None, TypeError, "an int"),
        ("seed", -1, ValueError, "in \\[0, 4294967295\\]"),
        ("seed", 2**32, ValueError, "in \\[0, 4294967295\\]"),
        ("seed", None, TypeError, "an int"),
        ("start_char", -1, ValueError, ">= 0|in \\["),
        ("oov_char", "2", TypeError, "an int or None"),
        ("index_from", -3, ValueError, "in \\[0,"),
    ],
)
def test_bad_arguments_are_named_with_expected_and_received(argument, value, error, expected):
    with pytest.raises(error) as excinfo:
        imdb.load_data(**{argument: value})
    message = str(excinfo.value)
    assert message.startswith(f"{argument}: expected")
    assert re.search(expected, message)
    assert repr(value) in message or str(value) in message


def test_numpy_integers_are_accepted(tiny_file):
    (x_train, _), _ = load_quietly(path=tiny_file, num_words=np.int64(5), seed=np.uint32(3))
    assert max(max(r) for r in x_train) < 5


def test_path_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match=r"path: expected .* got int 123"):
        imdb.load_data(path=123)


# ----------------------------------------------------------------------------- sources


def test_explicit_path_wins_over_data_dir_and_cache(tmp_path, monkeypatch):
    explicit = write_sized_npz(tmp_path / "mine.npz", 2)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_sized_npz(data_dir / "mine.npz", 3)
    monkeypatch.setenv("NPRNN_DATA_DIR", str(data_dir))
    (x_train, _), _ = load_quietly(path=explicit)
    assert len(x_train) == 2


def test_existing_relative_path_is_read_from_the_working_folder(tmp_path, monkeypatch):
    write_sized_npz(tmp_path / "imdb.npz", 4)
    monkeypatch.chdir(tmp_path)
    (x_train, _), _ = load_quietly(path="imdb.npz")
    assert len(x_train) == 4


def test_data_dir_wins_over_cache_and_keras(tmp_path, monkeypatch, isolated_environment):
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    keras_cache = isolated_environment / ".keras" / "datasets"
    for folder, size in ((data_dir, 3), (cache, 5), (keras_cache, 6)):
        folder.mkdir(parents=True)
        trust(monkeypatch, write_sized_npz(folder / "imdb.npz", size))
    monkeypatch.setenv("NPRNN_DATA_DIR", str(data_dir))
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 3


def test_cache_wins_over_keras_cache(tmp_path, monkeypatch, isolated_environment):
    cache = tmp_path / "cache"
    keras_cache = isolated_environment / ".keras" / "datasets"
    for folder, size in ((cache, 5), (keras_cache, 6)):
        folder.mkdir(parents=True)
        trust(monkeypatch, write_sized_npz(folder / "imdb.npz", size))
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 5


def test_default_cache_is_under_home(monkeypatch, isolated_environment):
    cache = isolated_environment / ".nprnn" / "datasets"
    cache.mkdir(parents=True)
    trust(monkeypatch, write_sized_npz(cache / "imdb.npz", 7))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 7


def test_keras_cache_under_home_is_read_in_place(monkeypatch, isolated_environment):
    keras_cache = isolated_environment / ".keras" / "datasets"
    keras_cache.mkdir(parents=True)
    trust(monkeypatch, write_sized_npz(keras_cache / "imdb.npz", 6))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 6
    assert files_in(isolated_environment / ".nprnn" / "datasets") == []  # not copied


def test_keras_home_variable_is_honoured(tmp_path, monkeypatch):
    keras_home = tmp_path / "kh"
    (keras_home / "datasets").mkdir(parents=True)
    trust(monkeypatch, write_sized_npz(keras_home / "datasets" / "imdb.npz", 8))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == 8


def test_unknown_hash_is_accepted_with_a_warning_when_named_explicitly(tiny_file):
    with pytest.warns(UnverifiedFileWarning, match="named by the path argument"):
        imdb.load_data(path=tiny_file)


def test_unknown_hash_in_data_dir_warns_and_names_the_variable(tiny_file, monkeypatch):
    monkeypatch.setenv("NPRNN_DATA_DIR", str(tiny_file.parent))
    with pytest.warns(UnverifiedFileWarning, match="NPRNN_DATA_DIR"):
        imdb.load_data()


def test_known_hash_gives_no_warning(tiny_file, monkeypatch):
    trust(monkeypatch, tiny_file)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        imdb.load_data(path=tiny_file)


@pytest.mark.parametrize("where", ["cache", "keras"])
def test_cached_file_with_unknown_hash_is_an_error(
    where, tmp_path, monkeypatch, isolated_environment
):
    folder = (
        tmp_path / "cache" if where == "cache" else (isolated_environment / ".keras" / "datasets")
    )
    folder.mkdir(parents=True)
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(tmp_path / "cache"))
    bad = write_sized_npz(folder / "imdb.npz", 2)
    with pytest.raises(HashMismatchError, match="Delete it") as excinfo:
        imdb.load_data()
    assert str(bad) in str(excinfo.value)


def test_missing_path_with_a_folder_part_fails_without_downloading(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_files, "_downloader", fake_downloader(b"", calls))
    with pytest.raises(FileNotFoundError, match="path: expected an existing file") as excinfo:
        imdb.load_data(path=tmp_path / "nowhere" / "imdb.npz")
    assert not isinstance(excinfo.value, DatasetNotFoundError)
    assert calls == []


def test_data_dir_that_is_not_a_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NPRNN_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="NPRNN_DATA_DIR: expected a folder"):
        imdb.load_data()


# ----------------------------------------------------------------------------- downloads


@pytest.fixture
def payload(tmp_path) -> bytes:
    return write_imdb_npz(tmp_path / "served.npz", **TINY).read_bytes()


def test_download_with_good_hash_lands_in_the_cache(payload, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    trust(monkeypatch, tmp_path / "served.npz")
    calls = []
    monkeypatch.setattr(_files, "_downloader", fake_downloader(payload, calls))

    (x_train, _), _ = imdb.load_data()
    assert calls == ["https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"]
    assert files_in(cache) == ["imdb.npz"]  # no temporary file left over
    assert (cache / "imdb.npz").read_bytes() == payload
    assert len(x_train) == len(TINY["x_train"])

    imdb.load_data()  # second call: served from the cache
    assert len(calls) == 1


def test_download_goes_to_default_cache_under_home(
    payload, tmp_path, monkeypatch, isolated_environment
):
    trust(monkeypatch, tmp_path / "served.npz")
    monkeypatch.setattr(_files, "_downloader", fake_downloader(payload, []))
    imdb.load_data()
    assert files_in(isolated_environment / ".nprnn" / "datasets") == ["imdb.npz"]


def test_download_with_bad_hash_raises_and_leaves_the_cache_untouched(
    payload, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "unrelated.txt").write_text("keep me")
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    monkeypatch.setattr(_files, "_downloader", fake_downloader(payload, []))
    with pytest.raises(HashMismatchError, match="Nothing was stored"):
        imdb.load_data()
    assert files_in(cache) == ["unrelated.txt"]
    assert (cache / "unrelated.txt").read_text() == "keep me"


@pytest.mark.parametrize("error", [ConnectionResetError("reset"), TimeoutError("timed out")])
def test_interrupted_download_leaves_nothing_in_the_cache(error, payload, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    trust(monkeypatch, tmp_path / "served.npz")
    opener = fake_downloader(payload, [], fail_after=128, error=error)
    monkeypatch.setattr(_files, "_downloader", opener)
    with pytest.raises(DatasetNotFoundError, match=type(error).__name__):
        imdb.load_data()
    assert files_in(cache) == []


def test_keyboard_interrupt_mid_download_leaves_nothing_in_the_cache(
    payload, tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    trust(monkeypatch, tmp_path / "served.npz")
    opener = fake_downloader(payload, [], fail_after=64, error=KeyboardInterrupt())
    monkeypatch.setattr(_files, "_downloader", opener)
    with pytest.raises(KeyboardInterrupt):
        imdb.load_data()
    assert files_in(cache) == []


def test_offline_without_a_copy_says_where_to_put_the_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        imdb.load_data()
    message = str(excinfo.value)
    assert "NPRNN_DATA_DIR" in message
    assert str(cache / "imdb.npz") in message
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz" in message
    assert "network disabled in tests" in message
    assert files_in(cache) == []


def test_word_index_is_downloaded_and_verified_too(tmp_path, monkeypatch):
    served = tmp_path / "served.json"
    served.write_text(json.dumps({"the": 1, "movie": 2}))
    digest = pooch.file_hash(str(served))
    monkeypatch.setattr(
        imdb, "IMDB_WORD_INDEX", dataclasses.replace(imdb.IMDB_WORD_INDEX, sha256=(digest,))
    )
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(_files, "_downloader", fake_downloader(served.read_bytes(), calls))
    assert imdb.get_word_index() == {"the": 1, "movie": 2}
    assert calls[0].endswith("/imdb_word_index.json")
    assert files_in(tmp_path / "cache") == ["imdb_word_index.json"]


@pytest.fixture
def local_server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/served``; yields its base URL."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(_files, "_downloader", pooch.HTTPDownloader(progressbar=False, timeout=10))
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_pooch_http_download_from_a_local_server(local_server, tmp_path, monkeypatch):
    # The real downloader end to end (no fake): 200 lands in the cache, 404 is not found.
    folder, base = local_server
    served = write_imdb_npz(folder / "imdb.npz", **TINY)
    digest = pooch.file_hash(str(served))
    remote = dataclasses.replace(imdb.IMDB_NPZ, url=base + "imdb.npz", sha256=(digest,))
    monkeypatch.setattr(imdb, "IMDB_NPZ", remote)
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(cache))
    (x_train, _), _ = imdb.load_data()
    assert len(x_train) == len(TINY["x_train"])
    assert files_in(cache) == ["imdb.npz"]

    monkeypatch.setattr(imdb, "IMDB_NPZ", dataclasses.replace(remote, url=base + "gone.npz"))
    monkeypatch.setenv("NPRNN_CACHE_DIR", str(tmp_path / "other-cache"))
    with pytest.raises(DatasetNotFoundError, match="404"):
        imdb.load_data()
    assert files_in(tmp_path / "other-cache") == []


# ----------------------------------------------------------------------------- safety


class RunsShellCommand:
    """Pickles as a call to os.system: what a hostile .npz would carry."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class RunsPython:
    """Pickles as a call to builtins.eval."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"__import__('pathlib').Path({str(self.marker)!r}).touch()",))


@pytest.mark.parametrize("payload_kind", ["os.system", "eval"])
def test_restricted_unpickler_refuses_a_malicious_npz_without_running_it(payload_kind, tmp_path):
    marker = tmp_path / "pwned"
    hostile = (
        RunsShellCommand(f"touch {marker}") if payload_kind == "os.system" else RunsPython(marker)
    )
    x_train = np.empty(2, dtype=object)
    x_train[0], x_train[1] = [1, 2], hostile
    path = tmp_path / "evil.npz"
    np.savez(
        path,
        x_train=x_train,
        y_train=np.array([0, 1]),
        x_test=object_array([[1]]),
        y_test=np.array([1]),
    )
    # Make sure the file really carries the call (otherwise the test proves nothing).
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("x_train.npy")
    assert (b"system" if payload_kind == "os.system" else b"eval") in raw

    with pytest.warns(UnverifiedFileWarning), pytest.raises(UnsafeFileError) as excinfo:
        imdb.load_data(path=path)
    message = str(excinfo.value)
    assert str(path) in message and "x_train.npy" in message
    assert ("system" if payload_kind == "os.system" else "eval") in message
    assert not marker.exists()


def write_npz_members(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def object_npy_with_pickle(shape, pickled: bytes) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "|O", "fortran_order": False, "shape": shape}
    npy_format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + pickled


def test_protocol_2_pickles_of_numpy_1_writers_are_admitted(tmp_path):
    # NumPy < 1.17 wrote object arrays with pickle protocol 2: GLOBAL opcodes naming
    # numpy.core.multiarray, and bytes stored as _codecs.encode(text, 'latin1').
    sequences = object_array([[1, 2, 3], [4]])
    pickled = pickle.dumps(sequences, protocol=2)
    assert b"_codecs" in pickled
    assert b"numpy._core.multiarray" in pickled or b"numpy.core.multiarray" in pickled
    old_style = pickled.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = write_npz_members(
        tmp_path / "old.npz", {"x.npy": object_npy_with_pickle((2,), old_style)}
    )
    loaded = _files.load_npz(path, ["x"])["x"]
    assert [list(r) for r in loaded] == [[1, 2, 3], [4]]


def test_codecs_encode_is_admitted_only_for_latin1(tmp_path):
    pickled = pickle.dumps(object_array([[1]]), protocol=2)
    assert b"latin1" in pickled
    sneaky = pickled.replace(b"latin1", b"zlib_c")  # same length, another codec
    path = write_npz_members(tmp_path / "x.npz", {"x.npy": object_npy_with_pickle((1,), sneaky)})
    with pytest.raises(UnsafeFileError, match=r"x\.npy.*encoding='zlib_c'"):
        _files.load_npz(path, ["x"])


def test_load_npz_reads_what_np_load_reads(tmp_path):
    path = write_imdb_npz(tmp_path / "a.npz", **TINY)
    ours = _files.load_npz(path, ["x_train", "y_train", "x_test", "y_test"])
    with np.load(path, allow_pickle=True) as reference:  # our own file: safe to trust
        for key in ours:
            assert ours[key].dtype == reference[key].dtype
            assert [np.asarray(a).tolist() for a in ours[key]] == [
                np.asarray(a).tolist() for a in reference[key]
            ]


def test_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "imdb.npz"
    path.write_text("not a zip")
    with pytest.warns(UnverifiedFileWarning), pytest.raises(DatasetFileError, match="zip"):
        imdb.load_data(path=path)


def test_a_missing_array_is_named(tmp_path):
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=object_array([[1]]), y_train=np.array([1]))
    with pytest.warns(UnverifiedFileWarning), pytest.raises(DatasetFileError, match="'x_test'"):
        imdb.load_data(path=path)


@pytest.mark.parametrize(
    ("x_train", "y_train", "complaint"),
    [
        (object_array([["a", "b"], [1]]), np.array([0, 1]), "list of ints"),
        (object_array([[1.5], [1]]), np.array([0, 1]), "list of ints"),
        (np.array([[1, 2], [3, 4]]), np.array([0, 1]), "1-D object array"),
        (object_array([[1], [2]]), np.array([0, 1, 1]), "1-D int array of length 2"),
        (object_array([[1], [2]]), np.array([0.0, 1.0]), "1-D int array"),
    ],
)
def test_content_not_in_keras_layout_is_a_clear_error(x_train, y_train, complaint, tmp_path):
    path = tmp_path / "imdb.npz"
    np.savez(
        path, x_train=x_train, y_train=y_train, x_test=object_array([[1]]), y_test=np.array([1])
    )
    with pytest.warns(UnverifiedFileWarning), pytest.raises(DatasetFileError, match=complaint):
        imdb.load_data(path=path)


@pytest.mark.parametrize("stored_id", [-1, 2**62, 2**70])
def test_stored_ids_out_of_range_are_a_clear_error(stored_id, tmp_path):
    path = write_imdb_npz(tmp_path / "imdb.npz", [[1, stored_id]], [1], [[1]], [0])
    with pytest.warns(UnverifiedFileWarning), pytest.raises(DatasetFileError) as excinfo:
        imdb.load_data(path=path)
    assert str(path) in str(excinfo.value) and "word ids in [0, " in str(excinfo.value)


def test_a_truncated_pickle_is_a_clear_error(tmp_path):
    good = pickle.dumps(object_array([[1, 2, 3]]), protocol=4)
    path = write_npz_members(
        tmp_path / "cut.npz", {"x.npy": object_npy_with_pickle((1,), good[: len(good) // 2])}
    )
    with pytest.raises(DatasetFileError, match=r"x\.npy.*could not read"):
        _files.load_npz(path, ["x"])


# ----------------------------------------------------------------------------- words

TINY_INDEX = {"the": 1, "film": 2, "was": 3, "great": 4}


def test_decode_review_marks_pad_start_and_unknown():
    assert imdb.decode_review([1, 4, 5, 2, 99, 0, 0], TINY_INDEX) == (
        "<start> the film <unk> <unk> <pad> <pad>"
    )


def test_decode_review_follows_other_offsets():
    assert (
        imdb.decode_review([1, 2], TINY_INDEX, index_from=0, start_char=None, oov_char=None)
        == "the film"
    )


def test_decode_review_accepts_an_array_row_and_rejects_a_batch():
    row = np.array([0, 0, 1, 7])
    assert imdb.decode_review(row, TINY_INDEX) == "<pad> <pad> <start> great"
    with pytest.raises(ValueError, match="sequence: expected one review"):
        imdb.decode_review(np.zeros((2, 3), dtype=int), TINY_INDEX)
    with pytest.raises(TypeError, match="sequence: expected"):
        imdb.decode_review("the film", TINY_INDEX)
    with pytest.raises(TypeError, match="word_index: expected a mapping"):
        imdb.decode_review([1], word_index=[("the", 1)])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4), max_size=6), min_size=1, max_size=5))
def test_decoding_loaded_reviews_gives_back_the_words(reviews):
    (x_train, _), _ = imdb._prepare(
        object_array(reviews),
        np.zeros(len(reviews), dtype=np.int64),
        object_array([[1]]),
        np.zeros(1, dtype=np.int64),
        num_words=100,
        skip_top=0,
        maxlen=None,
        seed=113,
        start_char=1,
        oov_char=2,
        index_from=3,
    )
    words = {rank: word for word, rank in TINY_INDEX.items()}
    decoded = sorted(imdb.decode_review(r, TINY_INDEX) for r in x_train)
    expected = sorted(" ".join(["<start>"] + [words[i] for i in r]) for r in reviews)
    assert decoded == expected


def test_get_word_index_reads_the_data_dir_and_decode_uses_it(tmp_path, monkeypatch):
    (tmp_path / "imdb_word_index.json").write_text(json.dumps(TINY_INDEX))
    monkeypatch.setenv("NPRNN_DATA_DIR", str(tmp_path))
    with pytest.warns(UnverifiedFileWarning):
        assert imdb.get_word_index() == TINY_INDEX
    with pytest.warns(UnverifiedFileWarning):
        assert imdb.decode_review([1, 6]) == "<start> was"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"the": "1"}'])
def test_a_malformed_word_index_is_a_clear_error(content, tmp_path):
    path = tmp_path / "index.json"
    path.write_text(content)
    with pytest.warns(UnverifiedFileWarning), pytest.raises(DatasetFileError, match="index"):
        imdb.get_word_index(path)


def test_public_names():
    from nprnn import datasets

    assert datasets.imdb is imdb
    assert callable(imdb.load_data) and callable(imdb.get_word_index)


# ----------------------------------------------------------------------------- real data


@pytest.fixture
def real_data(monkeypatch):
    monkeypatch.setenv("NPRNN_DATA_DIR", REAL_DATA_DIR)
    return Path(REAL_DATA_DIR)


@pytest.mark.realdata
@needs_real_data
def test_real_data_gives_the_textbook_numbers(real_data):
    from sklearn.model_selection import train_test_split

    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedFileWarning)  # the copy must be known
        (train_input, train_target), (test_input, test_target) = imdb.load_data(num_words=500)
    assert train_input.shape == (25000,) and test_input.shape == (25000,)
    assert train_target.shape == (25000,) and test_target.shape == (25000,)
    assert len(train_input[0]) == 218 and len(train_input[1]) == 189
    assert train_target[:10].tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 1, 0]
    assert max(max(r) for r in train_input) < 500 and min(min(r) for r in train_input) >= 1

    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42
    )
    lengths = np.array([len(review) for review in train_input])
    assert np.mean(lengths) == pytest.approx(239.00925)
    assert np.median(lengths) == 178.0


@pytest.mark.realdata
@needs_real_data
def test_real_data_matches_the_literal_keras_recipe(real_data):
    with np.load(real_data / "imdb.npz", allow_pickle=True) as trusted:  # known-hash copy
        arrays = {key: trusted[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    options = {"num_words": 500, "maxlen": 300, "skip_top": 3}
    expected = keras_reference(**arrays, **options)
    assert as_plain(imdb.load_data(**options)) == expected


@pytest.mark.realdata
@needs_real_data
def test_real_word_index_decodes_the_first_review(real_data):
    if not (real_data / "imdb_word_index.json").is_file():
        pytest.skip("NPRNN_DATA_DIR holds no imdb_word_index.json")
    word_index = imdb.get_word_index()
    assert word_index["the"] == 1
    (train_input, _), _ = imdb.load_data()
    assert imdb.decode_review(train_input[0][:6], word_index) == (
        "<start> this film was just brilliant"
    )
