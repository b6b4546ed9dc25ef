r"""The loops every compiled cell is written with, on batch-innermost (rows, N) arrays.

A cell's state, gates and gradients live as (rows, N) arrays inside the compiled kernels, so
that every innermost loop runs over the batch (contiguous, no reduction): LLVM vectorises it.
The (N, T, rows) arrays of the public signatures are read and written one step at a time by
:func:`load_step` and :func:`store_step`. Nothing here allocates.

Activations are named by an integer *kind* (:data:`KINDS`); their derivatives are taken from
the outputs, as the reference does (tanh' = 1 - y^2, sigmoid' = y (1 - y), relu' = [y > 0]).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from nprnn.kernels._fast_math import JIT_OPTIONS, sigmoid_f32, tanh_f32

LINEAR, TANH, SIGMOID, RELU = 0, 1, 2, 3
#: Activations the compiled cells implement; any other name runs the NumPy reference.
KINDS = {"linear": LINEAR, "tanh": TANH, "sigmoid": SIGMOID, "relu": RELU}


@njit(**JIT_OPTIONS)
def activate(kind, fast, z, out):
    """``out = f(z)`` elementwise over (R, N); ``fast`` selects the float32 approximations."""
    R, B = z.shape
    if kind == TANH:
        if fast:
            for r in range(R):
                for b in range(B):
                    out[r, b] = tanh_f32(z[r, b])
        else:
            for r in range(R):
                for b in range(B):
                    out[r, b] = np.tanh(z[r, b])
    elif kind == SIGMOID:
        if fast:
            for r in range(R):
                for b in range(B):
                    out[r, b] = sigmoid_f32(z[r, b])
        else:  # the reference's form: exp(-|z|) never overflows
            one = z.dtype.type(1)
            for r in range(R):
                for b in range(B):
                    v = z[r, b]
                    e = np.exp(-abs(v))
                    out[r, b] = (one if v >= 0 else e) / (one + e)
    elif kind == RELU:
        for r in range(R):
            for b in range(B):
                v = z[r, b]
                out[r, b] = 0 if v < 0 else v
    else:
        for r in range(R):
            for b in range(B):
                out[r, b] = z[r, b]


@njit(**JIT_OPTIONS)
def times_derivative(kind, y, d, out):
    """``out = d * f'`` (R, N), with f' written from the output ``y = f(z)``; ``out`` may
    be ``d``."""
    R, B = y.shape
    one = y.dtype.type(1)
    if kind == TANH:
        for r in range(R):
            for b in range(B):
                v = y[r, b]
                out[r, b] = d[r, b] * (one - v * v)
    elif kind == SIGMOID:
        for r in range(R):
            for b in range(B):
                v = y[r, b]
                out[r, b] = d[r, b] * (v * (one - v))
    elif kind == RELU:
        for r in range(R):
            for b in range(B):
                out[r, b] = d[r, b] if y[r, b] > 0 else 0
    else:
        for r in range(R):
            for b in range(B):
                out[r, b] = d[r, b]


@njit(**JIT_OPTIONS)
def load_step(src, t, out):
    """``out[r, n] = src[n, t, r]``: one step of an (N, T, R) array, transposed."""
    B = src.shape[0]
    R = out.shape[0]
    for b in range(B):
        for r in range(R):
            out[r, b] = src[b, t, r]


@njit(**JIT_OPTIONS)
def add_step(src, t, out):
    """``out[r, n] += src[n, t, r]``."""
    B = src.shape[0]
    R = out.shape[0]
    for b in range(B):
        for r in range(R):
            out[r, b] += src[b, t, r]


@njit(**JIT_OPTIONS)
def store_step(x, dst, t):
    """``dst[n, t, r] = x[r, n]``."""
    R, B = x.shape
    for b in range(B):
        for r in range(R):
            dst[b, t, r] = x[r, b]


@njit(**JIT_OPTIONS)
def transpose_into(src, out):
    """``out[r, n] = src[n, r]``."""
    B, R = src.shape
    for b in range(B):
        for r in range(R):
            out[r, b] = src[b, r]


# inlined in Numba's IR: as a call, LLVM left the LSTM's step 10% slower
@njit(**JIT_OPTIONS, inline="always")
def _add_four_rows(out, row, src, first, w0, w1, w2, w3):
    """``out[row, n] += src[first, n] w0 + ... + src[first + 3, n] w3``, added left to right
    (the order of four single-row updates): the inner pass of :func:`add_product` and
    :func:`product_transposed`."""
    for b in range(out.shape[1]):
        s = out[row, b] + src[first, b] * w0
        s += src[first + 1, b] * w1
        s += src[first + 2, b] * w2
        out[row, b] = s + src[first + 3, b] * w3


@njit(**JIT_OPTIONS)
def add_product(x, W, c0, out):
    """``out[r, n] += sum_k x[k, n] W[k, c0 + r]``: rows of ``x^T W[:, c0:c0+R]``.

    Four rows of ``W`` per pass over ``out`` (k ascending within the pass, so the sum keeps
    the order of a plain k loop, bit for bit): a quarter of the loads and stores of ``out``.
    """
    K, B = x.shape
    R = out.shape[0]
    K4 = K - K % 4
    for k in range(0, K4, 4):
        for r in range(R):
            _add_four_rows(out, r, x, k, W[k, c0 + r], W[k + 1, c0 + r], W[k + 2, c0 + r],
                           W[k + 3, c0 + r])
    for k in range(K4, K):
        for r in range(R):
            w = W[k, c0 + r]
            for b in range(B):
                out[r, b] += x[k, b] * w


@njit(**JIT_OPTIONS)
def product_transposed(d, W, c0, out, accumulate):
    """``out[k, n] (+)= sum_r d[r, n] W[k, c0 + r]``: the gradient through :func:`add_product`
    (four columns of ``W`` per pass over ``out``, r ascending, as :func:`add_product`)."""
    R, B = d.shape
    K = out.shape[0]
    R4 = R - R % 4
    for k in range(K):
        if not accumulate:
            for b in range(B):
                out[k, b] = 0
        for r in range(0, R4, 4):
            _add_four_rows(out, k, d, r, W[k, c0 + r], W[k, c0 + r + 1], W[k, c0 + r + 2],
                           W[k, c0 + r + 3])
        for r in range(R4, R):
            w = W[k, c0 + r]
            for b in range(B):
                out[k, b] += d[r, b] * w


@njit(**JIT_OPTIONS)
def accumulate_outer(x, d, acc, dW, c0, per_sequence):
    """The weight gradient of :func:`add_product`, ``dW[k, c0 + r] += sum_n x[k, n] d[r, n]``.

    ``per_sequence``: into ``acc[k, c0 + r, n]`` (vectorised over n; summed over n in a fixed
    order by :func:`reduce_sequences` after the time loop); otherwise straight into ``dW``,
    n ascending. Either order is fixed, so results are bitwise reproducible.
    """
    K, B = x.shape
    R = d.shape[0]
    if per_sequence:
        for k in range(K):
            for r in range(R):
                for b in range(B):
                    acc[k, c0 + r, b] += x[k, b] * d[r, b]
    else:
        for k in range(K):
            for r in range(R):
                s = dW[k, c0 + r]
                for b in range(B):
                    s += x[k, b] * d[r, b]
                dW[k, c0 + r] = s


#: Steps whose weight-gradient terms :func:`accumulate_outer_steps` adds in one pass.
STEPS_PER_PASS = 4


@njit(**JIT_OPTIONS)
def accumulate_outer_steps(xs, ds, count, acc):
    """``acc[k, r, n] += sum_{i < count} xs[i, k, n] ds[i, r, n]``, the terms added in the
    order i = 0, 1, ..., so bitwise the result of ``count`` per-sequence calls of
    :func:`accumulate_outer` (``count <= 4``).

    Why: the accumulator (K, R, N) is read and written once for up to four steps instead of
    once a step; at the LSTM's (8, 32, 64) it is 64 KiB, more than the L1 cache holds, and
    this pass was a third of the backward step (benchmarks/README.md).
    """
    K, B = xs.shape[1], xs.shape[2]
    R = ds.shape[1]
    if count == 4:
        for k in range(K):
            for r in range(R):
                for b in range(B):
                    s = acc[k, r, b] + xs[0, k, b] * ds[0, r, b]
                    s += xs[1, k, b] * ds[1, r, b]
                    s += xs[2, k, b] * ds[2, r, b]
                    acc[k, r, b] = s + xs[3, k, b] * ds[3, r, b]
        return
    for i in range(count):
        for k in range(K):
            for r in range(R):
                for b in range(B):
                    acc[k, r, b] += xs[i, k, b] * ds[i, r, b]


@njit(**JIT_OPTIONS)
def pass_step_terms(xs, ds, pending, last, acc, dW, per_sequence):
    """A backward step has put ``h~`` and ``dz`` in ``xs[pending]``, ``ds[pending]``: add
    their weight-gradient terms ``h~^T dz`` now, or leave them for the next
    :func:`accumulate_outer_steps` pass (every :data:`STEPS_PER_PASS` steps and at the
    ``last`` one). Returns the slot of the next step."""
    pending += 1
    if not per_sequence:  # straight into dW, a step at a time
        accumulate_outer(xs[0], ds[0], acc, dW, 0, False)
        return 0
    if pending == xs.shape[0] or last:
        accumulate_outer_steps(xs, ds, pending, acc)
        return 0
    return pending


@njit(**JIT_OPTIONS)
def backprop_product(x, d, W, c0, acc, dW, per_sequence, out, accumulate):
    """Both gradients of ``out += x^T W[:, c0:c0+R]`` for a ``d`` (R, N):
    :func:`accumulate_outer` (the weight gradient) and :func:`product_transposed` (the
    gradient reaching ``x``, written or added into ``out``)."""
    accumulate_outer(x, d, acc, dW, c0, per_sequence)
    product_transposed(d, W, c0, out, accumulate)


@njit(**JIT_OPTIONS)
def reduce_sequences(acc, dW):
    """``dW[k, r] = sum_n acc[k, r, n]``, n ascending."""
    K, R, B = acc.shape
    for k in range(K):
        for r in range(R):
            s = dW.dtype.type(0)
            for b in range(B):
                s += acc[k, r, b]
            dW[k, r] = s


@njit(**JIT_OPTIONS)
def load_keep(mask, t, keep):
    """``keep[n] = mask[n, t]``."""
    for b in range(keep.shape[0]):
        keep[b] = mask[b, t]


@njit(**JIT_OPTIONS)
def blend(keep, new, state):
    """``state = new`` where ``keep[n]``; masked sequences keep their state."""
    R, B = state.shape
    for r in range(R):
        for b in range(B):
            state[r, b] = new[r, b] if keep[b] else state[r, b]


@njit(**JIT_OPTIONS)
def split_gradient(keep, g, carried):
    """``carried = g`` where masked, 0 elsewhere; ``g = 0`` where masked (in place)."""
    R, B = g.shape
    for r in range(R):
        for b in range(B):
            v = g[r, b]
            carried[r, b] = 0 if keep[b] else v
            g[r, b] = v if keep[b] else 0


@njit(**JIT_OPTIONS)
def multiply(x, m, out):
    """``out = x * m`` elementwise (R, N)."""
    R, B = x.shape
    for r in range(R):
        for b in range(B):
            out[r, b] = x[r, b] * m[r, b]


@njit(**JIT_OPTIONS)
def scale_by(x, m):
    """``x *= m`` elementwise (R, N), in place (a separate loop from :func:`multiply`: an
    output that aliases an input makes LLVM fall back to its scalar loop)."""
    R, B = x.shape
    for r in range(R):
        for b in range(B):
            x[r, b] *= m[r, b]


@njit(**JIT_OPTIONS)
def add_into(x, out):
    """``out += x`` elementwise (R, N)."""
    R, B = x.shape
    for r in range(R):
        for b in range(B):
            out[r, b] += x[r, b]
