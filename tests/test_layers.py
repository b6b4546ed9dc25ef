"""Layers: gradient checks in float64 (non-square sizes), parameter counts, input routes."""

import numpy as np
import pytest

import nprnn
from nprnn import layers
from nprnn.gradcheck import check_layer, check_model, rel_error
from nprnn.utils import to_categorical

N, T, D, H, V, E = 3, 5, 4, 6, 7, 2  # all different


def built(layer, input_shape):
    layer.build(input_shape)
    return layer


@pytest.mark.usefixtures("float64", "numpy_backend")
class TestGradients:
    def test_simple_rnn_last_state(self, rng):
        layer = built(layers.SimpleRNN(H), (None, T, D))
        errors = check_layer(layer, rng.standard_normal((N, T, D)))
        assert max(errors.values()) < 1e-7, errors

    def test_simple_rnn_return_sequences(self, rng):
        layer = built(layers.SimpleRNN(H, return_sequences=True), (None, T, D))
        errors = check_layer(layer, rng.standard_normal((N, T, D)))
        assert set(errors) == {"kernel", "recurrent_kernel", "bias", "input"}
        assert max(errors.values()) < 1e-7, errors

    def test_simple_rnn_on_token_input_with_a_table(self, rng):
        """The gather route: gradients of the weights and of the table itself."""
        layer = built(layers.SimpleRNN(H), (None, T, E))
        table = rng.standard_normal((V, E))
        ids = np.array([[1, 1, 3, 0, 6], [2, 3, 3, 1, 1], [6, 5, 4, 0, 0]])
        token_input = layers.TokenInput(ids, table, V)
        upstream = rng.standard_normal((N, H))
        errors = check_layer(layer, token_input, upstream=upstream)
        assert max(errors.values()) < 1e-7, errors

        def objective():
            return float(np.sum(layer.forward(token_input) * upstream))

        objective()
        gradient = layer.backward(upstream)  # a ProjectionGradient: dtable = G Wx^T
        dtable = sum(G @ W.T for G, W in gradient.terms)
        assert rel_error(dtable, nprnn.gradcheck.numerical_gradient(objective, table)) < 1e-7

    def test_embedding_with_repeated_ids(self, rng):
        layer = built(layers.Embedding(V, E), (None, T))
        ids = np.array([[1, 1, 3, 0, 6], [2, 3, 3, 1, 1], [6, 5, 4, 0, 0]])
        upstream = rng.standard_normal((N, T, E))
        errors = check_layer(layer, ids, upstream=upstream)
        assert errors["embeddings"] < 1e-7

    @pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh"])
    def test_dense(self, rng, activation):
        layer = built(layers.Dense(H, activation=activation), (None, D))
        errors = check_layer(layer, rng.standard_normal((N, D)))
        assert max(errors.values()) < 1e-7, errors

    def test_dense_on_sequences(self, rng):
        layer = built(layers.Dense(H), (None, T, D))
        errors = check_layer(layer, rng.standard_normal((N, T, D)))
        assert max(errors.values()) < 1e-7, errors


def book_like_models(vocabulary=V, steps=T, embedding=E, units=H):
    """Small versions of the chapter's two models."""
    one_hot = nprnn.Sequential([layers.SimpleRNN(units, input_shape=(steps, vocabulary)),
                                layers.Dense(1, activation="sigmoid")])
    embedded = nprnn.Sequential([layers.Embedding(vocabulary, embedding, input_length=steps),
                                 layers.SimpleRNN(units), layers.Dense(1, activation="sigmoid")])
    for model in (one_hot, embedded):
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return one_hot, embedded


@pytest.mark.usefixtures("float64", "numpy_backend")
class TestWholeModelGradients:
    def test_embedding_model(self, rng):
        _, model = book_like_models()
        ids = rng.integers(0, V, size=(N, T))
        y = np.array([0, 1, 1])
        errors = check_model(model, ids, y)
        assert max(errors.values()) < 1e-7, errors

    @pytest.mark.parametrize("sparse", [False, True])
    def test_one_hot_model(self, rng, sparse):
        model, _ = book_like_models()
        ids = rng.integers(0, V, size=(N, T))
        errors = check_model(model, to_categorical(ids, V, dtype="float64", sparse=sparse),
                             np.array([1, 0, 1]))
        assert max(errors.values()) < 1e-7, errors

    def test_return_sequences_stack(self, rng):
        model = nprnn.Sequential([layers.Embedding(V, E, input_length=T),
                                  layers.SimpleRNN(H, return_sequences=True),
                                  layers.SimpleRNN(3), layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        errors = check_model(model, rng.integers(0, V, size=(N, T)), np.array([0, 1, 0]))
        assert max(errors.values()) < 1e-7, errors

    def test_probability_loss_route(self, rng):
        """A sigmoid output trained with MSE takes the generic (non-logit) backward route."""
        model = nprnn.Sequential([layers.SimpleRNN(H, input_shape=(T, D)),
                                  layers.Dense(2, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="mse")
        errors = check_model(model, rng.standard_normal((N, T, D)), rng.random((N, 2)))
        assert max(errors.values()) < 1e-7, errors


class TestInputRoutes:
    """Dense one-hot, sparse one-hot and the embedding gather compute the same numbers."""

    @pytest.mark.usefixtures("float64")
    def test_dense_and_sparse_one_hot_agree(self, rng, backend):
        model, _ = book_like_models()
        ids = rng.integers(0, V, size=(8, T))
        y = rng.integers(0, 2, size=8)
        dense = to_categorical(ids, V, dtype="float64")
        sparse = to_categorical(ids, V, dtype="float64", sparse=True)
        for a, b in zip(model.compute_gradients(dense, y), model.compute_gradients(sparse, y)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(model.predict(dense, verbose=0),
                                   model.predict(sparse, verbose=0), rtol=1e-12)
        assert model.evaluate(dense, y, verbose=0) == pytest.approx(
            model.evaluate(sparse, y, verbose=0), rel=1e-12)

    @pytest.mark.usefixtures("float64")
    def test_embedding_gather_equals_materialised_lookup(self, rng, backend):
        """Feeding E[ids] as a dense input to the same SimpleRNN gives the same gradients."""
        _, model = book_like_models()
        ids = rng.integers(0, V, size=(N, T))
        y = np.array([1, 0, 1])
        grads = model.compute_gradients(ids, y)
        embeddings, Wx, Wh, b, Wd, bd = model.get_weights()
        dense_model = nprnn.Sequential([layers.SimpleRNN(H, input_shape=(T, E)),
                                        layers.Dense(1, activation="sigmoid")])
        dense_model.compile(optimizer="rmsprop", loss="binary_crossentropy")
        dense_model.set_weights([Wx, Wh, b, Wd, bd])
        dense_grads = dense_model.compute_gradients(embeddings[ids], y)
        for a, b_ in zip(grads[1:], dense_grads):
            np.testing.assert_allclose(a, b_, rtol=1e-10, atol=1e-13)

    @pytest.mark.usefixtures("float64")
    def test_trained_weights_agree_across_routes(self, rng, backend):
        ids = rng.integers(0, V, size=(40, T))
        y = (ids[:, -1] > V // 2).astype(int)
        results = []
        for sparse in (False, True):
            nprnn.utils.set_random_seed(7)
            model, _ = book_like_models()
            model.fit(to_categorical(ids, V, dtype="float64", sparse=sparse), y, epochs=2,
                      batch_size=16, verbose=0)
            results.append(model.get_weights())
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_book_parameter_counts():
    one_hot = nprnn.Sequential()
    one_hot.add(layers.SimpleRNN(8, input_shape=(100, 500)))
    one_hot.add(layers.Dense(1, activation="sigmoid"))
    embedded = nprnn.Sequential()
    embedded.add(layers.Embedding(500, 16, input_length=100))
    embedded.add(layers.SimpleRNN(8))
    embedded.add(layers.Dense(1, activation="sigmoid"))
    assert [layer.count_params() for layer in one_hot.layers] == [4072, 9]
    assert one_hot.count_params() == 4081 == 500 * 8 + 8 * 8 + 8 + 8 + 1
    assert [layer.count_params() for layer in embedded.layers] == [8000, 200, 9]
    assert embedded.count_params() == 8209
    assert [w.shape for w in embedded.get_weights()] == [(500, 16), (16, 8), (8, 8), (8,),
                                                          (8, 1), (1,)]


def test_keras_default_initializers():
    layer = built(layers.SimpleRNN(8), (None, 100, 500))
    kernel, recurrent, bias = layer.get_weights()
    limit = np.sqrt(6 / (500 + 8))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(8), atol=1e-6)
    np.testing.assert_array_equal(bias, 0)
    embedding = built(layers.Embedding(500, 16), (None, 100)).get_weights()[0]
    assert np.abs(embedding).max() <= 0.05
    assert embedding.dtype == np.float32


def test_initial_weights_follow_the_seed():
    def weights(seed):
        nprnn.utils.set_random_seed(seed)
        return built(layers.SimpleRNN(4), (None, 3, 5)).get_weights()

    for a, b in zip(weights(3), weights(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(3)[0], weights(4)[0])


def test_simple_rnn_rejects_unknown_activations():
    with pytest.raises(ValueError, match="activation: expected one of .*got 'swish'"):
        layers.SimpleRNN(8, activation="swish")
