r"""Embedding, Dense, Dropout, Masking and the Input placeholder."""

from __future__ import annotations

import numpy as np

from nprnn import _random, initializers, kernels
from nprnn._validation import (
    as_token_ids,
    check_bool,
    check_choice,
    check_float,
    check_positive_int,
)
from nprnn.layers.base import Layer, ProjectionGradient, TokenInput, check_shape


class InputLayer(Layer):
    """Declares the shape of one sample, as ``keras.Input(shape=...)`` does.

    It holds no weights and computes nothing; :class:`~nprnn.models.Sequential` reads its
    shape (and drops it from its layer list, as Keras 3 does).
    """

    default_name = "input_layer"

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if shape is None:
            raise ValueError("shape: expected the shape of one sample, such as (100,), got None")
        shape = check_shape(shape, "shape")
        self.batch_size = None if batch_size is None else check_positive_int(batch_size,
                                                                             "batch_size")
        self.input_dtype = dtype
        super().__init__(name=name, input_shape=shape, **kwargs)

    def forward(self, inputs, training=False, mask=None):
        self.output_mask = mask
        return inputs

    def backward(self, doutputs, need_input_gradient=True):
        return doutputs

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape),
                "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        config_["shape"] = tuple(config_.get("shape") or config_.pop("batch_shape")[1:])
        return cls(**config_)


def Input(shape=None, batch_size=None, dtype=None, name=None):  # noqa: N802 (Keras' name)
    """``keras.Input``: a placeholder for the first layer of a Sequential model."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)


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
    mask_zero : bool, default False
        If True, id 0 is padding: the layer emits the mask ``ids != 0`` (N, T), and the
        recurrent layers after it skip the padded steps (see :class:`~nprnn.layers.recurrent.RNN`).
        The book does not use it: with ``mask_zero=False`` id 0 is an ordinary row, trained
        like any other, and the padding is a real input.

    Shapes: ids (N, T) -> (N, T, E); weights ``[embeddings (V, E)]``; parameters V * E
    (the book's 8000 = 500 * 16).

    Notes
    -----
    Backward: :math:`dE[v] = \sum_{(n,t): ids[n,t] = v} dout[n, t]`, a scatter-add
    (:func:`~nprnn.kernels.reference.dense.embedding_backward`); a repeated id accumulates. When a
    recurrent layer took the ids directly, it sends the gradient of the projected rows, G,
    and :math:`dE = G W_x^T` (:func:`~nprnn.kernels.reference.dense.projected_rows_backward`).
    """

    default_name = "embedding"

    def __init__(self, input_dim, output_dim, input_length=None,
                 embeddings_initializer="uniform", mask_zero=False, **kwargs):
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.output_dim = check_positive_int(output_dim, "output_dim")
        if input_length is not None:
            input_length = check_positive_int(input_length, "input_length")
            kwargs.setdefault("input_shape", (input_length,))
        self.input_length = input_length
        initializers.get(embeddings_initializer)  # fail early on an unknown name
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero = check_bool(mask_zero, "mask_zero")
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

    def validate_input(self, inputs, name="inputs"):
        ids = as_token_ids(inputs, name, vocabulary_size=self.input_dim)
        if ids.ndim != 2:
            raise ValueError(f"{name}: an Embedding expects ids of shape (samples, timesteps), "
                             f"got shape {ids.shape}")
        return ids

    def compute_mask(self, inputs, mask=None):
        """The mask this layer emits for ``inputs``: ``ids != 0`` with ``mask_zero``, else None."""
        return (np.asarray(inputs) != 0) if self.mask_zero else None

    def forward(self, inputs, training=False, mask=None):
        """Return a :class:`TokenInput` over the embedding table; (N, T) -> (N, T, E)."""
        self._cache = inputs
        self.output_mask = self.compute_mask(inputs)
        return TokenInput(inputs, self.embeddings, self.input_dim)

    def backward(self, doutputs, need_input_gradient=True):
        """dE from a :class:`ProjectionGradient` or from an (N, T, E) gradient."""
        ops = kernels.active()
        if isinstance(doutputs, ProjectionGradient):
            dE = sum(ops.projected_rows_backward(G, W) for G, W in doutputs.terms)
        else:
            dE = ops.embedding_backward(doutputs, self._cache, self.input_dim)
        self.grads[0][...] = dE
        return None  # integer ids have no gradient

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim, "input_length": self.input_length,
                "mask_zero": self.mask_zero}

    @classmethod
    def from_config(cls, config_):
        config_ = dict(config_)
        if config_.get("input_length") is not None:
            config_.pop("input_shape", None)
        return super().from_config(config_)


class Dense(Layer):
    r"""Fully connected layer: :math:`y = f(x W + b)`.

    Parameters
    ----------
    units : int
        Output size M.
    activation : {None, 'linear', 'sigmoid', 'tanh', 'relu', 'softmax'}
    use_bias : bool, default True

    Shapes
    ------
    x (N, D) -> (N, M); a 3-D input (N, T, D) is mapped along its last axis, as Keras
    does. Weights ``[kernel (D, M) glorot-uniform, bias (M,) zeros]``; parameters D*M + M
    (the book's 9 = 8*1 + 1).

    Notes
    -----
    Forward :func:`~nprnn.kernels.reference.dense.dense_forward` then
    :func:`~nprnn.kernels.reference.activations.activation_forward`; backward the two in
    reverse. The pre-activation ``z = x W + b`` is kept, so that a sigmoid (softmax) output
    trained with binary (categorical) cross-entropy takes the exact gradient ``sigmoid(z) - y``
    with respect to z (:meth:`backward_from_preactivation`) instead of dividing by a saturated
    probability. A mask passes through unchanged.
    """

    default_name = "dense"

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        self.units = check_positive_int(units, "units")
        activation = "linear" if activation is None else activation
        self.activation = check_choice(activation, "activation", kernels.reference.ACTIVATIONS)
        self.use_bias = check_bool(use_bias, "use_bias")
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
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def validate_input(self, inputs, name="inputs"):
        x = super().validate_input(inputs, name)
        if self.built and x.shape[-1] != self.weights[0].shape[0]:
            raise ValueError(f"{name}: {self.name} expects last axis {self.weights[0].shape[0]},"
                             f" got shape {x.shape}")
        return x

    def forward(self, inputs, training=False, mask=None):
        ops = kernels.active()
        W = self.weights[0]
        b = self.weights[1] if self.use_bias else None
        z = ops.dense_forward(inputs, W, b)
        out = ops.activation_forward(self.activation, z)
        self._cache = (inputs, z, out)
        self.output_mask = mask
        return out

    def backward(self, doutputs, need_input_gradient=True):
        _, z, out = self._cache
        dz = kernels.active().activation_backward(self.activation, doutputs, z, out)
        return self.backward_from_preactivation(dz, need_input_gradient)

    def backward_from_preactivation(self, dz, need_input_gradient=True):
        """Backward from dL/dz, z = x W + b
        (:func:`~nprnn.kernels.reference.dense.dense_backward`)."""
        x = self._cache[0]
        dx, dW, db = kernels.active().dense_backward(dz, x, self.weights[0], need_input_gradient)
        self.grads[0][...] = dW
        if self.use_bias:
            self.grads[1][...] = db
        return dx

    @property
    def preactivation(self):
        """z = x W + b from the last forward pass."""
        return self._cache[1]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias}


class Dropout(Layer):
    r"""Randomly zero a fraction ``rate`` of the inputs during training, scaling the rest.

    :math:`y = x \odot m / (1 - p)` with :math:`m_i \sim \mathrm{Bernoulli}(1 - p)`, drawn anew
    at every training call; at inference :math:`y = x`. ``noise_shape`` (with None for axes
    taken from the input) shares one draw across the axes of size 1, as in Keras. A mask
    passes through unchanged.
    """

    default_name = "dropout"

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        self.rate = check_float(rate, "rate", low=0.0, high=1.0, high_open=True)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        super().__init__(**kwargs)

    def forward(self, inputs, training=False, mask=None):
        self.output_mask = mask
        if not training or self.rate == 0:
            self._cache = None
            return inputs
        shape = inputs.shape if self.noise_shape is None else tuple(
            size if want is None else want for want, size in zip(self.noise_shape, inputs.shape))
        keep = _random.generator().random(shape) >= self.rate
        scale = (keep / (1.0 - self.rate)).astype(inputs.dtype)
        self._cache = scale
        return inputs * scale

    def backward(self, doutputs, need_input_gradient=True):
        return doutputs if self._cache is None else doutputs * self._cache

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape),
                "seed": self.seed}


class Masking(Layer):
    r"""Mask the time steps whose features all equal ``mask_value``, as Keras' Masking.

    The emitted mask is ``any(x[n, t] != mask_value)`` (N, T); masked steps are also set to
    0 in the output (Keras 3 multiplies the inputs by the mask).
    """

    default_name = "masking"

    def __init__(self, mask_value=0.0, **kwargs):
        self.mask_value = check_float(mask_value, "mask_value")
        super().__init__(**kwargs)

    def compute_mask(self, inputs, mask=None):
        """``any(x[n, t] != mask_value)`` over the features: (N, T) bool."""
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def forward(self, inputs, training=False, mask=None):
        keep = self.compute_mask(inputs)
        self.output_mask = keep
        self._cache = keep
        return inputs * keep[..., None].astype(inputs.dtype)

    def backward(self, doutputs, need_input_gradient=True):
        return doutputs * self._cache[..., None].astype(doutputs.dtype)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
