"""Optimizers against updates computed by hand with Keras 3's formulas, and clipping.

Keras 3 (keras/src/optimizers/): RMSprop ``v = rho v + (1-rho) g^2; w -= lr g / sqrt(v + eps)``
(epsilon inside the root); SGD ``w -= lr g``, with momentum ``m = mu m - lr g; w += m``
(Nesterov ``w += mu m - lr g``); Adam at step t ``m += (1-b1)(g-m); v += (1-b2)(g^2-v);
w -= lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps)``. Clipping (base_optimizer.py):
``clipvalue`` clips each entry to [-c, c]; ``clipnorm`` rescales each gradient to norm <= c
(``g c / max(|g|, c)``); ``global_clipnorm`` rescales all of them together by
``c / max(global norm, c)``.

Every expectation below is computed with Python floats, one scalar at a time, from those
formulas: no code of nprnn's is used to make them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nprnn as keras
from nprnn import config
from nprnn.optimizers import SGD, Adam, RMSprop

W0 = [[1.0, -2.0, 0.5], [0.25]]
GRADS = [  # three steps, two weights
    [[0.5, -1.0, 0.0], [2.0]],
    [[0.1, 0.2, -0.3], [-1.0]],
    [[-0.3, 0.0, 0.7], [0.5]],
]


@pytest.fixture(params=["numpy", "numba"])
def any_backend(request):
    previous = config.backend()
    config.set_backend(request.param)
    yield request.param
    config.set_backend(previous)


def run(optimizer, grads=GRADS, start=W0, dtype=np.float64):
    weights = [np.array(w, dtype=dtype) for w in start]
    history = []
    for step in grads:
        optimizer.apply(weights, [np.array(g, dtype=dtype) for g in step])
        history.append([w.copy() for w in weights])
    return history


def hand(rule, grads=GRADS, start=W0):
    """Apply ``rule(state, index, w, g, t) -> w`` entry by entry; returns the history."""
    weights = [list(w) for w in start]
    state = {}
    history = []
    for t, step in enumerate(grads, start=1):
        for j, (w, g) in enumerate(zip(weights, step)):
            for i in range(len(w)):
                w[i] = rule(state, (j, i), w[i], g[i], t)
        history.append([np.array(w) for w in weights])
    return history


def assert_history(got, expected, rtol=1e-13):
    for got_step, expected_step in zip(got, expected, strict=True):
        for a, b in zip(got_step, expected_step, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-15)


def test_rmsprop_keras_rule(any_backend):
    lr, rho, eps = 0.01, 0.9, 1e-7

    def rule(state, key, w, g, t):
        v = rho * state.get(key, 0.0) + (1 - rho) * g * g
        state[key] = v
        return w - lr * g / math.sqrt(v + eps)

    optimizer = RMSprop(learning_rate=lr, rho=rho, epsilon=eps)
    assert_history(run(optimizer), hand(rule))
    assert optimizer.iterations == 3


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_rho():
    # v1 = (1 - rho) g^2, so the first step is lr g / sqrt((1 - rho) g^2 + eps) ~ lr/sqrt(0.1)
    optimizer = RMSprop(learning_rate=0.1, rho=0.9, epsilon=1e-7)
    (w,) = run(optimizer, grads=[[[3.0]]], start=[[1.0]])[0]
    assert w[0] == pytest.approx(1 - 0.1 * 3 / math.sqrt(0.1 * 9 + 1e-7), rel=1e-14)
    assert w[0] == pytest.approx(1 - 0.316227766, abs=1e-7)  # eps moves it by 2e-8


def test_rmsprop_float32(any_backend):
    lr, rho, eps = 1e-3, 0.9, 1e-7

    def rule(state, key, w, g, t):
        v = rho * state.get(key, 0.0) + (1 - rho) * g * g
        state[key] = v
        return w - lr * g / math.sqrt(v + eps)

    got = run(RMSprop(learning_rate=lr, rho=rho, epsilon=eps), dtype=np.float32)
    assert all(w.dtype == np.float32 for step in got for w in step)
    assert_history(got, hand(rule), rtol=2e-6)


def test_sgd_plain():
    lr = 0.1
    assert_history(run(SGD(learning_rate=lr)), hand(lambda s, k, w, g, t: w - lr * g))


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov):
    lr, mu = 0.1, 0.9

    def rule(state, key, w, g, t):
        m = mu * state.get(key, 0.0) - lr * g
        state[key] = m
        return w + (mu * m - lr * g if nesterov else m)

    assert_history(run(SGD(learning_rate=lr, momentum=mu, nesterov=nesterov)), hand(rule))


def test_adam_keras_rule():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7

    def rule(state, key, w, g, t):
        m, v = state.get(key, (0.0, 0.0))
        m += (1 - b1) * (g - m)
        v += (1 - b2) * (g * g - v)
        state[key] = (m, v)
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * m / (math.sqrt(v) + eps)

    assert_history(run(Adam(learning_rate=lr, beta_1=b1, beta_2=b2, epsilon=eps)), hand(rule))


def test_adam_first_step_is_about_lr():
    (w,) = run(Adam(learning_rate=0.01), grads=[[[-5.0]]], start=[[0.0]])[0]
    assert w[0] == pytest.approx(0.01, rel=1e-5)


# -- clipping -----------------------------------------------------------------------------
def test_clipvalue_by_hand():
    (a, b), = run(SGD(learning_rate=1.0, clipvalue=0.5), grads=[[[3.0, -0.2, -4.0], [0.4]]],
                  start=[[0.0, 0.0, 0.0], [0.0]])
    np.testing.assert_array_equal(a, [-0.5, 0.2, 0.5])
    np.testing.assert_array_equal(b, [-0.4])


def test_clipnorm_by_hand():
    # |(3, 4)| = 5 > 1: scaled to (0.6, 0.8); |(0.3, 0.4)| = 0.5 <= 1: unchanged.
    (a, b), = run(SGD(learning_rate=1.0, clipnorm=1.0), grads=[[[3.0, 4.0], [0.3, 0.4]]],
                  start=[[0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(a, [-0.6, -0.8], rtol=1e-15)
    np.testing.assert_allclose(b, [-0.3, -0.4], rtol=1e-15)


def test_global_clipnorm_by_hand():
    # global norm sqrt(3^2 + 4^2 + 12^2) = 13 > 2.6: everything scaled by 2.6 / 13 = 0.2.
    (a, b), = run(SGD(learning_rate=1.0, global_clipnorm=2.6), grads=[[[3.0, 4.0], [12.0]]],
                  start=[[0.0, 0.0], [0.0]])
    np.testing.assert_allclose(a, [-0.6, -0.8], rtol=1e-14)
    np.testing.assert_allclose(b, [-2.4], rtol=1e-14)
    # below the threshold nothing changes
    (a, b), = run(SGD(learning_rate=1.0, global_clipnorm=13.5), grads=[[[3.0, 4.0], [12.0]]],
                  start=[[0.0, 0.0], [0.0]])
    np.testing.assert_array_equal(a, [-3.0, -4.0])
    np.testing.assert_array_equal(b, [-12.0])


def test_clipnorm_of_a_zero_gradient_is_zero():
    (a,), = run(SGD(learning_rate=1.0, clipnorm=1.0), grads=[[[0.0, 0.0]]], start=[[1.0, 2.0]])
    np.testing.assert_array_equal(a, [1.0, 2.0])


def clip_by_hand(rule, c, step):
    if rule == "clipvalue":
        return [[min(max(g, -c), c) for g in grad] for grad in step]
    if rule == "clipnorm":
        out = []
        for grad in step:
            norm = math.sqrt(sum(g * g for g in grad))
            out.append([g * c / max(norm, c) for g in grad])
        return out
    norm = math.sqrt(sum(g * g for grad in step for g in grad))
    return [[g * c / max(norm, c) for g in grad] for grad in step]


@pytest.mark.parametrize("make", [lambda **k: RMSprop(0.01, **k), lambda **k: SGD(0.1, **k),
                                  lambda **k: SGD(0.1, momentum=0.9, **k),
                                  lambda **k: Adam(0.01, **k)],
                         ids=["rmsprop", "sgd", "sgd-momentum", "adam"])
@pytest.mark.parametrize("rule, c", [("clipvalue", 0.25), ("clipnorm", 0.5),
                                     ("global_clipnorm", 0.8)])
def test_every_optimizer_clips_before_its_rule(make, rule, c):
    """Clipping is applied to the gradients first: the same as the unclipped optimizer fed
    gradients clipped by hand."""
    clipped = run(make(**{rule: c}))
    by_hand = run(make(), grads=[clip_by_hand(rule, c, step) for step in GRADS])
    assert_history(clipped, by_hand, rtol=1e-12)
    unclipped = run(make())
    assert not np.allclose(clipped[-1][0], unclipped[-1][0])  # the clip did something


def test_clipping_does_not_modify_the_gradient_buffers():
    grads = [np.array([3.0, 4.0]), np.array([10.0])]
    kept = [g.copy() for g in grads]
    for optimizer in (SGD(clipvalue=1.0), SGD(clipnorm=1.0), SGD(global_clipnorm=1.0)):
        optimizer.apply([np.zeros(2), np.zeros(1)], grads)
        for g, k in zip(grads, kept):
            np.testing.assert_array_equal(g, k)


def test_clipvalue_in_a_model_step(float64):
    """One train_on_batch with SGD(lr=1, clipvalue=c) moves each weight by -clip(grad, c)."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 20, size=(16, 6))
    y = (ids[:, 0] < 10).astype(float)
    model = keras.Sequential([keras.layers.Embedding(20, 4, input_length=6),
                              keras.layers.SimpleRNN(3), keras.layers.Dense(1)])
    model.compile(optimizer=SGD(learning_rate=1.0, clipvalue=0.01), loss="mse")
    before = model.get_weights()
    grads = model.compute_gradients(ids, y)
    assert max(np.abs(g).max() for g in grads) > 0.01  # so the clip matters
    model.train_on_batch(ids, y)
    for w0, g, w1 in zip(before, grads, model.get_weights()):
        np.testing.assert_allclose(w1, w0 - np.clip(g, -0.01, 0.01), rtol=1e-12, atol=1e-15)


def test_state_round_trip_continues_identically():
    first = RMSprop(0.01)
    weights = [np.array(w) for w in W0]
    for step in GRADS[:2]:
        first.apply(weights, [np.array(g) for g in step])
    second = RMSprop(0.01)
    second.set_state(first.get_state(), weights)
    a = [w.copy() for w in weights]
    first.apply(weights, [np.array(g) for g in GRADS[2]])
    second.apply(a, [np.array(g) for g in GRADS[2]])
    for x, z in zip(weights, a):
        np.testing.assert_array_equal(x, z)
    assert second.iterations == first.iterations == 3


def test_an_optimizer_refuses_weights_of_another_model():
    optimizer = RMSprop()
    optimizer.apply([np.zeros(2)], [np.ones(2)])
    with pytest.raises(ValueError, match="holds state for 1 weights, got 2"):
        optimizer.apply([np.zeros(2), np.zeros(3)], [np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match=r"grads: item 0 has shape \(3,\), its weight \(2,\)"):
        optimizer.apply([np.zeros(2)], [np.ones(3)])


@pytest.mark.parametrize("make", [RMSprop, SGD, Adam])
def test_config_round_trip(make):
    optimizer = make(learning_rate=0.5, clipnorm=2.0)
    clone = make.from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config()
    assert keras.optimizers.get(make.__name__.lower()).get_config()["name"] == \
        make.__name__.lower()
