"""Tests that kill the mutants ``scripts/mutation_test.py`` found surviving and that change
the maths: an SGD momentum of exactly 1, the float64 sum behind the finiteness guard, the
undo of a step that overflows, and the dtypes the reference kernels return.

Survivors left on purpose (equivalent mutants: the same numbers come out) are listed in
that script's report in the README: ``reshape(-2)`` for ``reshape(-1)`` (NumPy takes any
negative size as "the rest"), ``astype(..., copy=...)`` variants, ``z > 0`` for ``z >= 0``
in the sigmoid (both branches give 0.5 at 0), and the argument checks' message texts.
"""

import numpy as np
import pytest

import nprnn
from nprnn.kernels import reference


def test_sgd_with_momentum_one_accumulates_the_velocity():
    """mu = 1: v <- v - lr g, w <- w + v (hand-computed: v = -0.1, then -0.2)."""
    weight = np.array([1.0], np.float32)
    optimizer = nprnn.optimizers.SGD(learning_rate=0.1, momentum=1.0)
    for expected in (0.9, 0.7):
        assert optimizer.apply([weight], [np.array([1.0], np.float32)])
        np.testing.assert_allclose(weight, [expected], rtol=1e-6)


def test_a_float32_step_near_the_top_of_the_range_is_finite():
    """Two entries of 3e38 are finite; their float32 sum is not. The guard sums in float64."""
    weight = np.array([3e38, 3e38], np.float32)
    optimizer = nprnn.optimizers.SGD(learning_rate=1.0)
    assert optimizer.apply([weight], [np.array([1e37, 1e37], np.float32)])
    np.testing.assert_array_equal(weight, np.float32([2.9e38, 2.9e38]))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # Adam's inf / inf
@pytest.mark.parametrize("optimizer", [lambda: nprnn.optimizers.RMSprop(1e-3),
                                       lambda: nprnn.optimizers.SGD(0.1),
                                       lambda: nprnn.optimizers.Adam()])
def test_a_step_that_overflows_changes_nothing(optimizer):
    optimizer = optimizer()
    weight = np.array([1.0, 2.0], np.float32)
    assert optimizer.apply([weight], [np.array([0.5, 0.5], np.float32)])
    weight_before, iterations = weight.copy(), optimizer.iterations
    slots = {name: [v.copy() for v in values] for name, values in optimizer.slots.items()}
    assert not optimizer.apply([weight], [np.array([np.inf, 0.0], np.float32)])
    np.testing.assert_array_equal(weight, weight_before)
    assert optimizer.iterations == iterations == 1
    for name, values in slots.items():
        for got, expected in zip(optimizer.slots[name], values, strict=True):
            np.testing.assert_array_equal(got, expected)
    # A first step that overflows leaves the optimizer unbuilt, as it was.
    fresh = type(optimizer)()
    assert not fresh.apply([weight], [np.array([np.inf, 0.0], np.float32)])
    assert fresh.iterations == 0 and fresh.slots == {}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_kernels_keep_their_dtype(dtype):
    rng = np.random.default_rng(0)
    projected = rng.standard_normal((2, 3, 4)).astype(dtype)
    Wh = rng.standard_normal((4, 4)).astype(dtype)
    h0 = np.zeros((2, 4), dtype)
    hidden, (h_last,), cache = reference.rnn_forward(projected, (h0,), (Wh,))
    assert hidden.dtype == dtype and h_last.dtype == dtype
    dprojected, (dh0,), (dWh,) = reference.rnn_backward(np.ones_like(hidden), (None,), cache)
    for out in (dprojected, dh0, dWh):
        assert out.dtype == dtype
    values = rng.standard_normal((2, 3, 5)).astype(dtype)
    assert reference.scatter_add_rows(values, np.array([[0, 1, 1], [2, 0, 3]]), 4).dtype == dtype
    logits = rng.standard_normal((6, 1)).astype(dtype)
    targets = np.array([0, 1, 1, 0, 1, 0])  # int targets: cast to the logits' dtype
    assert np.asarray(reference.sigmoid_binary_crossentropy(logits, targets)).dtype == dtype
    assert reference.sigmoid_binary_crossentropy_backward(logits, targets).dtype == dtype
    param, grad, velocity = (rng.random(3).astype(dtype) for _ in range(3))
    for out in reference.rmsprop_update(param, grad, velocity, 1e-3, 0.9, 1e-7):
        assert out.dtype == dtype
