"""Losses and metrics: hand-computed values, Keras' rules, gradient checks, sample and class
weights, and errors that name the argument."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nprnn import losses, metrics
from nprnn.gradcheck import numerical_gradient, rel_error
from nprnn.losses import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)

EPS = 1e-7


def one_hot(labels, classes):
    return np.eye(classes)[labels]


# -- softmax ------------------------------------------------------------------------------
def test_softmax_by_hand_and_for_huge_logits():
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(losses.softmax(np.array([[1.0, 2.0, 3.0]])), [e / e.sum()],
                               rtol=1e-15)
    with np.errstate(over="raise", invalid="raise"):  # no overflow: the maximum is subtracted first
        np.testing.assert_array_equal(losses.softmax(np.array([[1000.0, 0.0]])), [[1.0, 0.0]])
        assert losses.log_softmax(np.array([[1000.0, 0.0]]))[0, 1] == -1000.0


@settings(max_examples=60, deadline=None)
@given(z=hnp.arrays(np.float64, (4, 5), elements=st.floats(-50, 50)),
       shift=hnp.arrays(np.float64, (4, 1), elements=st.floats(-1e3, 1e3)))
def test_softmax_rows_sum_to_one_and_ignore_a_constant(z, shift):
    s = losses.softmax(z)
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-12)
    assert (s >= 0).all()
    np.testing.assert_allclose(losses.softmax(z + shift), s, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(np.exp(losses.log_softmax(z)), s, rtol=1e-12, atol=1e-300)


# -- values by hand -------------------------------------------------------------------------
def test_categorical_crossentropy_keras_docstring_values():
    """Keras 3's own example (backend/tensorflow/nn.py): [0.10536 0.11653 0.06188]."""
    y = np.eye(3)
    p = np.array([[.9, .05, .05], [.05, .89, .06], [.05, .01, .94]])
    np.testing.assert_allclose(CategoricalCrossentropy().call(y, p),
                               [0.10536, 0.11653, 0.06188], atol=5e-6)
    assert CategoricalCrossentropy()(y, p) == pytest.approx(
        (-math.log(.9) - math.log(.89) - math.log(.94)) / 3, rel=1e-12)


def test_probabilities_are_renormalised_then_clipped():
    y = np.array([[0.0, 1.0, 0.0]])
    # rows that do not sum to 1 are divided by their sum first: 1.0 / 2.0 = 0.5
    assert CategoricalCrossentropy()(y, np.array([[0.4, 1.0, 0.6]])) == pytest.approx(
        math.log(2.0), rel=1e-12)
    # a probability of 0 is clipped to 1e-7
    assert CategoricalCrossentropy()(y, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(
        -math.log(EPS), rel=1e-12)
    assert SparseCategoricalCrossentropy()(np.array([1]), np.array([[1.0, 0.0, 0.0]])) == \
        pytest.approx(-math.log(EPS), rel=1e-12)
    # ... and one of 1 to 1 - 1e-7: the gradient there is 0 (the clip is active)
    np.testing.assert_array_equal(CategoricalCrossentropy().gradient(
        np.array([[1.0, 0.0]]), np.array([[1.0, 0.0]])), [[0.0, 0.0]])


def test_from_logits_by_hand():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = [math.log(1 + math.exp(-1) + math.exp(-2)), math.log(3.0)]
    np.testing.assert_allclose(CategoricalCrossentropy(from_logits=True).call(
        one_hot([2, 0], 3), z), expected, rtol=1e-14)
    np.testing.assert_allclose(SparseCategoricalCrossentropy(from_logits=True).call(
        np.array([2, 0]), z), expected, rtol=1e-14)
    # huge logits: finite and exact, 1000 - 0
    assert SparseCategoricalCrossentropy(from_logits=True)(
        np.array([1]), np.array([[1000.0, 0.0]])) == 1000.0


def test_logit_gradient_is_softmax_minus_one_hot_over_n():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    expected = (losses.softmax(z) - one_hot(labels, 3)) / 5
    np.testing.assert_allclose(SparseCategoricalCrossentropy(from_logits=True).gradient(
        labels, z), expected, rtol=1e-14)
    np.testing.assert_allclose(CategoricalCrossentropy(from_logits=True).gradient(
        one_hot(labels, 3), z), expected, rtol=1e-14)


def test_binary_and_mse_unweighted_are_unchanged():
    """The old API: loss(y, p) and loss.gradient(y, p), the same numbers as before."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, size=(6, 1)).astype(np.float32)
    y = rng.integers(0, 2, size=6)
    t = y.astype(np.float32)[:, None]  # targets in the outputs' dtype and shape, as before
    bce = BinaryCrossentropy()
    assert bce(y, p) == float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))
    np.testing.assert_array_equal(bce.gradient(y, p), (p - t) / (p * (1 - p)) / p.size)
    assert bce.gradient(y, p).dtype == np.float32
    mse = MeanSquaredError()
    assert mse(y, p) == float(np.mean((p - t) ** 2))
    np.testing.assert_array_equal(mse.gradient(y, p), 2 * (p - t) / p.size)


# -- sample weights -------------------------------------------------------------------------
@pytest.mark.parametrize("loss, y, p", [
    (BinaryCrossentropy(), np.array([1, 0, 1]), np.array([[0.8], [0.3], [0.4]])),
    (BinaryCrossentropy(from_logits=True), np.array([1, 0, 1]), np.array([[2.0], [-1.0], [0.5]])),
    (MeanSquaredError(), np.array([1.0, 2.0, 3.0]), np.array([[1.5], [2.0], [1.0]])),
    (CategoricalCrossentropy(), one_hot([0, 1, 2], 3), losses.softmax(np.arange(9.).reshape(3, 3))),
    (SparseCategoricalCrossentropy(from_logits=True), np.array([0, 1, 2]),
     np.arange(9.0).reshape(3, 3) % 4),
])
def test_sum_over_batch_size_by_hand(loss, y, p):
    per_sample = loss.call(y, p)
    weights = np.array([1.0, 0.0, 2.0])
    assert loss(y, p, sample_weight=weights) == pytest.approx(
        (per_sample[0] + 2 * per_sample[2]) / 3, rel=1e-14)  # divided by N, not sum(w)
    assert loss(y, p, sample_weight=np.ones(3)) == pytest.approx(loss(y, p), rel=1e-14)
    weighted = loss.gradient(y, p, sample_weight=weights)
    plain = loss.gradient(y, p)
    np.testing.assert_allclose(weighted, plain * weights[:, None], rtol=1e-14)
    np.testing.assert_array_equal(weighted[1], 0.0)


def test_weights_of_sequence_outputs_repeat_over_the_time_steps():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(2, 3, 4))
    labels = rng.integers(0, 4, size=(2, 3))
    loss = SparseCategoricalCrossentropy(from_logits=True)
    per_step = loss.call(labels, z)
    assert per_step.shape == (2, 3)
    w = np.array([0.5, 3.0])
    assert loss(labels, z, sample_weight=w) == pytest.approx(
        float(np.sum(per_step * w[:, None]) / 6), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(w1=hnp.arrays(np.float64, 5, elements=st.floats(0, 10)),
       w2=hnp.arrays(np.float64, 5, elements=st.floats(0, 10)),
       seed=st.integers(0, 1000))
def test_weighted_loss_is_linear_in_the_weights(w1, w2, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(5, 3))
    labels = rng.integers(0, 3, size=5)
    for loss in (CategoricalCrossentropy(), SparseCategoricalCrossentropy(from_logits=True)):
        y = one_hot(labels, 3) if isinstance(loss, CategoricalCrossentropy) else labels
        p = losses.softmax(z) if not loss.from_logits else z
        total = loss(y, p, sample_weight=w1) + loss(y, p, sample_weight=w2)
        assert loss(y, p, sample_weight=w1 + w2) == pytest.approx(total, rel=1e-12, abs=1e-15)


# -- properties -----------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(z=hnp.arrays(np.float64, (6, 4), elements=st.floats(-8, 8)),
       labels=hnp.arrays(np.int64, 6, elements=st.integers(0, 3)),
       from_logits=st.booleans())
def test_sparse_equals_categorical_with_one_hot_targets(z, labels, from_logits):
    p = z if from_logits else losses.softmax(z)
    sparse = SparseCategoricalCrossentropy(from_logits=from_logits)
    dense = CategoricalCrossentropy(from_logits=from_logits)
    assert sparse(labels, p) == pytest.approx(dense(one_hot(labels, 4), p), rel=1e-12)
    np.testing.assert_allclose(sparse.gradient(labels, p), dense.gradient(one_hot(labels, 4), p),
                               rtol=1e-12, atol=1e-300)


@settings(max_examples=50, deadline=None)
@given(z=hnp.arrays(np.float64, (5, 3), elements=st.floats(-5, 5)),
       labels=hnp.arrays(np.int64, 5, elements=st.integers(0, 2)))
def test_probabilities_of_a_softmax_give_the_logits_loss_and_gradient(z, labels):
    """Unclipped, CE(softmax(z)) = CE_logits(z), and the probability gradient pulled back
    through the softmax Jacobian, s * (g - sum(g s)), is softmax(z) - onehot over N."""
    s = losses.softmax(z)
    y = one_hot(labels, 3)
    assert CategoricalCrossentropy()(y, s) == pytest.approx(
        CategoricalCrossentropy(from_logits=True)(y, z), rel=1e-10)
    g = CategoricalCrossentropy().gradient(y, s)
    pulled_back = s * (g - np.sum(g * s, axis=-1, keepdims=True))
    np.testing.assert_allclose(pulled_back, (s - y) / 5, rtol=1e-8, atol=1e-14)


# -- gradient checks: centred differences in float64, N=5, C=3 ----------------------------
def gradient_error(loss, y, p, weights=None):
    p = p.astype(np.float64).copy()
    analytic = loss.gradient(y, p, sample_weight=weights)
    numeric = numerical_gradient(lambda: loss(y, p, sample_weight=weights), p)
    return rel_error(analytic, numeric)


WEIGHTS = np.array([0.5, 2.0, 0.0, 1.0, 3.0])


@pytest.mark.parametrize("weights", [None, WEIGHTS], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", ["cce", "cce_logits", "scce", "scce_logits", "bce",
                                  "bce_logits", "bce_3_outputs", "mse"])
def test_gradient_check(case, weights):
    rng = np.random.default_rng(3)
    labels = np.array([0, 2, 1, 1, 2])
    z = rng.normal(size=(5, 3))
    # probabilities away from the clip, rows deliberately not summing to 1
    unnormalised = losses.softmax(z) * rng.uniform(0.5, 2.0, size=(5, 1))
    binary = rng.uniform(0.05, 0.95, size=(5, 1))
    cases = {
        "cce": (CategoricalCrossentropy(), one_hot(labels, 3), unnormalised),
        "cce_logits": (CategoricalCrossentropy(from_logits=True), one_hot(labels, 3), z),
        "scce": (SparseCategoricalCrossentropy(), labels, unnormalised),
        "scce_logits": (SparseCategoricalCrossentropy(from_logits=True), labels, z),
        "bce": (BinaryCrossentropy(), labels % 2, binary),
        "bce_logits": (BinaryCrossentropy(from_logits=True), labels % 2, z[:, :1]),
        "bce_3_outputs": (BinaryCrossentropy(), (z > 0).astype(float),
                          rng.uniform(0.05, 0.95, size=(5, 3))),
        "mse": (MeanSquaredError(), z, rng.normal(size=(5, 3))),
    }
    loss, y, p = cases[case]
    assert gradient_error(loss, y, p, weights) < 1e-7


def test_gradient_check_of_soft_targets_and_sequences():
    rng = np.random.default_rng(4)
    soft = rng.dirichlet(np.ones(3), size=5)  # label-smoothed-like targets summing to 1
    z = rng.normal(size=(5, 3))
    assert gradient_error(CategoricalCrossentropy(from_logits=True), soft, z, WEIGHTS) < 1e-7
    assert gradient_error(CategoricalCrossentropy(), soft, losses.softmax(z), WEIGHTS) < 1e-7
    z3 = rng.normal(size=(2, 3, 4))
    labels3 = rng.integers(0, 4, size=(2, 3))
    assert gradient_error(SparseCategoricalCrossentropy(from_logits=True), labels3, z3,
                          np.array([2.0, 0.5])) < 1e-7


def test_a_wrong_gradient_fails_the_check():
    """The check can fail: dropping the renormalisation term gives a large error."""
    rng = np.random.default_rng(5)
    p = losses.softmax(rng.normal(size=(5, 3))) * 1.7
    y = one_hot(np.array([0, 1, 2, 0, 1]), 3)

    class Wrong(CategoricalCrossentropy):
        def per_sample_gradient(self, y_true, y_pred):
            return -y_true / y_pred  # ignores the division by the row sum

    assert gradient_error(Wrong(), y, p) > 1e-2


# -- class weights ------------------------------------------------------------------------
def test_class_weight_to_sample_weights_by_hand():
    weights = {0: 1.0, 1: 3.0}
    np.testing.assert_array_equal(
        losses.sample_weights_from_class_weight(np.array([0, 1, 1, 0]), weights), [1, 3, 3, 1])
    np.testing.assert_array_equal(  # (N, 1) binary targets, rounded as Keras does
        losses.sample_weights_from_class_weight(np.array([[0.0], [0.9999], [1.0]]), weights),
        [1, 3, 3])
    np.testing.assert_array_equal(  # one-hot rows: argmax
        losses.sample_weights_from_class_weight(one_hot([2, 0, 1], 3), {0: 0.5, 1: 2, 2: 4}),
        [4, 0.5, 2])
    np.testing.assert_array_equal(  # a class without a weight gets 1.0 (Keras 3, arrays)
        losses.sample_weights_from_class_weight(np.array([0, 5, 2]), {0: 0.25, 2.0: 8}),
        [0.25, 1.0, 8.0])


@pytest.mark.parametrize("y, class_weight, error, message", [
    (np.array([0, 1]), [1.0, 2.0], TypeError, r"class_weight: expected a dict"),
    (np.array([0, 1]), {"1": 2.0}, TypeError, r"class_weight: keys must be integer class ids"),
    (np.array([0, 1]), {True: 2.0}, TypeError, r"class_weight: keys must be integer"),
    (np.array([0, 1]), {1: -2.0}, ValueError, r"class_weight: the weight of class 1 must be"),
    (np.array([0, 1]), {1: float("nan")}, ValueError, r"class_weight: the weight of class 1"),
    (np.array([0, 1]), {1: "high"}, TypeError, r"class_weight: the weight of class 1 must be a"),
    (np.array([0.0, np.nan]), {1: 2.0}, ValueError, r"y: expected finite class labels"),
    (np.zeros((2, 3, 4)), {1: 2.0}, ValueError, r"y: class_weight needs one class per sample"),
])
def test_class_weight_errors_name_the_argument(y, class_weight, error, message):
    with pytest.raises(error, match=message):
        losses.sample_weights_from_class_weight(y, class_weight)


# -- configuration and lookup ----------------------------------------------------------------
@pytest.mark.parametrize("identifier, cls, from_logits", [
    ("categorical_crossentropy", CategoricalCrossentropy, False),
    ("CategoricalCrossentropy", CategoricalCrossentropy, False),
    ("sparse_categorical_crossentropy", SparseCategoricalCrossentropy, False),
    (losses.sparse_categorical_crossentropy, SparseCategoricalCrossentropy, False),
    ({"name": "categorical_crossentropy", "from_logits": True}, CategoricalCrossentropy, True),
    ({"module": "keras.losses", "class_name": "SparseCategoricalCrossentropy",
      "config": {"name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size",
                 "from_logits": True, "ignore_class": None, "axis": -1}},
     SparseCategoricalCrossentropy, True),
    ({"class_name": "BinaryCrossentropy", "config": {"from_logits": True,
                                                     "label_smoothing": 0.0}},
     BinaryCrossentropy, True),
])
def test_get_and_deserialize(identifier, cls, from_logits):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.from_logits is from_logits
    assert type(losses.deserialize(loss.get_config())) is cls
    assert losses.deserialize(loss.get_config()).from_logits is from_logits


# -- errors name the argument ----------------------------------------------------------------
@pytest.mark.parametrize("call, error, message", [
    (lambda: CategoricalCrossentropy()(np.array([0, 1]), np.eye(2)), ValueError,
     r"y_true: expected one-hot targets of y_pred's shape \(2, 2\), got shape \(2,\) "
     r"\(integer labels need sparse_categorical_crossentropy\)"),
    (lambda: CategoricalCrossentropy()(np.eye(2), np.array([0.5, 0.5])), ValueError,
     r"y_pred: expected shape \(N, C\)"),
    (lambda: CategoricalCrossentropy()(np.array([[np.nan, 1.0]]), np.eye(2)[:1]), ValueError,
     r"y_true: expected finite targets"),
    (lambda: SparseCategoricalCrossentropy()(np.array([0, 3]), np.eye(3)[:2]), ValueError,
     r"y_true: expected class labels in \[0, 3\) for 3 outputs, got values in \[0, 3\]"),
    (lambda: SparseCategoricalCrossentropy()(np.array([0, -1]), np.eye(3)[:2]), ValueError,
     r"y_true: expected class labels in \[0, 3\)"),
    (lambda: SparseCategoricalCrossentropy()(np.array([0.5, 1]), np.eye(3)[:2]), ValueError,
     r"y_true: expected integer class labels, found NaN, infinity or fractional"),
    (lambda: SparseCategoricalCrossentropy()(np.eye(3)[:2], np.eye(3)[:2]), ValueError,
     r"y_true: expected integer class labels of shape \(2,\) for y_pred of shape \(2, 3\)"),
    (lambda: SparseCategoricalCrossentropy()(np.array(["a", "b"]), np.eye(3)[:2]), TypeError,
     r"y_true: expected numbers"),
    (lambda: SparseCategoricalCrossentropy(from_logits="yes"), TypeError,
     r"from_logits: expected True or False"),
    (lambda: BinaryCrossentropy()(np.zeros(3), np.zeros(3), sample_weight=np.ones(2)),
     ValueError, r"sample_weight: expected one weight per sample, shape \(3,\), got shape"),
    (lambda: BinaryCrossentropy()(np.zeros(2), np.zeros(2), sample_weight=[1, np.nan]),
     ValueError, r"sample_weight: expected finite weights"),
    (lambda: MeanSquaredError().gradient(np.zeros(2), np.zeros(2), sample_weight=[1, -1]),
     ValueError, r"sample_weight: expected weights >= 0, found -1"),
    (lambda: losses.get({"class_name": "BinaryCrossentropy",
                         "config": {"label_smoothing": 0.1}}), ValueError,
     r"loss: BinaryCrossentropy\(label_smoothing=0.1\) is not supported"),
    (lambda: losses.get({"class_name": "SparseCategoricalCrossentropy",
                         "config": {"ignore_class": 0}}), ValueError,
     r"loss: SparseCategoricalCrossentropy\(ignore_class=0\) is not supported"),
    (lambda: losses.get({"class_name": "CategoricalCrossentropy",
                         "config": {"from_logits": True, "gamma": 2}}), ValueError,
     r"loss: CategoricalCrossentropy cannot be built from"),
    (lambda: losses.get({"class_name": "Huber", "config": {}}), ValueError,
     r"loss: expected one of"),
    (lambda: losses.get({"from_logits": True}), ValueError, r"loss: expected a dict with 'name'"),
    (lambda: losses.get(CategoricalCrossentropy), TypeError, r"loss: got the class"),
])
def test_bad_input_raises_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ============================================================================================
# Metrics
# ============================================================================================
def test_accuracies_keras_docstring_values():
    """The examples of Keras 3's BinaryAccuracy, CategoricalAccuracy and
    SparseCategoricalAccuracy docstrings."""
    y, p = [[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]]
    assert metrics.binary_accuracy(y, p) == 0.75
    assert metrics.binary_accuracy(y, p, sample_weight=[1, 0, 0, 1]) == 0.5
    y, p = [[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]]
    assert metrics.categorical_accuracy(y, p) == 0.5
    assert metrics.categorical_accuracy(y, p, sample_weight=[0.7, 0.3]) == pytest.approx(0.3)
    y, p = [[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]]
    assert metrics.sparse_categorical_accuracy(y, p) == 0.5
    assert metrics.sparse_categorical_accuracy(y, p, sample_weight=[0.7, 0.3]) == \
        pytest.approx(0.3)


def test_weighted_accuracy_divides_by_the_sum_of_weights():
    matches_p = np.array([0.9, 0.2, 0.5, 0.7])  # vs labels [1, 0, 1, 0]: hits 1, 1, 0, 0
    y = np.array([1, 0, 1, 0])
    assert metrics.binary_accuracy(y, matches_p) == 0.5
    assert metrics.binary_accuracy(y, matches_p, sample_weight=[1, 2, 3, 4]) == 0.3
    assert metrics.binary_accuracy(y, matches_p, sample_weight=np.zeros(4)) == 0.0
    # several binary outputs: per-sample means, then weighted (Keras' Mean)
    two = np.array([[0.9, 0.9], [0.1, 0.9]])
    assert metrics.binary_accuracy([[1, 0], [0, 1]], two, sample_weight=[1, 3]) == \
        pytest.approx((0.5 + 3 * 1.0) / 4)


@pytest.mark.parametrize("y_true_shape, y_pred_shape, expected", [
    ((8, 1), (8, 1), metrics.binary_accuracy),
    ((8,), (8, 1), metrics.binary_accuracy),
    ((8,), (8,), metrics.binary_accuracy),
    ((8,), (8, 5), metrics.sparse_categorical_accuracy),
    ((8, 1), (8, 5), metrics.sparse_categorical_accuracy),
    ((8, 5), (8, 5), metrics.categorical_accuracy),
    ((8, 3), (8, 3, 5), metrics.sparse_categorical_accuracy),  # sequences of labels
])
def test_accuracy_resolves_as_keras_3(y_true_shape, y_pred_shape, expected):
    assert metrics.resolve_accuracy(y_true_shape, y_pred_shape) is expected


def test_get_accuracy_with_and_without_the_loss():
    assert metrics.get("accuracy") == ("accuracy", metrics.accuracy)
    assert metrics.get("acc") == ("accuracy", metrics.accuracy)
    assert metrics.get("accuracy", loss="sparse_categorical_crossentropy") == \
        ("accuracy", metrics.sparse_categorical_accuracy)
    assert metrics.get("acc", loss=CategoricalCrossentropy(from_logits=True)) == \
        ("accuracy", metrics.categorical_accuracy)
    assert metrics.get("accuracy", loss="binary_crossentropy") == ("accuracy", metrics.accuracy)
    assert metrics.get("categorical_accuracy")[1] is metrics.categorical_accuracy
    # 'accuracy' dispatches at each call
    assert metrics.accuracy([0, 2], [[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]]) == 1.0
    assert metrics.accuracy([[1], [0]], [[0.9], [0.7]]) == 0.5


@settings(max_examples=40, deadline=None)
@given(p=hnp.arrays(np.float64, (7, 4), elements=st.floats(0, 1)),
       labels=hnp.arrays(np.int64, 7, elements=st.integers(0, 3)),
       w=hnp.arrays(np.float64, 7, elements=st.floats(0, 5)))
def test_sparse_and_categorical_accuracy_agree(p, labels, w):
    expected = metrics.categorical_accuracy(one_hot(labels, 4), p, sample_weight=w)
    assert metrics.sparse_categorical_accuracy(labels, p, sample_weight=w) == expected
    assert metrics.accuracy(labels, p, sample_weight=w) == expected
    hits = (np.argmax(p, -1) == labels).astype(float)
    assert expected == pytest.approx(hits @ w / w.sum() if w.sum() > 0 else 0.0)


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.categorical_accuracy([0, 1], [[0.2, 0.8], [0.5, 0.5]]),
     r"y_true, y_pred: expected one-hot targets of y_pred's shape"),
    (lambda: metrics.sparse_categorical_accuracy([[0, 1]], [[0.2, 0.8], [0.5, 0.5]]),
     r"y_true: expected class labels of shape \(2,\)"),
    (lambda: metrics.sparse_categorical_accuracy([1], [0.2, 0.8]), r"y_pred: expected shape"),
    (lambda: metrics.binary_accuracy([1, 0, 1], [[0.2], [0.8]]),
     r"y_true, y_pred: expected the same number of values"),
    (lambda: metrics.binary_accuracy([1, 0], [0.2, 0.8], sample_weight=[1]),
     r"sample_weight: expected one weight per sample"),
    (lambda: metrics.get("f1"), r"metrics: expected names from"),
])
def test_metric_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ============================================================================================
# Keras 3 parity (tests/fixtures/keras_losses.npz, made by make_keras_loss_fixtures.py with
# Keras 3.15 on JAX, gradients by jax.grad). Keras 3 outside TensorFlow promotes float64 to
# float32, so its numbers are float32's: values are compared at 1e-6, gradients at 1e-5 (a
# wrong rule, such as no renormalisation or dividing by sum(w), is off by far more).
# ============================================================================================
FIXTURES = np.load(Path(__file__).parent / "fixtures" / "keras_losses.npz")
LOSS_CASES = sorted({key.split("/")[0] for key in FIXTURES.files if key.endswith("/loss")})
NPRNN_LOSSES = {"cce": CategoricalCrossentropy(), "scce": SparseCategoricalCrossentropy(),
                "cce_logits": CategoricalCrossentropy(from_logits=True),
                "cce_soft": CategoricalCrossentropy(from_logits=True),
                "scce_logits": SparseCategoricalCrossentropy(from_logits=True),
                "scce_sequence": SparseCategoricalCrossentropy(from_logits=True),
                "cce_clipped": CategoricalCrossentropy(),
                "scce_clipped": SparseCategoricalCrossentropy(),
                "bce": BinaryCrossentropy(), "bce_3_outputs": BinaryCrossentropy(),
                "bce_logits_3_outputs": BinaryCrossentropy(from_logits=True),
                "mse": MeanSquaredError()}


def test_the_fixture_covers_every_case():
    assert len(LOSS_CASES) == 2 * len(NPRNN_LOSSES)


@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_and_gradient_match_keras_3(case):
    loss = NPRNN_LOSSES[case.removesuffix("_weighted")]
    y_true, y_pred = FIXTURES[f"{case}/y_true"], FIXTURES[f"{case}/y_pred"]
    weights = FIXTURES[f"{case}/sample_weight"] if f"{case}/sample_weight" in FIXTURES.files \
        else None
    assert loss(y_true, y_pred, sample_weight=weights) == pytest.approx(
        float(FIXTURES[f"{case}/loss"]), rel=1e-6)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred, sample_weight=weights),
                               FIXTURES[f"{case}/gradient"], rtol=1e-5, atol=1e-7)


def test_per_sample_weights_broadcast_over_time_steps():
    """Keras 3 needs (N, T) weights for per-step losses; nprnn also takes (N,), repeated."""
    case = "scce_sequence"
    y_true, y_pred = FIXTURES[f"{case}/y_true"], FIXTURES[f"{case}/y_pred"]
    loss = SparseCategoricalCrossentropy(from_logits=True)
    per_sample = np.array([2.0, 0.5])
    assert loss(y_true, y_pred, sample_weight=per_sample) == pytest.approx(
        loss(y_true, y_pred, sample_weight=np.repeat(per_sample[:, None], 3, axis=1)),
        rel=1e-14)


@pytest.mark.parametrize("name", ["binary_accuracy", "categorical_accuracy",
                                  "sparse_categorical_accuracy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_metrics_match_keras_3(name, weighted):
    key = f"metric/{name}{'_weighted' if weighted else ''}"
    weights = FIXTURES[f"{key}/sample_weight"] if weighted else None
    value = getattr(metrics, name)(FIXTURES[f"{key}/y_true"], FIXTURES[f"{key}/y_pred"],
                                   sample_weight=weights)
    assert value == pytest.approx(float(FIXTURES[f"{key}/value"]), rel=1e-6)


@pytest.mark.parametrize("kind", ["sparse", "binary", "one_hot"])
def test_class_weights_match_keras_3(kind):
    class_weight = dict(zip(FIXTURES["class_weight/keys"].tolist(),
                            FIXTURES["class_weight/values"].tolist()))
    np.testing.assert_array_equal(
        losses.sample_weights_from_class_weight(FIXTURES[f"class_weight/{kind}/y"],
                                                class_weight),
        FIXTURES[f"class_weight/{kind}/sample_weight"])


def test_initializer_configs_and_names_match_keras_3():
    from nprnn import initializers

    for document in json.loads(str(FIXTURES["initializer_configs"])):
        ours = initializers.serialize(initializers.get(document))
        if document["class_name"] == "Identity":
            # Keras 3.15's Identity has no get_config: Identity(2.0) is saved as {} and
            # loads as Identity(1.0); nprnn keeps the gain
            assert document["config"] == {} and ours["config"] == {"gain": 1.0}
            continue
        assert ours == document
    for name, class_name in json.loads(str(FIXTURES["initializer_names"])).items():
        if class_name.startswith("error"):
            # Keras' get('constant') fails (Constant.from_config needs 'value');
            # nprnn gives Constant(0.0), the class's default
            assert initializers.get(name) == initializers.Constant(0.0)
        else:
            assert type(initializers.get(name)).__name__ == class_name, name
