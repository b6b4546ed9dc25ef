r"""The Layer base class, and what travels between layers.

A layer keeps its weights and their gradients side by side (``weights[i]`` and ``grads[i]``
have one shape, in Keras' ``get_weights()`` order). ``forward`` caches what ``backward``
needs and sets ``output_mask``; ``backward`` writes the weight gradients *into* ``grads``
(so an optimizer can hold stable references) and returns the gradient for the layer below.
A layer holds weights and calls kernels (:func:`nprnn.kernels.active`); it does not
re-derive the maths.

Inputs are validated once, where they enter: :class:`~nprnn.models.Sequential`'s methods,
or a layer called eagerly on user arrays (:meth:`Layer.__call__`). ``forward`` and
``backward`` trust their arguments.

Token inputs travel without being expanded. An Embedding's output, and a
:class:`~nprnn.utils.categorical.SparseOneHot` input, reach the next layer as a :class:`TokenInput`
(ids plus the table whose rows they select; for a one-hot the table is the identity). A
recurrent layer then projects the *table* once and gathers rows of it
(:func:`~nprnn.kernels.reference.dense.gathered_projection_forward`), and its backward pass returns
a :class:`ProjectionGradient` instead of an (N, T, E) array. Any other layer receives the
expanded array.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from nprnn import config, initializers, kernels
from nprnn._validation import (
    as_array,
    as_float_array,
    check_bool,
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

    @property
    def depth(self) -> int:
        """Features per step: E, or V for a one-hot encoding."""
        return self.num_rows if self.table is None else self.table.shape[1]

    def materialize(self, dtype) -> np.ndarray:
        """The dense sequence this stands for, shape (N, T, E)."""
        if self.table is None:
            return dense_one_hot(self.ids, self.num_rows, dtype)
        return kernels.active().embedding_forward(self.ids, self.table)


class ProjectionGradient(NamedTuple):
    r"""Gradient reaching a :class:`TokenInput`'s table through projections of its rows.

    Each term ``(G, W)`` says that rows of ``table W`` received gradient G (V, M), so the
    table receives :math:`G W^T` (:func:`~nprnn.kernels.reference.dense.projected_rows_backward`);
    a Bidirectional layer sends two terms, one per direction.
    """

    terms: tuple  # ((G, W), ...)

    def __add__(self, other):
        return ProjectionGradient(self.terms + other.terms)


def check_shape(shape, name):
    """A shape tuple of positive ints or None, or raise naming ``name``."""
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
    #: Takes a TokenInput as it is (a recurrent layer gathers projected rows).
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
            batch_input_shape = check_shape(batch_input_shape, "batch_input_shape")
            if not batch_input_shape:
                raise ValueError("batch_input_shape: expected (batch, ...) with at least one "
                                 "axis after the batch axis, got ()")
            input_shape = batch_input_shape[1:]
        if input_shape is not None:
            input_shape = check_shape(input_shape, "input_shape")
        self.input_shape = input_shape
        self.trainable = check_bool(trainable, "trainable")
        self.dtype = check_float_dtype(dtype) if dtype is not None else None
        self.name = name or unique_name(self.default_name)
        self.weights: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.weight_names: list[str] = []
        self.built = False
        self.output_shape = None
        self.output_mask = None
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
        value = np.array(value, dtype=self.dtype, order="C")  # kernels read rows
        self.weights.append(value)
        self.grads.append(np.zeros_like(value))
        self.weight_names.append(name)
        return value

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.dtype = self.dtype or config.floatx()
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def unbuild(self):
        """Forget the weights (used when building a model fails half-way)."""
        self.weights, self.grads, self.weight_names = [], [], []
        self.built, self.output_shape = False, None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in Keras' order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, values) -> None:
        """Overwrite the weights in place (same order and shapes as ``get_weights``)."""
        for current, new in zip(self.weights, self.check_weights(values)):
            current[...] = new

    def check_weights(self, values) -> list[np.ndarray]:
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
    def forward(self, inputs, training=False, mask=None):
        """Outputs for ``inputs`` (trusted: validated where they entered); sets output_mask."""
        raise NotImplementedError

    def backward(self, doutputs, need_input_gradient=True):
        """Write the weight gradients into ``grads``; return the input gradient (or None)."""
        raise NotImplementedError

    def validate_input(self, inputs, name="inputs"):
        """Check a user's array for this layer (called once, by ``__call__``)."""
        return as_float_array(inputs, name, self.dtype or config.floatx())

    def __call__(self, inputs, mask=None, training=False, **kwargs):
        """Eager call on NumPy arrays, as in Keras: ``layer(x, mask=..., training=...)``.

        Builds the layer from the inputs' shape on the first call. Returns NumPy arrays.
        """
        training = check_bool(training, "training")
        if not isinstance(inputs, TokenInput):
            inputs = self.validate_input(inputs)
        if mask is not None:
            # Keras casts any numeric mask to bool (backend.rnn: tf.cast(mask, tf.bool)):
            # 0 masks a step, anything else keeps it.
            mask = as_array(mask, "mask", hint="")
            if mask.dtype.kind not in "biuf" or mask.shape != np.shape(inputs)[:2]:
                raise ValueError(f"mask: expected a boolean array of shape "
                                 f"{np.shape(inputs)[:2]} (samples, timesteps), got "
                                 f"{mask.dtype} {mask.shape}")
            mask = mask.astype(bool)
        if not self.built:
            shape = (None,) + tuple(np.shape(inputs)[1:]) if not isinstance(
                inputs, TokenInput) else (None, inputs.ids.shape[1], inputs.depth)
            self.build(shape)
        if isinstance(inputs, TokenInput) and not self.accepts_token_input:
            inputs = inputs.materialize(self.dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = self.forward(inputs, training=training, mask=mask, **kwargs)
        if isinstance(outputs, TokenInput):
            outputs = outputs.materialize(self.dtype)
        return outputs
