"""Initializers: Keras 3's classes and names, their distributions, configs and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nprnn import _random, initializers
from nprnn.initializers import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
)

ALL = [Constant(0.5), Zeros(), Ones(), Identity(2.0), RandomUniform(-1, 2, seed=1),
       RandomNormal(1.0, 0.5, seed=2), TruncatedNormal(0.0, 2.0, seed=3),
       VarianceScaling(0.5, "fan_out", "uniform", seed=4), GlorotUniform(seed=5),
       GlorotNormal(seed=6), HeNormal(seed=7), HeUniform(seed=8), LecunNormal(seed=9),
       LecunUniform(seed=10), Orthogonal(gain=1.5, seed=11)]


# -- nprnn's draws did not change ------------------------------------------------------------
def test_unseeded_defaults_draw_what_nprnn_always_drew():
    """The defaults' draws from the shared generator are the formulas nprnn used before the
    classes (so set_random_seed(42) gives the same initial weights as before)."""
    _random.set_seed(123)
    kernel = initializers.get("glorot_uniform")((7, 5), np.float32)
    recurrent = initializers.get("orthogonal")((5, 5), np.float32)
    embedding = initializers.get("uniform")((11, 4), np.float32)

    rng = np.random.default_rng(123)
    limit = np.sqrt(6.0 / (7 + 5))
    expected_kernel = rng.uniform(-limit, limit, size=(7, 5)).astype(np.float32)
    q, r = np.linalg.qr(rng.standard_normal((5, 5)))
    expected_recurrent = (q * np.sign(np.diag(r))).astype(np.float32)
    expected_embedding = rng.uniform(-0.05, 0.05, size=(11, 4)).astype(np.float32)
    np.testing.assert_array_equal(kernel, expected_kernel)
    np.testing.assert_array_equal(recurrent, expected_recurrent)
    np.testing.assert_array_equal(embedding, expected_embedding)


def test_unseeded_calls_differ_and_seeded_calls_repeat():
    init = RandomNormal()
    assert not np.array_equal(init((4, 4), "float64"), init((4, 4), "float64"))
    for item in ALL:
        first, second = item((6, 4), "float64"), item((6, 4), "float64")
        np.testing.assert_array_equal(first, second)  # seeded or constant
        np.testing.assert_array_equal(first, item.clone()((6, 4), "float64"))


# -- names, configs, serialization -----------------------------------------------------------
@pytest.mark.parametrize("name, cls", [
    ("glorot_uniform", GlorotUniform), ("GlorotUniform", GlorotUniform),
    ("glorot_normal", GlorotNormal), ("he_normal", HeNormal), ("he_uniform", HeUniform),
    ("lecun_normal", LecunNormal), ("lecun_uniform", LecunUniform),
    ("orthogonal", Orthogonal), ("OrthogonalInitializer", Orthogonal),
    ("identity", Identity), ("IdentityInitializer", Identity),
    ("random_uniform", RandomUniform), ("uniform", RandomUniform),
    ("random_normal", RandomNormal), ("normal", RandomNormal),
    ("truncated_normal", TruncatedNormal), ("variance_scaling", VarianceScaling),
    ("zeros", Zeros), ("zero", Zeros), ("ones", Ones), ("one", Ones), ("constant", Constant),
])
def test_names_resolve_as_in_keras(name, cls):
    init = initializers.get(name)
    assert type(init) is cls
    assert init == cls()


def test_uniform_is_the_embedding_default():
    init = initializers.get("uniform")
    assert (init.minval, init.maxval) == (-0.05, 0.05)


def test_get_passes_instances_and_callables_and_builds_classes():
    init = Orthogonal(gain=3.0)
    assert initializers.get(init) is init
    assert type(initializers.get(HeUniform)) is HeUniform

    def function(shape, dtype):
        return np.full(shape, 7.0, dtype)

    assert initializers.get(function) is function
    array = np.arange(6.0).reshape(2, 3)
    from_array = initializers.get(array)
    np.testing.assert_array_equal(from_array((2, 3), "float32"), array.astype(np.float32))
    with pytest.raises(ValueError, match=r"shape: this array initializer holds shape \(2, 3\)"):
        from_array((3, 2))


@pytest.mark.parametrize("init", ALL, ids=lambda i: type(i).__name__)
def test_config_and_serialize_round_trip(init):
    assert type(init).from_config(init.get_config()) == init
    document = initializers.serialize(init)
    assert document["class_name"] == type(init).__name__
    assert document["module"] == "keras.initializers"
    rebuilt = initializers.get(document)
    assert rebuilt == init
    np.testing.assert_array_equal(rebuilt((5, 3), "float64"), init((5, 3), "float64"))


def test_keras_3_config_dicts_load():
    """Configs as Keras 3.15 writes them (GlorotUniform carries input/output axes)."""
    glorot = initializers.get({"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": None, "input_axes": None,
                                          "output_axes": None}, "registered_name": None})
    assert type(glorot) is GlorotUniform
    uniform = initializers.get({"class_name": "RandomUniform",
                                "config": {"minval": -0.1, "maxval": 0.1, "seed": 7}})
    assert (uniform.minval, uniform.maxval, uniform.seed) == (-0.1, 0.1, 7)
    scaling = initializers.get({"class_name": "VarianceScaling",
                                "config": {"scale": 2.0, "mode": "fan_avg",
                                           "distribution": "normal", "seed": None}})
    assert scaling.distribution == "truncated_normal"  # Keras' alias
    assert initializers.serialize("orthogonal") == "orthogonal"


# -- values by hand -------------------------------------------------------------------------
def test_constant_values_by_hand():
    np.testing.assert_array_equal(Constant(2.5)((2, 3), "float32"), np.full((2, 3), 2.5))
    assert Constant(2.5)((2,), "float32").dtype == np.float32
    np.testing.assert_array_equal(Zeros()((3,), "float64"), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(Ones()((1, 2), "float64"), [[1.0, 1.0]])
    np.testing.assert_array_equal(Identity(gain=3.0)((2, 3), "float64"),
                                  [[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    assert Zeros()((2, 2)).dtype == np.float32  # floatx when dtype is None


def test_fans_as_keras_computes_them():
    assert initializers.compute_fans(()) == (1, 1)
    assert initializers.compute_fans((7,)) == (7, 7)
    assert initializers.compute_fans((3, 5)) == (3, 5)
    assert initializers.compute_fans((2, 3, 4, 5)) == (4 * 6, 5 * 6)  # receptive field 6
    assert initializers.compute_fans((2, 3, 4), input_axes=[0, 1], output_axes=[2]) == (6, 4)


# -- distributions: means, variances, bounds on large draws ----------------------------------
# With 240,000 draws the sample mean's standard error is sigma / 490 and the sample
# variance's relative standard error is below 0.3 %: the tolerances below are about 5-10
# standard errors, so a wrong scale (even sqrt(2) off) fails and a right one never does.
SHAPE = (400, 600)
FAN_IN, FAN_OUT = SHAPE


@pytest.mark.parametrize("init, mean, variance, bound", [
    (RandomUniform(-0.3, 0.5, seed=1), 0.1, 0.8**2 / 12, (-0.3, 0.5)),
    (RandomNormal(0.2, 0.7, seed=2), 0.2, 0.49, None),
    (TruncatedNormal(-1.0, 0.5, seed=3), -1.0, (0.5 * 0.87962566103423978) ** 2, (-2.0, 0.0)),
    (GlorotUniform(seed=4), 0.0, 2.0 / (FAN_IN + FAN_OUT), None),
    (GlorotNormal(seed=5), 0.0, 2.0 / (FAN_IN + FAN_OUT), None),
    (HeNormal(seed=6), 0.0, 2.0 / FAN_IN, None),
    (HeUniform(seed=7), 0.0, 2.0 / FAN_IN, None),
    (LecunNormal(seed=8), 0.0, 1.0 / FAN_IN, None),
    (LecunUniform(seed=9), 0.0, 1.0 / FAN_IN, None),
    (VarianceScaling(3.0, "fan_out", "untruncated_normal", seed=10), 0.0, 3.0 / FAN_OUT, None),
    (VarianceScaling(0.5, "fan_avg", "uniform", seed=11), 0.0, 0.5 / 500, None),
], ids=lambda v: type(v).__name__ if isinstance(v, initializers.Initializer) else None)
def test_large_draws_have_the_stated_mean_and_variance(init, mean, variance, bound):
    values = init(SHAPE, "float64")
    sigma = math.sqrt(variance)
    assert abs(values.mean() - mean) < 5 * sigma / math.sqrt(values.size)
    assert values.var() == pytest.approx(variance, rel=0.02)
    if bound is not None:
        assert bound[0] <= values.min() and values.max() <= bound[1]


def test_uniform_limits_and_truncation_bounds():
    limit = math.sqrt(6.0 / (FAN_IN + FAN_OUT))
    values = GlorotUniform(seed=1)(SHAPE, "float64")
    assert -limit <= values.min() < -0.99 * limit and 0.99 * limit < values.max() <= limit
    he = HeNormal(seed=2)(SHAPE, "float64")
    stddev = math.sqrt(2.0 / FAN_IN) / 0.87962566103423978
    assert np.abs(he).max() <= 2 * stddev and np.abs(he).max() > 1.9 * stddev


# -- orthogonality -------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), gain=st.floats(0.1, 3.0),
       seed=st.integers(0, 2**32 - 1))
def test_orthogonal_rows_or_columns_are_orthonormal_times_gain(rows, cols, gain, seed):
    q = Orthogonal(gain=gain, seed=seed)((rows, cols), "float64")
    assert q.shape == (rows, cols)
    if rows >= cols:
        np.testing.assert_allclose(q.T @ q, gain**2 * np.eye(cols), atol=1e-12 * gain**2 + 1e-12)
    else:
        np.testing.assert_allclose(q @ q.T, gain**2 * np.eye(rows), atol=1e-12 * gain**2 + 1e-12)


def test_orthogonal_of_a_3d_shape_flattens_the_leading_axes():
    q = Orthogonal(seed=0)((2, 3, 4), "float64")
    flat = q.reshape(6, 4)
    np.testing.assert_allclose(flat.T @ flat, np.eye(4), atol=1e-12)


def test_orthogonal_is_haar_signs_not_biased():
    """sign(diag(R)) fixes the QR sign ambiguity: without it the diagonal of Q is mostly
    negative in LAPACK's convention. Over many draws the diagonal's mean is near 0."""
    diagonals = [Orthogonal(seed=s)((3, 3), "float64").diagonal() for s in range(400)]
    assert abs(np.mean(diagonals)) < 0.08


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from(["float32", "float64"]))
def test_every_random_initializer_returns_its_shape_and_dtype(shape, dtype):
    for init in ALL:
        if isinstance(init, (Identity, Orthogonal)) and len(shape) != 2:
            continue
        value = init(shape, dtype)
        assert value.shape == shape and value.dtype == np.dtype(dtype)
        assert np.isfinite(value).all()


# -- in a layer ----------------------------------------------------------------------------
def test_layers_take_instances_and_new_names():
    import nprnn as keras

    layer = keras.layers.Dense(3, kernel_initializer=Identity(gain=2.0),
                               bias_initializer=Constant(0.5))
    layer.build((None, 3))
    np.testing.assert_array_equal(layer.weights[0], 2 * np.eye(3))
    np.testing.assert_array_equal(layer.weights[1], [0.5, 0.5, 0.5])
    he = keras.layers.Dense(2, kernel_initializer="he_normal")
    he.build((None, 4))
    assert np.abs(he.weights[0]).max() <= 2 * math.sqrt(2 / 4) / 0.87962566103423978


# -- errors name the argument ----------------------------------------------------------------
@pytest.mark.parametrize("make, error, message", [
    (lambda: RandomNormal(seed=-1), ValueError, r"seed: expected a non-negative int, got -1"),
    (lambda: GlorotUniform(seed="a"), TypeError, r"seed: expected None or an int"),
    (lambda: GlorotUniform(seed=1.5), TypeError, r"seed: expected None or an int"),
    (lambda: RandomNormal(stddev=-0.1), ValueError, r"stddev: expected a number in \[0.0"),
    (lambda: TruncatedNormal(mean="x"), TypeError, r"mean: expected a number"),
    (lambda: RandomUniform(1.0, 0.0), ValueError, r"minval, maxval: expected minval <= maxval"),
    (lambda: VarianceScaling(scale=0), ValueError, r"scale: expected a number in \(0.0"),
    (lambda: VarianceScaling(mode="fan"), ValueError, r"mode: expected one of"),
    (lambda: VarianceScaling(distribution="gamma"), ValueError, r"distribution: expected one"),
    (lambda: VarianceScaling(input_axes=3), TypeError, r"input_axes: expected None or a list"),
    (lambda: Constant("1"), TypeError, r"value: expected a real scalar"),
    (lambda: Constant(float("nan")), ValueError, r"value: expected a finite number"),
    (lambda: Orthogonal(gain=float("inf")), ValueError, r"gain: expected a finite number"),
    (lambda: Orthogonal()((5,), "float32"), ValueError, r"shape: Orthogonal needs at least 2"),
    (lambda: Identity()((2, 2, 2)), ValueError, r"shape: Identity initializes only 2-D"),
    (lambda: Zeros()((2, -1)), ValueError, r"shape: expected non-negative ints"),
    (lambda: Ones()("ab"), ValueError, r"shape: expected non-negative ints"),
    (lambda: Zeros()(None), TypeError, r"shape: expected a tuple of ints"),
    (lambda: GlorotUniform()((2, 2), "int32"), ValueError, r"dtype: expected 'float32' or"),
    (lambda: Zeros()((2,), "str"), ValueError, r"dtype: expected a numeric dtype"),
    (lambda: initializers.get("he_normalish"), ValueError,
     r"initializer: expected one of \['constant', 'glorot_normal'.*got 'he_normalish'"),
    (lambda: initializers.get(None), ValueError, r"initializer: expected one of"),
    (lambda: initializers.get(3), ValueError, r"initializer: expected one of"),
    (lambda: initializers.get({"class_name": "Gamma", "config": {}}), ValueError,
     r"initializer: .*got 'Gamma'"),
    (lambda: initializers.get({"config": {}}), ValueError, r"initializer: expected a dict with"),
    (lambda: initializers.get({"class_name": "Zeros", "config": {"value": 1}}), ValueError,
     r"config: Zeros cannot be built from"),
    (lambda: initializers.serialize(lambda shape, dtype: None), TypeError,
     r"initializer: only nprnn's built-in initializers can be serialized"),
])
def test_bad_arguments_raise_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make()
