"""Sequential: the book's code runs unchanged, summary, fit/evaluate/predict, learning."""

import io

import numpy as np
import pytest

import nprnn as keras
from nprnn.utils import to_categorical


def book_one_hot_model(steps=100, vocabulary=500):
    model = keras.Sequential()
    model.add(keras.layers.SimpleRNN(8, input_shape=(steps, vocabulary)))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def book_embedding_model(steps=100, vocabulary=500):
    model = keras.Sequential()
    model.add(keras.layers.Embedding(vocabulary, 16, input_length=steps))
    model.add(keras.layers.SimpleRNN(8))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def compile_like_the_book(model):
    rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
    model.compile(optimizer=rmsprop, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def synthetic_task(samples=1200, steps=20, vocabulary=30, seed=0):
    """Label = whether 'good' tokens (ids 3..9) outnumber 'bad' ones (10..16) in the review."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary, size=(samples, steps))
    score = ((ids >= 3) & (ids < 10)).sum(1) - ((ids >= 10) & (ids < 17)).sum(1)
    keep = score != 0
    return ids[keep].astype(np.int32), (score[keep] > 0).astype(np.int64)


def first_token_task(samples=1000, steps=20, vocabulary=30, seed=0):
    """Label = the first token (1: negative, 2: positive), then steps - 1 random tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, vocabulary, size=(samples, steps))
    y = rng.integers(0, 2, size=samples)
    ids[:, 0] = 1 + y
    return ids.astype(np.int32), y.astype(np.int64)


def summary_text(model):
    buffer = io.StringIO()
    model.summary(print_fn=buffer.write)
    return buffer.getvalue()


def test_summary_shows_keras_parameter_counts():
    text = summary_text(book_one_hot_model())
    assert "simple_rnn (SimpleRNN)" in text and "(None, 8)" in text
    assert "4,072" in text and "│             9 │" in text
    assert "Total params: 4,081" in text
    text = summary_text(book_embedding_model())
    assert "(None, 100, 16)" in text and "8,000" in text and "200" in text
    assert "Total params: 8,209" in text and "Non-trainable params: 0" in text


def test_summary_prints_and_has_an_ascii_form(capsys):
    model = book_embedding_model()
    model.summary()
    assert "8,209" in capsys.readouterr().out
    from nprnn._summary import format_summary
    ascii_text = format_summary(model, ascii_only=True)
    assert ascii_text.isascii() and "Total params: 8,209" in ascii_text


def test_model_from_a_list_and_lazy_build():
    model = keras.Sequential([keras.layers.Embedding(50, 4), keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1, activation="sigmoid")])
    assert not model.built
    with pytest.raises(ValueError, match="not built"):
        model.count_params()
    compile_like_the_book(model)
    model.predict(np.zeros((2, 7), dtype=int), verbose=0)
    assert model.built and model.count_params() == 50 * 4 + (4 * 3 + 9 + 3) + 4


def fit_first_token_task(route):
    keras.utils.set_random_seed(0)
    ids, y = first_token_task()
    if route == "embedding":
        model, x = book_embedding_model(steps=20, vocabulary=30), ids
    else:
        model = book_one_hot_model(steps=20, vocabulary=30)
        x = to_categorical(ids, num_classes=30, sparse=route == "sparse_one_hot")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-2),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model.fit(x[:800], y[:800], epochs=12, batch_size=32, verbose=0,
                     validation_data=(x[800:], y[800:])).history


@pytest.mark.parametrize("route", ["embedding", "one_hot", "sparse_one_hot"])
def test_learns_a_synthetic_task(route, backend):
    """The label is the first of 20 tokens: only a gradient that flows back through all 19
    recurrent steps can learn it (the next test shows truncated BPTT cannot)."""
    history = fit_first_token_task(route)
    assert history["val_accuracy"][-1] > 0.85, history
    assert history["loss"][-1] < history["loss"][0]


def test_truncated_bptt_cannot_learn_the_synthetic_task(backend, monkeypatch):
    """The control: with the recurrence's backward pass cut to the last 3 of 20 steps (as
    truncated BPTT, or a bug that drops the recurrent term, would) validation accuracy stays
    near chance (measured 0.53 to 0.58), so the test above can fail for a broken backward."""
    from nprnn import _fused, kernels
    from nprnn.kernels import reference

    module = kernels.active()
    full = module.rnn_backward

    def truncated(dhidden, dfinal_states, cache, keep=3):
        """BPTT over the last ``keep`` steps only: the backward of a cache cut to them."""
        if isinstance(cache, reference.RecurrenceCache):
            steps = len(cache.step_caches)
            short = cache._replace(step_caches=cache.step_caches[-keep:])
        else:  # the compiled cache: states after each step, and the one before the first
            steps = cache.hidden.shape[1]
            short = cache._replace(hidden=np.ascontiguousarray(cache.hidden[:, -keep:]),
                                   h0=np.ascontiguousarray(cache.hidden[:, -keep - 1]))
        upstream = None if dhidden is None else np.ascontiguousarray(dhidden[:, -keep:])
        dprojected, dinitial, dweights = full(upstream, dfinal_states, short)
        padded = np.zeros((len(dprojected), steps, dprojected.shape[2]), dprojected.dtype)
        padded[:, -keep:] = dprojected
        return padded, tuple(np.zeros_like(d) for d in dinitial), dweights

    monkeypatch.setattr(module, "rnn_backward", truncated)
    monkeypatch.setattr(_fused, "_switched_off", 1)  # the per-layer route
    history = fit_first_token_task("embedding")
    assert max(history["val_accuracy"]) < 0.7, history


def test_history_evaluate_and_predict_shapes():
    ids, y = synthetic_task(samples=300)
    model = compile_like_the_book(book_embedding_model(steps=20, vocabulary=30))
    history = model.fit(ids, y, epochs=2, batch_size=64, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == [0, 1] and history.params["steps"] == int(np.ceil(0.75 * len(ids) / 64))
    assert all(isinstance(v, float) for values in history.history.values() for v in values)
    loss, accuracy = model.evaluate(ids, y, verbose=0)
    assert 0 <= accuracy <= 1 and loss > 0
    predictions = model.predict(ids, verbose=0)
    assert predictions.shape == (len(ids), 1) and predictions.dtype == np.float32
    assert np.all((predictions > 0) & (predictions < 1))
    # evaluate's loss is the mean BCE of predict's outputs.
    p = predictions.ravel().astype(float)
    assert loss == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-4)
    assert accuracy == pytest.approx(np.mean((p > 0.5) == y))


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    """With lr = 0 the weights never move, so the epoch loss equals evaluate's loss even with a
    partial last batch."""
    ids, y = synthetic_task(samples=130)
    model = book_embedding_model(steps=20, vocabulary=30)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(ids, y, epochs=1, batch_size=32, verbose=0)
    loss, accuracy = model.evaluate(ids, y, batch_size=7, verbose=0)
    assert history.history["loss"][0] == pytest.approx(loss, rel=1e-6)
    assert history.history["accuracy"][0] == pytest.approx(accuracy)


def test_verbose_lines_look_like_keras(capsys):
    ids, y = synthetic_task(samples=100)
    model = compile_like_the_book(book_embedding_model(steps=20, vocabulary=30))
    model.fit(ids, y, epochs=2, batch_size=32, verbose=2, validation_split=0.2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert out[1].startswith("3/3 - ") and "ms/step" in out[1] or "us/step" in out[1]
    assert " - accuracy: " in out[1] and " - val_loss: " in out[1]


def test_fixed_seed_gives_identical_runs():
    ids, y = synthetic_task(samples=200)

    def run():
        keras.utils.set_random_seed(11)
        keras.layers.clear_session()
        model = compile_like_the_book(book_embedding_model(steps=20, vocabulary=30))
        history = model.fit(ids, y, epochs=2, batch_size=16, verbose=0)
        return model.get_weights(), history.history

    (weights_a, history_a), (weights_b, history_b) = run(), run()
    assert history_a == history_b
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def test_train_on_batch_and_compute_gradients():
    ids, y = synthetic_task(samples=100)
    model = compile_like_the_book(book_embedding_model(steps=20, vocabulary=30))
    before = model.get_weights()
    grads = model.compute_gradients(ids[:16], y[:16])
    assert [g.shape for g in grads] == [w.shape for w in before]
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # compute_gradients leaves the weights alone
    loss, accuracy = model.train_on_batch(ids[:16], y[:16])
    assert loss == pytest.approx(model.evaluate(ids[:16], y[:16], verbose=0)[0], rel=1e-2)
    # One RMSprop step from zero velocity: w - lr g / sqrt(0.1 g^2 + 1e-7), for every weight.
    for after, start, g in zip(model.get_weights(), before, grads):
        expected = start - 1e-4 * g / np.sqrt(0.1 * g.astype(float) ** 2 + 1e-7)
        np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-8)


def test_set_weights_names_the_wrong_weight():
    model = book_embedding_model()
    weights = model.get_weights()
    with pytest.raises(ValueError, match="expected 6 arrays"):
        model.set_weights(weights[:-1])
    weights[2] = np.zeros((9, 8))
    with pytest.raises(ValueError, match="recurrent_kernel expects shape \\(8, 8\\)"):
        model.set_weights(weights)


def test_fit_before_compile_is_a_clear_error():
    model = book_embedding_model(steps=20, vocabulary=30)
    with pytest.raises(ValueError, match="compile"):
        model.fit(np.zeros((4, 20), dtype=int), np.zeros(4))
