r"""Bidirectional: one recurrent layer reading forwards, a copy reading backwards."""

from __future__ import annotations

import numpy as np

from nprnn._validation import check_choice
from nprnn.layers.base import Layer
from nprnn.layers.recurrent import RECURRENT_LAYERS, RNN

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    r"""Run ``layer`` over the sequence and a copy of it over the reversed sequence.

    With :math:`\overrightarrow{y}` the forward layer's output and :math:`\overleftarrow{y}`
    the backward layer's, re-reversed along time when ``return_sequences`` so that step t
    of both lines up (Keras' ``Bidirectional`` does the same)::

        concat: [y_f, y_b] on the last axis     sum: y_f + y_b
        mul:    y_f * y_b                       ave: (y_f + y_b) / 2
        None:   the list [y_f, y_b]

    Weights, in Keras' order: the forward layer's, then the backward layer's (names
    ``forward_<name>`` and ``backward_<name>``). A mask and the training flag go to both
    layers; ``initial_state`` is split in halves, forward first. With ``return_state`` the
    output is ``[merged, *forward_states, *backward_states]``.

    As in Keras 3 (``keras/src/layers/rnn/bidirectional.py``): the forward layer is a copy
    of ``layer`` made from its configuration; the default backward layer is the same copy
    with ``go_backwards`` set to True, not flipped, so a ``layer`` that itself reads
    backwards is refused ("Forward layer and backward layer should have different
    `go_backwards` value"); a given ``backward_layer`` must read the other way and agree on
    ``return_sequences``, ``return_state`` and ``stateful``. Both layers, a given backward
    layer included, get ``zero_output_for_mask = return_sequences`` (Keras' inner
    ``force_zero_output_for_mask``).

    Parameters
    ----------
    layer : RNN (SimpleRNN, LSTM, GRU)
        Reading forwards (``go_backwards=False``) unless ``backward_layer`` is given.
    merge_mode : {'concat', 'sum', 'mul', 'ave', None}, default 'concat'
    backward_layer : RNN, optional
        Default: a copy of ``layer``'s configuration with ``go_backwards=True``. It may be
        another kind of layer (a GRU behind an LSTM); it is used as given, not copied.
    """

    default_name = "bidirectional"
    accepts_token_input = True

    def __init__(self, layer, merge_mode="concat", backward_layer=None, **kwargs):
        if not isinstance(layer, RNN):
            raise TypeError(f"layer: expected a recurrent layer (SimpleRNN, LSTM, GRU, RNN), "
                            f"got {type(layer).__name__}")
        self.merge_mode = check_choice(merge_mode, "merge_mode", _MERGE_MODES)
        if backward_layer is not None and not isinstance(backward_layer, RNN):
            raise TypeError(f"backward_layer: expected a recurrent layer, got "
                            f"{type(backward_layer).__name__}")
        super().__init__(**kwargs)
        config_ = layer.get_config()
        config_.pop("input_shape", None)
        name = layer.name.removeprefix("forward_")
        self.forward_layer = type(layer).from_config({**config_, "name": f"forward_{name}"})
        if backward_layer is None:
            if layer.go_backwards:
                raise ValueError(
                    "layer: Bidirectional's backward copy reads backwards (go_backwards=True), "
                    "so the layer it wraps must read forwards, got go_backwards=True (Keras "
                    "refuses it too); pass backward_layer= to pair it with another layer")
            name = layer.name.removeprefix("backward_")
            backward_layer = type(layer).from_config(
                {**config_, "name": f"backward_{name}", "go_backwards": True})
        _check_pair(self.forward_layer, backward_layer)
        self.backward_layer = backward_layer
        for each in (self.forward_layer, self.backward_layer):
            each.zero_output_for_mask = each.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        if self.input_shape is None and layer.input_shape is not None:
            self.input_shape = layer.input_shape

    def build(self, input_shape):
        super().build(input_shape)
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        # The same arrays: optimizers and set_weights reach the sub-layers' weights.
        self.weights = self.forward_layer.weights + self.backward_layer.weights
        self.grads = self.forward_layer.grads + self.backward_layer.grads
        self.weight_names = ([f"forward/{n}" for n in self.forward_layer.weight_names]
                             + [f"backward/{n}" for n in self.backward_layer.weight_names])

    @property
    def states(self):
        """The forward layer's carried states then the backward layer's, or None."""
        if self.forward_layer.states and self.backward_layer.states:
            return [*self.forward_layer.states, *self.backward_layer.states]
        return None

    def reset_states(self):
        """Zero both layers' carried states, as Keras' ``Bidirectional.reset_states``, which
        raises AttributeError for a layer that is not stateful."""
        if not self.stateful:
            raise AttributeError(f"reset_states: {self.name} is not stateful (its layer was "
                                 "built with stateful=False)")
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    reset_state = reset_states  # Keras 3's name

    def unbuild(self):
        super().unbuild()
        self.forward_layer.unbuild()
        self.backward_layer.unbuild()

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            units = self.forward_layer.units + self.backward_layer.units
            return tuple(shape[:-1]) + (units,)
        return tuple(shape)

    def validate_input(self, inputs, name="inputs"):
        return self.forward_layer.validate_input(inputs, name)

    def __call__(self, inputs, mask=None, training=False, initial_state=None):
        if initial_state is not None:
            half = len(initial_state) // 2
            for layer, states in ((self.forward_layer, initial_state[:half]),
                                  (self.backward_layer, initial_state[half:])):
                if len(states) != len(layer.cell.state_names):
                    raise ValueError(f"initial_state: expected {2 * len(layer.cell.state_names)}"
                                     f" arrays (forward states, then backward), got "
                                     f"{len(initial_state)}")
        return super().__call__(inputs, mask=mask, training=training,
                                initial_state=initial_state)

    def forward(self, inputs, training=False, mask=None, initial_state=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y_f = self.forward_layer.forward(inputs, training, mask, forward_state)
        y_b = self.backward_layer.forward(inputs, training, mask, backward_state)
        states = []
        if self.return_state:
            (y_f, *states_f), (y_b, *states_b) = y_f, y_b
            states = states_f + states_b
        if self.return_sequences:
            y_b = y_b[:, ::-1]  # line step t of both directions up
        self._cache = (y_f, y_b)
        self.output_mask = mask if self.return_sequences else None
        merged = _merge(self.merge_mode, y_f, y_b)
        if self.return_state:
            return [merged, *states] if self.merge_mode else [y_f, y_b, *states]
        return merged

    def backward(self, doutputs, need_input_gradient=True):
        y_f, y_b = self._cache
        dstates_f = dstates_b = []
        if self.return_state:
            count = len(self.forward_layer.cell.state_names)
            if self.merge_mode is None:
                dy_f, dy_b, *rest = doutputs
                doutputs = [dy_f, dy_b]
            else:
                doutputs, *rest = doutputs
            dstates_f, dstates_b = rest[:count], rest[count:]
        dy_f, dy_b = _merge_backward(self.merge_mode, doutputs, y_f, y_b)
        if self.return_sequences and dy_b is not None:
            dy_b = dy_b[:, ::-1]
        if self.return_state:
            dy_f, dy_b = [dy_f, *dstates_f], [dy_b, *dstates_b]
        dx_f = self.forward_layer.backward(dy_f, need_input_gradient)
        dx_b = self.backward_layer.backward(dy_b, need_input_gradient)
        if not need_input_gradient:
            return None
        if dx_f is None or dx_b is None:
            return dx_f if dx_b is None else dx_b
        return dx_f + dx_b

    def get_config(self):
        layer_config = self.forward_layer.get_config()
        layer_config["name"] = layer_config["name"].removeprefix("forward_")
        config_ = {**super().get_config(), "merge_mode": self.merge_mode,
                   "layer": {"class_name": type(self.forward_layer).__name__,
                             "config": layer_config}}
        backward = self.backward_layer
        default = {**self.forward_layer.get_config(), "go_backwards": True,
                   "name": backward.name}
        if type(backward) is not type(self.forward_layer) or backward.get_config() != default:
            config_["backward_layer"] = {"class_name": type(backward).__name__,
                                         "config": backward.get_config()}
        return config_

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        for name in ("layer", "backward_layer"):
            spec = config_.pop(name, None)
            if spec is None and name == "backward_layer":  # the default copy
                continue
            kind = spec.get("class_name") if isinstance(spec, dict) else spec
            if not isinstance(kind, str) or kind not in RECURRENT_LAYERS:
                raise ValueError(f"{name}: Bidirectional takes one of "
                                 f"{sorted(RECURRENT_LAYERS)}, got {kind!r}")
            config_[name] = RECURRENT_LAYERS[spec["class_name"]].from_config(spec["config"])
        if config_.get("input_shape") is not None:
            config_["input_shape"] = tuple(config_["input_shape"])
        return cls(**config_)


def _check_pair(forward, backward):
    """Refuse the pairs Keras 3 refuses (``Bidirectional._verify_layer_config``): the two
    layers must read in different directions and agree on what they return and keep."""
    if forward.go_backwards == backward.go_backwards:
        raise ValueError(
            f"backward_layer: the forward and backward layers must read in different "
            f"directions, both have go_backwards={forward.go_backwards}")
    for name in ("stateful", "return_sequences", "return_state"):
        if getattr(forward, name) != getattr(backward, name):
            raise ValueError(f"backward_layer: {name} must be the same as the forward "
                             f"layer's, got {getattr(backward, name)} for the backward layer "
                             f"and {getattr(forward, name)} for the forward layer")


def _merge(mode, y_f, y_b):
    if mode == "concat":
        return np.concatenate([y_f, y_b], axis=-1)
    if mode == "sum":
        return y_f + y_b
    if mode == "mul":
        return y_f * y_b
    if mode == "ave":
        return (y_f + y_b) / 2
    return [y_f, y_b]


def _merge_backward(mode, d, y_f, y_b):
    """Gradients of the two directions' outputs from the merged output's gradient."""
    if mode == "concat":
        units = y_f.shape[-1]
        return d[..., :units], d[..., units:]
    if mode == "sum":
        return d, d
    if mode == "mul":
        return d * y_b, d * y_f
    if mode == "ave":
        return d / 2, d / 2
    return d[0], d[1]
