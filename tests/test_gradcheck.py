"""The gradient checker itself: every gradient test relies on it, so it is checked here
against hand-computed values, and shown to flag deliberately wrong backward passes."""

import numpy as np
import pytest

import nprnn
from nprnn import layers
from nprnn.gradcheck import check_layer, check_model, numerical_gradient, rel_error


@pytest.mark.parametrize("a, b, expected", [
    ([1.0, 2.0], [1.0, 2.0], 0.0),
    ([1.0], [3.0], 2.0 / 4.0),  # |1-3| / (|1|+|3|)
    ([1.0, -2.0], [1.5, -2.0], 0.5 / 4.0),  # max diff 0.5, max(|a|+|b|) = 4
    ([[0.0, 10.0]], [[1.0, 10.0]], 1.0 / 20.0),  # the max of each, not entry by entry
    ([0.0, 0.0], [0.0, 0.0], 0.0),
    ([1e-9], [0.0], 1e-9 / 1e-8),  # the floor 1e-8 of the scale
    ([2.0], [-2.0], 1.0),  # opposite signs: the largest error it gives
])
def test_rel_error_hand_values(a, b, expected):
    assert rel_error(np.array(a), np.array(b)) == pytest.approx(expected, rel=1e-15)
    assert rel_error(np.array(b), np.array(a)) == pytest.approx(expected, rel=1e-15)


def test_rel_error_refuses_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(3), np.zeros((3, 1)))


def test_numerical_gradient_hand_values():
    # f = w0^2 + 3 w0 w1 - w2: a quadratic, for which the centred difference is exact
    # (up to round-off); at (1, 2, 5) the gradient is (2 w0 + 3 w1, 3 w0, -1) = (8, 3, -1).
    w = np.array([1.0, 2.0, 5.0])
    before = w.copy()
    got = numerical_gradient(lambda: w[0] ** 2 + 3 * w[0] * w[1] - w[2], w)
    np.testing.assert_allclose(got, [8.0, 3.0, -1.0], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(w, before)  # restored bit for bit
    # f = sum(w^3): gradient 3 w^2, with the O(h^2) error the docstring states
    cube = np.array([[1.0, -2.0], [0.5, 3.0]])
    got = numerical_gradient(lambda: np.sum(cube**3), cube, h=1e-4)
    np.testing.assert_allclose(got, 3 * cube**2, rtol=0, atol=1e-7)
    assert np.max(np.abs(got - 3 * cube**2)) > 1e-10  # h^2 = 1e-8: the error is there
    # an entry f does not read has gradient 0
    unused = np.array([4.0])
    assert numerical_gradient(lambda: float(w[0]), unused)[0] == 0.0


def test_numerical_gradient_refuses_what_it_cannot_perturb():
    with pytest.raises(TypeError, match="float ndarray"):
        numerical_gradient(lambda: 0.0, np.arange(3))


def scale_gradient(layer, index, factor, monkeypatch):
    """Make ``layer.backward`` deliberately wrong: gradient ``index`` times ``factor``."""
    backward = layer.backward

    def wrong(*args, **kwargs):
        out = backward(*args, **kwargs)
        layer.grads[index][...] *= factor
        return out

    monkeypatch.setattr(layer, "backward", wrong)


@pytest.mark.usefixtures("float64", "numpy_backend")
class TestFlagsWrongBackward:
    def test_correct_dense_passes(self, rng):
        layer = layers.Dense(3, activation="tanh")
        layer.build((None, 4))
        assert max(check_layer(layer, rng.standard_normal((5, 4))).values()) < 1e-8

    @pytest.mark.parametrize("index, factor", [(0, 1.01), (1, 0.0), (1, -1.0)])
    def test_wrong_dense_is_flagged(self, rng, monkeypatch, index, factor):
        layer = layers.Dense(3, activation="tanh")
        layer.build((None, 4))
        scale_gradient(layer, index, factor, monkeypatch)
        errors = check_layer(layer, rng.standard_normal((5, 4)))
        wrong, right = layer.weight_names[index], layer.weight_names[1 - index]
        assert errors[wrong] > 1e-3 and errors[right] < 1e-8, errors

    def test_wrong_recurrent_gradient_is_flagged_in_a_whole_model(self, rng, monkeypatch):
        model = nprnn.Sequential([layers.Embedding(7, 2, input_length=5), layers.SimpleRNN(4),
                                  layers.Dense(1, activation="sigmoid")])
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        ids, y = rng.integers(0, 7, size=(3, 5)), np.array([0, 1, 1])
        assert max(check_model(model, ids, y).values()) < 1e-7
        scale_gradient(model.layers[1], 1, 1.001, monkeypatch)  # recurrent_kernel, +0.1%
        errors = check_model(model, ids, y)
        name = f"{model.layers[1].name}/recurrent_kernel"
        assert errors[name] > 1e-5, errors
        assert max(v for k, v in errors.items() if k != name) < 1e-7, errors
