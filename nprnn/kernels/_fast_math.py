r"""Vectorisable float32 ``tanh`` and ``sigmoid`` for the compiled kernels, and the tools
that measure them.

Why
---
In the recurrences of the chapter (N=64, T=100, H=8) the arithmetic per step is tiny (8x8
weights) and the activations are a large part of a step (about 40% of the float32 LSTM
forward step before this version). LLVM cannot vectorise a call into libm (``tanhf``,
``expf``), so :func:`tanh_f32` and :func:`sigmoid_f32` are plain branch-free arithmetic,
inlined into the kernels' loops, which LLVM vectorises. They compute in **float32**
arithmetic throughout (twice the lanes of float64 per vector: 8 per 256-bit register, the
width LLVM prefers on the AVX-512 machine measured here) with a degree-6 polynomial, and
are within **2 ulp** of the exact value (over all 2^32 inputs: at most 1.49999774 ulp for
tanh, 1.517 for sigmoid; see below). They
are used for float32 only; the float64 kernels call the exact ``np.tanh`` / ``np.exp``.

The common part: ``expm1`` after range reduction
------------------------------------------------
For ``y <= 0`` (after clamping, so that k stays small)::

    k        = round(y / ln2)                     v = y * fl(1/ln2) + (1.5 * 2^23 + 127)
    r        = (y - k * LN2_HI) - k * LN2_LO      |r| <= ln2/2 (+ a hair)
    expm1(r) ~ p(r) = r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4)    (Horner, one FMA last)
    2^k      = the float32 with bits (127 + k) << 23

* The float32 addition at ``1.5 * 2^23`` (spacing 1) rounds ``y / ln2`` to the nearest
  integer and leaves ``127 + k`` in the low bits of ``v``: shifted left by 23 they are the
  exponent field of ``2^k`` (one integer shift, no float-to-int conversion).
* Cody-Waite: ``LN2_HI = 0.693359375`` has 9 significant bits, so ``k * LN2_HI`` and
  ``y - k * LN2_HI`` are exact; ``LN2_LO`` is the float32 nearest to ``ln 2 - LN2_HI``
  (``LN2_HI + LN2_LO = ln 2 - 1.6e-12``). ``r`` carries one rounding (at most ``2^-24 |r|``)
  plus ``|k| * 1.6e-12``.
* ``c2..c6``: minimax for the relative error of ``p`` on ``|r| <= 1.002 ln2/2`` (linear
  programming on 3000 Chebyshev points), rounded to float32: ``|p(r) / expm1(r) - 1| <=
  1.7e-8 = 0.28 * 2^-24`` with exact arithmetic (checked on 20,001 points with mpmath).
  Evaluated in float32 the last FMA ``r + r^2 q`` rounds relative to ``p`` itself, and the
  roundings inside ``q`` are damped by ``|r^2 q / p| <= 0.2``: ``p`` is within about
  ``1.5 * 2^-24`` relative of ``expm1(r)``.

tanh
----
With ``a = min(|x|, 9.5)`` (``tanh(a)`` rounds to 1.0f for every ``a >= 9.011``; inf
clamps, NaN is not clamped and propagates through the arithmetic), ``y = -2a``, k in
[-28, 0]::

    E   = expm1(-2a) = hi + lo  in [-1, 0]  with  hi = 2^k - 1,  lo = fl(2^k p(r))
    e   = fl(hi + lo),  e_lo = lo - (e - hi)        Fast2Sum: e + e_lo = hi + lo exactly
    c   = 2^k + 1 = 2 + hi
    d   = fl(c + lo),   d_lo = lo - (d - c)         Fast2Sum: d + d_lo = 2 + hi + lo exactly
    u0  = fl(e / d)
    rho = fma(-u0, d_lo, fma(-u0, d, e) + e_lo)     ~ (hi + lo) - u0 (2 + hi + lo)
    u   ~ u0 + rho (1 - u0) / 2                     since 1 / (2 + E) = (1 - u) / 2
    tanh(x) = copysign(u, x)     u = E / (2 + E) = -tanh(a); copysign drops its sign

``hi`` is exact for ``k >= -24`` and ``c`` for ``k >= -23``; the Fast2Sums need
``|hi| >= |lo|`` (true for ``k <= -1``; for ``k = 0``, ``hi = 0`` and ``e = lo`` exactly)
and ``c >= |lo|``. ``fma(-u0, d, e)`` is exact (the remainder of a rounded division). So,
without a second division, ``u`` is ``(hi + lo) / (2 + hi + lo)`` rounded once (0.5 ulp),
up to second-order terms: the roundings of ``2 + E``, of ``E`` and of the division are all
gone (computed naively, ``-E / (2 + E)`` with ``E`` from one FMA, the error reaches 2.5
ulp). What is left is the error of ``lo`` (its rounding, ``2^-24``, plus that of ``p``,
about ``1.5 * 2^-24``, relative), weighted by ``|lo / E|`` and by the condition number
``2 / (2 + E)`` (in [1, 2]) of ``E -> E / (2 + E)``:

* ``k = 0`` (``a <= 0.173``): ``lo = E = p(-2a)`` (``r = -2a`` exactly), condition
  <= 1.17: the largest errors, **1.454 ulp** at most (exhaustive over this range);
* ``k = -1`` (``a`` in [0.173, 0.52]): ``|lo / E| <= 0.71``: 1.088 ulp at most;
* ``k <= -2`` (``a >= 0.52``, ``|tanh| >= 0.48``): ``|lo / E| <= 0.16``, halving with each
  further k: 0.747 ulp at most on [0.52, 1], 0.578 on [1, 4], 0.5001 on [4, 7.8], i.e.
  nearly correctly rounded (on 2 million N(0, 2.5^2) arguments it differs from the
  correctly rounded float32 for 2% of those with ``|tanh|`` in [0.5, 0.9) and 0.3% above
  0.9). This matters for the backward pass, whose ``1 - h^2`` amplifies any error of ``h``
  near 1;
* ``k <= -24`` (``a >= 8.145``, ``tanh`` within ``2^-22`` of 1): ``c = 1 + 2^k`` (and for
  ``k <= -25`` ``hi``) are rounded, an absolute error of ``2^-25`` at most: up to
  **1.49999 ulp**, the exhaustive maximum (0.83 on [7.8, 8.145]).

``tiny``/subnormal ``x``: ``r = -2x``, ``p = r``, ``e = -2x``, ``d = 2``, ``u0 = -x``
exactly, so ``tanh(x) = x``. ``|tanh| <= 1`` (``|E| <= 2 + E``) is checked for every input
by the sweep.

sigmoid
-------
With ``y = max(-|x|, -105)`` (``exp(y)`` rounds to 0.0f for every ``y <= -103.98``), k in
[-152, 0]::

    e   = (2^(k+64) p(r) + 2^(k+64)) * 2^-64    = exp(y) in [0, 1]
    d   = fl(1 + e),  d_lo = e - (d - 1)     Fast2Sum: d + d_lo = 1 + e exactly
    s0  = fl(e / d)
    rho = fma(-s0, d_lo, fma(-s0, d, e))     ~ e - s0 (1 + e); the inner fma is exact
    s   ~ s0 + rho (1 - s0)                  since 1 / (1 + e) = 1 - s
    sigmoid(x) = 1 - s  if x >= 0,   s  if x < 0

``2^k`` is subnormal below ``k = -126``, so the FMA uses the normal ``2^(k+64)`` (its bits
``(191 + k) << 23``, in int32 from the bits of ``v``) and rounds once (relative
``2^-24``); the product by ``2^-64`` is exact unless ``e`` is subnormal, where it rounds
once onto the ``2^-149`` grid, so the tiny outputs down to the underflow keep their
accuracy in ulps. ``s = e / (1 + e)`` has no cancellation (it is the ``e / (1 + e)`` form
for negative ``x``), lies in [0, 1/2], and its condition number in ``e`` is
``1 / (1 + e) <= 1``; the positive side ``1 - s`` (in [1/2, 1]) adds the absolute error of
``s`` (at most about one ulp of ``s``, half an ulp of ``1 - s``) and one rounding.
``sigmoid(x) + sigmoid(-x) = fl(1 - s) + s``, which is 1 within ``2^-25``;
``sigmoid(+inf) = 1``, ``sigmoid(-inf) = 0``, NaN gives NaN.

Measured (the proof for float32: the domain is finite)
-------------------------------------------------------
:func:`max_ulp_error` over **all 2^32 float32 bit patterns** against float64 ``math.tanh``
and a float64 sigmoid (``python benchmarks/check_tanh_exhaustive.py --function tanh``, then
``--function sigmoid``; numbers also in ``benchmarks/README.md``):

* tanh: max error **1.49999774 ulp** (at x = 8.4616079), 0 invariant failures (100 s);
* sigmoid: max error **1.517 ulp** (at x = -5.8372488), 0 invariant failures (172 s).

The documented bound, asserted by the tests, is 2 ulp for both.

``tests/test_compiled_kernels.py`` repeats a dense sweep (every 97th bit pattern) of both on
every run, and checks the special values (0, -0, subnormals, the clamps, inf, NaN).

The figures are those of the x86-64 code LLVM generates here (FMA instructions; AVX2 /
AVX-512). The remainders above use explicit ``llvm.fma`` calls (exact by construction); the
other multiply-adds may be fused by the ``contract`` flag (see :data:`JIT_OPTIONS`), the
only fast-math flag, which keeps IEEE semantics: NaN, inf, signed zeros and subnormals
behave as in ``np.tanh``.

Speed (same machine, shared with other jobs: +-10%; best of 7 repeats, three runs): a
compiled loop ``out[i] = f(x[i])`` over 100,000 float32 values takes **0.51 ns** per value
for ``tanh_f32`` and **0.42 ns** for ``sigmoid_f32``, against **0.87** and **0.79 ns** for
the previous float64-internal versions (degree-9 Taylor polynomial, 0.5 ulp): 1.7x and
1.9x (over 1,000,000 values, out of cache: 0.62 / 0.51 against 0.90 / 0.86 ns). The float32
forward recurrences (N=64, T=100, H=8) went from about 540 to 433 us (LSTM), 100 to 86 us
(SimpleRNN) and 390 to 313 us (GRU).

Not adopted: ``E`` from one FMA (``2^k p + (2^k - 1)``, no ``e_lo``; the rest as above) is
faster (tanh 0.44 ns) and within 1.932 ulp (exhaustive; at x = 0.51745725), but it
differs from the correctly rounded value for half of the arguments with ``|tanh| > 0.9``
(up to 1.5 ulp there), and through ``1 - h^2`` that broke the float32 agreement (1e-5) of
the compiled SimpleRNN backward with the NumPy reference in 2 of 300 random cases where
the float64-internal tanh and this one break it in none (a hypothesis run found one). The
1e-5 agreement is tight for the SimpleRNN backward in any case: over 1000 such random
cases the float64-internal tanh and this one each break it in 4 (3 of them the same).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["JIT_OPTIONS", "tanh_f32", "tanh_f32_array", "sigmoid_f32", "sigmoid_f32_array",
           "max_ulp_error", "FUNCTIONS"]

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

_F = np.float32  # every constant below is float32, so that no operation widens to float64

# ln 2 split for the Cody-Waite reduction: _LN2_HI has 9 significant bits, so k * _LN2_HI is
# exact for |k| < 2^15 and y - k * _LN2_HI is exact; _LN2_LO is the float32 nearest to
# ln 2 - _LN2_HI (their sum is ln 2 within 1e-12 relative).
_LN2_HI = _F(0.693359375)
_LN2_LO = _F(-2.12194440e-4)
_INV_LN2 = _F(1.44269504)
_HALF = _F(0.5)
_ONE = _F(1.0)
_TWO = _F(2.0)
_MINUS_TWO = _F(-2.0)
_TANH_CLAMP = _F(9.5)  # tanh(a) rounds to 1.0f for a >= 9.011

# expm1(r) ~= r + r^2 (_P2 + _P3 r + ... + _P7 r^5) on |r| <= ln2/2: minimax for the relative
# error (linear programming on 3000 Chebyshev points of |r| <= 1.002 ln2/2), coefficients
# rounded to float32; relative error 2.4e-10 before and 2.2e-9 (0.04 ulp) after that rounding.
_P2 = _F(0.4999999701976776)
_P3 = _F(0.16666541993618011)
_P4 = _F(0.04166720435023308)
_P5 = _F(0.00836664717644453)
_P6 = _F(0.0013882473576813936)


def _int32_codegen(build):
    """An intrinsic ``float32 -> float32`` whose body works on the 32 bits of its argument:
    ``build(builder, bits)`` gets and returns an LLVM i32 (bit casts are free)."""

    def impl(typingctx, v):
        if v != types.float32:
            return None

        def codegen(context, builder, signature, args):
            bits = builder.bitcast(args[0], ir.IntType(32))
            return builder.bitcast(build(builder, bits), ir.FloatType())

        return types.float32(types.float32), codegen

    return intrinsic(impl)


def _i32(value):
    return ir.Constant(ir.IntType(32), value)


#: ``v = y / ln2 + _ROUND`` rounds ``y / ln2`` to the nearest integer k (float32 addition at
#: 1.5 * 2^23, where the spacing is 1), and leaves ``127 + k`` in the low bits of ``v``.
_ROUND = _F(12582912.0 + 127.0)

#: ``2^k`` from ``v = k + _ROUND`` (k in [-126, 0]): the low bits ``127 + k`` shifted into the
#: exponent field (the higher bits of ``v`` are shifted out). One integer shift.
_exp2_from_round = _int32_codegen(lambda b, bits: b.shl(bits, _i32(23)))


#: ``2^(k + 64)`` from ``v = k + _ROUND`` (k in [-190, 63]): ``(127 + k + 64) << 23``, i.e. the
#: low bits of ``v`` shifted into the exponent field plus ``64 << 23`` (int32 arithmetic
#: modulo 2^32, right also where ``127 + k`` is negative). Always a normal float32.
_exp2_plus64_from_round = _int32_codegen(
    lambda b, bits: b.add(b.shl(bits, _i32(23)), _i32(64 << 23)))
_TWO_M64 = _F(2.0**-64)


@intrinsic
def _fma_f32(typingctx, a, b, c):
    """``a * b + c`` with one rounding (LLVM ``llvm.fma.f32``: one vfmadd instruction, which
    vectorises). Explicit because the remainders below must be exact, not merely allowed to
    be fused by the ``contract`` flag."""
    if not (a == b == c == types.float32):
        return None
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fnty = ir.FunctionType(f32, [f32, f32, f32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f32")
        return builder.call(fn, args)

    return sig, codegen


@njit(inline="always", **JIT_OPTIONS)
def _expm1_reduced(y):
    """``(v, expm1(r))`` with ``y = k ln2 + r``, ``k = round(y / ln2)``, ``|r| <= ln2/2``,
    all in float32; ``v = k + _ROUND`` carries k (see :data:`_ROUND`)."""
    v = y * _INV_LN2 + _ROUND
    kf = v - _ROUND  # exact
    r = y - kf * _LN2_HI  # exact
    r = r - kf * _LN2_LO
    q = _P6
    q = q * r + _P5
    q = q * r + _P4
    q = q * r + _P3
    q = q * r + _P2
    return v, (r * r) * q + r  # one FMA: the last rounding is relative to expm1(r) itself


@njit(inline="always", **JIT_OPTIONS)
def tanh_f32(x):
    """``tanh(x)`` in float32 arithmetic, within 2 ulp (see the module docstring).

    Scalar, branch-free, inlined into the callers' loops so that they vectorise. Accepts a
    float32 or float64 scalar (rounded to float32 first); returns a float32.
    """
    xf = _F(x)
    a = abs(xf)
    a = _TANH_CLAMP if a > _TANH_CLAMP else a  # inf -> 9.5; NaN stays NaN (and propagates)
    v, p = _expm1_reduced(_MINUS_TWO * a)  # k in [-28, 0]
    scale = _exp2_from_round(v)  # exactly 2^k
    # expm1(-2a) = e + e_lo in [-1, 0], an unevaluated sum: hi = 2^k - 1 is exact (k >= -24)
    # and |hi| >= |lo| for k <= -1 (hi = 0 for k = 0), so Fast2Sum gives e_lo exactly
    hi = scale - _ONE
    lo = scale * p
    e = hi + lo
    e_lo = lo - (e - hi)
    # u = (e + e_lo) / (2 + e + e_lo) = -tanh(a); its sign is dropped by the copysign below
    c = scale + _ONE  # = 2 + hi, exact for k >= -23
    d = c + lo
    d_lo = lo - (d - c)  # Fast2Sum (c >= |lo|): d + d_lo = c + lo exactly
    u0 = e / d
    # rho = (e + e_lo) - u0 (d + d_lo); fma(-u0, d, e) is exact (the division's remainder)
    rho = _fma_f32(-u0, d_lo, _fma_f32(-u0, d, e) + e_lo)
    # 1 / (2 + e) = (1 - u) / 2: the correction without a second division
    t = _fma_f32(rho, _fma_f32(u0, -_HALF, _HALF), u0)
    return math.copysign(t, xf)  # |t| with the sign of x; NaN propagates


_SIGMOID_CLAMP = _F(-105.0)  # exp(y) rounds to 0.0f for every y <= -103.98


@njit(inline="always", **JIT_OPTIONS)
def sigmoid_f32(x):
    """``1 / (1 + exp(-x))`` in float32 arithmetic, within 2 ulp; vectorisable like tanh_f32.

    With ``y = max(-|x|, -105)``, ``e = exp(y)`` in [0, 1] and ``s = e / (1 + e)`` in
    [0, 1/2]: ``sigmoid(x) = s`` for ``x < 0``, ``1 - s`` for ``x >= 0`` (so
    ``sigmoid(x) + sigmoid(-x)`` is 1 up to the rounding of ``1 - s``). See the module
    docstring for the error bound.
    """
    xf = _F(x)
    y = -abs(xf)
    y = _SIGMOID_CLAMP if y < _SIGMOID_CLAMP else y  # -inf -> -105; NaN stays NaN
    v, p = _expm1_reduced(y)  # k in [-152, 0]
    # 2^k is subnormal below k = -126: scale by 2^(k + 64) (normal), then by 2^-64, which is
    # exact for a normal e and rounds once (onto the 2^-149 grid) for a subnormal one
    s64 = _exp2_plus64_from_round(v)
    e = (s64 * p + s64) * _TWO_M64  # exp(y)
    d = _ONE + e
    d_lo = e - (d - _ONE)  # Fast2Sum (1 >= e): d + d_lo = 1 + e exactly
    s0 = e / d
    rho = _fma_f32(-s0, d_lo, _fma_f32(-s0, d, e))  # e - s0 (1 + e); the inner fma is exact
    s = _fma_f32(rho, _ONE - s0, s0)  # 1 / (1 + e) = 1 - s: a correction without a division
    return _ONE - s if xf >= 0 else s  # NaN: s is NaN


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
def _sigmoid_f64(x):
    """The float64 sigmoid the sweep measures against: ``e / (1 + e)`` with ``e = exp(-|x|)``
    (no cancellation for negative x, relative error ~1e-16), ``1 - that`` for ``x >= 0``."""
    e = math.exp(-abs(x))
    s = e / (1.0 + e)
    return 1.0 / (1.0 + e) if x >= 0.0 else s


FUNCTIONS = ("tanh", "sigmoid")  #: the functions :func:`max_ulp_error` measures


@njit(**JIT_OPTIONS)
def _sweep(which, start, stop, step):
    """Max ulp error of :func:`tanh_f32` (``which == 0``) or :func:`sigmoid_f32` (1) over the
    float32 values whose bit patterns (as uint32) are ``start, start+step, ... < stop``; also
    counts failures of the invariants: NaN propagation, range (``|t| <= 1``; sigmoid in
    [0, 1]), symmetry (tanh odd and sign-preserving, ``tanh(-0) = -0``; ``sigmoid(x) +
    sigmoid(-x)`` within 2^-24 of 1)."""
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
        t = tanh_f32(x) if which == 0 else sigmoid_f32(x)
        count += 1
        if x != x:
            if t == t:
                bad += 1
        else:
            x64 = np.float64(x)
            t64 = np.float64(t)
            if which == 0:
                exact = math.tanh(x64)
                if abs(t) > 1.0 or (x > 0 and t < 0) or (x < 0 and t > 0):
                    bad += 1
                if tanh_f32(-x) != -t:
                    bad += 1
                if x == 0.0 and math.copysign(1.0, t64) != math.copysign(1.0, x64):
                    bad += 1
            else:
                exact = _sigmoid_f64(x64)
                if not (t >= 0.0 and t <= 1.0):
                    bad += 1
                if abs(t64 + np.float64(sigmoid_f32(-x)) - 1.0) > 2.0**-24:
                    bad += 1
            err = abs(t64 - exact) / _ulp_f32(exact)
            if err > worst:
                worst = err
                worst_bits = b
        b += step
    return worst, worst_bits, bad, count


def max_ulp_error(step: int = 1, start: int = 0, stop: int = 2**32, function: str = "tanh"):
    """Max error of :func:`tanh_f32` or :func:`sigmoid_f32` in float32 ulps over a sweep of
    bit patterns, against the float64 ``math.tanh`` / sigmoid.

    ``function`` is ``"tanh"`` or ``"sigmoid"``. ``step=1`` covers every float32 (about a
    minute on one core); the tests use a coarse step. Returns ``(max_ulp, worst_input,
    invariant_failures, count)``; ``worst_input`` is the float32 where the max is reached
    (None when nothing was finite).
    """
    if function not in FUNCTIONS:
        raise ValueError(f"function must be one of {FUNCTIONS}, got {function!r}")
    which = np.int64(FUNCTIONS.index(function))
    worst, bits, bad, count = _sweep(which, np.int64(start), np.int64(stop), np.int64(step))
    worst_x = None if bits < 0 else np.array([bits], dtype=np.uint32).view(np.float32)[0]
    return float(worst), worst_x, int(bad), int(count)
