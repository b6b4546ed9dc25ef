"""The Numba kernels equal their NumPy reference twins; the float32 tanh and sigmoid stay
within 2 ulp.

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
from nprnn.kernels.compiled import switches

DTYPES = (np.float32, np.float64)
TOL = {np.float32: 1e-5, np.float64: 1e-10}
SETTINGS = settings(max_examples=25, deadline=None)

# Sizes include 1 and non-square shapes; H = 37 with N = 13 takes the LSTM's and GRU's
# direct dWh accumulation (beyond switches.ACC_MAX_ELEMENTS).
dims = st.sampled_from([1, 2, 3, 5, 8, 13])
units = st.sampled_from([1, 2, 3, 5, 8, 11, 32, 37])
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


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


# --------------------------------------------------------------------------------------
# Drop-in module
# --------------------------------------------------------------------------------------
def test_every_reference_name_is_exported():
    for name in reference.__all__:
        assert name in compiled.__all__
        assert hasattr(compiled, name)
        if name not in compiled.COMPILED:
            assert getattr(compiled, name) is getattr(reference, name), name
        else:
            assert getattr(compiled, name) is not getattr(reference, name), name


# --------------------------------------------------------------------------------------
# The recurrent cells
# --------------------------------------------------------------------------------------
class Cell:
    def __init__(self, name, gates, states, has_recurrent_bias=False):
        self.name, self.G, self.S = name, gates, states
        self.has_recurrent_bias = has_recurrent_bias

    def __repr__(self):
        return self.name

    def pair(self, module):
        return getattr(module, self.name + "_forward"), getattr(module, self.name + "_backward")

    def inputs(self, rng, N, T, H, dtype):
        projected = rng.standard_normal((N, T, self.G * H)).astype(dtype)
        Wh = (rng.standard_normal((H, self.G * H)) / np.sqrt(H)).astype(dtype)
        weights = (Wh, (0.5 * rng.standard_normal(self.G * H)).astype(dtype)) \
            if self.has_recurrent_bias else (Wh,)
        states = tuple((0.5 * rng.standard_normal((N, H))).astype(dtype) for _ in range(self.S))
        return projected, states, weights


CELLS = [Cell("rnn", 1, 1), Cell("lstm", 4, 2), Cell("gru", 3, 1, True),
         Cell("gru_reset_before", 3, 1)]


def compare(cell, projected, states, weights, mask=None, recurrent_mask=None, dhidden=None,
            dfinal=None, activations=(), tol_dtype=None):
    """Run both twins forward and backward; assert every output and gradient is close."""
    dtype = tol_dtype or projected.dtype.type
    got_f, got_b = cell.pair(compiled)
    want_f, want_b = cell.pair(reference)
    got = got_f(projected, states, weights, mask, recurrent_mask, *activations)
    want = want_f(projected, states, weights, mask, recurrent_mask, *activations)
    assert_close(got[0], want[0], dtype)
    assert len(got[1]) == len(want[1]) == cell.S
    for g, w in zip(got[1], want[1], strict=True):
        assert g.shape == w.shape
        assert_close(g, w, dtype)
    if dfinal is None:
        dfinal = tuple(np.ones_like(s) for s in states)
    before = [None if d is None else d.copy() for d in (dhidden, *dfinal)]
    grads_got = got_b(dhidden, dfinal, got[2])
    grads_want = want_b(dhidden, dfinal, want[2])
    for a, b in zip(before, (dhidden, *dfinal)):  # upstream gradients are not written
        if a is not None:
            np.testing.assert_array_equal(a, b)
    flat_got = (grads_got[0], *grads_got[1], *grads_got[2])
    flat_want = (grads_want[0], *grads_want[1], *grads_want[2])
    assert len(flat_got) == len(flat_want) == 1 + cell.S + len(weights)
    for g, w in zip(flat_got, flat_want, strict=True):
        assert g.shape == w.shape
        assert_close(g, w, dtype)
    return got, grads_got


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@SETTINGS
@given(N=dims, T=dims, H=units, dtype=dtypes, seed=seeds, with_mask=st.booleans(),
       with_recurrent_mask=st.booleans(), upstream=st.sampled_from(["dhidden", "final", "h"]))
def test_cell_matches_reference(cell, N, T, H, dtype, seed, with_mask, with_recurrent_mask,
                                upstream):
    rng = np.random.default_rng(seed)
    projected, states, weights = cell.inputs(rng, N, T, H, dtype)
    mask = rng.random((N, T)) > 0.3 if with_mask else None
    m = ((rng.random((N, H)) > 0.3) / 0.7).astype(dtype) if with_recurrent_mask else None
    dhidden = rng.standard_normal((N, T, H)).astype(dtype) if upstream == "dhidden" else None
    dfinal = tuple(rng.standard_normal((N, H)).astype(dtype) for _ in range(cell.S))
    if upstream == "h":  # only h_T receives gradient: the other states' entries are None
        dfinal = (dfinal[0],) + (None,) * (cell.S - 1)
    compare(cell, projected, states, weights, mask, m, dhidden, dfinal)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_chapter_sizes_and_large_accumulator(cell, dtype):
    """N=64, T=100, H=8 as in the book, and an accumulator beyond ACC_MAX_ELEMENTS."""
    rng = np.random.default_rng(0)
    for N, T, H in [(64, 100, 8), (300, 5, 16)]:
        projected, states, weights = cell.inputs(rng, N, T, H, dtype)
        states = tuple(np.zeros_like(s) for s in states)
        dfinal = (rng.standard_normal((N, H)).astype(dtype),) + (None,) * (cell.S - 1)
        compare(cell, projected, states, weights, dfinal=dfinal)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("activations", [("relu", "sigmoid"), ("linear", "tanh"),
                                         ("sigmoid", "relu")], ids="-".join)
def test_cell_other_activations_float64(cell, activations):
    rng = np.random.default_rng(8)
    projected, states, weights = cell.inputs(rng, 4, 6, 5, np.float64)
    acts = activations[:1] if cell.name == "rnn" else activations
    mask = rng.random((4, 6)) > 0.3
    compare(cell, projected, states, weights, mask, None,
            rng.standard_normal((4, 6, 5)), activations=acts)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_cell_falls_back_to_the_reference_for_other_activations(cell):
    rng = np.random.default_rng(9)
    projected, states, weights = cell.inputs(rng, 3, 4, 2, np.float64)
    acts = ("softmax",) if cell.name == "rnn" else ("softmax", "sigmoid")
    got, _ = compare(cell, projected, states, weights, activations=acts)
    assert isinstance(got[2], reference.RecurrenceCache)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cell_non_contiguous_and_mixed_dtypes(cell, dtype):
    """Strided inputs; states and weights of another dtype are computed in projected's."""
    rng = np.random.default_rng(1)
    N, T, H = 4, 6, 5
    big = rng.standard_normal((T, 2 * N, cell.G * H)).astype(dtype)
    projected = big[:, ::2].transpose(1, 0, 2)  # (N, T, G*H), not contiguous
    assert not projected.flags.c_contiguous
    _, states, weights = cell.inputs(rng, N, T, H, np.float64)
    weights = (np.asfortranarray(weights[0]),) + weights[1:]
    mask = np.asfortranarray(rng.random((N, T)) > 0.3)
    dhidden = rng.standard_normal((T, N, H)).astype(dtype).transpose(1, 0, 2)
    dfinal = tuple(np.asfortranarray(rng.standard_normal((N, H))) for _ in range(cell.S))
    got_f, got_b = cell.pair(compiled)
    hidden, final, cache = got_f(projected, states, weights, mask)
    assert hidden.dtype == dtype and all(f.dtype == dtype for f in final)
    cast = lambda arrays: tuple(a.astype(dtype) for a in arrays)  # noqa: E731
    compare(cell, projected, cast(states), cast(weights), mask, None, dhidden, cast(dfinal))
    grads = got_b(dhidden, dfinal, cache)
    assert all(g.dtype == dtype for g in (grads[0], *grads[1], *grads[2]))


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_cell_is_deterministic(cell, monkeypatch):
    rng = np.random.default_rng(2)
    projected, states, weights = cell.inputs(rng, 300, 20, 8, np.float32)
    mask = rng.random((300, 20)) > 0.2
    forward, backward = cell.pair(compiled)
    first = forward(projected, states, weights, mask)
    again = forward(projected, states, weights, mask)
    np.testing.assert_array_equal(first[0], again[0])
    if cell.name == "rnn":  # the SimpleRNN forward may run on all threads: same bits
        monkeypatch.setattr(switches, "PARALLEL_MIN_BATCH", 1)
        np.testing.assert_array_equal(first[0], forward(projected, states, weights, mask)[0])
    dhidden = rng.standard_normal(first[0].shape).astype(np.float32)
    dfinal = tuple(np.ones_like(s) for s in states)
    a = backward(dhidden, dfinal, first[2])
    b = backward(dhidden, dfinal, again[2])
    for x, y in zip((a[0], *a[1], *a[2]), (b[0], *b[1], *b[2]), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_cell_float32_libm_switch(cell, monkeypatch):
    rng = np.random.default_rng(3)
    projected, states, weights = cell.inputs(rng, 7, 9, 6, np.float32)
    forward, _ = cell.pair(compiled)
    fast = forward(projected, states, weights)[0]
    monkeypatch.setattr(switches, "USE_FAST_TANH_FLOAT32", False)
    slow, _ = compare(cell, projected, states, weights)
    # within a few ulp of each other (each is within 2 ulp of tanh/sigmoid of nearly the
    # same argument)
    assert np.max(np.abs(fast - slow[0])) < 1e-5


def test_fully_masked_sequence_keeps_its_initial_state():
    """A fully masked sequence returns its initial state in every compiled cell."""
    rng = np.random.default_rng(4)
    for cell in CELLS:
        projected, states, weights = cell.inputs(rng, 3, 5, 4, np.float32)
        mask = np.ones((3, 5), bool)
        mask[1] = False
        hidden, final, _ = cell.pair(compiled)[0](projected, states, weights, mask)
        for t in range(5):
            np.testing.assert_array_equal(hidden[1, t], states[0][1])
        for f, s in zip(final, states):
            np.testing.assert_array_equal(f[1], s[1])


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


@SETTINGS
@given(N=dims, T=dims, V=st.sampled_from([1, 3, 7, 50]), E=dims, M=units, dtype=dtypes,
       identity=st.booleans(), with_bias=st.booleans(), seed=seeds)
def test_gathered_projection_matches_reference(N, T, V, E, M, dtype, identity, with_bias, seed):
    rng = np.random.default_rng(seed)
    table = None if identity else rng.standard_normal((V, E)).astype(dtype)
    W = rng.standard_normal((V if identity else E, M)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype) if with_bias else None
    ids = rng.integers(0, V, (N, T))
    got = compiled.gathered_projection_forward(table, ids, W, b)
    assert_close(got, reference.gathered_projection_forward(table, ids, W, b), dtype)
    da = rng.standard_normal((N, T, M)).astype(dtype)
    for g, w in zip(compiled.gathered_projection_backward(da, ids, table, W),
                    reference.gathered_projection_backward(da, ids, table, W), strict=True):
        assert_close(g, w, dtype)


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
# The float32 tanh and sigmoid approximations (documented bound: 2 ulp, measured over all
# 2^32 inputs by benchmarks/check_tanh_exhaustive.py)
# --------------------------------------------------------------------------------------
ULP_BOUND = 2.0


def _ulps(got, exact):
    """|got - exact| in float32 ulps at ``exact`` (float64), ulp never below 2^-149."""
    ulp = np.array([_fast_math._ulp_f32(v) for v in exact])
    return np.abs(got.astype(np.float64) - exact) / ulp


@pytest.mark.parametrize("function", ["tanh", "sigmoid"])
def test_f32_activation_error_bound_dense_sweep(function):
    """Every 97th float32 bit pattern (44 million values: both signs, zeros, subnormals,
    the whole normal range, inf and NaNs): within 2 ulp of the float64 function, and the
    invariants hold (NaN in gives NaN out; tanh: |t| <= 1, odd, sign-preserving; sigmoid:
    in [0, 1], sigmoid(x) + sigmoid(-x) = 1 within 2^-24)."""
    worst, worst_x, bad, count = _fast_math.max_ulp_error(step=97, function=function)
    assert count == -(-(2**32) // 97)
    assert bad == 0
    assert 0.5 < worst <= ULP_BOUND, (worst, worst_x)


def test_tanh_f32_nearly_correctly_rounded_where_the_backward_needs_it():
    """For |tanh| >= 0.48 (x in [0.52, 7.8], every 7th float32) within 0.8 ulp: the backward
    uses 1 - h^2, which magnifies any error of h near 1 (a tanh 1.5 ulp off there broke
    the float32 agreement of the compiled SimpleRNN backward with the reference)."""
    lo, hi = np.array([0.52, 7.8], dtype=np.float32).view(np.uint32)
    worst, worst_x, bad, count = _fast_math.max_ulp_error(step=7, start=int(lo), stop=int(hi))
    assert bad == 0 and count > 3_000_000
    assert worst <= 0.8, (worst, worst_x)


def test_max_ulp_error_rejects_unknown_function():
    with pytest.raises(ValueError, match="function must be one of"):
        _fast_math.max_ulp_error(step=2**31, function="relu")


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
    assert np.all(_ulps(t[finite], exact[finite]) <= ULP_BOUND)
    assert np.signbit(t[1]) and not np.signbit(t[0])  # tanh(-0) = -0
    tiny = np.abs(x) < 1e-20
    np.testing.assert_array_equal(t[tiny], x[tiny])  # tanh(x) = x, subnormals not flushed
    assert t[x == np.inf][0] == 1.0 and t[x == -np.inf][0] == -1.0
    assert np.all(np.isnan(t[np.isnan(x)]))
    assert np.all(t[(x >= 9.011) & np.isfinite(x)] == 1.0)


def test_tanh_f32_random_arguments_against_libm():
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(200_000) * rng.choice([1e-3, 1, 4, 20], 200_000)).astype(np.float32)
    t = _fast_math.tanh_f32_array(x).astype(np.float64)
    exact = np.tanh(x.astype(np.float64))
    assert np.all(_ulps(t[:5000], exact[:5000]) <= ULP_BOUND)
    # 2 ulp is at most 2^-22 relative
    assert np.max(np.abs(t - exact) / np.maximum(np.abs(exact), 2.0**-126)) <= 2.0**-22
    assert np.all(np.abs(t) <= 1.0)
    assert math.isclose(float(t[0]), math.tanh(float(x[0])), rel_tol=2.4e-7)


def _sigmoid64(x):
    """float64 sigmoid without cancellation: e / (1 + e), e = exp(-|x|), mirrored."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def test_sigmoid_f32_error_bound_sweep():
    """Every 9973rd float32 bit pattern against NumPy's float64 (an independent reference):
    within 2 ulp, in [0, 1], NaN propagated."""
    bits = np.arange(0, 2**32, 9973, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32)
    s = _fast_math.sigmoid_f32_array(x)
    assert s.dtype == np.float32
    finite = np.isfinite(x)
    assert np.all(np.isnan(s[np.isnan(x)]))
    exact = _sigmoid64(x[finite].astype(np.float64))
    err = _ulps(s[finite], exact)
    assert err.max() <= ULP_BOUND, (err.max(), x[finite][err.argmax()])
    assert np.all((s[finite] >= 0) & (s[finite] <= 1))


def test_sigmoid_f32_tiny_outputs_down_to_underflow():
    """Large negative x, where sigmoid(x) ~ exp(x) is subnormal from x = -87.3 and rounds
    to 0 below x = -103.97: every float32 in [-110, -80], within 2 ulp (2^-149 spacing in
    the subnormals), and exactly 0 where exp(x) < 2^-150."""
    lo, hi = np.array([-80.0, -110.0], dtype=np.float32).view(np.uint32)
    x = np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)
    s = _fast_math.sigmoid_f32_array(x)
    exact = _sigmoid64(x.astype(np.float64))
    assert np.all(_ulps(s, exact) <= ULP_BOUND)
    assert np.any((s > 0) & (s < np.finfo(np.float32).tiny))  # subnormal results reached
    assert np.all(s[exact < 2.0**-150 * 0.99] == 0.0)


def test_sigmoid_f32_special_values():
    x = np.array([0.0, -0.0, 1e-45, 3.0, -3.0, 17.0, 88.0, 103.0, -103.0, -104.0, -200.0,
                  np.inf, -np.inf, np.nan], dtype=np.float32)
    s = _fast_math.sigmoid_f32_array(x)
    finite = ~np.isnan(x)
    assert np.all(_ulps(s[finite], _sigmoid64(x[finite].astype(np.float64))) <= ULP_BOUND)
    assert s[0] == 0.5 and s[1] == 0.5
    assert s[x == np.inf][0] == 1.0 and s[x == -np.inf][0] == 0.0
    assert s[x == -200.0][0] == 0.0 and s[x == 88.0][0] == 1.0
    assert np.isnan(s[-1])
    pair = s[finite].astype(np.float64) + _fast_math.sigmoid_f32_array(-x[finite])
    assert np.all(np.abs(pair - 1.0) <= 2.0**-24)  # sigmoid(x) + sigmoid(-x) = 1


@pytest.mark.parametrize("cell", CELLS, ids=repr)
def test_float64_forward_is_compiled(cell, monkeypatch):
    """The float64 forwards run Numba's loops, not the reference: with every reference
    function out of the compiled modules' reach they still give the reference's result."""
    from nprnn.kernels.compiled import gru, lstm, simple_rnn

    rng = np.random.default_rng(11)
    projected, states, weights = cell.inputs(rng, 5, 6, 4, np.float64)
    want = cell.pair(reference)[0](projected, states, weights)
    unreachable = types.SimpleNamespace()
    for module in (simple_rnn, lstm, gru):
        monkeypatch.setattr(module, "reference", unreachable)
    got = cell.pair(compiled)[0](projected, states, weights)
    assert_close(got[0], want[0], np.float64)
    for a, b in zip(got[1], want[1]):
        assert_close(a, b, np.float64)
