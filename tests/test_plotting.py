"""nprnn.plotting: the figures are written, and the numbers behind them are right.

The gradient helper is checked against centred finite differences in float64: a bump of
size eps is added to one hidden state h_t during the forward pass (the later steps see it,
the earlier ones do not), exactly the definition of the derivative of the loss with respect
to a node of the unrolled graph.
"""

import numpy as np
import pytest

import nprnn as keras
from nprnn import plotting
from nprnn.kernels import reference

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    assert path.exists(), path
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000


def embedding_model(vocabulary=20, steps=7, units=4, dim=5, recurrent=keras.layers.SimpleRNN):
    model = keras.Sequential()
    model.add(keras.layers.Embedding(vocabulary, dim, input_length=steps))
    model.add(recurrent(units))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def onehot_model(vocabulary=20, steps=7, units=4):
    model = keras.Sequential()
    model.add(keras.layers.SimpleRNN(units, input_shape=(steps, vocabulary)))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer=keras.optimizers.RMSprop(1e-4), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def spread_weights(model, rng, scale=0.6):
    """Random weights large enough that tanh is far from linear (a sharper test)."""
    model.set_weights([rng.normal(0, scale, w.shape) for w in model.get_weights()])


def data(rng, n=6, steps=7, vocabulary=20):
    ids = rng.integers(0, vocabulary, size=(n, steps))
    labels = rng.integers(0, 2, size=n)
    return ids, labels


def lstm_model(**kwargs):
    return embedding_model(recurrent=keras.layers.LSTM, **kwargs)


def gru_model(**kwargs):
    return embedding_model(recurrent=keras.layers.GRU, **kwargs)


def gru_reset_before_model(**kwargs):
    return embedding_model(recurrent=lambda units: keras.layers.GRU(units, reset_after=False),
                           **kwargs)


def rnn_lstm_cell_model(**kwargs):
    return embedding_model(recurrent=lambda units: keras.layers.RNN(keras.layers.LSTMCell(units)),
                           **kwargs)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def loss_with_bump(model, ids, labels, sample, step, unit, eps):
    """Review ``sample``'s BCE with ``eps`` added to h_step[unit]; written out in float64.

    SimpleRNN: h = tanh(x Wx + h Wh + b). LSTM, Keras' gate order (i, f, c, o):
    z = x Wx + h Wh + b, c = sigmoid(z_f) c + sigmoid(z_i) tanh(z_c), h = sigmoid(z_o) tanh(c).
    """
    layers = model.layers
    if isinstance(layers[0], keras.layers.Embedding):
        table = layers[0].get_weights()[0].astype(np.float64)
        rnn, dense = layers[1], layers[2]
    else:
        table, rnn, dense = None, layers[0], layers[1]
    Wx, Wh, b = (w.astype(np.float64) for w in rnn.get_weights())
    W, c = (w.astype(np.float64) for w in dense.get_weights())
    inputs = table[ids] if table is not None else np.eye(Wx.shape[0])[ids]
    h = np.zeros((len(ids), Wh.shape[0]))
    cell = np.zeros_like(h)
    for t in range(ids.shape[1]):
        z = inputs[:, t] @ Wx + h @ Wh + b
        if isinstance(rnn, keras.layers.LSTM):
            i, f, g, o = np.split(z, 4, axis=1)
            cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(cell)
        else:
            h = np.tanh(z)
        if t == step:
            h[sample, unit] += eps
    z = (h @ W + c)[sample, 0]
    y = labels[sample]
    return max(z, 0) - z * y + np.log1p(np.exp(-abs(z)))


@pytest.mark.parametrize("make_model", [embedding_model, onehot_model, lstm_model])
def test_hidden_state_gradients_match_finite_differences(float64, rng, make_model):
    model = make_model()
    spread_weights(model, rng)
    ids, labels = data(rng)
    hidden, dhidden = plotting.hidden_state_gradients(model, ids, labels)
    assert hidden.shape == dhidden.shape == (6, 7, 4)
    assert dhidden.dtype == np.float64
    eps = 1e-6
    numeric = np.zeros_like(dhidden)
    for n in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            for k in range(hidden.shape[2]):
                plus = loss_with_bump(model, ids, labels, n, t, k, eps)
                minus = loss_with_bump(model, ids, labels, n, t, k, -eps)
                numeric[n, t, k] = (plus - minus) / (2 * eps)
    assert keras.gradcheck.rel_error(dhidden, numeric) < 1e-7
    # the gradient really travels back in time: early steps are not all zero
    assert np.abs(dhidden[:, 0]).max() > 0


def test_hidden_state_gradients_give_the_models_own_weight_gradients(float64, rng):
    """dL/dWh = (1/N) sum_n sum_t h_{t-1}^T (dl_n/dh_t * (1 - h_t^2)), as fit computes it."""
    model = embedding_model()
    spread_weights(model, rng)
    ids, labels = data(rng)
    hidden, dhidden = plotting.hidden_state_gradients(model, ids, labels)
    dz = dhidden * (1 - hidden**2)
    previous = np.concatenate([np.zeros_like(hidden[:, :1]), hidden[:, :-1]], axis=1)
    dWh = np.einsum("nti,ntj->ij", previous, dz) / len(ids)
    db = dz.sum(axis=(0, 1)) / len(ids)
    gradients = model.compute_gradients(ids, labels)
    assert keras.gradcheck.rel_error(dWh, gradients[2]) < 1e-10
    assert keras.gradcheck.rel_error(db, gradients[3]) < 1e-10


@pytest.mark.parametrize("make_model", [embedding_model, lstm_model, gru_model,
                                        gru_reset_before_model, rnn_lstm_cell_model])
def test_hidden_states_end_where_the_model_does(rng, make_model):
    """Last hidden state through the Dense layer gives model.predict (float32 model)."""
    model = make_model()
    spread_weights(model, rng, scale=0.3)
    ids, _ = data(rng)
    hidden = plotting.rnn_hidden_states(model, ids)
    assert hidden.shape == (6, 7, 4) and hidden.dtype == np.float64
    W, c = model.layers[2].get_weights()
    expected = model.predict(ids, verbose=0)
    assert np.allclose(reference.sigmoid(hidden[:, -1] @ W + c), expected, atol=1e-6)
    assert np.all(np.abs(hidden) <= 1)
    # and every step, not only the last: the layer's own return_sequences output
    recurrent = model.layers[1]
    sequences = type(recurrent).from_config({**recurrent.get_config(), "return_sequences": True})
    sequences.build((None, 7, 5))
    sequences.set_weights(recurrent.get_weights())
    assert np.allclose(hidden, sequences(model.layers[0](ids)), atol=1e-6)


def test_one_hot_inputs_all_agree(rng):
    """Token ids, a SparseOneHot and the dense one-hot give the same hidden states."""
    model = onehot_model()
    ids, _ = data(rng)
    from_ids = plotting.rnn_hidden_states(model, ids)
    sparse = keras.utils.to_categorical(ids, num_classes=20, sparse=True)
    dense = keras.utils.to_categorical(ids, num_classes=20)
    assert np.allclose(plotting.rnn_hidden_states(model, sparse), from_ids, atol=1e-12)
    assert np.allclose(plotting.rnn_hidden_states(model, dense), from_ids, atol=1e-6)


@pytest.mark.parametrize("make_model", [embedding_model, lstm_model, gru_model])
def test_word_effects_match_brute_force(float64, rng, make_model):
    model = make_model()
    spread_weights(model, rng)
    contexts, _ = data(rng, n=5)
    effects = plotting.word_effects(model, contexts)
    assert effects.shape == (20,)

    def logits(ids):
        p = model.predict(ids, verbose=0)[:, 0]
        return np.log(p) - np.log1p(-p)

    base = logits(contexts)
    for word in (0, 3, 19):
        shifted = np.concatenate([contexts[:, 1:], np.full((5, 1), word)], axis=1)
        assert np.isclose(effects[word], np.mean(logits(shifted) - base), atol=1e-9)


def test_chapter_shape_is_required():
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,)),
                              keras.layers.Dense(1, activation="sigmoid")])
    with pytest.raises(ValueError, match="chapter's shape"):
        plotting.rnn_hidden_states(model, np.zeros((2, 4), dtype=int))
    with pytest.raises(ValueError, match="labels"):
        plotting.hidden_state_gradients(embedding_model(), np.zeros((2, 7), dtype=int), [1])
    with pytest.raises(ValueError, match=r"\[0, 20\)"):
        plotting.rnn_hidden_states(embedding_model(), np.full((2, 7), 20))


def test_other_recurrent_models_are_refused_by_name():
    """The chapter's shape, read forwards over every step; no dl/dh_t for a GRU."""
    def model(*stack):
        built = keras.Sequential([keras.layers.Embedding(20, 5, input_length=7, **stack[0]),
                                  stack[1], keras.layers.Dense(1, activation="sigmoid")])
        assert all(layer.built for layer in built.layers)
        return built

    ids = np.zeros((2, 7), dtype=int)
    with pytest.raises(ValueError, match="chapter's shape"):
        plotting.rnn_hidden_states(model({}, keras.layers.LSTM(4, return_sequences=True)), ids)
    with pytest.raises(ValueError, match="SimpleRNN or an LSTM, got a GRU"):
        plotting.hidden_state_gradients(model({}, keras.layers.GRU(4)), ids, [0, 1])
    with pytest.raises(ValueError, match="mask_zero=False"):
        plotting.hidden_state_gradients(model({"mask_zero": True}, keras.layers.SimpleRNN(4)),
                                        ids, [0, 1])
    with pytest.raises(ValueError, match="go_backwards"):
        plotting.word_effects(model({}, keras.layers.SimpleRNN(4, go_backwards=True)), ids)


def test_the_numbers_leave_the_random_stream_alone(rng):
    """Copying the model to float64 draws no random numbers: the next fit is unchanged."""
    from nprnn import _random

    model = embedding_model()
    ids, labels = data(rng)
    before = _random.generator().bit_generator.state
    plotting.hidden_state_gradients(model, ids, labels)
    plotting.word_effects(model, ids)
    assert _random.generator().bit_generator.state == before


# --------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------
def test_every_plot_writes_a_png(tmp_path, rng):
    import matplotlib.pyplot as plt

    figures_before = plt.get_fignums()
    history = {"loss": [0.69, 0.6, 0.5], "val_loss": [0.68, 0.62, 0.55],
               "accuracy": [0.5, 0.6, 0.7], "val_accuracy": [0.52, 0.61, 0.69]}
    outputs = [
        plotting.plot_history(history, tmp_path / "loss.png", best_epoch=3, title="t"),
        plotting.plot_history(history, tmp_path / "sub" / "both.png",
                              metrics=("loss", "accuracy")),
        plotting.plot_history_comparison({"a": history, "b": history}, tmp_path / "cmp.png",
                                         band=(0.6, 0.7, "book")),
        plotting.plot_length_histogram(rng.integers(10, 900, 500), tmp_path / "len.png",
                                       maxlen=100),
        plotting.plot_gradient_norms({"trained": np.geomspace(1e-6, 1, 100),
                                      "untrained": np.linspace(0.1, 1, 100)},
                                     tmp_path / "grad.png",
                                     bands={"trained": (np.geomspace(1e-7, 0.5, 100),
                                                        np.geomspace(1e-5, 2, 100))}),
        plotting.plot_hidden_states(rng.uniform(-1, 1, (30, 8)), tmp_path / "heat.png",
                                    words=[f"w{i}" for i in range(30)], prediction=0.7),
        plotting.plot_embedding_pca(rng.normal(size=(50, 16)), tmp_path / "pca.png",
                                    words=[f"w{i}" for i in range(50)],
                                    scores=rng.normal(size=50), n_labels=5),
        plotting.plot_embedding_pca(rng.normal(size=(50, 16)), tmp_path / "pca_plain.png"),
    ]
    for path in outputs:
        assert_png(path)
    assert outputs[1] == tmp_path / "sub" / "both.png"
    # pyplot's state is untouched: the helpers never open pyplot figures
    assert plt.get_fignums() == figures_before


def test_plot_history_accepts_a_history_object(tmp_path, rng):
    model = embedding_model()
    ids, labels = data(rng, n=16)
    history = model.fit(ids, labels, epochs=2, batch_size=8, verbose=0,
                        validation_data=(ids, labels))
    assert_png(plotting.plot_history(history, str(tmp_path / "h.png")))


def test_plot_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="png"):
        plotting.plot_history({"loss": [1.0]}, tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="not in the history"):
        plotting.plot_history({"loss": [1.0]}, tmp_path / "a.png", metrics=("accuracy",))
    with pytest.raises(TypeError, match="History"):
        plotting.plot_history([1.0], tmp_path / "a.png")
    with pytest.raises(ValueError, match="words"):
        plotting.plot_hidden_states(np.zeros((5, 2)), tmp_path / "a.png", words=["x"])
    with pytest.raises(ValueError, match="scores"):
        plotting.plot_embedding_pca(np.zeros((5, 2)), tmp_path / "a.png", scores=[1.0])
    with pytest.raises(ValueError, match="no curve"):
        plotting.plot_gradient_norms({"a": [1.0, 2.0]}, tmp_path / "a.png",
                                     bands={"b": ([1.0, 1.0], [2.0, 2.0])})
    with pytest.raises(ValueError, match="lengths"):
        plotting.plot_length_histogram([], tmp_path / "a.png")
    assert not any(tmp_path.iterdir())


def test_pictures_get_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = plotting.plot_history({"loss": [1.0, 0.5]}, tmp_path / "p.png")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
