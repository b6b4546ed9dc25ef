r"""A vectorisable float32 ``tanh`` for the compiled kernels, and the tools that measure it.

Why
---
In the SimpleRNN recurrence of the chapter (N=64, T=100, H=8) the arithmetic per step is
tiny (8x8 weights) and the libm ``tanhf`` call per element is what costs: LLVM cannot
vectorise a call into libm, so each of the 51,200 activations of a batch pays a scalar
function call. :func:`tanh_f32` below is plain arithmetic that LLVM vectorises (AVX2 /
AVX-512), about an order of magnitude faster per element, and its float32 results are
within **1 ulp** of the correctly rounded ``tanh`` (measured: see below). It is used for
float32 only; the float64 kernels call the exact ``np.tanh``.

How (equation)
--------------
The value is computed in float64 and rounded to float32 once at the end. With
``a = min(|x|, 9.5)`` (``tanh(a)`` rounds to 1.0f for every ``a >= 9.011``, so clamping
at 9.5 changes no float32 result; ``inf`` and ``NaN`` clamp too, NaN is put back at the
end)::

    E        = expm1(-2a)                        in [-1, 0]
    tanh(a)  = -E / (2 + E)                      (exact identity, no cancellation)
    tanh(x)  = copysign(tanh(a), x)              (so tanh(-0) = -0)

and ``expm1`` by the usual range reduction ``-2a = k ln2 + r`` with ``k = round(-2a/ln2)``
(an integer in [-28, 0]) and ``|r| <= ln2/2``::

    expm1(-2a) = 2^k * expm1(r) + (2^k - 1)
    expm1(r)  ~= r + r^2/2! + ... + r^9/9!       (Taylor, degree 9, Horner)

``2^k`` is built from its bits (``(k + 1023) << 52`` reinterpreted as a float64) by a
one-instruction bit cast, which vectorises.

Error bound (proof sketch, then measurement)
--------------------------------------------
* Taylor remainder of degree 9 on ``|r| <= ln2/2``: relative error of ``expm1(r)`` at most
  ``|r|^9/10! * e^{2|r|} <= 4e-11``.
* For ``k = 0`` ``E = expm1(r)`` directly; for ``k <= -1``, ``|E| >= 1 - e^{-ln2/2} = 0.29``
  and ``|2^k expm1(r)| <= 0.21``, so the relative error of ``E`` is at most that of
  ``expm1(r)`` plus a few float64 roundings (``~1e-15``).
* ``E -> -E/(2+E)`` has relative condition number ``2/(2+E) <= 2`` on [-1, 0].

So the float64 value has relative error below ``1e-10``, i.e. below ``0.002`` float32 ulp,
and the one final rounding to float32 adds at most 0.5 ulp: every result is within
``0.502`` ulp of ``tanh(x)`` (faithfully rounded; it can differ from the correctly
rounded value only when ``tanh(x)`` lies within 0.002 ulp of a rounding midpoint), and
``|tanh_f32(x)| <= 1`` always (``E >= -1`` so ``-E <= 2 + E``), which keeps the backward
factor ``1 - h^2`` non-negative.

Measured by :func:`max_ulp_error` over **all 2^32 float32 bit patterns** (this is a proof
for float32: the domain is finite; ``python benchmarks/check_tanh_exhaustive.py``, about a
minute): max error **0.5 ulp** against ``np.tanh`` in float64 rounded to nearest — see
``benchmarks/README.md`` for the figure and the command. ``tests/test_compiled_kernels.py``
repeats a dense sweep (every 97th bit pattern, plus 0, ±tiny, subnormals, ±large, ±inf,
NaN) on every run.

The only fast-math flag is ``contract`` (FMA fusion, see :data:`JIT_OPTIONS`), which keeps
IEEE semantics and only makes single operations more accurate; the bound above holds for
either rounding. NaN and inf behave as in ``np.tanh``:
``tanh(±inf) = ±1``, ``tanh(NaN) = NaN``, ``tanh(±0) = ±0``, subnormals are kept.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.core import types
from numba.extending import intrinsic

__all__ = ["JIT_OPTIONS", "tanh_f32", "tanh_f32_array", "sigmoid_f32", "sigmoid_f32_array",
           "max_ulp_error"]

#: Numba options shared by every compiled kernel (and by the sweep that measures tanh_f32,
#: so that it measures the very code the kernels run):
#:
#: * ``error_model='numpy'``: a float division by zero gives inf/NaN as in NumPy instead of
#:   raising ZeroDivisionError; without it the per-element check blocks vectorisation.
#: * ``fastmath={'contract'}``: lets LLVM fuse ``a * b + c`` into one FMA instruction (one
#:   rounding instead of two). This is the only fast-math flag, and it is safe: each fused
#:   operation is at least as accurate as the pair it replaces, there is no reassociation
#:   (sums keep their order, so results are reproducible run to run and whatever the thread
#:   count), and NaN, inf, signed zeros and subnormals keep their IEEE meaning (no 'nnan',
#:   'ninf', 'nsz', 'arcp', 'afn' or 'reassoc').
#: * ``nogil=True``: the kernels release the GIL.
JIT_OPTIONS = {"cache": True, "error_model": "numpy", "fastmath": {"contract"}, "nogil": True}

_LN2 = 0.6931471805599453  # float64 nearest to ln 2
_INV_LN2 = 1.4426950408889634
_CLAMP = 9.5  # tanh(a) rounds to 1.0f for a >= 9.011

# 1/n! for the Taylor polynomial of expm1, degree 9.
_C2 = 1.0 / 2.0
_C3 = 1.0 / 6.0
_C4 = 1.0 / 24.0
_C5 = 1.0 / 120.0
_C6 = 1.0 / 720.0
_C7 = 1.0 / 5040.0
_C8 = 1.0 / 40320.0
_C9 = 1.0 / 362880.0


@intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (LLVM ``bitcast``, free)."""
    if bits != types.int64:
        return None
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


@njit(inline="always", **JIT_OPTIONS)
def tanh_f32(x):
    """``tanh(x)`` rounded to float32, within 1 ulp (see the module docstring).

    Scalar, branch-free, inlined into the callers' loops so that they vectorise. Accepts a
    float32 or float64 scalar; returns a float32.
    """
    xd = np.float64(x)
    a = abs(xd)
    a = a if a < _CLAMP else _CLAMP  # inf -> 9.5; NaN -> 9.5 (comparison is False)
    y = -2.0 * a  # in [-19, 0]
    kf = np.floor(y * _INV_LN2 + 0.5)  # nearest integer, in [-28, 0]
    r = y - kf * _LN2  # |r| <= ln2/2 (+ one rounding)
    p = _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r  # expm1(r)
    k = np.int64(np.int32(kf))  # int32 conversion vectorises on AVX2
    scale = _bits_to_float64((k + 1023) << 52)  # exactly 2^k
    e = scale * p + (scale - 1.0)  # expm1(-2a)
    t = -e / (2.0 + e)
    t = math.copysign(t, xd)
    t = xd if xd != xd else t  # NaN in, NaN out
    return np.float32(t)


_SIGMOID_CLAMP = 105.0  # sigmoid(-a) = e^-a rounds to 0.0f for every a >= 103.98


@njit(inline="always", **JIT_OPTIONS)
def sigmoid_f32(x):
    """``1 / (1 + exp(-x))`` rounded to float32, within 1 ulp; vectorisable like tanh_f32.

    With ``a = min(|x|, 105)`` and ``e = exp(-a)`` in (0, 1] by the same range reduction
    (``-a = k ln2 + r``, ``exp(r) = 1 + expm1(r)`` by the degree-9 Taylor polynomial, k in
    [-152, 0]), ``sigmoid(a) = 1 / (1 + e)`` and ``sigmoid(-a) = e / (1 + e)``: no
    cancellation (``1 + e`` lies in [1, 2]), relative error of the float64 value below
    ``1e-10``, then one rounding to float32. NaN in, NaN out; ``sigmoid(+-inf) = 1, 0``.
    """
    xd = np.float64(x)
    a = abs(xd)
    a = a if a < _SIGMOID_CLAMP else _SIGMOID_CLAMP
    y = -a
    kf = np.floor(y * _INV_LN2 + 0.5)
    r = y - kf * _LN2
    p = _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = p * r + 1.0
    p = p * r  # expm1(r)
    k = np.int64(np.int32(kf))
    scale = _bits_to_float64((k + 1023) << 52)  # exactly 2^k
    e = scale * p + scale  # exp(-a)
    s = 1.0 / (1.0 + e)
    t = s if xd >= 0.0 else e * s
    t = xd if xd != xd else t
    return np.float32(t)


@njit(**JIT_OPTIONS)
def sigmoid_f32_array(x):
    """Elementwise :func:`sigmoid_f32` of a 1-D float32 array, into a new float32 array."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for i in range(x.shape[0]):
        out[i] = sigmoid_f32(x[i])
    return out


@njit(**JIT_OPTIONS)
def tanh_f32_array(x):
    """Elementwise :func:`tanh_f32` of a 1-D float32 array, into a new float32 array."""
    out = np.empty(x.shape[0], dtype=np.float32)
    for i in range(x.shape[0]):
        out[i] = tanh_f32(x[i])
    return out


@njit(**JIT_OPTIONS)
def _ulp_f32(v):
    """The float32 ulp at the (float64) value ``v``: ``2^(e-24)`` for ``|v|`` in
    ``[2^(e-1), 2^e)``, never below the subnormal spacing ``2^-149``."""
    av = abs(v)
    if av == 0.0:
        return 2.0**-149
    _, e = math.frexp(av)
    return max(math.ldexp(1.0, e - 24), 2.0**-149)


@njit(**JIT_OPTIONS)
def _sweep(start, stop, step):
    """Max ulp error of :func:`tanh_f32` over the float32 values whose bit patterns
    (as uint32) are ``start, start+step, ... < stop``; also counts failures of the
    invariants (NaN propagation, ``|t| <= 1``, sign, oddness)."""
    worst = 0.0
    worst_bits = np.int64(-1)
    bad = 0
    count = 0
    buf = np.empty(1, dtype=np.uint32)
    fview = buf.view(np.float32)
    b = start
    while b < stop:
        buf[0] = np.uint32(b)
        x = fview[0]
        t = tanh_f32(x)
        count += 1
        if x != x:
            if t == t:
                bad += 1
        else:
            exact = math.tanh(np.float64(x))
            if abs(t) > 1.0 or (x > 0 and t < 0) or (x < 0 and t > 0):
                bad += 1
            if tanh_f32(-x) != -t:
                bad += 1
            if x == 0.0 and math.copysign(1.0, np.float64(t)) != math.copysign(1.0, np.float64(x)):
                bad += 1
            err = abs(np.float64(t) - exact) / _ulp_f32(exact)
            if err > worst:
                worst = err
                worst_bits = b
        b += step
    return worst, worst_bits, bad, count


def max_ulp_error(step: int = 1, start: int = 0, stop: int = 2**32):
    """Max error of :func:`tanh_f32` in float32 ulps over a sweep of bit patterns.

    ``step=1`` covers every float32 (about a minute on one core); the tests use a coarse
    step. Returns ``(max_ulp, worst_input, invariant_failures, count)``; ``worst_input``
    is the float32 where the max is reached (None when nothing was finite).
    """
    worst, bits, bad, count = _sweep(np.int64(start), np.int64(stop), np.int64(step))
    worst_x = None if bits < 0 else np.array([bits], dtype=np.uint32).view(np.float32)[0]
    return float(worst), worst_x, int(bad), int(count)
