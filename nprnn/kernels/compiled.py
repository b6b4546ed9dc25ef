r"""Numba twins of the hot kernels of :mod:`nprnn.kernels.reference`.

Drop-in module: every public name of the reference is here with the same signature and the
same results (to rounding). Five are compiled with Numba::

    rnn_recurrence_forward(projected, Wh, h0)            h_t = tanh(a_t + h_{t-1} Wh)
    rnn_recurrence_backward(dhidden, hidden, Wh, h0)     backpropagation through time
    gather_rows(table, ids)                               out[n, t] = table[ids[n, t]]
    scatter_add_rows(values, ids, num_rows)               out[v] = sum_{ids = v} values
    rmsprop_update(param, grad, velocity, lr, rho, eps)   Keras' RMSprop step

and the others are the reference functions themselves, re-exported unchanged (``rnn_forward``
and ``rnn_backward`` of the reference call the *reference* recurrence; the layers call the
recurrence directly through :func:`nprnn.kernels.active`).

Design, for the chapter's sizes (N=64 sequences, T=100 steps, H=8 units), where the cost
of a step is overhead and ``tanh``, not arithmetic:

* Each public function is a thin Python wrapper: it normalises the arguments (C-contiguous,
  one float dtype, ids checked to lie in [0, V)) and calls one ``@njit(cache=True)`` core.
  Non-contiguous inputs are copied once by ``np.ascontiguousarray``; contiguous ones are
  passed as they are.
* Inside the recurrence, the state is kept batch-innermost, shape (H, N), so that every
  inner loop runs over the batch and LLVM vectorises it (8 or 16 lanes); the (N, T, H)
  arrays of the signature are read and written one step at a time. Nothing is allocated in
  the time loop. Large prediction batches run in blocks of 256 sequences (cache locality).
  Wide layers (H >= 32) keep the (N, H) layout and do each step's products with BLAS gemm
  called from Numba: the loops win 4-5x at H=8, BLAS wins for wide layers.
* float32 uses :func:`nprnn.kernels._fast_math.tanh_f32`, a vectorisable ``tanh`` within
  1 ulp of the correctly rounded value over the whole float32 range (max 0.5 ulp measured
  over all 2^32 inputs; see that module). float64 uses the exact tanh and matches the
  reference to ~1e-15 relative; its *forward* recurrence runs the NumPy reference itself by
  default (``FLOAT64_FORWARD_IN_NUMPY``): NumPy's array ``np.tanh`` is SIMD, while inside
  Numba every libm ``tanh`` is a scalar call, which made the compiled float64 forward 2x
  slower than the reference. ``USE_FAST_TANH_FLOAT32 = False`` switches
  float32 to libm too.
* Fast-math: only ``contract`` (a * b + c fused into one FMA, one rounding instead of two;
  no reassociation, NaN/inf/signed zeros keep their IEEE meaning), plus
  ``error_model='numpy'`` (a float division by zero gives inf/NaN like NumPy instead of
  raising, which also lets the loops vectorise). See ``_fast_math.JIT_OPTIONS``.
* The dWh reduction of backpropagation through time is accumulated per sequence
  (``acc[k, j, n] += h_{t-1}[k, n] dz_t[j, n]``, vectorised over n), then summed over n in
  a fixed order after the time loop; results are bitwise reproducible and independent of the
  thread count (the kernels are serial by default; the optional parallel forward gives the
  same bits). Exception: from H = 32 units on (``_BLAS_MIN_UNITS``) the per-step products go
  to BLAS, whose rounding can depend on its thread count; nprnn's models pin BLAS to one
  thread (``nprnn.config.deterministic``).
* Ids (any integer dtype, any shape) are checked in the compiled core before any read, with
  one min/max pass; an id outside [0, V) raises ``ValueError`` naming ``ids``, the range and
  the bad value. A compiled gather never reads out of bounds.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from nprnn.kernels import reference
from nprnn.kernels._fast_math import JIT_OPTIONS, tanh_f32
from nprnn.kernels.reference import (
    SequenceCache,
    StepCache,
    dense_backward,
    dense_forward,
    rnn_backward,
    rnn_forward,
    rnn_step_backward,
    rnn_step_forward,
    sigmoid,
    sigmoid_binary_crossentropy,
    sigmoid_binary_crossentropy_backward,
)

__all__ = [
    "StepCache",
    "SequenceCache",
    "rnn_step_forward",
    "rnn_step_backward",
    "rnn_recurrence_forward",
    "rnn_recurrence_backward",
    "rnn_forward",
    "rnn_backward",
    "gather_rows",
    "scatter_add_rows",
    "embedding_forward",
    "embedding_backward",
    "dense_forward",
    "dense_backward",
    "sigmoid",
    "sigmoid_binary_crossentropy",
    "sigmoid_binary_crossentropy_backward",
    "rmsprop_update",
    "USE_FAST_TANH_FLOAT32",
    "PARALLEL_MIN_BATCH",
    "FLOAT64_FORWARD_IN_NUMPY",
]

#: Use the vectorised float32 ``tanh`` (within 1 ulp) in the float32 recurrence. When False,
#: float32 calls libm's ``tanhf`` like float64 calls ``tanh`` (slower, correctly rounded
#: in practice). float64 always uses the exact ``np.tanh``.
USE_FAST_TANH_FLOAT32 = True

#: float64 forward recurrence: run the NumPy reference (True, default) rather than the Numba
#: loop with libm's tanh. Both use the exact tanh; the reference is 2x faster at N=64, H=8
#: because NumPy's array tanh is vectorised and a libm call per element in Numba is not.
FLOAT64_FORWARD_IN_NUMPY = True

#: Batches of at least this many sequences run the forward recurrence on all Numba threads,
#: in blocks of 128 sequences; 0 (the default) keeps every kernel on the calling thread.
#: Results are bitwise the same either way (in the forward pass each sequence is computed on
#: its own). Off by default because it only pays when a core is idle: on this 2-core machine
#: shared with other work, 2 threads made prediction 1.4x faster with the second core free
#: and 2x *slower* with it busy (see benchmarks/README.md). The backward pass is serial (at
#: the training batch of 64 there is too little work per step to share).
PARALLEL_MIN_BATCH = 0
_PARALLEL_BLOCK = 128
_SERIAL_BLOCK = 256
#: The backward pass accumulates dWh per sequence (vectorised over the batch) while the
#: accumulator, H*H*N numbers, stays this small; beyond it (large H) it accumulates straight
#: into dWh with the unit index innermost.
_ACC_MAX_ELEMENTS = 65536
#: From this many units on, the recurrence does its per-step products with BLAS (gemm via
#: SciPy's BLAS, which Numba calls without Python overhead): the loops win for the
#: chapter's H=8 by 4-5x, BLAS wins for wide layers.
_BLAS_MIN_UNITS = 32
_FLOATS = (np.float32, np.float64)


# --------------------------------------------------------------------------------------
# Argument normalisation (Python side, cheap)
# --------------------------------------------------------------------------------------
def _float_dtype(array, name):
    dtype = np.asarray(array).dtype
    if dtype not in _FLOATS:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {dtype}")
    return dtype


def _as(array, dtype):
    """``array`` as a C-contiguous array of ``dtype`` (no copy when it already is)."""
    return np.ascontiguousarray(array, dtype=dtype)


def _as_ids(ids):
    """Ids as a flat C-contiguous int32/int64 array (other integer dtypes converted)."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}")
    if ids.dtype not in (np.int32, np.int64):
        if ids.dtype.kind == "u" and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
            raise ValueError(
                f"ids: every id must lie in [0, V); got {int(ids.max())}, beyond int64"
            )
        ids = ids.astype(np.int64)
    return np.ascontiguousarray(ids).reshape(-1)


def _raise_bad_id(ids, position, num_rows):
    bad = np.asarray(ids).reshape(-1)[position]
    raise ValueError(
        f"ids: every id must lie in [0, {num_rows}) (the rows of the table); got {bad} "
        f"at flat position {position}"
    )


# --------------------------------------------------------------------------------------
# SimpleRNN recurrence
# --------------------------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def _forward_block(projected, Wh, h0, hidden, fast_tanh):
    """The recurrence over all T steps for a block of sequences, state kept as (H, B)."""
    B, T, H = projected.shape
    dtype = projected.dtype
    h = np.empty((H, B), dtype=dtype)  # h_{t-1}, batch innermost
    z = np.empty((H, B), dtype=dtype)
    for b in range(B):
        for k in range(H):
            h[k, b] = h0[b, k]
    for t in range(T):
        for b in range(B):
            for j in range(H):
                z[j, b] = projected[b, t, j]
        for k in range(H):
            for j in range(H):
                w = Wh[k, j]
                for b in range(B):
                    z[j, b] += h[k, b] * w
        if fast_tanh:
            for j in range(H):
                for b in range(B):
                    h[j, b] = tanh_f32(z[j, b])
        else:
            for j in range(H):
                for b in range(B):
                    h[j, b] = np.tanh(z[j, b])
        for b in range(B):
            for j in range(H):
                hidden[b, t, j] = h[j, b]


@njit(**JIT_OPTIONS)
def _recurrence_forward_core(projected, Wh, h0, hidden, fast_tanh, block):
    # Blocks of sequences keep the working set in cache when N is large (prediction);
    # sequences are independent in the forward pass, so blocking changes no bit.
    N = projected.shape[0]
    for n0 in range(0, N, block):
        n1 = min(N, n0 + block)
        _forward_block(projected[n0:n1], Wh, h0[n0:n1], hidden[n0:n1], fast_tanh)


@njit(parallel=True, **JIT_OPTIONS)
def _recurrence_forward_parallel(projected, Wh, h0, hidden, fast_tanh, block):
    N = projected.shape[0]
    num_blocks = (N + block - 1) // block
    for i in prange(num_blocks):
        n0 = i * block
        n1 = min(N, n0 + block)
        _forward_block(projected[n0:n1], Wh, h0[n0:n1], hidden[n0:n1], fast_tanh)


@njit(**JIT_OPTIONS)
def _forward_blas(projected, Wh, h0, hidden, fast_tanh):
    """Wide layers (H >= _BLAS_MIN_UNITS): ``h_{t-1} Wh`` by one BLAS gemm per step,
    state kept as (N, H) like the reference; the tanh loop runs over contiguous units."""
    N, T, H = projected.shape
    h = h0.copy()
    z = np.empty((N, H), dtype=projected.dtype)
    for t in range(T):
        np.dot(h, Wh, z)
        for n in range(N):
            if fast_tanh:
                for j in range(H):
                    h[n, j] = tanh_f32(projected[n, t, j] + z[n, j])
            else:
                for j in range(H):
                    h[n, j] = np.tanh(projected[n, t, j] + z[n, j])
            for j in range(H):
                hidden[n, t, j] = h[n, j]


def rnn_recurrence_forward(projected, Wh, h0):
    r"""Compiled twin of :func:`nprnn.kernels.reference.rnn_recurrence_forward`.

    :math:`h_t = \tanh(a_t + h_{t-1} W_h)` for t = 1..T.

    Parameters
    ----------
    projected : ndarray, shape (N, T, H), float32 or float64
        The input projections :math:`a_t = x_t W_x + b`.
    Wh : ndarray, shape (H, H)
    h0 : ndarray, shape (N, H)

    Returns
    -------
    hidden : ndarray, shape (N, T, H), dtype of ``projected`` (``Wh`` and ``h0`` are cast
        to it). float32 uses the 1-ulp vectorised tanh of :mod:`nprnn.kernels._fast_math`
        (max 0.5 ulp, measured over all float32); float64 the exact ``np.tanh``, by
        the NumPy reference itself unless ``FLOAT64_FORWARD_IN_NUMPY`` is False.
    """
    dtype = _float_dtype(projected, "projected")
    projected = _as(projected, dtype)
    Wh = _as(Wh, dtype)
    h0 = _as(h0, dtype)
    N, T, H = projected.shape
    if Wh.shape != (H, H) or h0.shape != (N, H):
        raise ValueError(
            f"shapes: projected {projected.shape} needs Wh ({H}, {H}) and h0 ({N}, {H}); "
            f"got Wh {Wh.shape}, h0 {h0.shape}"
        )
    if dtype == np.float64 and FLOAT64_FORWARD_IN_NUMPY:
        # libm's tanh is a scalar call per element inside Numba (~11 ns); NumPy's array
        # np.tanh is SIMD. The reference is therefore faster for float64 (the dtype of
        # gradient checks), and bitwise equal to itself.
        return reference.rnn_recurrence_forward(projected, Wh, h0)
    hidden = np.empty((N, T, H), dtype=dtype)
    fast = bool(USE_FAST_TANH_FLOAT32 and dtype == np.float32)
    if H >= _BLAS_MIN_UNITS and N > 0:
        _forward_blas(projected, Wh, h0, hidden, fast)
    elif PARALLEL_MIN_BATCH and N >= PARALLEL_MIN_BATCH and numba.get_num_threads() > 1:
        _recurrence_forward_parallel(projected, Wh, h0, hidden, fast, _PARALLEL_BLOCK)
    else:
        _recurrence_forward_core(projected, Wh, h0, hidden, fast, _SERIAL_BLOCK)
    return hidden


@njit(**JIT_OPTIONS)
def _only_last_step(dbits):
    """True when every dhidden[:, t] with t < T-1 is +0.0, read as integer bits so that the
    OR-reduction vectorises (-0.0 and NaN count as non-zero: the general path handles them).
    SimpleRNN(return_sequences=False) passes such a dhidden."""
    N, T, H = dbits.shape
    flat = dbits.reshape(N, T * H)
    bits = 0
    for n in range(N):
        for i in range((T - 1) * H):
            bits |= flat[n, i]
    return bits == 0


@njit(**JIT_OPTIONS)
def _recurrence_backward_core(dhidden, dbits, hidden, Wh, h0, dprojected, dWh, dh0, one, acc_max):
    N, T, H = hidden.shape
    dtype = hidden.dtype
    g = np.empty((H, N), dtype=dtype)  # dz_t
    hc = np.empty((H, N), dtype=dtype)  # h_t
    hp = np.empty((H, N), dtype=dtype)  # h_{t-1}
    per_sequence = H * H * N <= acc_max
    # per_sequence: acc[k, j, n] = sum_t h_{t-1}[n,k] dz_t[n,j], then summed over n in order;
    # otherwise dWh_acc[k, j] += h_{t-1}[n,k] dz_t[n,j] in the order t descending, n, k.
    acc = np.zeros((H, H, N) if per_sequence else (0, 0, 0), dtype=dtype)
    dWh_acc = np.zeros((H, H), dtype=dtype)
    dnext = np.zeros((H, N), dtype=dtype)  # dz_{t+1} Wh^T
    only_last = T > 1 and _only_last_step(dbits)
    if T > 0:
        for n in range(N):
            for j in range(H):
                hc[j, n] = hidden[n, T - 1, j]
    for t in range(T - 1, -1, -1):
        if t > 0:
            for n in range(N):
                for k in range(H):
                    hp[k, n] = hidden[n, t - 1, k]
        else:
            for n in range(N):
                for k in range(H):
                    hp[k, n] = h0[n, k]
        if only_last and t < T - 1:  # dhidden[:, t] is zero: skip reading it
            for j in range(H):
                for n in range(N):
                    hv = hc[j, n]
                    g[j, n] = dnext[j, n] * (one - hv * hv)
        else:
            for n in range(N):
                for j in range(H):
                    g[j, n] = dhidden[n, t, j]
            for j in range(H):
                for n in range(N):
                    hv = hc[j, n]
                    g[j, n] = (g[j, n] + dnext[j, n]) * (one - hv * hv)
        for n in range(N):
            for j in range(H):
                dprojected[n, t, j] = g[j, n]
        if per_sequence:
            # acc[k, j] += h_{t-1}[k] dz[j] and dnext[k] = sum_j dz[j] Wh[k, j], in one pass
            for k in range(H):
                for n in range(N):
                    dnext[k, n] = 0.0
                for j in range(H):
                    w = Wh[k, j]
                    for n in range(N):
                        gj = g[j, n]
                        acc[k, j, n] += hp[k, n] * gj
                        dnext[k, n] += gj * w
        else:
            for n in range(N):
                for k in range(H):
                    hk = hp[k, n]
                    for j in range(H):
                        dWh_acc[k, j] += hk * dprojected[n, t, j]
            for k in range(H):  # dnext[k] = sum_j dz[j] Wh[k, j]
                for n in range(N):
                    dnext[k, n] = 0.0
                for j in range(H):
                    w = Wh[k, j]
                    for n in range(N):
                        dnext[k, n] += g[j, n] * w
        hc, hp = hp, hc
    if per_sequence:
        for k in range(H):
            for j in range(H):
                s = 0.0
                for n in range(N):
                    s += acc[k, j, n]
                dWh[k, j] = s
    else:
        for k in range(H):
            for j in range(H):
                dWh[k, j] = dWh_acc[k, j]
    for n in range(N):
        for k in range(H):
            dh0[n, k] = dnext[k, n]


@njit(**JIT_OPTIONS)
def _backward_blas(dhidden, hidden, Wh, h0, dprojected, dWh, dh0, one):
    """Wide layers: the three products of a step (``h_{t-1}^T dz``, ``dz Wh^T``) by BLAS,
    state kept as (N, H) like the reference."""
    N, T, H = hidden.shape
    dtype = hidden.dtype
    g = np.empty((N, H), dtype=dtype)
    hp = np.empty((N, H), dtype=dtype)
    dnext = np.zeros((N, H), dtype=dtype)
    step = np.empty((H, H), dtype=dtype)
    WhT = np.ascontiguousarray(Wh.T)
    acc = np.zeros((H, H), dtype=dtype)
    for t in range(T - 1, -1, -1):
        for n in range(N):
            for j in range(H):
                hv = hidden[n, t, j]
                v = (dhidden[n, t, j] + dnext[n, j]) * (one - hv * hv)
                g[n, j] = v
                dprojected[n, t, j] = v
        for n in range(N):
            for k in range(H):
                hp[n, k] = hidden[n, t - 1, k] if t > 0 else h0[n, k]
        np.dot(hp.T, g, step)
        for k in range(H):
            for j in range(H):
                acc[k, j] += step[k, j]
        np.dot(g, WhT, dnext)
    for k in range(H):
        for j in range(H):
            dWh[k, j] = acc[k, j]
    for n in range(N):
        for k in range(H):
            dh0[n, k] = dnext[n, k]


def rnn_recurrence_backward(dhidden, hidden, Wh, h0):
    r"""Compiled twin of :func:`nprnn.kernels.reference.rnn_recurrence_backward`.

    From t = T down to 1::

        g_t    = dhidden_t + dz_{t+1} Wh^T     (dz_{T+1} = 0)
        dz_t   = g_t * (1 - h_t^2)
        dWh   += h_{t-1}^T dz_t
        dh0    = dz_1 Wh^T

    Parameters
    ----------
    dhidden, hidden : ndarrays, shape (N, T, H)
    Wh : ndarray, shape (H, H)
    h0 : ndarray, shape (N, H)

    Returns
    -------
    dprojected : ndarray, shape (N, T, H)
    dWh : ndarray, shape (H, H)
    dh0 : ndarray, shape (N, H)
        All in the dtype of ``hidden`` (other inputs are cast to it); ``dWh`` in ``Wh``'s.
        The sum over n and t of dWh is taken per sequence over t, then over n in order
        (reproducible; differs from the reference by rounding only).
    """
    dtype = _float_dtype(hidden, "hidden")
    hidden = _as(hidden, dtype)
    dhidden = _as(dhidden, dtype)
    Wh_in = Wh
    Wh = _as(Wh, dtype)
    h0 = _as(h0, dtype)
    N, T, H = hidden.shape
    if dhidden.shape != (N, T, H) or Wh.shape != (H, H) or h0.shape != (N, H):
        raise ValueError(
            f"shapes: hidden {hidden.shape} needs dhidden {(N, T, H)}, Wh ({H}, {H}), "
            f"h0 ({N}, {H}); got {dhidden.shape}, {Wh.shape}, {h0.shape}"
        )
    dprojected = np.empty((N, T, H), dtype=dtype)
    dWh = np.empty((H, H), dtype=dtype)
    dh0 = np.empty((N, H), dtype=dtype)
    if H >= _BLAS_MIN_UNITS and N > 0:
        _backward_blas(dhidden, hidden, Wh, h0, dprojected, dWh, dh0, dtype.type(1))
    else:
        dbits = dhidden.view(np.int32 if dtype == np.float32 else np.int64)
        _recurrence_backward_core(
            dhidden,
            dbits,
            hidden,
            Wh,
            h0,
            dprojected,
            dWh,
            dh0,
            dtype.type(1),
            _ACC_MAX_ELEMENTS,
        )
    wh_dtype = np.asarray(Wh_in).dtype
    if wh_dtype != dtype and wh_dtype in _FLOATS:
        dWh = dWh.astype(wh_dtype)
    return dprojected, dWh, dh0


# --------------------------------------------------------------------------------------
# Row gather and scatter-add
# --------------------------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def _first_bad_id(ids, num_rows):
    """-1 when every id is in [0, num_rows), else the flat position of the first bad one.

    One vectorised min/max pass; the position is searched for only on failure."""
    lo = ids[0]
    hi = ids[0]
    for i in range(ids.shape[0]):
        v = ids[i]
        lo = min(lo, v)
        hi = max(hi, v)
    if lo >= 0 and hi < num_rows:
        return -1
    for i in range(ids.shape[0]):
        if ids[i] < 0 or ids[i] >= num_rows:
            return i
    return -1


@njit(**JIT_OPTIONS)
def _gather_core(table, ids, out):
    if ids.shape[0] == 0:
        return -1
    bad = _first_bad_id(ids, table.shape[0])
    if bad >= 0:
        return bad
    C = table.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for c in range(C):
            out[i, c] = table[row, c]
    return -1


def gather_rows(table, ids):
    """Compiled twin of :func:`nprnn.kernels.reference.gather_rows`.

    ``out[n, t] = table[ids[n, t]]``: table (V, C), integer ids (N, T) (any shape, any
    integer dtype) -> (N, T, C) in the table's dtype.

    Raises
    ------
    ValueError
        If an id lies outside [0, V); checked before anything is read.
    """
    table_in = np.asarray(table)
    table = np.ascontiguousarray(table_in)
    if table.ndim != 2:
        raise ValueError(f"table: expected shape (V, C), got {table.shape}")
    shape = np.shape(ids)
    flat = _as_ids(ids)
    out = np.empty((flat.shape[0], table.shape[1]), dtype=table.dtype)
    bad = _gather_core(table, flat, out)
    if bad >= 0:
        _raise_bad_id(ids, bad, table.shape[0])
    return out.reshape(shape + (table.shape[1],))


@njit(**JIT_OPTIONS)
def _scatter_core(values, ids, out):
    if ids.shape[0] == 0:
        return -1
    bad = _first_bad_id(ids, out.shape[0])
    if bad >= 0:
        return bad
    C = values.shape[1]
    for i in range(ids.shape[0]):
        row = ids[i]
        for c in range(C):
            out[row, c] += values[i, c]
    return -1


def scatter_add_rows(values, ids, num_rows):
    """Compiled twin of :func:`nprnn.kernels.reference.scatter_add_rows`.

    ``out[v] = sum over (n, t) with ids[n, t] == v of values[n, t]``: values (N, T, C),
    ids (N, T) -> (num_rows, C) in the dtype of ``values``. Repeated ids accumulate, in
    the flat order of ``ids`` (the order of ``np.add.at``, so float results are identical).

    Raises
    ------
    ValueError
        If an id lies outside [0, num_rows); checked before anything is written.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        raise TypeError(f"values: expected a numeric array, got dtype {values.dtype}")
    num_rows = int(num_rows)
    flat = _as_ids(ids)
    C = values.shape[-1]
    if values.size != flat.shape[0] * C:
        raise ValueError(f"shapes: values {values.shape} do not match ids {np.shape(ids)} + (C,)")
    values2 = np.ascontiguousarray(values).reshape(flat.shape[0], C)
    out = np.zeros((num_rows, C), dtype=values.dtype)
    bad = _scatter_core(values2, flat, out)
    if bad >= 0:
        _raise_bad_id(ids, bad, num_rows)
    return out


def embedding_forward(ids, embeddings):
    """Embedding lookup ``out[n, t] = embeddings[ids[n, t]]``: (N, T) ids, (V, E) -> (N, T, E).

    The reference's twin, calling the compiled :func:`gather_rows`."""
    return gather_rows(embeddings, ids)


def embedding_backward(dout, ids, vocabulary_size):
    """Gradient of the lookup: ``dE[v] = sum_{ids[n, t] = v} dout[n, t]``, shape (V, E).

    The reference's twin, calling the compiled :func:`scatter_add_rows`."""
    return scatter_add_rows(dout, ids, vocabulary_size)


# --------------------------------------------------------------------------------------
# RMSprop
# --------------------------------------------------------------------------------------
@njit(**JIT_OPTIONS)
def _rmsprop_core(param, grad, velocity, new_param, new_velocity, lr, rho, eps):
    one_minus_rho = 1.0 - rho
    for i in range(param.shape[0]):
        g = grad[i]
        v = rho * velocity[i] + one_minus_rho * g * g
        new_velocity[i] = v
        new_param[i] = param[i] - lr * g / np.sqrt(v + eps)


def rmsprop_update(param, grad, velocity, learning_rate, rho, epsilon):
    r"""Compiled twin of :func:`nprnn.kernels.reference.rmsprop_update`.

    .. math::

        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        w &\leftarrow w - \eta \, g / \sqrt{v + \epsilon}

    (epsilon inside the root, as Keras). ``param``, ``grad``, ``velocity`` share one shape;
    returns ``(new_param, new_velocity)`` as new arrays of the dtypes of ``param`` and
    ``velocity``. Computed elementwise in float64 and rounded once to the output dtype
    (the reference rounds every float32 operation; the two agree to ~1e-7 relative).
    """
    param = np.asarray(param)
    shape = param.shape
    p = np.ascontiguousarray(param).reshape(-1)
    g = np.ascontiguousarray(grad).reshape(-1)
    v = np.ascontiguousarray(velocity).reshape(-1)
    if g.shape != p.shape or v.shape != p.shape:
        raise ValueError(
            f"shapes: param {shape}, grad {np.shape(grad)}, velocity {np.shape(velocity)} "
            "must be equal"
        )
    new_param = np.empty(p.shape, dtype=p.dtype)
    new_velocity = np.empty(v.shape, dtype=v.dtype)
    _rmsprop_core(
        p, g, v, new_param, new_velocity, float(learning_rate), float(rho), float(epsilon)
    )
    return new_param.reshape(shape), new_velocity.reshape(shape)
