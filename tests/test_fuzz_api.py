"""Hypothesis drives the public API with arbitrary shapes, dtypes and values.

Every call either returns finite results of the documented shape, or raises ValueError or
TypeError: never another exception, a NaN, or a crash. (``fit`` may also stop early with a
RuntimeWarning when a loss or an update is not finite; its History then holds only finite
values.)
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nprnn as keras
from nprnn.layers import Dense, Embedding, SimpleRNN
from nprnn.optimizers import SGD, Adam, RMSprop
from nprnn.utils import SparseOneHot, pad_sequences, to_categorical

FUZZ = settings(max_examples=int(os.environ.get("NPRNN_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16, np.float32,
          np.float64, np.complex64]


def arrays(max_dims=4, max_side=5):
    """Arrays of any of DTYPES, 0 to max_dims axes of 0 to max_side, any values."""
    return st.sampled_from(DTYPES).flatmap(lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side)))


def labels(count):
    return st.one_of(
        hnp.arrays(st.sampled_from([np.int64, np.float32, np.float64, np.bool_]),
                   st.sampled_from([(count,), (count, 1), (count, 2), (max(count - 1, 0),)])),
        st.lists(st.integers(0, 1), min_size=count, max_size=count),
        st.none())


def expect_clean(call):
    """Run ``call``; return (True, result) or (False, error) for ValueError/TypeError.

    ``NPRNN_FUZZ_EXAMPLES=2000`` runs a longer search by hand."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fit's "stopped" warnings
        try:
            return True, call()
        except (ValueError, TypeError) as error:
            assert str(error), "an error without a message"
            return False, error


def build_model(kind, built):
    keras.layers.clear_session()
    if kind == "embedding":
        layers = [Embedding(10, 3, input_length=4 if built else None), SimpleRNN(2)]
    elif kind == "one_hot":
        layers = [SimpleRNN(2, input_shape=(4, 3) if built else None)]
    else:
        layers = [Dense(3, input_shape=(4,) if built else None)]
    model = keras.Sequential(layers + [Dense(1, activation="sigmoid")])
    model.compile(optimizer=RMSprop(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def inputs_for(kind):
    """Mostly well-formed inputs for ``kind`` (so that training really runs), some wild."""
    if kind == "embedding":
        good = hnp.arrays(np.int64, st.tuples(st.integers(1, 6), st.just(4)),
                          elements=st.integers(0, 9))
    elif kind == "one_hot":
        good = hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.just(4), st.just(3)),
                          elements=st.floats(-3, 3, width=32))
    else:
        good = hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.just(4)),
                          elements=st.floats(-3, 3, width=32))
    return st.one_of(good, good, arrays())


def assert_finite_tree(values):
    for value in values:
        assert math.isfinite(value), values


@FUZZ
@given(kind=st.sampled_from(["embedding", "one_hot", "dense"]), built=st.booleans(),
       data=st.data())
def test_sequential_fit_predict_evaluate(kind, built, data):
    model = build_model(kind, built)
    x = data.draw(inputs_for(kind), label="x")
    count = len(x) if x.ndim else 1
    y = data.draw(labels(count), label="y")
    ok, predicted = expect_clean(lambda: model.predict(x, verbose=0))
    if ok:
        # (N, 1); a Dense-first model maps a 3-D input along its last axis: (N, T, 1)
        assert predicted.shape == (len(x),) + model.output_shape[1:]
        assert predicted.shape[-1] == 1 and np.isfinite(predicted).all()
        assert ((predicted >= 0) & (predicted <= 1)).all()
    ok, history = expect_clean(lambda: model.fit(x, y, epochs=2, batch_size=2, verbose=0))
    if ok:
        for key, values in history.history.items():
            assert len(values) == len(history.epoch), key
            assert_finite_tree(values)
    ok, results = expect_clean(lambda: model.evaluate(x, y, verbose=0))
    if ok:
        assert len(results) == 2
        assert_finite_tree(results)


@FUZZ
@given(x=arrays(), y=arrays(max_dims=2), batch_size=st.integers(-1, 4))
def test_fit_on_anything(x, y, batch_size):
    model = build_model("one_hot", built=False)
    ok, history = expect_clean(lambda: model.fit(x, y, batch_size=batch_size, epochs=1,
                                                 verbose=0, validation_split=0.0))
    if ok:
        for values in history.history.values():
            assert_finite_tree(values)


@FUZZ
@given(sequences=st.one_of(
           st.lists(st.lists(st.integers(-2**40, 2**40), max_size=6), max_size=5),
           st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
                    max_size=4),
           st.lists(st.one_of(st.lists(st.integers(0, 9), max_size=3), st.integers(),
                              st.text(max_size=3), st.none()), max_size=4),
           st.integers(), st.none(), st.text(max_size=4)),
       maxlen=st.one_of(st.none(), st.integers(-2, 8), st.floats(-1, 5)),
       dtype=st.sampled_from(["int32", "int64", "float32", "uint8", "bool", "foo", None]),
       padding=st.sampled_from(["pre", "post", "both"]),
       truncating=st.sampled_from(["pre", "post", "middle"]),
       value=st.one_of(st.integers(-300, 300), st.floats(allow_nan=True), st.text(max_size=2)))
def test_pad_sequences(sequences, maxlen, dtype, padding, truncating, value):
    ok, padded = expect_clean(lambda: pad_sequences(sequences, maxlen=maxlen, dtype=dtype,
                                                    padding=padding, truncating=truncating,
                                                    value=value))
    if not ok:
        return
    longest = max((len(s) for s in sequences), default=0)
    assert padded.shape[:2] == (len(sequences), longest if maxlen is None else maxlen)
    assert padded.dtype == np.dtype(dtype)
    if padded.dtype.kind in "iu":
        for row, sequence in zip(padded, sequences):
            kept = list(sequence)[-maxlen:] if maxlen and truncating == "pre" else \
                list(sequence)[:maxlen] if maxlen else list(sequence)
            if kept:
                got = row[-len(kept):] if padding == "pre" else row[:len(kept)]
                np.testing.assert_array_equal(got, np.asarray(kept, dtype=padded.dtype))


@FUZZ
@given(x=st.one_of(hnp.arrays(st.sampled_from([np.int64, np.int8, np.float64]),
                              hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                               max_side=4),
                              elements=st.integers(-2, 12)),
                   arrays(max_dims=3, max_side=4),
                   st.lists(st.lists(st.integers(0, 5), max_size=3), max_size=3)),
       num_classes=st.one_of(st.none(), st.integers(-1, 14), st.floats(0, 5)),
       sparse=st.booleans())
def test_to_categorical(x, num_classes, sparse):
    ok, out = expect_clean(lambda: to_categorical(x, num_classes=num_classes, sparse=sparse))
    if not ok:
        return
    ids = np.asarray(x).astype(np.int64)
    if ids.ndim > 1 and ids.shape[-1] == 1:
        ids = ids.reshape(ids.shape[:-1])
    depth = num_classes if num_classes is not None else (int(ids.max()) + 1 if ids.size else 0)
    assert out.shape == ids.shape + (depth,)
    assert isinstance(out, SparseOneHot) == sparse
    if ids.size * depth > 10**6:  # a huge id asks for a huge (lazily zeroed) array: don't read it
        return
    dense = np.asarray(out)
    assert np.isfinite(dense).all() and set(np.unique(dense)) <= {0.0, 1.0}
    if dense.size:
        np.testing.assert_array_equal(dense.argmax(-1), ids)
        np.testing.assert_array_equal(dense.sum(-1), 1)


ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**64), st.floats(),
                     st.text(max_size=5), st.tuples(st.integers(-1, 5), st.integers(-1, 5)),
                     st.lists(st.integers(0, 3), max_size=3), st.sampled_from(
                         ["tanh", "sigmoid", "relu", "linear", "zeros", "uniform", "float64"]))


@FUZZ
@given(layer=st.sampled_from([Embedding, SimpleRNN, Dense]), first=ANYTHING, second=ANYTHING,
       keywords=st.dictionaries(st.sampled_from(
           ["activation", "input_shape", "return_sequences", "name", "dtype", "trainable",
            "input_length", "kernel_initializer", "batch_input_shape"]), ANYTHING, max_size=3))
def test_layer_constructors(layer, first, second, keywords):
    args = (first, second) if layer is Embedding else (first,)
    if layer is Embedding:
        keywords.pop("activation", None)
        keywords.pop("return_sequences", None)
    elif layer is Dense:
        keywords.pop("return_sequences", None)
        keywords.pop("input_length", None)
    else:
        keywords.pop("input_length", None)
    ok, made = expect_clean(lambda: layer(*args, **keywords))
    if ok:
        assert made.name and not made.built
        assert isinstance(made.get_config(), dict)


@FUZZ
@given(optimizer=st.sampled_from([RMSprop, SGD, Adam]),
       learning_rate=st.one_of(st.floats(), st.integers(-2, 3), st.text(max_size=2), st.none()),
       keywords=st.dictionaries(st.sampled_from(
           ["rho", "epsilon", "momentum", "nesterov", "beta_1", "beta_2", "clipnorm",
            "clipvalue", "global_clipnorm", "name"]),
           st.one_of(st.floats(), st.integers(-1, 2), st.booleans(), st.text(max_size=2),
                     st.none()), max_size=3))
def test_optimizer_constructors(optimizer, learning_rate, keywords):
    allowed = {RMSprop: {"rho", "epsilon"}, SGD: {"momentum", "nesterov"},
               Adam: {"beta_1", "beta_2", "epsilon"}}[optimizer]
    keywords = {k: v for k, v in keywords.items()
                if k in allowed or k in ("clipnorm", "clipvalue", "global_clipnorm", "name")}
    ok, made = expect_clean(lambda: optimizer(learning_rate, **keywords))
    if not ok:
        return
    assert math.isfinite(made.learning_rate) and made.learning_rate >= 0
    clone = type(made).from_config(made.get_config())
    assert clone.get_config() == made.get_config()
    if made.learning_rate <= 10:  # one step on small numbers stays finite
        weights = [np.array([0.5, -0.5])]
        made.apply(weights, [np.array([0.1, -2.0])])
        assert np.isfinite(weights[0]).all()


@pytest.mark.parametrize("kind", ["embedding", "one_hot", "dense"])
def test_fuzz_models_can_learn_at_all(kind):
    """The fuzzed models are not broken: on clean data a fit gives finite numbers."""
    model = build_model(kind, built=True)
    rng = np.random.default_rng(0)
    x = {"embedding": rng.integers(0, 10, size=(8, 4)),
         "one_hot": rng.normal(size=(8, 4, 3)).astype(np.float32),
         "dense": rng.normal(size=(8, 4)).astype(np.float32)}[kind]
    history = model.fit(x, np.arange(8) % 2, epochs=2, verbose=0)
    assert_finite_tree(history.history["loss"])
