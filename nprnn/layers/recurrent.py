r"""Recurrent layers: one layer, :class:`RNN`, drives any cell.

As in Keras 3 (``keras.layers.RNN(cell)``) and Deep Learning from Scratch 2 (``RNN`` step
and ``TimeRNN``), a *cell* owns one time step and its weights' layout, and the *layer* owns
everything that does not depend on the cell:

* the input projection ``a_t = x_t Wx + b`` for all steps at once (a row gather of the
  projected table for token inputs), and its backward pass;
* ``go_backwards`` (the sequence is processed from the last step; the returned sequence is
  in that reversed order, as Keras returns it), masks (a masked step carries the states and
  the output forward), ``initial_state``, ``return_sequences``, ``return_state`` and
  ``stateful``;
* dropout masks, drawn once per sequence and reused at every step.

The time loop itself is a kernel: ``kernels.active().rnn_forward`` (or ``lstm_forward``,
``gru_forward``) -- under the NumPy backend the reference, which calls the cell's step
function once per step through :func:`~nprnn.kernels.reference.recurrence.recurrence_forward`.

Dropout rates must lie in [0, 1): Keras clips any rate into [0, 1] (``min(1.0, max(0.0,
dropout))`` in the cells), so that a negative rate means 0 and, for the LSTM and GRU, 1.0
drops nothing (their test is ``0.0 < self.dropout < 1.0``); nprnn refuses such rates with
an error naming the argument instead.

Dropout, Keras 3 semantics: ``dropout`` p multiplies the inputs x by a mask
:math:`m \in \{0, 1/(1-p)\}^{N \times D}` and ``recurrent_dropout`` q multiplies
:math:`h_{t-1}` inside the recurrent products by a mask in :math:`\{0, 1/(1-q)\}^{N \times H}`;
both are drawn once per call (per batch of sequences) and reused at every step, in training
only. Keras 3 uses one input mask for all gates (its default ``implementation=2``), but when
``recurrent_dropout > 0`` it switches the LSTM and GRU cells to ``implementation=1`` and draws
one mask per gate (4 for the LSTM, 3 for the GRU), for inputs and state alike; Keras 2 drew
per-gate masks too. nprnn always draws one input mask and one recurrent mask shared by all
gates: every gate sees the same expected scaling; only which units are dropped together
differs. The GRU's interpolation :math:`z h_{t-1} + (1-z)\tilde h` uses the undropped
:math:`h_{t-1}`, as in Keras.
"""

from __future__ import annotations

import numpy as np

from nprnn import _random, initializers, kernels
from nprnn._validation import as_array, check_bool, check_choice, check_float, check_positive_int
from nprnn.layers.base import Layer, ProjectionGradient, TokenInput

_CELL_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def _activation_name(value, name):
    return check_choice("linear" if value is None else value, name, _CELL_ACTIVATIONS)


class _Cell:
    """What every cell shares: units, initializers, dropout rates, Keras' weight layout.

    A subclass sets ``gates`` (columns of the kernel are ``gates * units``), ``state_names``,
    and the kernel functions ``forward_kernel``/``backward_kernel`` (names in
    :mod:`nprnn.kernels`), and says how its weights split into the input projection's
    ``(Wx, b)`` and the recurrent weights that the step function takes.
    """

    gates = 1
    state_names = ("h",)
    forward_kernel = "rnn_forward"
    backward_kernel = "rnn_backward"

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None):
        self.units = check_positive_int(units, "units")
        self.activation = _activation_name(activation, "activation")
        self.use_bias = check_bool(use_bias, "use_bias")
        for name, value in (("kernel_initializer", kernel_initializer),
                            ("recurrent_initializer", recurrent_initializer),
                            ("bias_initializer", bias_initializer)):
            initializers.get(value)  # fail early on an unknown name
            setattr(self, name, value)
        self.dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        self.recurrent_dropout = check_float(recurrent_dropout, "recurrent_dropout", low=0.0,
                                             high=1.0, high_open=True)
        self.seed = seed

    def weight_specs(self, input_dim):
        """``[(name, shape, initializer)]`` in Keras' order: kernel, recurrent_kernel, bias."""
        width = self.gates * self.units
        specs = [("kernel", (input_dim, width), self.kernel_initializer),
                 ("recurrent_kernel", (self.units, width), self.recurrent_initializer)]
        if self.use_bias:
            specs.append(("bias", (width,), self.bias_initializer))
        return specs

    def split(self, weights):
        """``(Wx, input bias or None, recurrent weights tuple)`` from the layer's weights."""
        return weights[0], (weights[2] if self.use_bias else None), (weights[1],)

    def write_grads(self, grads, dWx, db, drecurrent):
        """Store the gradients in the layer's ``grads`` (Keras' order)."""
        grads[0][...] = dWx
        grads[1][...] = drecurrent[0]
        if self.use_bias:
            grads[2][...] = db

    def kernel_options(self):
        """Keyword arguments of the sequence kernel besides the arrays."""
        return {"activation": self.activation}

    def get_config(self):
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer, "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}


class SimpleRNNCell(_Cell):
    r"""One step of a SimpleRNN: :math:`h_t = f(x_t W_x + h_{t-1} W_h + b)`.

    Weights ``kernel`` (D, H), ``recurrent_kernel`` (H, H), ``bias`` (H,): one bias, as in
    Keras (4072 = 500*8 + 8*8 + 8). Step:
    :func:`~nprnn.kernels.reference.simple_rnn.rnn_step_forward`.
    """


class LSTMCell(_Cell):
    r"""One step of an LSTM, Keras' gate order (i, f, c, o).

    .. math::

        z &= x_t W_x + b + h_{t-1} W_h, \quad
        i = \sigma(z_i),\ f = \sigma(z_f),\ g = \tanh(z_c),\ o = \sigma(z_o) \\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t)

    Weights ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,): the book's
    LSTM(8) after Embedding(500, 16) has 16*32 + 8*32 + 32 = 800 parameters.
    ``unit_forget_bias=True`` (Keras' default) starts the forget gate's bias at 1.
    Step: :func:`~nprnn.kernels.reference.lstm.lstm_step_forward`.
    """

    gates = 4
    state_names = ("h", "c")
    forward_kernel = "lstm_forward"
    backward_kernel = "lstm_backward"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _activation_name(recurrent_activation,
                                                     "recurrent_activation")
        self.unit_forget_bias = check_bool(unit_forget_bias, "unit_forget_bias")

    def weight_specs(self, input_dim):
        specs = super().weight_specs(input_dim)
        if self.use_bias and self.unit_forget_bias:
            base, units = initializers.get(self.bias_initializer), self.units

            def forget_bias_one(shape, dtype):
                # Keras: concatenate(init(H), ones(H), init(2H)) for the gates i, f, c, o
                return np.concatenate([np.asarray(base((units,), dtype)),
                                       np.ones(units, dtype),
                                       np.asarray(base((2 * units,), dtype))])

            specs[2] = ("bias", specs[2][1], forget_bias_one)
        return specs

    def kernel_options(self):
        return {"activation": self.activation,
                "recurrent_activation": self.recurrent_activation}

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "unit_forget_bias": self.unit_forget_bias}


class GRUCell(_Cell):
    r"""One step of a GRU, Keras' gate order (z, r, h).

    ``reset_after=True`` (Keras 3's default, cuDNN-compatible), with an input bias
    :math:`b_x` and a recurrent bias :math:`b_h`, stored as ``bias`` of shape (2, 3H)::

        z  = sigmoid(a_z + (h W_h + b_h)_z)          a = x W_x + b_x
        r  = sigmoid(a_r + (h W_h + b_h)_r)
        hh = tanh(a_h + r * (h W_h + b_h)_h)
        h' = z * h + (1 - z) * hh

    ``reset_after=False`` (Keras 2.2's layout, one bias (3H,)): ``hh = tanh(a_h + (r * h)
    W_h[:, 2H:])``. The book's GRU(8) after Embedding(500, 16) has
    16*24 + 8*24 + 2*24 = 624 parameters. Steps:
    :func:`~nprnn.kernels.reference.gru.gru_step_forward`,
    :func:`~nprnn.kernels.reference.gru.gru_reset_before_step_forward`.
    """

    gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kwargs):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _activation_name(recurrent_activation,
                                                     "recurrent_activation")
        self.reset_after = check_bool(reset_after, "reset_after")

    @property
    def forward_kernel(self):
        return "gru_forward" if self.reset_after else "gru_reset_before_forward"

    @property
    def backward_kernel(self):
        return "gru_backward" if self.reset_after else "gru_reset_before_backward"

    def weight_specs(self, input_dim):
        specs = super().weight_specs(input_dim)
        if self.use_bias and self.reset_after:
            specs[2] = ("bias", (2, 3 * self.units), self.bias_initializer)
        return specs

    def split(self, weights):
        Wx, Wh = weights[0], weights[1]
        if not self.reset_after:
            return Wx, (weights[2] if self.use_bias else None), (Wh,)
        if self.use_bias:
            return Wx, weights[2][0], (Wh, weights[2][1])
        return Wx, None, (Wh, np.zeros(3 * self.units, dtype=Wh.dtype))

    def write_grads(self, grads, dWx, db, drecurrent):
        grads[0][...] = dWx
        grads[1][...] = drecurrent[0]
        if self.use_bias and self.reset_after:
            grads[2][0] = db
            grads[2][1] = drecurrent[1]
        elif self.use_bias:
            grads[2][...] = db

    def kernel_options(self):
        return {"activation": self.activation,
                "recurrent_activation": self.recurrent_activation}

    def get_config(self):
        return {**super().get_config(), "recurrent_activation": self.recurrent_activation,
                "reset_after": self.reset_after}


_CELL_SETTINGS = frozenset((
    "units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
    "reset_after", "kernel_initializer", "recurrent_initializer", "bias_initializer",
    "dropout", "recurrent_dropout", "seed"))
_CELLS = {cls.__name__: cls for cls in (SimpleRNNCell, LSTMCell, GRUCell)}


class RNN(Layer):
    r"""A recurrent layer driving any cell over a sequence, as ``keras.layers.RNN(cell)``.

    Inputs: a float array (N, T, D), or a :class:`~nprnn.layers.base.TokenInput` (from an
    Embedding or a SparseOneHot), for which the projection is a row gather of
    ``table Wx + b``. A mask (N, T) comes from ``Embedding(mask_zero=True)``, ``Masking``,
    or the ``mask`` argument of an eager call; without one, every step is real (the book's
    padding with 0 is an input like any other).

    Parameters
    ----------
    cell : SimpleRNNCell, LSTMCell or GRUCell
    return_sequences : bool, default False
        Return every output (N, T, H) instead of the last one (N, H).
    return_state : bool, default False
        Also return the final states: ``[output, h_T]``, or ``[output, h_T, c_T]`` (LSTM).
    go_backwards : bool, default False
        Process the sequence from its last step; the returned sequence is in that order
        (reversed), as in Keras.
    stateful : bool, default False
        Start each batch from the final states of the previous one (sample i from sample i);
        ``reset_states()`` sets them to zero. Gradients do not flow between batches. The
        batch size is fixed by the first call, as Keras fixes it when it builds the layer:
        a batch of another size is refused, also after ``reset_states()`` (Keras'
        ``RNN.call``: "If an RNN is stateful, the batch size of the input sequences must be
        the same as the batch size of the initial state").
    unroll : bool, default False
        Accepted for Keras compatibility; the kernels always loop. Keras' unrolled loop
        computes what its while-loop does, except with ``go_backwards``, a mask and
        ``zero_output_for_mask`` (as inside a ``Bidirectional`` returning sequences): it
        zeroes the reversed outputs with the mask in input order (``backend.rnn``, the
        ``unroll`` branch's ``tf.where(_expand_mask(mask, outputs, fixed_dim=2), ...)``, the
        mask never reversed). nprnn gives the while-loop's result there.
    zero_output_for_mask : bool, default False
        With a mask: False (Keras' default) outputs at a masked step what was output at the
        step before (0 before the first unmasked step); True outputs zeros. The *states*
        are carried forward either way.

    Notes
    -----
    Forward: ``a = x Wx + b`` for all steps at once
    (:func:`~nprnn.kernels.reference.dense.dense_forward` or
    :func:`~nprnn.kernels.reference.dense.gathered_projection_forward`), then the cell's sequence
    kernel. Backward: full backpropagation through time from every returned output and
    state, then the projection's backward (``dWx = sum_t x_t^T da_t``, ``db = sum da``).
    """

    default_name = "rnn"
    accepts_token_input = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if not isinstance(cell, _Cell):
            raise TypeError(f"cell: expected SimpleRNNCell, LSTMCell or GRUCell, got "
                            f"{type(cell).__name__}")
        self.cell = cell
        self.return_sequences = check_bool(return_sequences, "return_sequences")
        self.return_state = check_bool(return_state, "return_state")
        self.go_backwards = check_bool(go_backwards, "go_backwards")
        self.stateful = check_bool(stateful, "stateful")
        self.unroll = check_bool(unroll, "unroll")
        self.zero_output_for_mask = check_bool(zero_output_for_mask, "zero_output_for_mask")
        self.states = None
        self._stateful_batch_size = None  # fixed by the first call of a stateful layer
        #: After ``backward``: dL/d(initial states) and dL/da_t (N, T, G*H, in input order),
        #: for people who study the gradients (nprnn.plotting reads them).
        self.initial_state_gradients = None
        self.projection_gradients = None
        super().__init__(**kwargs)

    def __getattr__(self, name):
        # Keras exposes the cell's settings on the layer: layer.units, layer.activation...
        cell = self.__dict__.get("cell")
        if cell is not None and name in _CELL_SETTINGS and hasattr(cell, name):
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"input_shape: {type(self).__name__} expects 3-D inputs (batch, timesteps, "
                f"features), got shape {tuple(input_shape)}; token ids need an Embedding "
                "first, or to_categorical"
            )
        super().build(input_shape)
        for name, shape, initializer in self.cell.weight_specs(input_shape[-1]):
            self.add_weight(name, shape, initializer)

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        return (batch, steps, self.units) if self.return_sequences else (batch, self.units)

    def reset_states(self, states=None):
        """Forget the carried states of a stateful layer (or set them to ``states``)."""
        self.states = None if states is None else [np.array(s, dtype=self.dtype)
                                                   for s in states]
        if self.states is not None and self.stateful:
            self._stateful_batch_size = len(self.states[0])

    reset_state = reset_states  # Keras 3's name

    def validate_input(self, inputs, name="inputs"):
        x = super().validate_input(inputs, name)
        if x.ndim != 3:
            raise ValueError(f"{name}: {self.name} expects 3-D inputs (samples, timesteps, "
                             f"features), got shape {x.shape}")
        if x.shape[1] == 0:  # Keras fails inside its loop; say why instead
            raise ValueError(f"{name}: {self.name} needs at least one time step, got shape "
                             f"{x.shape}")
        if self.built and x.shape[-1] != self.weights[0].shape[0]:
            raise ValueError(f"{name}: {self.name} expects {self.weights[0].shape[0]} features "
                             f"per step, got shape {x.shape}")
        return x

    def __call__(self, inputs, mask=None, training=False, initial_state=None):
        """Eager call, as Keras: ``layer(x, initial_state=[h0, (c0)], mask=m, training=t)``."""
        if initial_state is not None:
            if isinstance(initial_state, np.ndarray):
                initial_state = [initial_state]
            names = self.cell.state_names
            if len(initial_state) != len(names):
                raise ValueError(f"initial_state: {type(self).__name__} takes "
                                 f"{len(names)} states ({', '.join(names)}), got "
                                 f"{len(initial_state)}")
            count = len(inputs.ids) if isinstance(inputs, TokenInput) else len(inputs)
            checked = []
            for state_name, state in zip(names, initial_state):
                state = as_array(state, f"initial_state[{state_name}]", hint="")
                if state.shape != (count, self.units):
                    raise ValueError(f"initial_state: {state_name} expects shape "
                                     f"({count}, {self.units}), got {state.shape}")
                checked.append(state)
            initial_state = checked
        return super().__call__(inputs, mask=mask, training=training,
                                initial_state=initial_state)

    def _dropout_mask(self, rate, shape):
        """Inverted-dropout mask: 0 with probability ``rate``, else 1/(1 - rate)."""
        keep = _random.generator().random(shape) >= rate
        return (keep / (1.0 - rate)).astype(self.dtype)

    def forward(self, inputs, training=False, mask=None, initial_state=None):
        """(N, T, D) or TokenInput -> (N, H), or (N, T, H) with ``return_sequences``."""
        ops = kernels.active()
        cell = self.cell
        Wx, b, recurrent_weights = cell.split(self.weights)
        N = len(inputs.ids) if isinstance(inputs, TokenInput) else len(inputs)
        input_mask = None
        if training and cell.dropout > 0:
            if isinstance(inputs, TokenInput):  # a row gather cannot drop features per sequence
                inputs = inputs.materialize(self.dtype)
            input_mask = self._dropout_mask(cell.dropout, (N, 1, inputs.shape[-1]))
            inputs = inputs * input_mask
        if isinstance(inputs, TokenInput):
            projected = ops.gathered_projection_forward(inputs.table, inputs.ids, Wx, b)
        else:
            projected = ops.dense_forward(inputs, Wx, b)
        # Keras passes the mask on as it came, even when the outputs are reversed.
        self.output_mask = mask if self.return_sequences else None
        if self.go_backwards:
            projected = projected[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        if mask is not None and mask.all():
            mask = None  # nothing is masked: the plain kernels are exact and faster
        if self.stateful:
            if self._stateful_batch_size is None:
                self._stateful_batch_size = N
            elif N != self._stateful_batch_size:
                raise ValueError(
                    f"inputs: {self.name} is stateful and keeps states for batches of "
                    f"{self._stateful_batch_size} sequences, got {N} (as in Keras, the batch "
                    "size of a stateful layer is fixed by its first call)")
        if initial_state is not None:
            states = tuple(np.asarray(s, dtype=self.dtype) for s in initial_state)
        elif self.stateful and self.states is not None:
            states = tuple(self.states)
        else:
            states = tuple(np.zeros((N, self.units), dtype=self.dtype)
                           for _ in cell.state_names)
        recurrent_mask = None
        if training and cell.recurrent_dropout > 0:
            recurrent_mask = self._dropout_mask(cell.recurrent_dropout, (N, self.units))
        hidden, final_states, cache = getattr(ops, cell.forward_kernel)(
            projected, states, recurrent_weights, mask, recurrent_mask, **cell.kernel_options())
        factor = None
        if mask is not None:
            factor = ops.masked_output_factor(mask, self.zero_output_for_mask).astype(
                hidden.dtype)
        if self.stateful:
            self.states = [s.copy() for s in final_states]
        self._cache = (inputs, input_mask, cache, factor, Wx)
        if self.return_sequences:
            output = hidden if factor is None else hidden * factor[:, :, None]
        else:
            output = hidden[:, -1] if factor is None else hidden[:, -1] * factor[:, -1, None]
        if self.return_state:
            return [output, *final_states]
        return output

    def backward(self, doutputs, need_input_gradient=True):
        """Full BPTT; returns dx (N, T, D), a ProjectionGradient, or None.

        ``doutputs`` is the gradient of the output, or with ``return_state`` a list
        ``[doutput, dh_T, (dc_T)]`` (None entries for outputs that got no gradient).
        """
        ops = kernels.active()
        inputs, input_mask, cache, factor, Wx = self._cache
        dstates = [None] * len(self.cell.state_names)
        if self.return_state:
            doutputs, *dstates = doutputs
        if doutputs is None:
            dhidden = None
        elif self.return_sequences:
            dhidden = doutputs if factor is None else doutputs * factor[:, :, None]
        else:
            dhidden = None
            dlast = doutputs if factor is None else doutputs * factor[:, -1, None]
            dstates[0] = dlast if dstates[0] is None else dstates[0] + dlast
        dprojected, dinitial, drecurrent = getattr(ops, self.cell.backward_kernel)(
            dhidden, tuple(dstates), cache)
        self.initial_state_gradients = dinitial
        if self.go_backwards:
            dprojected = dprojected[:, ::-1]
        self.projection_gradients = dprojected
        if isinstance(inputs, TokenInput):
            G, dWx, db = ops.gathered_projection_backward(dprojected, inputs.ids, inputs.table,
                                                          Wx)
            dx = None
            if need_input_gradient and inputs.table is not None:
                dx = ProjectionGradient(((G, Wx),))
        else:
            dx, dWx, db = ops.dense_backward(dprojected, inputs, Wx,
                                             need_input_gradient or input_mask is not None)
            if input_mask is not None:
                dx = dx * input_mask if need_input_gradient else None
        self.cell.write_grads(self.grads, dWx, db, drecurrent)
        return dx

    def get_config(self):
        config_ = {**super().get_config(), "return_sequences": self.return_sequences,
                   "return_state": self.return_state, "go_backwards": self.go_backwards,
                   "stateful": self.stateful, "unroll": self.unroll,
                   "zero_output_for_mask": self.zero_output_for_mask}
        if type(self) is RNN:
            config_["cell"] = {"class_name": type(self.cell).__name__,
                               "config": self.cell.get_config()}
        else:
            config_.update(self.cell.get_config())
            if not self.zero_output_for_mask:  # Keras' own layer configs leave it out
                config_.pop("zero_output_for_mask")
        return config_

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        if cls is RNN:
            spec = config_.pop("cell")
            if spec.get("class_name") not in _CELLS:
                raise ValueError(f"cell: expected one of {sorted(_CELLS)}, got "
                                 f"{spec.get('class_name')!r}")
            config_["cell"] = _CELLS[spec["class_name"]](**spec["config"])
        return super().from_config(config_)


def _split_kwargs(kwargs, cell_keys):
    cell_kwargs = {key: kwargs.pop(key) for key in cell_keys if key in kwargs}
    return cell_kwargs, kwargs


_COMMON_CELL_KEYS = ("use_bias", "kernel_initializer", "recurrent_initializer",
                     "bias_initializer", "dropout", "recurrent_dropout", "seed")


class SimpleRNN(RNN):
    r"""Fully connected recurrent layer: :math:`h_t = f(x_t W_x + h_{t-1} W_h + b)`, h_0 = 0.

    Keras' arguments: ``units``, ``activation`` ('tanh', 'relu', 'sigmoid', 'linear' or
    None), ``use_bias``, the three initializers, ``dropout``, ``recurrent_dropout``, and the
    :class:`RNN` arguments (``return_sequences``, ``return_state``, ``go_backwards``,
    ``stateful``, ``unroll``). ``SimpleRNN(8, input_shape=(100, 500))`` is the book's.

    Weights, in Keras' order: ``kernel`` Wx (D, H) glorot-uniform, ``recurrent_kernel``
    Wh (H, H) orthogonal, ``bias`` b (H,) zeros. Parameters D*H + H*H + H: the book's
    4072 = 500*8 + 8*8 + 8 (one-hot) and 200 = 16*8 + 8*8 + 8 (after a 16-d Embedding).
    """

    default_name = "simple_rnn"

    def __init__(self, units, activation="tanh", **kwargs):
        cell_kwargs, kwargs = _split_kwargs(kwargs, _COMMON_CELL_KEYS)
        super().__init__(SimpleRNNCell(units, activation=activation, **cell_kwargs), **kwargs)


class LSTM(RNN):
    r"""Long short-term memory layer (Hochreiter and Schmidhuber, 1997), Keras' layout.

    See :class:`LSTMCell` for the equations. Keras' arguments: ``units``, ``activation``,
    ``recurrent_activation``, ``use_bias``, ``unit_forget_bias``, the initializers,
    ``dropout``, ``recurrent_dropout``, and the :class:`RNN` arguments. With
    ``return_state`` it returns ``[output, h_T, c_T]``.
    """

    default_name = "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        cell_kwargs, kwargs = _split_kwargs(kwargs, _COMMON_CELL_KEYS + ("unit_forget_bias",))
        super().__init__(LSTMCell(units, activation=activation,
                                  recurrent_activation=recurrent_activation, **cell_kwargs),
                         **kwargs)


class GRU(RNN):
    r"""Gated recurrent unit (Cho et al., 2014), Keras' layout.

    See :class:`GRUCell` for the equations of ``reset_after=True`` (default) and False.
    Keras' arguments: ``units``, ``activation``, ``recurrent_activation``, ``use_bias``,
    ``reset_after``, the initializers, ``dropout``, ``recurrent_dropout``, and the
    :class:`RNN` arguments.
    """

    default_name = "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", **kwargs):
        cell_kwargs, kwargs = _split_kwargs(kwargs, _COMMON_CELL_KEYS + ("reset_after",))
        super().__init__(GRUCell(units, activation=activation,
                                 recurrent_activation=recurrent_activation, **cell_kwargs),
                         **kwargs)


RECURRENT_LAYERS = {cls.__name__: cls for cls in (RNN, SimpleRNN, LSTM, GRU)}
