r"""Weight initializers with Keras 3's classes, names and configurations.

An initializer is an object called as ``initializer(shape, dtype)`` that returns a new
array. ``get`` turns what a layer argument may hold (a name such as ``'glorot_uniform'``, a
class name, a class, a Keras config dict, an instance or any callable ``f(shape, dtype)``)
into one.

+------------------------+---------------------------------------------------+-------------------+
| class (name)           | rule                                              | Keras default for |
+========================+===================================================+===================+
| ``GlorotUniform``      | U(-l, l), l = sqrt(6 / (fan_in + fan_out))        | Dense, RNN kernel |
+------------------------+---------------------------------------------------+-------------------+
| ``Orthogonal``         | Q of the QR decomposition of a normal matrix,     | recurrent kernel  |
|                        | columns' signs fixed by sign(diag(R)), times      |                   |
|                        | ``gain``                                          |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``RandomUniform``      | U(minval, maxval); ``'uniform'`` is               | Embedding         |
| (``'uniform'``)        | U(-0.05, 0.05)                                    |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``Zeros``              | 0                                                 | biases            |
+------------------------+---------------------------------------------------+-------------------+
| ``Ones``, ``Constant`` | 1, ``value``                                      |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``Identity``           | ``gain * I`` (2-D only)                           |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``RandomNormal``       | N(mean, stddev^2)                                 |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``TruncatedNormal``    | N(mean, stddev^2) redrawn until within            |                   |
|                        | mean +- 2 stddev                                  |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``VarianceScaling``    | variance ``scale / n``, n = fan_in, fan_out or    |                   |
|                        | their mean                                        |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``GlorotNormal``       | VarianceScaling(1, 'fan_avg', 'truncated_normal') |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``HeNormal``           | VarianceScaling(2, 'fan_in', 'truncated_normal')  |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``HeUniform``          | VarianceScaling(2, 'fan_in', 'uniform')           |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``LecunNormal``        | VarianceScaling(1, 'fan_in', 'truncated_normal')  |                   |
+------------------------+---------------------------------------------------+-------------------+
| ``LecunUniform``       | VarianceScaling(1, 'fan_in', 'uniform')           |                   |
+------------------------+---------------------------------------------------+-------------------+

Fans are computed as Keras' ``compute_fans``: a 2-D kernel (fan_in, fan_out); a 1-D shape
(n,) has fan_in = fan_out = n; for more dimensions the leading ones are a receptive field
multiplying both fans.

Random draws, and where nprnn differs from Keras 3
---------------------------------------------------
* ``seed=None`` (the default) draws from nprnn's shared generator (``nprnn._random``, seeded
  by :func:`nprnn.utils.set_random_seed`), at each call: two layers that share one
  initializer instance get different weights, and ``set_random_seed(42)`` before building a
  model reproduces it. Keras 3 instead fixes a seed when an unseeded initializer is
  *constructed*, so that one instance returns the same values at every call.
* ``seed=<int>`` uses a generator of its own, created at each call: the same values at every
  call, as Keras 3 promises for an integer seed (the values themselves are NumPy's, not those
  of Keras' backends). Keras' ``SeedGenerator`` seeds are not supported.
* Draws are made in float64 and cast to ``dtype`` (Keras draws in ``dtype``; Orthogonal's QR
  then runs in float32 there).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from nprnn import _random, config
from nprnn._validation import check_choice, check_float, check_float_dtype

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "deserialize",
    "get",
    "serialize",
]


def _check_shape(shape):
    """``shape`` as a tuple of non-negative ints, or a TypeError/ValueError naming it."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"shape: expected a tuple of ints, got {type(shape).__name__} "
                        f"{shape!r}") from None
    for dim in dims:
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 0:
            raise ValueError(f"shape: expected non-negative ints, got {shape!r}")
    return tuple(int(dim) for dim in dims)


def _check_dtype(dtype, floats_only):
    """The requested dtype (``config.floatx()`` for None); random draws need float32/64."""
    if dtype is None:
        dtype = config.floatx()
    if floats_only:
        return np.dtype(check_float_dtype(dtype, "dtype"))
    try:
        resolved = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"dtype: expected a NumPy numeric dtype, got {dtype!r}") from None
    if resolved.kind not in "biuf":
        raise ValueError(f"dtype: expected a numeric dtype, got {resolved.name!r}")
    return resolved


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed: expected None or an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    return int(seed)


def compute_fans(shape, input_axes=None, output_axes=None):
    """``(fan_in, fan_out)`` of a weight shape, as Keras 3's ``compute_fans``.

    With ``input_axes`` and ``output_axes`` the fans are the products of those axes' sizes.
    Otherwise: () -> (1, 1); (n,) -> (n, n); (r, c) -> (r, c); (k1, ..., r, c) ->
    (r * k1 * ..., c * k1 * ...), the leading axes being a convolution's receptive field.
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[axis] for axis in input_axes])),
                int(np.prod([shape[axis] for axis in output_axes])))
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive_field = int(np.prod(shape[:-2]))
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


class Initializer:
    """Base class: ``__call__(shape, dtype=None) -> ndarray``, ``get_config``, ``from_config``.

    ``from_config(initializer.get_config())`` builds an equal initializer (Keras' contract);
    ``clone()`` does that.
    """

    def __call__(self, shape, dtype=None):
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(shape, dtype)")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        if not isinstance(config, dict):
            raise TypeError(f"config: expected a dict, got {type(config).__name__}")
        try:
            return cls(**config)
        except TypeError as error:
            raise ValueError(f"config: {cls.__name__} cannot be built from {config}: "
                             f"{error}") from None

    def clone(self):
        return type(self).from_config(self.get_config())

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self.get_config())))


# -- constants ------------------------------------------------------------------------------
class Constant(Initializer):
    """Every entry equal to ``value`` (a real scalar; Keras allows only scalars too)."""

    def __init__(self, value=0.0):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"value: expected a real scalar, got {type(value).__name__} "
                            f"{value!r}")
        if not math.isfinite(value):
            raise ValueError(f"value: expected a finite number, got {value}")
        self.value = value

    def __call__(self, shape, dtype=None):
        return np.full(_check_shape(shape), self.value, dtype=_check_dtype(dtype, False))

    def get_config(self):
        return {"value": self.value}


class Zeros(Initializer):
    """All zeros (Keras' bias default)."""

    def __call__(self, shape, dtype=None):
        return np.zeros(_check_shape(shape), dtype=_check_dtype(dtype, False))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(_check_shape(shape), dtype=_check_dtype(dtype, False))


class Identity(Initializer):
    """``gain * I`` for a 2-D shape (r, c): ones on the main diagonal (``np.eye(r, c)``).

    Any other rank raises ValueError, as in Keras. Keras 3.15's Identity has no
    ``get_config``, so it saves ``Identity(2.0)`` as ``{}`` (loading as gain 1); nprnn's
    config keeps ``{'gain': ...}``.
    """

    def __init__(self, gain=1.0):
        self.gain = check_float(gain, "gain")

    def __call__(self, shape, dtype=None):
        shape = _check_shape(shape)
        if len(shape) != 2:
            raise ValueError(f"shape: Identity initializes only 2-D matrices, got {shape} of "
                             f"rank {len(shape)}")
        dtype = _check_dtype(dtype, False)
        return (self.gain * np.eye(*shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


# -- random ---------------------------------------------------------------------------------
class RandomInitializer(Initializer):
    """Base of the random initializers: ``seed`` None (nprnn's shared generator) or an int."""

    def __init__(self, seed=None):
        self.seed = _check_seed(seed)

    def _generator(self):
        if self.seed is None:
            return _random.generator()
        return np.random.default_rng(self.seed)

    def get_config(self):
        return {"seed": self.seed}


class RandomUniform(RandomInitializer):
    """U(minval, maxval), Keras' ``RandomUniform``; ``'uniform'`` is Embedding's default.

    Values are drawn by ``Generator.uniform(minval, maxval)``: in [minval, maxval).
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = check_float(minval, "minval")
        self.maxval = check_float(maxval, "maxval")
        if self.maxval < self.minval:
            raise ValueError(f"minval, maxval: expected minval <= maxval, got {self.minval} and "
                             f"{self.maxval}")
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _check_shape(shape), _check_dtype(dtype, True)
        return self._generator().uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class RandomNormal(RandomInitializer):
    """N(mean, stddev^2), Keras' ``RandomNormal`` (default stddev 0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = check_float(mean, "mean")
        self.stddev = check_float(stddev, "stddev", low=0.0)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _check_shape(shape), _check_dtype(dtype, True)
        return self._generator().normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


def _truncated_normal(rng, shape, mean, stddev):
    """N(mean, stddev^2) conditioned on |x - mean| <= 2 stddev, as Keras' NumPy backend.

    Draw batches of normals, keep those inside the bounds, until there are enough. The
    truncated distribution's standard deviation is about 0.8796 * stddev.
    """
    size = math.prod(shape)
    low, high = mean - 2 * stddev, mean + 2 * stddev
    kept = np.empty(0)
    while kept.size < size:
        batch = rng.normal(mean, stddev, size=size)
        kept = np.append(kept, batch[(batch >= low) & (batch <= high)])
    return kept[:size].reshape(shape)


class TruncatedNormal(RandomInitializer):
    """N(mean, stddev^2) with values farther than 2 stddev from the mean drawn again.

    Keras' ``TruncatedNormal`` (default stddev 0.05); the result's standard deviation is
    about 0.88 * stddev.
    """

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = check_float(mean, "mean")
        self.stddev = check_float(stddev, "stddev", low=0.0)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _check_shape(shape), _check_dtype(dtype, True)
        return _truncated_normal(self._generator(), shape, self.mean, self.stddev).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


# The standard deviation of a standard normal truncated to [-2, 2] (Keras' constant).
_TRUNCATED_STDDEV = 0.87962566103423978


class VarianceScaling(RandomInitializer):
    r"""Values of variance ``scale / n``, n set by ``mode`` from the fans (Keras 3's rule).

    With ``n = max(1, fan_in)`` ('fan_in'), ``max(1, fan_out)`` ('fan_out') or
    ``max(1, (fan_in + fan_out) / 2)`` ('fan_avg'):

    * ``'truncated_normal'`` (and its alias ``'normal'``): truncated normal with
      ``stddev = sqrt(scale / n) / 0.87962566`` (so that the variance after truncation is
      scale / n);
    * ``'untruncated_normal'``: N(0, scale / n);
    * ``'uniform'``: U(-l, l) with ``l = sqrt(3 scale / n)``.

    ``input_axes`` / ``output_axes`` (lists of axes) choose the fans' axes, as in Keras 3.15.
    """

    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        self.scale = check_float(scale, "scale", low=0.0, low_open=True)
        self.mode = check_choice(mode, "mode", ("fan_in", "fan_out", "fan_avg"))
        if isinstance(distribution, str):
            distribution = distribution.lower()
            distribution = "truncated_normal" if distribution == "normal" else distribution
        self.distribution = check_choice(distribution, "distribution",
                                         (*self._DISTRIBUTIONS, "normal"))
        for name, axes in (("input_axes", input_axes), ("output_axes", output_axes)):
            if axes is not None and (not isinstance(axes, (list, tuple)) or not all(
                    isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in axes)):
                raise TypeError(f"{name}: expected None or a list of ints, got {axes!r}")
        self.input_axes = None if input_axes is None else [int(a) for a in input_axes]
        self.output_axes = None if output_axes is None else [int(a) for a in output_axes]
        super().__init__(seed)

    def _n(self, shape):
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            return max(1.0, fan_in)
        if self.mode == "fan_out":
            return max(1.0, fan_out)
        return max(1.0, (fan_in + fan_out) / 2.0)

    def __call__(self, shape, dtype=None):
        shape, dtype = _check_shape(shape), _check_dtype(dtype, True)
        n = self._n(shape)
        rng = self._generator()
        if self.distribution == "uniform":
            # sqrt(3 scale / n) in one division: for Glorot this is exactly sqrt(6 / (fi + fo))
            limit = math.sqrt(3.0 * self.scale / n)
            values = rng.uniform(-limit, limit, size=shape)
        elif self.distribution == "untruncated_normal":
            values = rng.normal(0.0, math.sqrt(self.scale / n), size=shape)
        else:
            values = _truncated_normal(rng, shape, 0.0,
                                       math.sqrt(self.scale / n) / _TRUNCATED_STDDEV)
        return values.astype(dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling whose scale, mode and distribution are fixed by the class."""

    _settings: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        scale, mode, distribution = self._settings
        super().__init__(scale, mode, distribution, seed, input_axes, output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    r"""Glorot (Xavier) uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).

    Keras' default kernel initializer (Dense, SimpleRNN, LSTM, GRU); VarianceScaling(1,
    'fan_avg', 'uniform'). Unseeded draws are ``generator.uniform(-l, l, shape)`` on nprnn's
    generator, as nprnn has always drawn them.
    """

    _settings = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Glorot normal: truncated normal of variance 2 / (fan_in + fan_out).

    VarianceScaling(1, 'fan_avg', 'truncated_normal').
    """

    _settings = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_FixedVarianceScaling):
    """He normal: truncated normal of variance 2 / fan_in. VarianceScaling(2, 'fan_in', ...)."""

    _settings = (2.0, "fan_in", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """He uniform: U(-l, l), l = sqrt(6 / fan_in). VarianceScaling(2, 'fan_in', 'uniform')."""

    _settings = (2.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: truncated normal of variance 1 / fan_in. VarianceScaling(1, 'fan_in')."""

    _settings = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: U(-l, l), l = sqrt(3 / fan_in). VarianceScaling(1, 'fan_in', 'uniform')."""

    _settings = (1.0, "fan_in", "uniform")


class Orthogonal(RandomInitializer):
    r"""A random orthogonal matrix times ``gain``, as Keras' ``Orthogonal`` builds it.

    For a shape whose leading axes multiply to r rows and whose last axis has c columns:
    draw A ~ N(0, 1) of shape (max(r, c), min(r, c)); factor A = QR; multiply each column of
    Q by sign(R_ii), which makes Q uniformly (Haar) distributed; transpose when r < c; reshape
    and scale by ``gain``. So :math:`Q^T Q = \mathrm{gain}^2 I` when r >= c, and
    :math:`Q Q^T = \mathrm{gain}^2 I` when r < c. Shapes of rank < 2 raise ValueError.
    Keras' default recurrent initializer.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = check_float(gain, "gain")
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dtype = _check_shape(shape), _check_dtype(dtype, True)
        if len(shape) < 2:
            raise ValueError(f"shape: Orthogonal needs at least 2 dimensions, got {shape} of "
                             f"rank {len(shape)}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        normal = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(normal)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


# -- lookup ---------------------------------------------------------------------------------
_CLASSES = (Constant, Zeros, Ones, Identity, RandomUniform, RandomNormal, TruncatedNormal,
            VarianceScaling, GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal,
            LecunUniform, Orthogonal)


def _snake_case(name):
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))


_SNAKE_NAMES = {_snake_case(cls.__name__): cls for cls in _CLASSES}
# Keras 3's ALL_OBJECTS_DICT: class names, their snake_case, and these aliases.
_BY_NAME = {
    **{cls.__name__: cls for cls in _CLASSES},
    **_SNAKE_NAMES,
    "uniform": RandomUniform,
    "normal": RandomNormal,
    "one": Ones,
    "zero": Zeros,
    "IdentityInitializer": Identity,
    "OrthogonalInitializer": Orthogonal,
}

# Keras' lower-case exports are the classes themselves (keras.initializers.glorot_uniform is
# GlorotUniform), so ``initializers.glorot_uniform()`` builds one.
constant, zeros, ones, identity = Constant, Zeros, Ones, Identity
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
variance_scaling, orthogonal = VarianceScaling, Orthogonal
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, \
    HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform


def _unknown(identifier):
    return ValueError(f"initializer: expected one of {sorted(_SNAKE_NAMES)} (or a class name "
                      "such as 'GlorotUniform', 'uniform', 'normal'), an Initializer, a config "
                      f"dict or a callable f(shape, dtype), got {identifier!r}")


def serialize(initializer):
    """Keras 3's dict for an initializer: ``{'module': 'keras.initializers', 'class_name':
    'GlorotUniform', 'config': {...}, 'registered_name': None}``.

    A name (str) is returned unchanged, as Keras' ``serialize_keras_object`` does; a plain
    callable has no configuration and raises TypeError.
    """
    if isinstance(initializer, str):
        return initializer
    if not isinstance(initializer, Initializer) or type(initializer).__name__ not in _BY_NAME:
        raise TypeError(f"initializer: only nprnn's built-in initializers can be serialized, "
                        f"got {initializer!r}")
    return {"module": "keras.initializers", "class_name": type(initializer).__name__,
            "config": initializer.get_config(), "registered_name": None}


def deserialize(config):
    """An initializer from :func:`serialize`'s dict (Keras 3's or Keras 2's: ``class_name`` and
    ``config``; ``module`` and ``registered_name`` are ignored)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"initializer: expected a dict with 'class_name' and 'config', got "
                         f"{config!r}")
    cls = _BY_NAME.get(config["class_name"])
    if cls is None:
        raise _unknown(config["class_name"])
    arguments = config.get("config") or {}
    return cls.from_config(dict(arguments))


def get(identifier):
    """An initializer for a layer argument, as Keras 3's ``initializers.get``.

    * a name: a class name (``'GlorotUniform'``), its snake_case (``'glorot_uniform'``) or an
      alias (``'uniform'`` = RandomUniform(-0.05, 0.05), ``'normal'``, ``'one'``, ``'zero'``)
      -> a new instance with default arguments;
    * a dict ``{'class_name': ..., 'config': {...}}`` -> :func:`deserialize`;
    * an :class:`Initializer` instance, or any other callable ``f(shape, dtype)`` -> itself;
    * an Initializer class -> a new instance;
    * an ndarray -> a function returning it (cast to ``dtype``) for its own shape only.

    None raises ValueError (Keras returns None; an nprnn layer needs an initializer).
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise _unknown(identifier)
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, np.ndarray):
        return _from_array(identifier)
    if callable(identifier):
        return identifier
    raise _unknown(identifier)


def _from_array(array):
    value = array.copy()

    def initialize(shape, dtype=None):
        if _check_shape(shape) != value.shape:
            raise ValueError(f"shape: this array initializer holds shape {value.shape}, "
                             f"got {tuple(shape)}")
        return value.astype(_check_dtype(dtype, False))

    return initialize
