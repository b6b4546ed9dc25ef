"""The fused training step gives what the per-layer route gives, and is taken only when it can.

Each test trains the same seeded model twice, once through the fused kernels
(:mod:`nprnn._fused`) and once with the fused route switched off, and compares weights,
histories and predictions: float64 to 1e-10, float32 after one step to 1e-5.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nprnn as keras
from nprnn import _fused, callbacks, config, layers

V, E, T = 40, 6, 12


def data(count=150, seed=0, padded=False):
    """Token ids and labels; ``padded``: token 0 only as padding, before most rows, after
    some, none in a few, one row all padding, and 0 inside a couple of rows (as
    ``mask_zero`` sees it: a step to skip wherever it is)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1 if padded else 0, V, size=(count, T))
    if padded:
        lengths = rng.integers(0, T + 1, size=count)
        for n, length in enumerate(lengths):
            if n % 4 == 3:
                ids[n, length:] = 0  # post-padding
            else:
                ids[n, :T - length] = 0  # pre-padding
        ids[1] = 0
        ids[2, T // 2] = 0
        ids[5, [0, 3, T - 1]] = 0
    return ids, (ids.max(axis=1) > V // 2).astype(int)


BODIES = {
    "SimpleRNN": lambda: [layers.SimpleRNN(5)],
    "SimpleRNN dropout": lambda: [layers.SimpleRNN(5, dropout=0.25)],
    "LSTM": lambda: [layers.LSTM(4)],
    "LSTM dropout": lambda: [layers.LSTM(4, dropout=0.3)],
    "GRU": lambda: [layers.GRU(3)],
    "2 x LSTM dropout": lambda: [layers.LSTM(4, dropout=0.3, return_sequences=True),
                                 layers.LSTM(3, dropout=0.2)],
    "SimpleRNN, GRU": lambda: [layers.SimpleRNN(5, return_sequences=True), layers.GRU(3)],
    "LSTM, GRU dropout, SimpleRNN": lambda: [
        layers.LSTM(4, return_sequences=True), layers.GRU(3, dropout=0.25, return_sequences=True),
        layers.SimpleRNN(5)],
}


def build(body, one_hot=False, learning_rate=1e-2, mask_zero=False):
    keras.utils.set_random_seed(5)
    first = [] if one_hot else [layers.Embedding(V, E, input_length=T, mask_zero=mask_zero)]
    if one_hot:
        body = [type(body[0]).from_config({**body[0].get_config(), "input_shape": (T, V)}),
                *body[1:]]
    model = keras.Sequential([*first, *body, layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def train(route, body, one_hot=False, epochs=2, batch_size=32, callback_list=(), mask_zero=False,
          **fit):
    model = build(BODIES[body](), one_hot, mask_zero=mask_zero)
    ids, labels = data(padded=mask_zero)
    x = keras.utils.SparseOneHot(ids, V) if one_hot else ids
    if route == "fused":
        assert _fused.plan_for(model) is not None
    with route_of(route):
        keras.utils.set_random_seed(9)
        history = model.fit(x, labels, epochs=epochs, batch_size=batch_size, verbose=0,
                            validation_data=(x[:40], labels[:40]),
                            callbacks=list(callback_list), **fit)
        predictions = model.predict(x, batch_size=64, verbose=0)  # 2 blocks and a part
    return model, history, predictions


def route_of(route):
    """The block for ``route``: "fused" as a user runs it, "layers" with the fused route off."""
    return _fused.per_layer_route() if route == "layers" else contextlib.nullcontext()


# Every body on both inputs, except that the stacks of mixed cells (whose one-hot input is
# the single layers' one-hot path again) run on the Embedding only: compiling each
# configuration is most of this file's time.
CASES = [(body, one_hot) for body in sorted(BODIES) for one_hot in (False, True)
         if not (one_hot and body in ("SimpleRNN, GRU", "LSTM, GRU dropout, SimpleRNN"))]


MASKED = ["SimpleRNN", "LSTM dropout", "GRU", "2 x LSTM dropout"]
CASES_ALL = ([(body, one_hot, False) for body, one_hot in CASES]
             + [(body, False, True) for body in MASKED])


@pytest.mark.parametrize(
    "body,one_hot,mask_zero", CASES_ALL,
    ids=[f"{b}-{'one-hot' if o else 'embedding'}{'-mask_zero' if m else ''}"
         for b, o, m in CASES_ALL])
def test_fused_equals_the_per_layer_route(numba_backend, floatx, body, one_hot, mask_zero):
    """... and with ``Embedding(mask_zero=True)`` on padded rows, every layer skipping the
    padding as the per-layer route's layers do."""
    epochs = 2 if floatx == "float64" else 1
    batch_size = 32 if floatx == "float64" else 150  # float32: one step, rounding only
    fused_model, fused_history, fused_predictions = train("fused", body, one_hot, epochs,
                                                          batch_size, mask_zero=mask_zero)
    model, history, predictions = train("layers", body, one_hot, epochs, batch_size,
                                        mask_zero=mask_zero)
    tolerance = 1e-10 if floatx == "float64" else 1e-5
    for a, b in zip(fused_model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=tolerance, rtol=0)
    for key in history.history:
        np.testing.assert_allclose(fused_history.history[key], history.history[key],
                                   atol=tolerance * 10, rtol=0)
    np.testing.assert_allclose(fused_predictions, predictions, atol=tolerance, rtol=0)
    assert fused_model.optimizer.iterations == model.optimizer.iterations


def test_the_fused_route_is_taken_only_where_it_applies(numba_backend):
    assert _fused.plan_for(build(BODIES["LSTM"]())) is not None
    assert _fused.plan_for(build(BODIES["LSTM, GRU dropout, SimpleRNN"]())) is not None
    for body in ([layers.LSTM(4, go_backwards=True)], [layers.GRU(3, reset_after=False)],
                 [layers.SimpleRNN(5, activation="relu")], [layers.LSTM(4, recurrent_dropout=.2)],
                 [layers.LSTM(4, return_sequences=True), layers.LSTM(4, go_backwards=True)],
                 [layers.LSTM(4, return_sequences=True), layers.Dropout(0.2), layers.LSTM(4)]):
        assert _fused.plan_for(build(body)) is None, body
    unbuilt = keras.Sequential([layers.Embedding(V, E), layers.LSTM(4),
                                layers.Dense(1, activation="sigmoid")])
    unbuilt.compile(optimizer="rmsprop", loss="binary_crossentropy")
    assert _fused.plan_for(unbuilt) is None  # no weights yet: fit builds, then asks again
    clipped = build(BODIES["GRU"]())
    clipped.compile(optimizer=keras.optimizers.RMSprop(clipnorm=1.0), loss="binary_crossentropy")
    assert _fused.plan_for(clipped) is None
    config.set_backend("numpy")
    assert _fused.plan_for(build(BODIES["GRU"]())) is None


class BatchLosses(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_end(self, batch, logs=None):
        self.seen.append((batch, logs["loss"]))


def test_batch_callbacks_see_every_batch(numba_backend, floatx):
    fused_watch, layers_watch = BatchLosses(), BatchLosses()
    train("fused", "GRU", callback_list=[fused_watch])
    train("layers", "GRU", callback_list=[layers_watch])
    assert [b for b, _ in fused_watch.seen] == [b for b, _ in layers_watch.seen]
    np.testing.assert_allclose([v for _, v in fused_watch.seen],
                               [v for _, v in layers_watch.seen], rtol=1e-5)


def test_a_non_finite_step_stops_and_changes_nothing(numba_backend):
    model = build(BODIES["SimpleRNN"](), learning_rate=1e39)
    ids, labels = data()
    before = model.get_weights()
    with pytest.warns(RuntimeWarning, match="epoch 1, batch 1 gave non-finite weights"):
        model.fit(ids, labels, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == 0


def test_fit_called_per_epoch_continues_the_same_run(numba_backend):
    """fit(epochs=1) twice from one seed equals fit(epochs=2): state lives in the model."""
    ids, labels = data()
    one = build(BODIES["LSTM"]())
    keras.utils.set_random_seed(3)
    one.fit(ids, labels, epochs=2, batch_size=32, verbose=0)
    two = build(BODIES["LSTM"]())
    keras.utils.set_random_seed(3)
    for _ in range(2):
        two.fit(ids, labels, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("body", ["SimpleRNN", "LSTM", "GRU"])
def test_parallel_predict_gives_the_serial_bits(numba_backend, monkeypatch, body):
    """Sequences are independent in the forward pass: blocks on several threads change no
    bit (``switches.PARALLEL_MIN_BATCH``)."""
    import numba

    from nprnn.kernels.compiled import switches

    model = build(BODIES[body]())
    ids, _ = data(count=300)
    monkeypatch.setattr(switches, "PARALLEL_MIN_BATCH", 0)
    serial = model.predict(ids, batch_size=64, verbose=0)
    monkeypatch.setattr(switches, "PARALLEL_MIN_BATCH", 1)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    np.testing.assert_array_equal(model.predict(ids, batch_size=64, verbose=0), serial)


# numba_backend only selects the backend: the same for every example
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(1, 90), steps=st.integers(1, 9), embed=st.integers(1, 7),
       units=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       batch_size=st.integers(1, 40), rates=st.tuples(st.sampled_from([0.0, 0.4]),
                                                       st.sampled_from([0.0, 0.4])),
       mask_zero=st.booleans())
def test_a_stack_of_any_size_equals_the_per_layer_route(numba_backend, count, steps, embed, units,
                                                        batch_size, rates, mask_zero):
    """Any sizes, batch sizes that do or do not divide the data, dropout on either layer,
    token 0 masked or not (ids drawn from 0..V-1, so some steps and, for short rows, whole
    rows are masked): float64 weights and predictions after an epoch equal the per-layer
    route's to 1e-10."""
    previous = config.floatx()
    config.set_floatx("float64")
    try:
        rng = np.random.default_rng(count * 31 + steps)
        ids = rng.integers(0, V, size=(count, steps))
        ids[rng.random((count, steps)) < 0.2] = 0
        labels = rng.integers(0, 2, size=count)
        results = []
        for route in ("fused", "layers"):
            keras.utils.set_random_seed(3)
            model = keras.Sequential([
                layers.Embedding(V, embed, mask_zero=mask_zero),
                layers.LSTM(units[0], dropout=rates[0], return_sequences=True),
                layers.GRU(units[1], dropout=rates[1]),
                layers.Dense(1, activation="sigmoid")])
            model.compile(optimizer=keras.optimizers.RMSprop(1e-2), loss="binary_crossentropy",
                          metrics=["accuracy"])
            with route_of(route):
                model.fit(ids, labels, epochs=1, batch_size=batch_size, verbose=0)
                results.append((model.get_weights(),
                                model.predict(ids, batch_size=batch_size, verbose=0)))
            if route == "fused":
                assert _fused.plan_for(model) is not None
        (fused_weights, fused_out), (weights, out) = results
        for a, b in zip(fused_weights, weights, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
        np.testing.assert_allclose(fused_out, out, atol=1e-10, rtol=0)
    finally:
        config.set_floatx(previous)
