"""The NumPy reference kernels: golden values from independent scalar implementations,
and centred-difference gradient checks in float64 over non-square sizes.

Every step pair and every sequence pair is checked with :mod:`nprnn.gradcheck`, with masks,
recurrent dropout masks, both, and upstream gradients on the final states only or on every
returned state too."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nprnn.gradcheck import numerical_gradient, rel_error
from nprnn.kernels import reference as K

# Non-square everywhere: N != T != D != H != V, so a transposed matrix cannot hide.
N, T, D, H, V = 3, 5, 4, 6, 7
GRAD_TOL = 1e-7


# --------------------------------------------------------------------------------------
# Independent scalar implementations (Python floats, math.tanh / math.exp, one sample
# and one unit at a time)
# --------------------------------------------------------------------------------------
def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def _dot_col(vec, W, col):
    return sum(vec[k] * W[k, col] for k in range(len(vec)))


def scalar_simple_rnn(x, Wx, Wh, b):
    n_samples, n_steps, _ = x.shape
    units = Wh.shape[0]
    out = np.zeros((n_samples, n_steps, units))
    for n in range(n_samples):
        h = [0.0] * units
        for t in range(n_steps):
            h = [math.tanh(b[j] + _dot_col(x[n, t], Wx, j) + _dot_col(h, Wh, j))
                 for j in range(units)]
            out[n, t] = h
    return out


def scalar_lstm(x, Wx, Wh, b):
    n_samples, n_steps, _ = x.shape
    units = Wh.shape[0]
    out = np.zeros((n_samples, n_steps, units))
    for n in range(n_samples):
        h, c = [0.0] * units, [0.0] * units
        for t in range(n_steps):
            def pre(j, h=h, n=n, t=t):
                return b[j] + _dot_col(x[n, t], Wx, j) + _dot_col(h, Wh, j)
            new_h, new_c = [], []
            for j in range(units):
                i = _sig(pre(j))
                f = _sig(pre(units + j))
                g = math.tanh(pre(2 * units + j))
                o = _sig(pre(3 * units + j))
                new_c.append(f * c[j] + i * g)
                new_h.append(o * math.tanh(new_c[-1]))
            h, c = new_h, new_c
            out[n, t] = h
    return out


def scalar_gru(x, Wx, Wh, bias, reset_after):
    """bias: (2, 3H) when reset_after (input row, recurrent row), else (3H,)."""
    n_samples, n_steps, _ = x.shape
    units = Wh.shape[0]
    b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros(3 * units))
    out = np.zeros((n_samples, n_steps, units))
    for n in range(n_samples):
        h = [0.0] * units
        for t in range(n_steps):
            xs = [b_in[j] + _dot_col(x[n, t], Wx, j) for j in range(3 * units)]
            z = [_sig(xs[j] + _dot_col(h, Wh, j) + b_rec[j]) for j in range(units)]
            r = [_sig(xs[units + j] + _dot_col(h, Wh, units + j) + b_rec[units + j])
                 for j in range(units)]
            if reset_after:
                hh = [math.tanh(xs[2 * units + j] + r[j] * (
                    _dot_col(h, Wh, 2 * units + j) + b_rec[2 * units + j]))
                    for j in range(units)]
            else:
                rh = [r[k] * h[k] for k in range(units)]
                hh = [math.tanh(xs[2 * units + j] + _dot_col(rh, Wh, 2 * units + j))
                      for j in range(units)]
            h = [z[j] * h[j] + (1 - z[j]) * hh[j] for j in range(units)]
            out[n, t] = h
    return out


def linspace_inputs(G):
    """CS231n-style deterministic inputs for a cell with G gates."""
    x = np.linspace(-0.4, 0.3, N * T * D).reshape(N, T, D)
    Wx = np.linspace(-0.2, 0.5, D * G * H).reshape(D, G * H)
    Wh = np.linspace(-0.4, 0.1, H * G * H).reshape(H, G * H)
    b = np.linspace(-0.7, 0.1, G * H)
    return x, Wx, Wh, b


def test_rnn_forward_matches_an_independent_scalar_implementation():
    x, Wx, Wh, b = linspace_inputs(1)
    hidden, (h_T,), _ = K.rnn_forward(K.dense_forward(x, Wx, b), (np.zeros((N, H)),), (Wh,))
    assert rel_error(hidden, scalar_simple_rnn(x, Wx, Wh, b)) < 1e-12
    np.testing.assert_array_equal(h_T, hidden[:, -1])


def test_lstm_forward_matches_an_independent_scalar_implementation():
    x, Wx, Wh, b = linspace_inputs(4)
    zeros = np.zeros((N, H))
    hidden, (h_T, c_T), _ = K.lstm_forward(K.dense_forward(x, Wx, b), (zeros, zeros), (Wh,))
    assert rel_error(hidden, scalar_lstm(x, Wx, Wh, b)) < 1e-12
    np.testing.assert_array_equal(h_T, hidden[:, -1])
    assert not np.allclose(c_T, h_T)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_forward_matches_an_independent_scalar_implementation(reset_after):
    x, Wx, Wh, b_in = linspace_inputs(3)
    h0 = (np.zeros((N, H)),)
    if reset_after:
        b_rec = np.linspace(0.3, -0.2, 3 * H)
        hidden, _, _ = K.gru_forward(K.dense_forward(x, Wx, b_in), h0, (Wh, b_rec))
        want = scalar_gru(x, Wx, Wh, np.stack([b_in, b_rec]), True)
    else:
        hidden, _, _ = K.gru_reset_before_forward(K.dense_forward(x, Wx, b_in), h0, (Wh,))
        want = scalar_gru(x, Wx, Wh, b_in, False)
    assert rel_error(hidden, want) < 1e-12


def test_gru_variants_differ_and_agree_when_they_must():
    """With Wh_h = 0 and no recurrent bias, where r is applied cannot matter."""
    x, Wx, Wh, b = linspace_inputs(3)
    a = K.dense_forward(x, Wx, b)
    h0 = (np.zeros((N, H)),)
    after = K.gru_forward(a, h0, (Wh, np.zeros(3 * H)))[0]
    before = K.gru_reset_before_forward(a, h0, (Wh,))[0]
    assert rel_error(after, before) > 1e-3
    Wh0 = Wh.copy()
    Wh0[:, 2 * H:] = 0
    np.testing.assert_allclose(K.gru_forward(a, h0, (Wh0, np.zeros(3 * H)))[0],
                               K.gru_reset_before_forward(a, h0, (Wh0,))[0], rtol=1e-14)


def test_rnn_step_forward_golden_value():
    # One sample, one step, by hand: tanh(a + h_prev * Wh) = tanh(0.55 + 0.5 * 0.3).
    h, _ = K.rnn_step_forward(np.array([[0.55]]), np.array([[0.5]]), np.array([[0.3]]))
    assert h[0, 0] == pytest.approx(math.tanh(0.55 + 0.15), abs=1e-15)


def test_lstm_step_forward_golden_value():
    # H = 1: a = [0.1, 0.2, 0.3, 0.4], h_prev = 0.5 (mask 2), c_prev = -0.3, Wh = 0.1 each.
    a = np.array([[0.1, 0.2, 0.3, 0.4]])
    h, c, _ = K.lstm_step_forward(a, np.array([[0.5]]), np.array([[-0.3]]),
                                  np.full((1, 4), 0.1), recurrent_mask=np.array([[2.0]]))
    i, f, g, o = _sig(0.2), _sig(0.3), math.tanh(0.4), _sig(0.5)
    assert c[0, 0] == pytest.approx(f * -0.3 + i * g, abs=1e-15)
    assert h[0, 0] == pytest.approx(o * math.tanh(f * -0.3 + i * g), abs=1e-15)


def test_gru_step_forward_golden_value():
    # H = 1, reset_after: the mask enters the product only, h_prev the interpolation as is.
    a = np.array([[0.1, -0.2, 0.3]])
    b_rec = np.array([0.05, 0.0, -0.1])
    h, _ = K.gru_step_forward(a, np.array([[0.5]]), np.array([[0.2, 0.4, -0.6]]), b_rec,
                              recurrent_mask=np.array([[0.0]]))
    z, r = _sig(0.1 + 0.05), _sig(-0.2)
    hh = math.tanh(0.3 + r * -0.1)
    assert h[0, 0] == pytest.approx(z * 0.5 + (1 - z) * hh, abs=1e-15)


# --------------------------------------------------------------------------------------
# The cells, described once for the generic checks
# --------------------------------------------------------------------------------------
class Cell:
    def __init__(self, name, gates, states, forward, backward, step_forward, step_backward,
                 has_recurrent_bias=False):
        self.name, self.G, self.S = name, gates, states
        self.forward, self.backward = forward, backward
        self.step_forward, self.step_backward = step_forward, step_backward
        self.has_recurrent_bias = has_recurrent_bias

    def __repr__(self):
        return self.name

    def weights(self, rng, units=H):
        Wh = rng.standard_normal((units, self.G * units)) * 0.5
        if self.has_recurrent_bias:
            return (Wh, rng.standard_normal(self.G * units) * 0.5)
        return (Wh,)


CELLS = [
    Cell("simple_rnn", 1, 1, K.rnn_forward, K.rnn_backward, K.rnn_step_forward,
         K.rnn_step_backward),
    Cell("lstm", 4, 2, K.lstm_forward, K.lstm_backward, K.lstm_step_forward,
         K.lstm_step_backward),
    Cell("gru", 3, 1, K.gru_forward, K.gru_backward, K.gru_step_forward,
         K.gru_step_backward, has_recurrent_bias=True),
    Cell("gru_reset_before", 3, 1, K.gru_reset_before_forward, K.gru_reset_before_backward,
         K.gru_reset_before_step_forward, K.gru_reset_before_step_backward),
]


def dropout_mask(rng, shape, rate=0.4):
    return (rng.random(shape) >= rate) / (1 - rate)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("with_recurrent_mask", [False, True])
def test_step_backward_gradients(cell, with_recurrent_mask):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((N, cell.G * H))
    states = tuple(rng.standard_normal((N, H)) for _ in range(cell.S))
    weights = cell.weights(rng)
    m = dropout_mask(rng, (N, H)) if with_recurrent_mask else None
    upstream = [rng.standard_normal((N, H)) for _ in range(cell.S)]

    def objective():
        *out, _ = cell.step_forward(a, *states, *weights, recurrent_mask=m)
        return sum(np.sum(o * u) for o, u in zip(out, upstream))

    *_, cache = cell.step_forward(a, *states, *weights, recurrent_mask=m)
    assert cache.h_prev.shape == (N, H)  # the driver reads it
    grads = cell.step_backward(*upstream, cache)
    arrays = (a, *states, *weights)
    assert len(grads) == len(arrays)
    for analytic, array in zip(grads, arrays):
        assert analytic.shape == array.shape
        assert rel_error(analytic, numerical_gradient(objective, array)) < GRAD_TOL


@pytest.mark.parametrize("activation", ["relu", "linear", "sigmoid"])
def test_simple_rnn_step_gradients_other_activations(activation):
    rng = np.random.default_rng(11)
    a, h_prev = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    Wh, dh = rng.standard_normal((H, H)), rng.standard_normal((N, H))

    def objective():
        return np.sum(K.rnn_step_forward(a, h_prev, Wh, activation=activation)[0] * dh)

    _, cache = K.rnn_step_forward(a, h_prev, Wh, activation=activation)
    for analytic, array in zip(K.rnn_step_backward(dh, cache), (a, h_prev, Wh)):
        assert rel_error(analytic, numerical_gradient(objective, array)) < GRAD_TOL


@pytest.mark.parametrize("cell", CELLS[1:], ids=repr)
def test_gated_step_gradients_other_activations(cell):
    """activation='relu', recurrent_activation='linear': every derivative branch differs."""
    rng = np.random.default_rng(12)
    a = rng.standard_normal((N, cell.G * H))
    states = tuple(rng.standard_normal((N, H)) for _ in range(cell.S))
    weights = cell.weights(rng)
    upstream = [rng.standard_normal((N, H)) for _ in range(cell.S)]
    kw = dict(activation="relu", recurrent_activation="linear")

    def objective():
        *out, _ = cell.step_forward(a, *states, *weights, **kw)
        return sum(np.sum(o * u) for o, u in zip(out, upstream))

    *_, cache = cell.step_forward(a, *states, *weights, **kw)
    for analytic, array in zip(cell.step_backward(*upstream, cache), (a, *states, *weights)):
        assert rel_error(analytic, numerical_gradient(objective, array)) < GRAD_TOL


def sequence_case(cell, seed, with_mask, with_recurrent_mask, with_dhidden, units=H):
    rng = np.random.default_rng(seed)
    projected = rng.standard_normal((N, T, cell.G * units))
    states = tuple(rng.standard_normal((N, units)) * 0.5 for _ in range(cell.S))
    weights = cell.weights(rng, units)
    mask = None
    if with_mask:
        mask = rng.random((N, T)) > 0.4
        mask[0] = [False, True, True, False, False]  # pre- and post-padding in one row
    m = dropout_mask(rng, (N, units)) if with_recurrent_mask else None
    dhidden = rng.standard_normal((N, T, units)) if with_dhidden else None
    dfinal = tuple(rng.standard_normal((N, units)) for _ in range(cell.S))
    return projected, states, weights, mask, m, dhidden, dfinal


MASK_CASES = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("with_mask,with_recurrent_mask", MASK_CASES,
                         ids=["plain", "mask", "recurrent_mask", "both"])
@pytest.mark.parametrize("with_dhidden", [False, True], ids=["dfinal_only", "dhidden"])
def test_sequence_backward_gradients(cell, with_mask, with_recurrent_mask, with_dhidden):
    """Full BPTT against centred differences: projected, every initial state, every weight."""
    projected, states, weights, mask, m, dhidden, dfinal = sequence_case(
        cell, 2, with_mask, with_recurrent_mask, with_dhidden)
    dhidden_before = None if dhidden is None else dhidden.copy()

    def objective():
        hidden, final, _ = cell.forward(projected, states, weights, mask, m)
        total = sum(np.sum(f * d) for f, d in zip(final, dfinal))
        return total if dhidden is None else total + np.sum(hidden * dhidden)

    _, _, cache = cell.forward(projected, states, weights, mask, m)
    dprojected, dstates, dweights = cell.backward(dhidden, dfinal, cache)
    if dhidden is not None:  # the upstream gradient is not written
        np.testing.assert_array_equal(dhidden, dhidden_before)
    analytic = (dprojected, *dstates, *dweights)
    arrays = (projected, *states, *weights)
    assert len(dstates) == cell.S and len(dweights) == len(weights)
    for g, array in zip(analytic, arrays):
        assert g.shape == array.shape
        assert rel_error(g, numerical_gradient(objective, array)) < GRAD_TOL
    if mask is not None:  # a masked step receives no gradient at all
        assert np.all(dprojected[~mask] == 0)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_masked_steps_carry_every_state(cell):
    projected, states, weights, mask, _, _, _ = sequence_case(cell, 3, True, False, False)
    mask[:, 0] = False
    mask[:, -1] = False
    hidden, final, _ = cell.forward(projected, states, weights, mask)
    np.testing.assert_array_equal(hidden[:, 0], states[0])
    np.testing.assert_array_equal(hidden[:, -1], hidden[:, -2])
    np.testing.assert_array_equal(final[0], hidden[:, -1])
    empty = np.zeros((N, T), bool)
    _, final_none, _ = cell.forward(projected, states, weights, empty)
    for f, s in zip(final_none, states):
        np.testing.assert_array_equal(f, s)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_sequence_backward_equals_chained_step_backwards(cell):
    """The sequence pass is exactly the step pass chained through time (with a recurrent
    mask), so one cannot pass its check while the other fails."""
    projected, states, weights, _, m, dhidden, dfinal = sequence_case(cell, 4, False, True, True)
    hidden, final, cache = cell.forward(projected, states, weights, recurrent_mask=m)

    caches, s = [], states
    for t in range(T):
        *s, step_cache = cell.step_forward(projected[:, t], *s, *weights, recurrent_mask=m)
        caches.append(step_cache)
        np.testing.assert_allclose(s[0], hidden[:, t], rtol=1e-13)
    for got, want in zip(final, s):
        np.testing.assert_allclose(got, want, rtol=1e-13)
    dprojected = np.zeros_like(projected)
    dweights = [np.zeros_like(w) for w in weights]
    ds = [d.copy() for d in dfinal]
    for t in reversed(range(T)):
        ds[0] = ds[0] + dhidden[:, t]
        dprojected[:, t], *rest = cell.step_backward(*ds, caches[t])
        ds = rest[:cell.S]
        for total, dw in zip(dweights, rest[cell.S:]):
            total += dw
    seq_dprojected, seq_dstates, seq_dweights = cell.backward(dhidden, dfinal, cache)
    np.testing.assert_allclose(seq_dprojected, dprojected, rtol=1e-10, atol=1e-12)
    for chained, sequence in zip((*ds, *dweights), (*seq_dstates, *seq_dweights)):
        np.testing.assert_allclose(sequence, chained, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_none_upstream_equals_zero_upstream(cell):
    projected, states, weights, mask, m, dhidden, dfinal = sequence_case(cell, 5, True, True, True)
    _, _, cache = cell.forward(projected, states, weights, mask, m)
    with_none = cell.backward(None, (dfinal[0],) + (None,) * (cell.S - 1), cache)
    with_zeros = cell.backward(np.zeros_like(dhidden),
                               (dfinal[0],) + tuple(np.zeros_like(d) for d in dfinal[1:]), cache)
    for a, b in zip(with_none, with_zeros):
        for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------------------
# Dense, gather, losses, optimizer
# --------------------------------------------------------------------------------------
def test_embedding_backward_accumulates_repeated_ids():
    rng = np.random.default_rng(4)
    ids = np.array([[1, 1, 3, 0, 1], [6, 3, 3, 1, 2]])  # 1 and 3 repeat, 4 and 5 absent
    E = rng.standard_normal((V, D))
    dout = rng.standard_normal(ids.shape + (D,))

    def objective():
        return np.sum(K.embedding_forward(ids, E) * dout)

    dE = K.embedding_backward(dout, ids, V)
    assert rel_error(dE, numerical_gradient(objective, E)) < GRAD_TOL
    np.testing.assert_array_equal(dE[[4, 5]], 0)
    np.testing.assert_allclose(dE[1], dout[0, 0] + dout[0, 1] + dout[0, 4] + dout[1, 3])


@pytest.mark.parametrize("identity", [False, True], ids=["table", "one_hot"])
def test_gathered_projection_gradients(identity):
    rng = np.random.default_rng(7)
    ids = rng.integers(0, V, (N, T))
    table = None if identity else rng.standard_normal((V, D))
    W = rng.standard_normal((V if identity else D, 4 * H))
    b = rng.standard_normal(4 * H)
    da = rng.standard_normal((N, T, 4 * H))
    out = K.gathered_projection_forward(table, ids, W, b)
    dense = np.eye(V)[ids] if identity else table[ids]
    np.testing.assert_allclose(out, K.dense_forward(dense, W, b), rtol=1e-13)

    def objective():
        return np.sum(K.gathered_projection_forward(table, ids, W, b) * da)

    G, dW, db = K.gathered_projection_backward(da, ids, table, W)
    assert rel_error(dW, numerical_gradient(objective, W)) < GRAD_TOL
    assert rel_error(db, numerical_gradient(objective, b)) < GRAD_TOL
    if not identity:
        dtable = K.projected_rows_backward(G, W)
        assert rel_error(dtable, numerical_gradient(objective, table)) < GRAD_TOL


def test_dense_backward_gradients():
    rng = np.random.default_rng(5)
    x, W, b = rng.standard_normal((N, D)), rng.standard_normal((D, H)), rng.standard_normal(H)
    dout = rng.standard_normal((N, H))

    def objective():
        return np.sum(K.dense_forward(x, W, b) * dout)

    for analytic, array in zip(K.dense_backward(dout, x, W), (x, W, b)):
        assert rel_error(analytic, numerical_gradient(objective, array)) < GRAD_TOL


def test_sigmoid_cross_entropy_gradient_and_values():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((N + 4, 1)) * 3
    y = rng.integers(0, 2, size=N + 4).astype(float)

    def objective():
        return K.sigmoid_binary_crossentropy(z, y)

    analytic = K.sigmoid_binary_crossentropy_backward(z, y)
    assert rel_error(analytic, numerical_gradient(objective, z)) < GRAD_TOL
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
@given(cell=st.sampled_from(CELLS), n=st.integers(1, 4), t=st.integers(1, 6),
       h=st.integers(1, 5))
def test_sequence_shapes_over_random_sizes(cell, n, t, h):
    rng = np.random.default_rng(n * 1000 + t * 100 + h)
    projected = rng.standard_normal((n, t, cell.G * h))
    states = tuple(np.zeros((n, h)) for _ in range(cell.S))
    weights = cell.weights(rng, h)
    hidden, final, cache = cell.forward(projected, states, weights)
    assert hidden.shape == (n, t, h)
    assert [f.shape for f in final] == [(n, h)] * cell.S
    assert np.all(np.abs(hidden) <= 1)
    dprojected, dstates, dweights = cell.backward(np.ones_like(hidden), (None,) * cell.S, cache)
    assert dprojected.shape == projected.shape
    assert [d.shape for d in dstates] == [(n, h)] * cell.S
    assert [d.shape for d in dweights] == [w.shape for w in weights]
