"""The NumPy reference kernels: golden values from an independent scalar implementation,
and centred-difference gradient checks in float64 over non-square sizes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nprnn.gradcheck import numerical_gradient, rel_error
from nprnn.kernels import reference as K

# Non-square everywhere: N != T != D != H != V, so a transposed matrix cannot hide.
N, T, D, H, V = 3, 5, 4, 6, 7


def scalar_simple_rnn(x, Wx, Wh, b):
    """An independent SimpleRNN written with Python floats and math.tanh, one sample at a time."""
    n_samples, n_steps, n_features = x.shape
    units = Wh.shape[0]
    out = np.zeros((n_samples, n_steps, units))
    for n in range(n_samples):
        h = [0.0] * units
        for t in range(n_steps):
            new_h = []
            for j in range(units):
                z = b[j]
                for d in range(n_features):
                    z += x[n, t, d] * Wx[d, j]
                for k in range(units):
                    z += h[k] * Wh[k, j]
                new_h.append(math.tanh(z))
            h = new_h
            out[n, t] = h
    return out


def linspace_inputs():
    """CS231n-style deterministic inputs."""
    x = np.linspace(-0.4, 0.3, N * T * D).reshape(N, T, D)
    Wx = np.linspace(-0.2, 0.5, D * H).reshape(D, H)
    Wh = np.linspace(-0.4, 0.1, H * H).reshape(H, H)
    b = np.linspace(-0.7, 0.1, H)
    return x, Wx, Wh, b


def test_rnn_forward_matches_an_independent_scalar_implementation():
    x, Wx, Wh, b = linspace_inputs()
    hidden, _ = K.rnn_forward(x, np.zeros((N, H)), Wx, Wh, b)
    assert rel_error(hidden, scalar_simple_rnn(x, Wx, Wh, b)) < 1e-12


def test_rnn_step_forward_golden_value():
    # One sample, one step, computed by hand: tanh([1, 2] @ [[0.1], [0.2]] + 0.5*0.3 + 0.05).
    h, _ = K.rnn_step_forward(np.array([[1.0, 2.0]]), np.array([[0.5]]),
                              np.array([[0.1], [0.2]]), np.array([[0.3]]), np.array([0.05]))
    assert h[0, 0] == pytest.approx(math.tanh(0.1 + 0.4 + 0.15 + 0.05), abs=1e-15)


def test_step_backward_gradients():
    rng = np.random.default_rng(1)
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    dh_next = rng.standard_normal((N, H))

    def objective():
        return np.sum(K.rnn_step_forward(x, h_prev, Wx, Wh, b)[0] * dh_next)

    _, cache = K.rnn_step_forward(x, h_prev, Wx, Wh, b)
    dx, dh_prev, dWx, dWh, db = K.rnn_step_backward(dh_next, cache)
    for analytic, array in [(dx, x), (dh_prev, h_prev), (dWx, Wx), (dWh, Wh), (db, b)]:
        assert rel_error(analytic, numerical_gradient(objective, array)) < 1e-7


@pytest.mark.parametrize("last_only", [True, False])
def test_sequence_backward_gradients(last_only):
    """Full BPTT: from the last state only (the book's layer) and from every state."""
    rng = np.random.default_rng(2)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx = rng.standard_normal((D, H)) * 0.5
    Wh = rng.standard_normal((H, H)) * 0.5
    b = rng.standard_normal(H)
    dhidden = rng.standard_normal((N, T, H))
    if last_only:
        dhidden[:, :-1] = 0
    dhidden_before = dhidden.copy()

    def objective():
        return np.sum(K.rnn_forward(x, h0, Wx, Wh, b)[0] * dhidden)

    _, cache = K.rnn_forward(x, h0, Wx, Wh, b)
    grads = K.rnn_backward(dhidden, cache)
    np.testing.assert_array_equal(dhidden, dhidden_before)  # the upstream gradient is not written
    for analytic, array in zip(grads, (x, h0, Wx, Wh, b)):
        assert rel_error(analytic, numerical_gradient(objective, array)) < 1e-7


def test_sequence_backward_equals_chained_step_backwards():
    """The sequence pass is exactly the step pass chained through time, so one cannot pass
    its check while the other fails."""
    rng = np.random.default_rng(3)
    x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
    Wx, Wh, b = rng.standard_normal((D, H)), rng.standard_normal((H, H)), rng.standard_normal(H)
    dhidden = rng.standard_normal((N, T, H))
    hidden, cache = K.rnn_forward(x, h0, Wx, Wh, b)

    caches, h = [], h0
    for t in range(T):
        h, step_cache = K.rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(step_cache)
        np.testing.assert_allclose(h, hidden[:, t], rtol=1e-13)
    dx = np.zeros_like(x)
    dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dh = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dh, dWx_t, dWh_t, db_t = K.rnn_step_backward(dhidden[:, t] + dh, caches[t])
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    for chained, sequence in zip((dx, dh, dWx, dWh, db), K.rnn_backward(dhidden, cache)):
        np.testing.assert_allclose(sequence, chained, rtol=1e-10, atol=1e-12)


def test_embedding_backward_accumulates_repeated_ids():
    rng = np.random.default_rng(4)
    ids = np.array([[1, 1, 3, 0, 1], [6, 3, 3, 1, 2]])  # 1 and 3 repeat, 4 and 5 absent
    E = rng.standard_normal((V, D))
    dout = rng.standard_normal(ids.shape + (D,))

    def objective():
        return np.sum(K.embedding_forward(ids, E) * dout)

    dE = K.embedding_backward(dout, ids, V)
    assert rel_error(dE, numerical_gradient(objective, E)) < 1e-7
    np.testing.assert_array_equal(dE[[4, 5]], 0)
    np.testing.assert_allclose(dE[1], dout[0, 0] + dout[0, 1] + dout[0, 4] + dout[1, 3])


def test_dense_backward_gradients():
    rng = np.random.default_rng(5)
    x, W, b = rng.standard_normal((N, D)), rng.standard_normal((D, H)), rng.standard_normal(H)
    dout = rng.standard_normal((N, H))

    def objective():
        return np.sum(K.dense_forward(x, W, b) * dout)

    for analytic, array in zip(K.dense_backward(dout, x, W), (x, W, b)):
        assert rel_error(analytic, numerical_gradient(objective, array)) < 1e-7


def test_sigmoid_cross_entropy_gradient_and_values():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((N + 4, 1)) * 3
    y = rng.integers(0, 2, size=N + 4).astype(float)

    def objective():
        return K.sigmoid_binary_crossentropy(z, y)

    analytic = K.sigmoid_binary_crossentropy_backward(z, y)
    assert rel_error(analytic, numerical_gradient(objective, z)) < 1e-7
    p = 1 / (1 + np.exp(-z.ravel()))
    naive = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert K.sigmoid_binary_crossentropy(z, y) == pytest.approx(naive, rel=1e-12)


def test_sigmoid_cross_entropy_is_finite_when_saturated():
    z = np.array([-1000.0, -40.0, 40.0, 1000.0])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    loss = K.sigmoid_binary_crossentropy(z, y)
    assert loss == pytest.approx(np.mean([1000.0, 40.0, 40.0, 1000.0]), rel=1e-12)
    assert np.all(np.isfinite(K.sigmoid(z)))
    np.testing.assert_allclose(K.sigmoid_binary_crossentropy_backward(z, y),
                               np.array([-1, -1, 1, 1]) / 4, atol=1e-15)


def test_rmsprop_update_rule_by_hand():
    w, g, v = np.array([1.0, -2.0]), np.array([0.5, 0.1]), np.array([0.2, 0.0])
    new_w, new_v = K.rmsprop_update(w, g, v, learning_rate=0.01, rho=0.9, epsilon=1e-7)
    expected_v = 0.9 * v + 0.1 * g**2
    np.testing.assert_allclose(new_v, expected_v, rtol=1e-15)
    np.testing.assert_allclose(new_w, w - 0.01 * g / np.sqrt(expected_v + 1e-7), rtol=1e-15)
    np.testing.assert_array_equal(w, [1.0, -2.0])  # pure: inputs untouched


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), t=st.integers(1, 6), d=st.integers(1, 5), h=st.integers(1, 5))
def test_sequence_shapes_over_random_sizes(n, t, d, h):
    rng = np.random.default_rng(n * 1000 + t * 100 + d * 10 + h)
    x, h0 = rng.standard_normal((n, t, d)), np.zeros((n, h))
    Wx, Wh, b = rng.standard_normal((d, h)), rng.standard_normal((h, h)), rng.standard_normal(h)
    hidden, cache = K.rnn_forward(x, h0, Wx, Wh, b)
    assert hidden.shape == (n, t, h)
    assert np.all(np.abs(hidden) <= 1)
    shapes = [g.shape for g in K.rnn_backward(np.ones_like(hidden), cache)]
    assert shapes == [(n, t, d), (n, h), (d, h), (h, h), (h,)]
