"""The recurrent layers: LSTM, GRU, SimpleRNN options, masks, states, dropout, Bidirectional.

Gradient checks are centred differences in float64 on non-square sizes (vocabulary 13,
embedding 4, 7 steps, 5 sequences, 3 and 2 units), on both backends. Semantics are checked
against independent NumPy loops written here from Keras' documented behaviour.
"""

from __future__ import annotations

import numpy as np
import pytest

import nprnn as keras
from nprnn import layers
from nprnn.gradcheck import check_model

V, E, T, N = 13, 4, 7, 5
TOLERANCE = 1e-6


def token_data(seed=0, pad=2):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, V, size=(N, T))
    for n in range(N):  # pre-padding of different lengths, as pad_sequences makes it
        ids[n, : (n * pad) % T] = 0
    return ids, rng.integers(0, 2, size=(N, 1)).astype(float)


def model_of(*body, mask_zero=False, scale=1.0):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([layers.Embedding(V, E, input_length=T, mask_zero=mask_zero), *body,
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    if scale != 1.0:  # larger weights: gradients well above finite-difference noise
        model.set_weights([w * scale for w in model.get_weights()])
    return model


BODIES = {
    "lstm": lambda: [layers.LSTM(3)],
    "lstm no bias, relu": lambda: [layers.LSTM(3, use_bias=False, activation="relu")],
    "gru": lambda: [layers.GRU(3)],
    "gru reset_after=False": lambda: [layers.GRU(3, reset_after=False)],
    "gru no bias": lambda: [layers.GRU(3, use_bias=False)],
    "simple_rnn relu no bias": lambda: [layers.SimpleRNN(3, activation="relu", use_bias=False)],
    "stacked, reversed": lambda: [layers.LSTM(3, return_sequences=True, go_backwards=True),
                                  layers.GRU(2, go_backwards=True)],
    "bidirectional concat + ave": lambda: [
        layers.Bidirectional(layers.LSTM(3, return_sequences=True)),
        layers.Bidirectional(layers.GRU(2), merge_mode="ave")],
    "bidirectional sum, mul": lambda: [
        layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), merge_mode="sum"),
        layers.Bidirectional(layers.SimpleRNN(2), merge_mode="mul")],
}


@pytest.mark.parametrize("mask_zero", [False, True], ids=["no mask", "mask_zero"])
@pytest.mark.parametrize("body", sorted(BODIES))
def test_model_gradients(float64, backend, body, mask_zero):
    ids, y = token_data()
    model = model_of(*BODIES[body](), mask_zero=mask_zero, scale=2.0)
    errors = check_model(model, ids, y)
    assert max(errors.values()) < TOLERANCE, errors


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
def test_dropout_gradients_with_a_fixed_mask(float64, backend, cell):
    ids, y = token_data()
    layer = getattr(layers, cell)(3, dropout=0.3, recurrent_dropout=0.4)
    model = model_of(layer, layers.Dropout(0.2), scale=2.0)
    errors = check_model(model, ids, y, seed=11)
    assert max(errors.values()) < TOLERANCE, errors


def lstm_loop(x, kernel, recurrent, bias, h, c, mask=None):
    """An independent LSTM in Keras' gate order, one sequence step at a time."""
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    units = recurrent.shape[0]
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f = sigmoid(z[:, :units]), sigmoid(z[:, units:2 * units])
        g, o = np.tanh(z[:, 2 * units:3 * units]), sigmoid(z[:, 3 * units:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        if mask is not None:
            keep = mask[:, t, None]
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        outputs.append(h)
    return np.stack(outputs, axis=1), h, c


def test_lstm_states_initial_state_and_go_backwards(float64, backend):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, T, E))
    h0, c0 = rng.standard_normal((2, N, 3))
    layer = layers.LSTM(3, return_sequences=True, return_state=True, go_backwards=True)
    out, h, c = layer(x, initial_state=[h0, c0])
    kernel, recurrent, bias = layer.get_weights()
    expected, h_ref, c_ref = lstm_loop(x[:, ::-1], kernel, recurrent, bias, h0, c0)
    np.testing.assert_allclose(out, expected, atol=1e-12)  # reversed order, as Keras
    np.testing.assert_allclose(h, h_ref, atol=1e-12)
    np.testing.assert_allclose(c, c_ref, atol=1e-12)
    np.testing.assert_allclose(bias[3:6], 1.0)  # unit_forget_bias


def test_masked_steps_carry_states_and_outputs(float64, backend):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, T, E))
    mask = rng.random((N, T)) > 0.4
    mask[0, :3] = False  # leading masked steps: the output is 0 until the first real one
    h0 = rng.standard_normal((N, 3))
    layer = layers.LSTM(3, return_sequences=True)
    out = layer(x, mask=mask, initial_state=[h0, np.zeros((N, 3))])
    expected, *_ = lstm_loop(x, *layer.get_weights(), h0, np.zeros((N, 3)), mask)
    seen = np.logical_or.accumulate(mask, axis=1)[..., None]
    np.testing.assert_allclose(out, expected * seen, atol=1e-12)
    zeroing = layers.LSTM(3, return_sequences=True, zero_output_for_mask=True)
    zeroing(x[:1])
    zeroing.set_weights(layer.get_weights())
    np.testing.assert_allclose(zeroing(x, mask=mask, initial_state=[h0, np.zeros((N, 3))]),
                               expected * mask[..., None], atol=1e-12)


def test_mask_zero_ignores_padding(float64, backend):
    """With mask_zero, pre-padding changes nothing: the padded and unpadded reviews agree."""
    ids, _ = token_data(pad=0)
    model = model_of(layers.GRU(3), mask_zero=True)
    padded = np.concatenate([np.zeros((N, 4), dtype=ids.dtype), ids], axis=1)
    longer = keras.Sequential([layers.Embedding(V, E, mask_zero=True), layers.GRU(3),
                               layers.Dense(1, activation="sigmoid")])
    longer.build((None, T + 4))
    longer.set_weights(model.get_weights())
    np.testing.assert_allclose(longer.predict(padded, verbose=0), model.predict(ids, verbose=0),
                               atol=1e-12)


def test_dropout_only_in_training_and_drawn_once_per_sequence(float64):
    """With Wx = I and Wh = 0, h_t = x_t * m: the mask can be read off every step."""
    rng = np.random.default_rng(4)
    x = rng.uniform(1, 2, size=(N, T, E))
    layer = layers.SimpleRNN(E, dropout=0.5, return_sequences=True, activation="linear",
                             use_bias=False)
    layer(x[:1])
    layer.set_weights([np.eye(E), np.zeros((E, E))])
    np.testing.assert_allclose(layer(x), x)  # inference: no dropout
    mask = layer(x, training=True) / x  # (N, T, E)
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape))  # once a sequence
    assert set(np.round(np.unique(mask), 12)) <= {0.0, 2.0}  # 0 or 1 / (1 - p)
    assert 0.2 < (mask == 0).mean() < 0.8
    assert not np.allclose(mask[0], mask[1])  # each sequence its own mask


def test_stateful_layer_carries_states_between_calls(float64, backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, 2 * T, E))
    whole = layers.GRU(3, return_sequences=True)
    expected = whole(x)
    stateful = layers.GRU(3, return_sequences=True, stateful=True)
    stateful(x[:, :T])
    stateful.set_weights(whole.get_weights())
    stateful.reset_states()
    halves = np.concatenate([stateful(x[:, :T]), stateful(x[:, T:])], axis=1)
    np.testing.assert_allclose(halves, expected, atol=1e-12)
    stateful.reset_states()
    np.testing.assert_allclose(stateful(x[:, :T]), expected[:, :T], atol=1e-12)


def test_bidirectional_lines_up_steps_and_orders_weights(float64, backend):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((N, T, E))
    wrapper = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None)
    forward_out, backward_out = wrapper(x)
    names = wrapper.weight_names
    assert names[:3] == ["forward/kernel", "forward/recurrent_kernel", "forward/bias"]
    assert names[3:] == ["backward/kernel", "backward/recurrent_kernel", "backward/bias"]
    weights = wrapper.get_weights()
    zeros = np.zeros((N, 3))
    expected_forward, *_ = lstm_loop(x, *weights[:3], zeros, zeros)
    expected_backward, *_ = lstm_loop(x[:, ::-1], *weights[3:], zeros, zeros)
    np.testing.assert_allclose(forward_out, expected_forward, atol=1e-12)
    np.testing.assert_allclose(backward_out, expected_backward[:, ::-1], atol=1e-12)
    concat = layers.Bidirectional(layers.LSTM(3))
    concat(x[:1])
    concat.set_weights(weights)
    np.testing.assert_allclose(concat(x), np.concatenate(
        [expected_forward[:, -1], expected_backward[:, -1]], axis=1), atol=1e-12)


def test_stateful_bidirectional_carries_and_resets_both_directions(float64, backend):
    """Keras' Bidirectional keeps ``stateful`` and resets both layers with reset_states();
    call 2 of a stateful pair equals the stateless pair started from call 1's final states."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N, 2 * T, E))
    first, second = x[:, :T], x[:, T:]
    stateless = layers.Bidirectional(layers.LSTM(3, return_sequences=True, return_state=True))
    _, *states = stateless(first)
    expected = stateless(second, initial_state=states)[0]
    stateful = layers.Bidirectional(layers.LSTM(3, return_sequences=True, stateful=True))
    stateful(first)
    stateful.set_weights(stateless.get_weights())
    assert stateful.stateful
    stateful.reset_states()
    np.testing.assert_array_equal(stateful(first), stateless(first)[0])
    assert len(stateful.states) == 4
    np.testing.assert_allclose(stateful(second), expected, atol=1e-12)
    model = keras.Sequential([layers.Input((T, E)), stateful])
    model.reset_states()  # reaches the layers inside the wrapper
    assert stateful.states is None
    np.testing.assert_array_equal(stateful(second), stateless(second)[0])
    with pytest.raises(AttributeError, match="reset_states: .* is not stateful"):
        layers.Bidirectional(layers.GRU(2)).reset_states()


def test_bidirectional_given_backward_layer_outputs_zero_at_masked_steps(float64, backend):
    """Keras' Bidirectional sets zero_output_for_mask = return_sequences on a backward layer it
    is given too (force_zero_output_for_mask): its masked steps output 0, not the carried h."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, T, E))
    mask = rng.random((N, T)) > 0.4
    mask[:, -1] = False  # the backward layer's first step is masked: no carried h before it
    backward = layers.GRU(3, go_backwards=True, return_sequences=True)
    wrapper = layers.Bidirectional(layers.LSTM(3, return_sequences=True),
                                   backward_layer=backward, merge_mode=None)
    assert wrapper.backward_layer is backward and backward.zero_output_for_mask
    y_forward, y_backward = wrapper(x, mask=mask)
    assert np.all(y_forward[~mask] == 0.0) and np.all(y_backward[~mask] == 0.0)
    assert np.all(y_backward[mask] != 0.0)
    # The same GRU on its own, with zero_output_for_mask=True, reversed back.
    alone = layers.GRU(3, go_backwards=True, return_sequences=True, zero_output_for_mask=True)
    alone(x)
    alone.set_weights(backward.get_weights())
    np.testing.assert_allclose(y_backward, alone(x, mask=mask)[:, ::-1], atol=1e-12)


def test_bidirectional_config_keeps_a_given_backward_layer(float64):
    wrapper = layers.Bidirectional(layers.LSTM(3, return_sequences=True),
                                   backward_layer=layers.GRU(2, go_backwards=True,
                                                             return_sequences=True,
                                                             activation="relu"))
    x = np.random.default_rng(9).standard_normal((N, T, E))
    expected = wrapper(x)
    clone = layers.Bidirectional.from_config(wrapper.get_config())
    assert isinstance(clone.backward_layer, layers.GRU)
    assert clone.backward_layer.activation == "relu" and clone.backward_layer.units == 2
    clone(x)
    clone.set_weights(wrapper.get_weights())
    np.testing.assert_allclose(clone(x), expected, atol=1e-12)
    # The default copy (an LSTM reading backwards) is left out of the configuration.
    plain = layers.Bidirectional(layers.LSTM(3))
    assert "backward_layer" not in plain.get_config()
    assert layers.Bidirectional.from_config(plain.get_config()).backward_layer.go_backwards


def test_numeric_masks_count_as_booleans(float64, backend):
    """Keras casts a mask to bool (0 masks the step): a 0.0/1.0 mask equals the boolean one."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((N, T, E))
    mask = rng.random((N, T)) > 0.3
    layer = layers.LSTM(3, return_sequences=True)
    masked = layer(x, mask=mask)
    assert not np.allclose(masked, layer(x))  # the mask matters, so the equalities can fail
    np.testing.assert_array_equal(layer(x, mask=mask.astype(float)), masked)
    np.testing.assert_array_equal(layer(x, mask=mask * 7), masked)


def test_book_parameter_counts():
    def count(*body):
        model = keras.Sequential([layers.Embedding(500, 16, input_length=100), *body,
                                  layers.Dense(1, activation="sigmoid")])
        return model.count_params()

    assert count(layers.LSTM(8)) == 8809
    assert count(layers.LSTM(8, dropout=0.3)) == 8809
    assert count(layers.LSTM(8, dropout=0.3, return_sequences=True),
                 layers.LSTM(8, dropout=0.3)) == 9353
    assert count(layers.GRU(8)) == 8633
    assert count(layers.GRU(8, reset_after=False)) == 8609


def test_config_round_trip_and_clone():
    model = keras.Sequential([
        layers.Embedding(V, E, input_length=T, mask_zero=True),
        layers.Bidirectional(layers.LSTM(3, return_sequences=True, dropout=0.1)),
        layers.GRU(2, reset_after=False, go_backwards=True),
        layers.Dropout(0.5), layers.Dense(3, activation="softmax")])
    clone = keras.models.clone_model(model)
    assert clone.get_config()["layers"][1:] == model.get_config()["layers"][1:]
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    again = keras.models.model_from_json(model.to_json())
    assert again.count_params() == model.count_params()


def test_input_declares_the_shape():
    model = keras.Sequential([keras.Input(shape=(T,)), layers.Embedding(V, E), layers.LSTM(2),
                              layers.Dense(1)])
    assert model.built and model.output_shape == (None, 1)


def test_bad_recurrent_arguments_name_themselves():
    with pytest.raises(ValueError, match="dropout: expected"):
        layers.LSTM(2, dropout=1.5)
    with pytest.raises(ValueError, match="merge_mode: expected one of"):
        layers.Bidirectional(layers.LSTM(2), merge_mode="max")
    with pytest.raises(TypeError, match="layer: expected a recurrent layer"):
        layers.Bidirectional(layers.Dense(2))
    layer = layers.LSTM(2)
    with pytest.raises(ValueError, match=r"initial_state: LSTM takes 2 states \(h, c\), got 1"):
        layer(np.zeros((N, T, E)), initial_state=[np.zeros((N, 2))])
    with pytest.raises(ValueError, match=r"mask: expected a boolean array of shape \(5, 7\)"):
        layer(np.zeros((N, T, E)), mask=np.ones((N, T + 1), bool))
