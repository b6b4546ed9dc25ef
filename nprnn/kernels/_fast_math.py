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
are within **2 ulp** of the exact value (measured over all 2^32 inputs, see below). They
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

    E   = 2^k p(r) + (2^k - 1)        = expm1(-2a) in [-1, 0]   (one FMA; 2^k - 1 exact)
    u   = E / (2 + E)                 = -tanh(a)                (exact identity)
    d   = fl(2 + E),  d_lo = E - (d - 2)       Fast2Sum: d + d_lo = 2 + E exactly
    u0  = fl(E / d)
    rho = fma(-u0, d_lo, fma(-u0, d, E))       ~ E - u0 (2 + E); the inner fma is exact
    u   ~ u0 + rho (1 - u0) / 2                since 1 / (2 + E) = (1 - u) / 2
    tanh(x) = copysign(u, x)                   (the sign of u is dropped: tanh(-0) = -0)

The correction removes, without a second division, both the rounding of the division and
that of ``2 + E`` (each worth up to 1 ulp: without it the error reaches 2.5 ulp). What is
left, to first order: the final rounding (0.5 ulp) plus the relative error of ``E``
multiplied by the condition number ``2 / (2 + E)`` (in [1, 2]) of ``E -> E / (2 + E)``.
For ``k = 0`` (``a <= 0.17``) ``E = p(-2a)`` (``r = -2a`` exactly) and the condition
number is at most 1.17. For ``k <= -1``, ``|E| >= 0.29``; ``E`` carries the rounding of
its FMA (half an ulp of ``E``) plus the error of ``p`` scaled by ``|2^k p / E| <= 0.71``.
The worst combination is at ``k = -1`` (``a`` near 0.5, ``E`` near -0.63, condition 1.46,
``tanh`` just below 1/2): about ``0.5 + 1.46 * (0.79 + 0.3) * 0.92 ~ 1.96`` ulp, and the
exhaustive measurement finds its maximum there. ``tiny``/subnormal ``x``: ``r = -2x``,
``p = r``, ``E = -2x``, ``d = 2``, ``u0 = -x`` exactly, so ``tanh(x) = x``; ``|tanh| <= 1``
(``|E| <= 2 + E``) is checked for every input by the sweep.

sigmoid
-------
With ``y = max(-|x|, -105)`` (``exp(y)`` rounds to 0.0f for every ``y <= -103.98``), k in
[-152, 0], ``k1 = floor(k / 2)``::

    e   = (2^k1 p(r) + 2^k1) * 2^(k - k1)   = exp(y) in [0, 1]
    d   = fl(1 + e),  d_lo = e - (d - 1)     Fast2Sum: d + d_lo = 1 + e exactly
    s0  = fl(e / d)
    rho = fma(-s0, d_lo, fma(-s0, d, e))     ~ e - s0 (1 + e); the inner fma is exact
    s   ~ s0 + rho (1 - s0)                  since 1 / (1 + e) = 1 - s
    sigmoid(x) = 1 - s  if x >= 0,   s  if x < 0

``2^k`` is subnormal below ``k = -126``, so it is applied in two normal halves (built in
int32 from the bits of ``v``): the first FMA rounds once (relative ``2^-24``), the second
product is exact unless ``e`` is subnormal, where it rounds once onto the ``2^-149``
grid, so the tiny outputs down to the underflow keep their accuracy in ulps. ``s = e / (1 +
e)`` has no cancellation (it is the ``e / (1 + e)`` form for negative ``x``), lies in
[0, 1/2], and its condition number in ``e`` is ``1 / (1 + e) <= 1``; the positive side
``1 - s`` (in [1/2, 1]) adds the absolute error of ``s`` (at most about one ulp of ``s``,
half an ulp of ``1 - s``) and one rounding. ``sigmoid(x) + sigmoid(-x) = fl(1 - s) + s``,
which is 1 within ``2^-25``; ``sigmoid(+inf) = 1``, ``sigmoid(-inf) = 0``, NaN gives NaN.

Measured (the proof for float32: the domain is finite)
-------------------------------------------------------
:func:`max_ulp_error` over **all 2^32 float32 bit patterns** against float64 ``math.tanh``
and a float64 sigmoid (``python benchmarks/check_tanh_exhaustive.py --function tanh``, then
``--function sigmoid``; 1.5 and 3 minutes; numbers in ``benchmarks/README.md``):

* tanh: max error **1.932 ulp** (at x = 0.51745725), 0 invariant failures;
* sigmoid: max error **1.517 ulp** (at x = -5.8372488), 0 invariant failures.

``tests/test_compiled_kernels.py`` repeats a dense sweep (every 97th bit pattern) of both on
every run, and checks the special values (0, -0, subnormals, the clamps, inf, NaN).

The figures are those of the x86-64 code LLVM generates here (FMA instructions; AVX2 /
AVX-512). The remainders above use explicit ``llvm.fma`` calls (exact by construction); the
other multiply-adds may be fused by the ``contract`` flag (see :data:`JIT_OPTIONS`), the
only fast-math flag, which keeps IEEE semantics: NaN, inf, signed zeros and subnormals
behave as in ``np.tanh``.

Speed (same machine, best of 7, three runs): a compiled loop ``out[i] = f(x[i])`` over
100,000 float32 values takes **0.43 ns** per value for ``tanh_f32`` and **0.47 ns** for
``sigmoid_f32``, against **0.88** and **0.82 ns** for the previous float64-internal
versions (degree-9 Taylor polynomial, 0.5 ulp): 2.0x and 1.75x (over 1,000,000 values, out
of cache: 0.51 / 0.56 against 0.95 / 0.88 ns). The float32 forward recurrences (N=64,
T=100, H=8) went from about 540 to 400 us (LSTM), 98 to 75 us (SimpleRNN) and 375 to 300 us
(GRU). Splitting ``E`` into an unevaluated sum (``2^k - 1`` and ``2^k p``, Fast2Sum) brings
tanh to about 1.5 ulp (a 1-in-97 sweep) for about 25% more time per value; not adopted.
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
_ROUND_BITS = 0x4B40007F  # the bits of _ROUND

#: ``2^k`` from ``v = k + _ROUND`` (k in [-126, 0]): the low bits ``127 + k`` shifted into the
#: exponent field (the higher bits of ``v`` are shifted out). One integer shift.
_exp2_from_round = _int32_codegen(lambda b, bits: b.shl(bits, _i32(23)))


def _half_exponent(low):
    """``2^k1`` (low) or ``2^(k - k1)`` with ``k1 = floor(k / 2)``, from ``v = k + _ROUND``:
    each a normal float32 for k in [-252, 0]. In int32: ``k1 << 23`` plus the bias for the
    first, ``((k + 127) << 23) - (k1 << 23)`` (i.e. ``(k - k1 + 127) << 23``) for the second."""

    def build(b, bits):
        k1_shifted = b.shl(b.ashr(b.sub(bits, _i32(_ROUND_BITS)), _i32(1)), _i32(23))
        if low:
            return b.add(k1_shifted, _i32(127 << 23))
        return b.sub(b.shl(bits, _i32(23)), k1_shifted)

    return _int32_codegen(build)


_exp2_half_lo = _half_exponent(True)
_exp2_half_hi = _half_exponent(False)


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
    e = scale * p + (scale - _ONE)  # expm1(-2a) in [-1, 0]; 2^k - 1 is exact for k >= -24
    # u = e / (2 + e) = -tanh(a); its sign is dropped by the copysign below
    d = _TWO + e
    d_lo = e - (d - _TWO)  # Fast2Sum (|2| >= |e|): d + d_lo = 2 + e exactly
    u0 = e / d
    rho = _fma_f32(-u0, d_lo, _fma_f32(-u0, d, e))  # e - u0 (2 + e); the inner fma is exact
    # 1 / (2 + e) = (1 - u) / 2: the division's remainder corrected without a second division
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
    # 2^k in two normal halves (2^k itself is subnormal below -126): the first product is
    # exact-range, the second rounds once (into the subnormals when e is that small).
    s1 = _exp2_half_lo(v)
    e = (s1 * p + s1) * _exp2_half_hi(v)  # exp(-a)
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
