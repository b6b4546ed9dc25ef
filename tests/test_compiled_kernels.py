"""The Numba kernels equal their NumPy reference twins; the float32 tanh stays within 1 ulp.

Tolerances: float64 1e-10 relative, float32 1e-5, with
``rel_error = max|a - b| / max(1e-8, max(|a| + |b|))``.

By default the compiled float64 *forward* recurrence hands its work to the reference
(``compiled.FLOAT64_FORWARD_IN_NUMPY``), so comparing it with the reference would compare the
reference with itself. Every test here therefore runs the Numba float64 forward (the switch
off), and the reference is out of the compiled module's reach (calling it from there fails
the test); ``test_float64_forward_default_is_the_reference`` checks the default.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nprnn.kernels import _fast_math, compiled, reference

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 1e-5, np.float64: 1e-10}
SETTINGS = settings(max_examples=25, deadline=None)

# Sizes include 1, non-square shapes, and H >= 32 (the BLAS path of the recurrence).
dims = st.sampled_from([1, 2, 3, 5, 8, 13])
units = st.sampled_from([1, 2, 3, 5, 8, 11, 32, 37])
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


def _reference_forward_not_allowed(*args, **kwargs):
    raise AssertionError("the compiled float64 forward ran the reference instead of Numba")


@pytest.fixture(scope="module", autouse=True)
def numba_float64_forward():
    """The Numba float64 forward for the whole module, the reference out of its reach.
    (Module-scoped and set by hand: hypothesis refuses function-scoped fixtures.)"""
    switch, module = compiled.FLOAT64_FORWARD_IN_NUMPY, compiled.reference
    compiled.FLOAT64_FORWARD_IN_NUMPY = False
    compiled.reference = types.SimpleNamespace(
        **{**vars(reference), "rnn_recurrence_forward": _reference_forward_not_allowed})
    yield
    compiled.FLOAT64_FORWARD_IN_NUMPY, compiled.reference = switch, module


def rel_error(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def assert_close(a, b, dtype):
    assert np.asarray(a).dtype == np.asarray(b).dtype
    assert rel_error(a, b) <= TOL[dtype], rel_error(a, b)


def recurrence_inputs(rng, N, T, H, dtype):
    projected = rng.standard_normal((N, T, H)).astype(dtype)
    Wh = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((N, H))).astype(dtype)
    return projected, Wh, h0


# --------------------------------------------------------------------------------------
# Drop-in module
# --------------------------------------------------------------------------------------
COMPILED = {
    "rnn_recurrence_forward",
    "rnn_recurrence_backward",
    "gather_rows",
    "scatter_add_rows",
    "rmsprop_update",
    "embedding_forward",
    "embedding_backward",
}


def test_every_reference_name_is_exported():
    for name in reference.__all__:
        assert name in compiled.__all__
        assert hasattr(compiled, name)
        if name not in COMPILED:
            assert getattr(compiled, name) is getattr(reference, name), name


# --------------------------------------------------------------------------------------
# Recurrence
# --------------------------------------------------------------------------------------
@SETTINGS
@given(N=dims, T=dims, H=units, dtype=dtypes, seed=seeds)
def test_recurrence_forward_matches_reference(N, T, H, dtype, seed):
    projected, Wh, h0 = recurrence_inputs(np.random.default_rng(seed), N, T, H, dtype)
    got = compiled.rnn_recurrence_forward(projected, Wh, h0)
    assert got.shape == (N, T, H)
    assert_close(got, reference.rnn_recurrence_forward(projected, Wh, h0), dtype)


@SETTINGS
@given(N=dims, T=dims, H=units, dtype=dtypes, seed=seeds, last_only=st.booleans())
def test_recurrence_backward_matches_reference(N, T, H, dtype, seed, last_only):
    rng = np.random.default_rng(seed)
    projected, Wh, h0 = recurrence_inputs(rng, N, T, H, dtype)
    hidden = reference.rnn_recurrence_forward(projected, Wh, h0)
    dhidden = rng.standard_normal((N, T, H)).astype(dtype)
    if last_only:  # what SimpleRNN(return_sequences=False) passes
        dhidden[:, :-1] = 0
    before = dhidden.copy()
    got = compiled.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
    want = reference.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
    np.testing.assert_array_equal(dhidden, before)  # inputs are not modified
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert_close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrence_chapter_sizes_and_large_accumulator(dtype):
    """N=64, T=100, H=8 as in the book, and an accumulator beyond _ACC_MAX_ELEMENTS."""
    rng = np.random.default_rng(0)
    for N, T, H in [(64, 100, 8), (300, 5, 16)]:
        projected, Wh, h0 = recurrence_inputs(rng, N, T, H, dtype)
        h0[:] = 0
        hidden = compiled.rnn_recurrence_forward(projected, Wh, h0)
        assert_close(hidden, reference.rnn_recurrence_forward(projected, Wh, h0), dtype)
        dhidden = np.zeros_like(hidden)
        dhidden[:, -1] = rng.standard_normal((N, H))
        got = compiled.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
        want = reference.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
        for g, w in zip(got, want, strict=True):
            assert_close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("early", [0.0, -0.0, np.nan, 1e-30])
def test_backward_last_step_shortcut(dtype, early):
    """dhidden zero before the last step takes a shortcut; -0.0, NaN or a tiny value there
    must take the general path and still match the reference."""
    rng = np.random.default_rng(7)
    projected, Wh, h0 = recurrence_inputs(rng, 5, 6, 4, dtype)
    hidden = reference.rnn_recurrence_forward(projected, Wh, h0)
    dhidden = np.zeros_like(hidden)
    dhidden[:, -1] = rng.standard_normal((5, 4))
    dhidden[2, 1, 3] = early
    got = compiled.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
    want = reference.rnn_recurrence_backward(dhidden, hidden, Wh, h0)
    for g, w in zip(got, want, strict=True):
        if np.isnan(early):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
        else:
            assert_close(g, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_recurrence_non_contiguous_and_mixed_dtypes(dtype):
    rng = np.random.default_rng(1)
    N, T, H = 4, 6, 5
    big = rng.standard_normal((T, 2 * N, H)).astype(dtype)
    projected = big[:, ::2].transpose(1, 0, 2)  # (N, T, H), not contiguous
    assert not projected.flags.c_contiguous
    Wh = (rng.standard_normal((H, H)) / 3).astype(dtype).T  # F-ordered
    h0 = np.zeros((N, H), dtype=np.float64)  # another dtype: cast to projected's
    got = compiled.rnn_recurrence_forward(projected, Wh, h0)
    assert got.dtype == dtype
    want = reference.rnn_recurrence_forward(projected, Wh, h0.astype(dtype))
    assert_close(got, want, dtype)
    dhidden = rng.standard_normal((T, N, H)).astype(dtype).transpose(1, 0, 2)
    got_b = compiled.rnn_recurrence_backward(dhidden, want, Wh, h0.astype(dtype))
    want_b = reference.rnn_recurrence_backward(dhidden, want, Wh, h0.astype(dtype))
    for g, w in zip(got_b, want_b, strict=True):
        assert_close(g, w, dtype)


def test_recurrence_is_deterministic_and_parallel_gives_the_same_bits(monkeypatch):
    rng = np.random.default_rng(2)
    projected, Wh, h0 = recurrence_inputs(rng, 300, 20, 8, np.float32)
    first = compiled.rnn_recurrence_forward(projected, Wh, h0)
    np.testing.assert_array_equal(first, compiled.rnn_recurrence_forward(projected, Wh, h0))
    monkeypatch.setattr(compiled, "PARALLEL_MIN_BATCH", 1)
    np.testing.assert_array_equal(first, compiled.rnn_recurrence_forward(projected, Wh, h0))
    dhidden = rng.standard_normal(first.shape).astype(np.float32)
    a = compiled.rnn_recurrence_backward(dhidden, first, Wh, h0)
    b = compiled.rnn_recurrence_backward(dhidden, first, Wh, h0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("H", [3, 8, 33])
def test_float64_forward_compiled_path(H):
    """The Numba float64 forward (libm tanh; BLAS products from H = 32), which by default the
    reference replaces: here the switch is off and the reference cannot be called."""
    assert compiled.FLOAT64_FORWARD_IN_NUMPY is False
    projected, Wh, h0 = recurrence_inputs(np.random.default_rng(H), 6, 9, H, np.float64)
    got = compiled.rnn_recurrence_forward(projected, Wh, h0)
    assert_close(got, reference.rnn_recurrence_forward(projected, Wh, h0), np.float64)


def test_float64_forward_default_is_the_reference(monkeypatch):
    monkeypatch.setattr(compiled, "FLOAT64_FORWARD_IN_NUMPY", True)
    projected, Wh, h0 = recurrence_inputs(np.random.default_rng(0), 6, 9, 8, np.float64)
    with pytest.raises(AssertionError, match="ran the reference"):
        compiled.rnn_recurrence_forward(projected, Wh, h0)
    monkeypatch.setattr(compiled, "reference", reference)
    np.testing.assert_array_equal(compiled.rnn_recurrence_forward(projected, Wh, h0),
                                  reference.rnn_recurrence_forward(projected, Wh, h0))


def test_float32_libm_tanh_switch(monkeypatch):
    projected, Wh, h0 = recurrence_inputs(np.random.default_rng(3), 7, 9, 6, np.float32)
    fast = compiled.rnn_recurrence_forward(projected, Wh, h0)
    monkeypatch.setattr(compiled, "USE_FAST_TANH_FLOAT32", False)
    slow = compiled.rnn_recurrence_forward(projected, Wh, h0)
    want = reference.rnn_recurrence_forward(projected, Wh, h0)
    assert_close(fast, want, np.float32)
    assert_close(slow, want, np.float32)
    # within 1 ulp of each other (each is within 1 ulp of tanh of nearly the same argument)
    assert np.max(np.abs(fast - slow)) < 1e-5


def test_recurrence_shape_errors():
    with pytest.raises(ValueError, match="Wh"):
        compiled.rnn_recurrence_forward(np.zeros((2, 3, 4)), np.zeros((3, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="projected"):
        compiled.rnn_recurrence_forward(
            np.zeros((2, 3, 4), int), np.zeros((4, 4)), np.zeros((2, 4))
        )


# --------------------------------------------------------------------------------------
# Gather and scatter
# --------------------------------------------------------------------------------------
int_dtypes = st.sampled_from(
    [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
)


@SETTINGS
@given(
    N=dims,
    T=dims,
    V=st.sampled_from([1, 2, 3, 7, 100]),
    C=units,
    dtype=dtypes,
    id_dtype=int_dtypes,
    seed=seeds,
)
def test_gather_matches_reference(N, T, V, C, dtype, id_dtype, seed):
    rng = np.random.default_rng(seed)
    V = min(V, np.iinfo(id_dtype).max)
    table = rng.standard_normal((V, C)).astype(dtype)
    ids = rng.integers(0, V, (N, T)).astype(id_dtype)
    got = compiled.gather_rows(table, ids)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, reference.gather_rows(table, ids))


@SETTINGS
@given(
    N=dims,
    T=dims,
    V=st.sampled_from([1, 2, 3, 7, 100]),
    C=units,
    dtype=dtypes,
    id_dtype=int_dtypes,
    seed=seeds,
)
def test_scatter_matches_reference_with_repeated_ids(N, T, V, C, dtype, id_dtype, seed):
    rng = np.random.default_rng(seed)
    V = min(V, np.iinfo(id_dtype).max)
    values = rng.standard_normal((N, T, C)).astype(dtype)
    ids = rng.integers(0, min(V, 3), (N, T)).astype(id_dtype)  # few rows: many repeats
    got = compiled.scatter_add_rows(values, ids, V)
    want = reference.scatter_add_rows(values, ids, V)
    assert got.shape == (V, C) and got.dtype == dtype
    assert_close(got, want, dtype)
    # same accumulation order as np.add.at: identical bits
    np.testing.assert_array_equal(got, want)


def test_gather_scatter_odd_shapes_and_layouts():
    rng = np.random.default_rng(4)
    table = rng.standard_normal((6, 10))[:, ::2]  # non-contiguous (6, 5)
    ids = rng.integers(0, 6, (3, 4, 2))[:, :, 0]  # non-contiguous ids
    np.testing.assert_array_equal(compiled.gather_rows(table, ids), table[ids])
    assert compiled.gather_rows(table, np.array(3)).shape == (5,)
    assert compiled.gather_rows(table, np.zeros((0, 7), int)).shape == (0, 7, 5)
    values = rng.standard_normal((3, 4, 5))
    np.testing.assert_array_equal(
        compiled.scatter_add_rows(values, ids, 6), reference.scatter_add_rows(values, ids, 6)
    )
    empty = compiled.scatter_add_rows(np.zeros((0, 2, 5)), np.zeros((0, 2), int), 4)
    np.testing.assert_array_equal(empty, np.zeros((4, 5)))
    np.testing.assert_array_equal(
        compiled.embedding_forward(ids, table), reference.embedding_forward(ids, table)
    )
    np.testing.assert_array_equal(
        compiled.embedding_backward(values, ids, 6), reference.embedding_backward(values, ids, 6)
    )


@pytest.mark.parametrize("bad", [-1, 5, 7, 2**40])
@pytest.mark.parametrize("kernel", ["gather", "scatter"])
def test_out_of_range_ids_raise(bad, kernel):
    table = np.zeros((5, 3), np.float32)
    ids = np.array([[0, 1, 4], [2, bad, 3]], dtype=np.int64)
    with pytest.raises(ValueError, match=rf"ids: .*\[0, 5\).*{bad}"):
        if kernel == "gather":
            compiled.gather_rows(table, ids)
        else:
            compiled.scatter_add_rows(np.ones((2, 3, 3), np.float32), ids, 5)


def test_out_of_range_ids_raise_for_small_and_unsigned_dtypes():
    table = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"\[0, 5\).* -3"):
        compiled.gather_rows(table, np.array([[1, -3]], dtype=np.int8))
    with pytest.raises(ValueError, match=r"\[0, 5\).*200"):
        compiled.gather_rows(table, np.array([[200]], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"ids"):
        compiled.gather_rows(table, np.array([[2**64 - 1]], dtype=np.uint64))
    with pytest.raises(TypeError, match="ids"):
        compiled.gather_rows(table, np.array([[1.0]]))


# --------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------
@SETTINGS
@given(shape=st.sampled_from([(1,), (8,), (5, 3), (16, 8), (2, 3, 4)]), dtype=dtypes, seed=seeds)
def test_rmsprop_matches_reference(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    velocity = np.abs(rng.standard_normal(shape)).astype(dtype)
    before = (param.copy(), grad.copy(), velocity.copy())
    got = compiled.rmsprop_update(param, grad, velocity, 1e-4, 0.9, 1e-7)
    want = reference.rmsprop_update(param, grad, velocity, 1e-4, 0.9, 1e-7)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert_close(g, w, dtype)
    for a, b in zip(before, (param, grad, velocity), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rmsprop_non_contiguous():
    rng = np.random.default_rng(5)
    param = rng.standard_normal((6, 4)).T
    grad = rng.standard_normal((4, 6))
    velocity = np.zeros((4, 6))
    got = compiled.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
    want = reference.rmsprop_update(param, grad, velocity, 0.01, 0.9, 1e-7)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, np.float64)


# --------------------------------------------------------------------------------------
# The float32 tanh approximation
# --------------------------------------------------------------------------------------
def test_tanh_f32_error_bound_dense_sweep():
    """Every 97th float32 bit pattern (44 million values: both signs, zeros, subnormals,
    the whole normal range, inf and NaNs): within 1 ulp, |t| <= 1, odd, sign-preserving,
    NaN in gives NaN out. The exhaustive run (step 1) is benchmarks/check_tanh_exhaustive.py."""
    worst, worst_x, bad, count = _fast_math.max_ulp_error(step=97)
    assert count == -(-(2**32) // 97)
    assert bad == 0
    assert worst <= 0.51, (worst, worst_x)


def test_tanh_f32_special_values():
    x = np.array(
        [
            0.0,
            -0.0,
            1e-45,
            -1e-45,
            1e-40,
            1.17e-38,
            1e-20,
            3e-4,
            0.17,
            0.5,
            1.0,
            5.0,
            9.0,
            9.011,
            9.5,
            88.7,
            1e30,
            3.4e38,
            np.inf,
            -np.inf,
            np.nan,
            -np.nan,
        ],
        dtype=np.float32,
    )
    t = _fast_math.tanh_f32_array(x)
    assert t.dtype == np.float32
    exact = np.tanh(x.astype(np.float64))
    finite = np.isfinite(exact)
    spacing = np.spacing(np.abs(exact[finite]).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(t[finite] - exact[finite]) <= spacing)
    assert np.signbit(t[1]) and not np.signbit(t[0])  # tanh(-0) = -0
    assert t[2] == x[2] and t[4] == x[4]  # subnormals kept, not flushed
    assert t[x == np.inf][0] == 1.0 and t[x == -np.inf][0] == -1.0
    assert np.all(np.isnan(t[np.isnan(x)]))
    assert np.all(t[(x >= 9.011) & np.isfinite(x)] == 1.0)


def test_tanh_f32_random_arguments_against_libm():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(200_000) * rng.choice([1e-3, 1, 4, 20], 200_000)).astype(np.float32)
    t = _fast_math.tanh_f32_array(x).astype(np.float64)
    exact = np.tanh(x.astype(np.float64))
    ulp = np.array([_fast_math._ulp_f32(v) for v in exact[:2000]])
    assert np.all(np.abs(t[:2000] - exact[:2000]) <= 0.51 * ulp)
    assert np.max(np.abs(t - exact) / np.maximum(np.abs(exact), 2.0**-126)) < 2**-23
    assert math.isclose(float(t[0]), math.tanh(float(x[0])), rel_tol=1.2e-7)
