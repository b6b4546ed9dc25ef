r"""Layers: Embedding, SimpleRNN and Dense, each a thin object over the pure kernels.

A layer keeps its weights and their gradients side by side (``weights[i]`` and
``grads[i]`` have one shape, in Keras' ``get_weights()`` order); ``forward`` caches what
``backward`` needs, and ``backward`` writes the weight gradients *into* ``grads`` (so an
optimizer can hold stable references) and returns the gradient for the layer below.

Token inputs travel without being expanded. An Embedding's output, and a
:class:`~nprnn.utils.SparseOneHot` input, reach the SimpleRNN as a :class:`TokenInput`
(ids plus the table whose rows they select; for a one-hot the table is the identity). The
SimpleRNN then projects the *table* once, ``P = table Wx`` (V x H), and gathers rows of P,
which is exact algebra::

    x_t Wx = table[ids_t] Wx = (table Wx)[ids_t]

and its backward pass returns a :class:`TableGradient`, the gradient with respect to the
table, instead of an (N, T, E) array. Any other layer receives the expanded array.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from nprnn import config, initializers, kernels
from nprnn._validation import (
    as_array,
    as_float_array,
    as_token_ids,
    check_bool,
    check_choice,
    check_float_dtype,
    check_positive_int,
)
from nprnn.utils.categorical import dense_one_hot

_name_counters: dict[str, itertools.count] = {}


def clear_session() -> None:
    """Reset automatic layer and model names (``dense``, ``dense_1``, ...), as Keras does."""
    _name_counters.clear()


def unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (Keras' naming)."""
    number = next(_name_counters.setdefault(base, itertools.count()))
    return base if number == 0 else f"{base}_{number}"


class TokenInput(NamedTuple):
    """Token ids with the table whose rows they stand for.

    ids : int ndarray, shape (N, T)
    table : ndarray, shape (V, E), or None for a one-hot encoding (the identity, V = E)
    num_rows : int, V
    """

    ids: np.ndarray
    table: np.ndarray | None
    num_rows: int

    def materialize(self, dtype) -> np.ndarray:
        """The dense sequence this stands for, shape (N, T, E)."""
        if self.table is None:
            return dense_one_hot(self.ids, self.num_rows, dtype)
        return kernels.active().gather_rows(self.table, self.ids)


class TableGradient(NamedTuple):
    """Gradient with respect to a :class:`TokenInput`'s table, shape (V, E)."""

    dtable: np.ndarray


class Layer:
    """Base class: weights and gradients side by side, ``forward`` and ``backward``.

    Parameters
    ----------
    name : str, optional
        Defaults to the class name in snake case, numbered as Keras numbers them.
    input_shape : tuple, optional
        Shape of one sample (without the batch axis), as in Keras.
    trainable : bool, default True
    dtype : float dtype, optional
        Defaults to ``nprnn.config.floatx()`` when the layer is built.
    """

    default_name = "layer"
    accepts_token_input = False

    def __init__(self, name=None, input_shape=None, trainable=True, dtype=None, **kwargs):
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        if batch_input_shape is not None:
            batch_input_shape = _check_shape(batch_input_shape, "batch_input_shape")
            if not batch_input_shape:
                raise ValueError("batch_input_shape: expected (batch, ...) with at least one "
                                 "axis after the batch axis, got ()")
            input_shape = batch_input_shape[1:]
        if input_shape is not None:
            input_shape = _check_shape(input_shape, "input_shape")
        self.input_shape = input_shape
        self.trainable = check_bool(trainable, "trainable")
        self.dtype = check_float_dtype(dtype) if dtype is not None else None
        self.name = name or unique_name(self.default_name)
        self.weights: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.weight_names: list[str] = []
        self.built = False
        self.output_shape = None
        self._cache = None

    # -- weights -------------------------------------------------------------------------
    def add_weight(self, name, shape, initializer):
        """Create a weight and its gradient buffer; return the weight."""
        shape = tuple(shape)
        value = np.asarray(initializers.get(initializer)(shape, np.dtype(self.dtype)))
        if value.shape != shape or value.dtype.kind not in "iuf" or not np.isfinite(value).all():
            raise ValueError(f"initializer: {self.name}/{name} needs finite numbers of shape "
                             f"{shape}; the initializer gave shape {value.shape}, dtype "
                             f"{value.dtype}")
        value = np.array(value, dtype=self.dtype)
        self.weights.append(value)
        self.grads.append(np.zeros_like(value))
        self.weight_names.append(name)
        return value

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.dtype = self.dtype or config.floatx()
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, values) -> None:
        """Overwrite the weights in place (same order and shapes as ``get_weights``)."""
        for current, new in zip(self.weights, self._check_weights(values)):
            current[...] = new

    def _check_weights(self, values) -> list[np.ndarray]:
        """Validate every array before any is assigned (so a bad list changes nothing)."""
        if isinstance(values, np.ndarray) or not hasattr(values, "__iter__"):
            raise TypeError(f"weights: expected a list of arrays for layer {self.name!r}, got "
                            f"{type(values).__name__}")
        values = list(values)
        if len(values) != len(self.weights):
            raise ValueError(
                f"weights: layer {self.name!r} expects {len(self.weights)} arrays "
                f"({', '.join(self.weight_names)}), got {len(values)}"
            )
        checked = []
        for name, current, new in zip(self.weight_names, self.weights, values):
            try:
                new = as_array(new, f"weights: {self.name}/{name}", hint="")
            except TypeError:
                raise TypeError(f"weights: {self.name}/{name} expects a numeric array of shape "
                                f"{current.shape}, got {type(new).__name__}") from None
            if new.shape != current.shape:
                raise ValueError(
                    f"weights: {self.name}/{name} expects shape {current.shape}, got {new.shape}"
                )
            if new.dtype.kind not in "iuf":
                raise TypeError(f"weights: {self.name}/{name} expects real numbers, got dtype "
                                f"{new.dtype}")
            if not np.all(np.isfinite(new)):
                raise ValueError(f"weights: {self.name}/{name} must be finite numbers, found "
                                 "NaN or infinity")
            with np.errstate(over="ignore"):
                cast = new.astype(current.dtype)
            if not np.all(np.isfinite(cast)):
                raise ValueError(f"weights: {self.name}/{name} has values that overflow "
                                 f"{current.dtype}")
            checked.append(cast)
        return checked

    def get_config(self) -> dict:
        config_ = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.input_shape is not None:
            config_["input_shape"] = list(self.input_shape)
        return config_

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        if "input_shape" in config_ and config_["input_shape"] is not None:
            config_["input_shape"] = tuple(config_["input_shape"])
        return cls(**config_)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"

    # -- computation ---------------------------------------------------------------------
    def forward(self, inputs, training=False):
        raise NotImplementedError

    def backward(self, doutputs, need_input_gradient=True):
        raise NotImplementedError


def _check_shape(shape, name):
    if isinstance(shape, (str, bytes)):
        raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}")
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}") from None
    for dim in shape:
        if dim is not None:
            check_positive_int(dim, f"{name} entries")
    return tuple(None if d is None else int(d) for d in shape)


class Embedding(Layer):
    r"""Turn token ids into dense vectors: :math:`\mathrm{out}[n, t] = E[\mathrm{ids}[n, t]]`.

    Parameters
    ----------
    input_dim : int
        Vocabulary size V; ids must lie in [0, V).
    output_dim : int
        Embedding size E.
    input_length : int, optional
        Sequence length T, so that ``summary()`` knows shapes before any data is seen
        (Keras 2's argument; the book passes it).
    embeddings_initializer : default 'uniform', U(-0.05, 0.05) as in Keras.

    Shapes: ids (N, T) -> (N, T, E); weights ``[embeddings (V, E)]``; parameters V * E
    (the book's 8000 = 500 * 16).

    Notes
    -----
    Backward: :math:`dE[v] = \sum_{(n,t): ids[n,t] = v} dout[n, t]`; a repeated id accumulates.
    No masking: id 0 (padding) is an ordinary row, trained like any other, as in the book
    (``mask_zero=False``).
    """

    default_name = "embedding"

    def __init__(self, input_dim, output_dim, input_length=None,
                 embeddings_initializer="uniform", **kwargs):
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        if input_length is not None:
            input_length = check_positive_int(input_length, "input_length")
            kwargs.setdefault("input_shape", (input_length,))
        self.input_length = input_length
        initializers.get(embeddings_initializer)  # fail early on an unknown name
        self.embeddings_initializer = embeddings_initializer
        super().__init__(**kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    @property
    def embeddings(self):
        return self.weights[0]

    def forward(self, inputs, training=False):
        """Return a :class:`TokenInput` over the embedding table; shape (N, T) -> (N, T, E)."""
        ids = as_token_ids(inputs, "x", vocabulary_size=self.input_dim)
        self._cache = ids
        return TokenInput(ids, self.embeddings, self.input_dim)

    def backward(self, doutputs, need_input_gradient=True):
        """Accumulate dE from a :class:`TableGradient` or from an (N, T, E) gradient."""
        if isinstance(doutputs, TableGradient):
            self.grads[0][...] = doutputs.dtable
        else:
            self.grads[0][...] = kernels.active().scatter_add_rows(
                doutputs, self._cache, self.input_dim)
        return None  # integer ids have no gradient

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "input_length": self.input_length}

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        if config_.get("input_length") is not None:
            config_.pop("input_shape", None)
        return super().from_config(config_)


class SimpleRNN(Layer):
    r"""Fully connected recurrent layer: :math:`h_t = \tanh(x_t W_x + h_{t-1} W_h + b)`, h_0 = 0.

    Parameters
    ----------
    units : int
        Hidden size H.
    activation : 'tanh'
        The only activation the kernels implement (Keras' default).
    return_sequences : bool, default False
        Return every hidden state (N, T, H) instead of the last one (N, H).
    input_shape : (T, D), optional
        As in the book: ``SimpleRNN(8, input_shape=(100, 500))``.

    Weights, in Keras' order: ``kernel`` Wx (D, H) glorot-uniform, ``recurrent_kernel``
    Wh (H, H) orthogonal, ``bias`` b (H,) zeros. Parameters D*H + H*H + H: the book's
    4072 = 500*8 + 8*8 + 8 (one-hot) and 200 = 16*8 + 8*8 + 8 (after a 16-d Embedding).

    Inputs: a float array (N, T, D), or a :class:`TokenInput` (from an Embedding or a
    SparseOneHot), for which the projection is a row gather of ``table Wx``.

    Notes
    -----
    Forward: ``a = x Wx + b`` for all steps at once, then
    :func:`~nprnn.kernels.reference.rnn_recurrence_forward`. Backward: full
    backpropagation through time from every returned state
    (:func:`~nprnn.kernels.reference.rnn_recurrence_backward`), then
    ``dWx = sum_t x_t^T da_t``, ``db = sum da``, ``dx = da Wx^T``. No masking: padded steps
    (id 0) are real inputs, as in the book.
    """

    default_name = "simple_rnn"
    accepts_token_input = True

    def __init__(self, units, activation="tanh", return_sequences=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", **kwargs):
        self.units = check_positive_int(units, "units")
        if activation is None or activation != "tanh":
            raise ValueError(
                f"activation: SimpleRNN implements ['tanh'] (its kernels are specialised), "
                f"got {activation!r}"
            )
        self.activation = activation
        self.return_sequences = check_bool(return_sequences, "return_sequences")
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        for name in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            initializers.get(getattr(self, name))
        super().__init__(**kwargs)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                f"input_shape: SimpleRNN expects 3-D inputs (batch, timesteps, features), got "
                f"shape {tuple(input_shape)}; token ids need an Embedding first, or "
                "to_categorical"
            )
        super().build(input_shape)
        features, units = input_shape[-1], self.units
        self.add_weight("kernel", (features, units), self.kernel_initializer)
        self.add_weight("recurrent_kernel", (units, units), self.recurrent_initializer)
        self.add_weight("bias", (units,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        batch, steps = input_shape[0], input_shape[1]
        return (batch, steps, self.units) if self.return_sequences else (batch, self.units)

    def forward(self, inputs, training=False):
        """(N, T, D) or TokenInput -> (N, H), or (N, T, H) with ``return_sequences``."""
        ops = kernels.active()
        Wx, Wh, b = self.weights
        if isinstance(inputs, TokenInput):
            depth = inputs.num_rows if inputs.table is None else inputs.table.shape[1]
            if depth != Wx.shape[0]:
                raise ValueError(
                    f"x: {self.name} expects {Wx.shape[0]} features per step, got a one-hot "
                    f"or embedding of depth {depth}"
                )
            # (table Wx + b)[ids] = table[ids] Wx + b, bit for bit: the bias rides along.
            table_projection = (Wx if inputs.table is None else inputs.table @ Wx) + b
            projected = ops.gather_rows(table_projection, inputs.ids)
        else:
            x = inputs if isinstance(inputs, np.ndarray) and inputs.dtype == Wx.dtype else (
                as_float_array(inputs, "x", self.dtype))
            if x.ndim != 3 or x.shape[-1] != Wx.shape[0]:
                raise ValueError(
                    f"x: {self.name} expects shape (batch, timesteps, {Wx.shape[0]}), "
                    f"got {x.shape}"
                )
            inputs = x
            projected = (x.reshape(-1, x.shape[-1]) @ Wx).reshape(x.shape[:2] + (self.units,))
            projected += b
        h0 = np.zeros((projected.shape[0], self.units), dtype=projected.dtype)
        hidden = ops.rnn_recurrence_forward(projected, Wh, h0)
        self._cache = (inputs, hidden, h0)
        return hidden if self.return_sequences else hidden[:, -1]

    def backward(self, doutputs, need_input_gradient=True):
        """Full BPTT; returns dx (N, T, D), a TableGradient, or None."""
        ops = kernels.active()
        inputs, hidden, h0 = self._cache
        Wx, Wh, _ = self.weights
        dWx, dWh, db = self.grads
        if self.return_sequences:
            dhidden = np.asarray(doutputs, dtype=hidden.dtype)
        else:
            dhidden = np.zeros_like(hidden)
            dhidden[:, -1] = doutputs
        dprojected, dWh[...], _ = ops.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
        flat_dprojected = dprojected.reshape(-1, self.units)
        # db = sum over n and t of da; as a product with ones it is one BLAS call, about 20
        # times faster than .sum(axis=(0, 1)) for H = 8 (a strided reduction).
        db[...] = np.ones(len(flat_dprojected), dtype=dprojected.dtype) @ flat_dprojected
        if isinstance(inputs, TokenInput):
            # G[v] = sum of da over the positions holding id v: the gradient of table Wx.
            G = ops.scatter_add_rows(dprojected, inputs.ids, inputs.num_rows)
            if inputs.table is None:
                dWx[...] = G
                return None
            dWx[...] = inputs.table.T @ G
            return TableGradient(G @ Wx.T) if need_input_gradient else None
        flat_inputs = inputs.reshape(-1, inputs.shape[-1])
        dWx[...] = flat_inputs.T @ flat_dprojected
        if not need_input_gradient:
            return None
        return (flat_dprojected @ Wx.T).reshape(inputs.shape)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "return_sequences": self.return_sequences}


_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")


class Dense(Layer):
    r"""Fully connected layer: :math:`y = f(x W + b)`.

    Parameters
    ----------
    units : int
        Output size M.
    activation : {None, 'linear', 'sigmoid', 'tanh', 'relu'}

    Shapes: x (N, D) -> (N, M); a 3-D input (N, T, D) is mapped along its last axis, as Keras
    does. Weights ``[kernel (D, M) glorot-uniform, bias (M,) zeros]``; parameters D*M + M
    (the book's 9 = 8*1 + 1).

    Notes
    -----
    The pre-activation ``z = x W + b`` is kept, so that a sigmoid output trained with binary
    cross-entropy can take the exact gradient ``sigmoid(z) - y`` with respect to z
    (:meth:`backward_from_preactivation`) instead of dividing by a saturated probability.
    """

    default_name = "dense"

    def __init__(self, units, activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        self.units = check_positive_int(units, "units")
        activation = "linear" if activation is None else activation
        self.activation = check_choice(activation, "activation", _ACTIVATIONS)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer)
        initializers.get(bias_initializer)
        super().__init__(**kwargs)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"input_shape: Dense expects at least 2-D inputs, got {input_shape}")
        super().build(input_shape)
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        self.add_weight("bias", (self.units,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, inputs, training=False):
        W, b = self.weights
        x = inputs if isinstance(inputs, np.ndarray) and inputs.dtype == W.dtype else (
            as_float_array(inputs, "x", self.dtype))
        if x.shape[-1] != W.shape[0]:
            raise ValueError(f"x: {self.name} expects last axis {W.shape[0]}, got {x.shape}")
        z = x @ W + b
        out = _activate(self.activation, z)
        self._cache = (x, z, out)
        return out

    def backward(self, doutputs, need_input_gradient=True):
        _, z, out = self._cache
        return self.backward_from_preactivation(
            _activation_backward(self.activation, doutputs, z, out), need_input_gradient)

    def backward_from_preactivation(self, dz, need_input_gradient=True):
        """Backward from dL/dz, z = x W + b: ``dW = x^T dz``, ``db = sum dz``, ``dx = dz W^T``."""
        x = self._cache[0]
        W = self.weights[0]
        dW, db = self.grads
        flat_x = x.reshape(-1, x.shape[-1])
        flat_dz = dz.reshape(-1, self.units)
        dW[...] = flat_x.T @ flat_dz
        db[...] = flat_dz.sum(axis=0)
        return dz @ W.T if need_input_gradient else None

    @property
    def preactivation(self):
        """z = x W + b from the last forward pass."""
        return self._cache[1]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation}


def _activate(name, z):
    if name == "linear":
        return z
    if name == "sigmoid":
        return kernels.reference.sigmoid(z).astype(z.dtype, copy=False)
    if name == "tanh":
        return np.tanh(z)
    return np.maximum(z, 0)


def _activation_backward(name, dout, z, out):
    if name == "linear":
        return dout
    if name == "sigmoid":
        return dout * out * (1 - out)  # sigma' = sigma (1 - sigma)
    if name == "tanh":
        return dout * (1 - out * out)  # tanh' = 1 - tanh^2
    return dout * (z > 0)


LAYERS = {cls.__name__: cls for cls in (Embedding, SimpleRNN, Dense)}


def deserialize(class_name, config_):
    """Build a layer from its class name and ``get_config()``."""
    if class_name not in LAYERS:
        raise ValueError(f"class_name: expected one of {sorted(LAYERS)}, got {class_name!r}")
    return LAYERS[class_name].from_config(config_)
