"""Kernel-level benchmark: each Numba kernel against its NumPy reference twin.

    python benchmarks/bench_kernels.py           # the chapter's sizes, ~1-2 minutes
    python benchmarks/bench_kernels.py --quick   # tiny sizes, a few seconds (CI smoke run)

Measures, at the chapter's sizes (batch N=64, T=100 steps, H=8 units, V=500 rows; one-hot
projection table (500, 8), embedding (500, 16)), in float32 and float64:

* microseconds per call of every compiled kernel and of its reference twin (median of
  repeats, each repeat long enough to dwarf the timer), and the speedup: the forward, the
  backward (from the final h only) and both for each recurrent cell (SimpleRNN, LSTM, GRU
  with reset_after True and False; the input projection excluded), gather, scatter, RMSprop;
* the float32 tanh alone: the compiled approximation vs libm (scalar, in Numba) vs NumPy's
  own SIMD ``np.tanh``; and the compiled float32 sigmoid approximation;
* the SimpleRNN forward on large batches (prediction) serial vs 2 threads;
* the compile cost: a fresh process with an empty Numba cache vs one with the cache warm.

Prints a table and writes ``benchmarks/results/kernels.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import ROOT, machine, median_time, table, write_json

from nprnn.kernels import _fast_math, compiled, reference
from nprnn.kernels.compiled import switches


def _cells(H):
    """(name, gates, states, weights(rng, dtype)) of the four recurrent cells."""
    def weights(G, with_bias):
        def make(rng, dtype):
            Wh = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(dtype)
            return (Wh, np.zeros(G * H, dtype)) if with_bias else (Wh,)
        return make

    return [("rnn", 1, 1, weights(1, False)), ("lstm", 4, 2, weights(4, False)),
            ("gru", 3, 1, weights(3, True)), ("gru_reset_before", 3, 1, weights(3, False))]


def _calls(module, rng, N, T, H, V, E, dtype):
    """{label: zero-argument call} for every kernel of ``module`` at these sizes. The
    recurrent backward passes start from the final h only (return_sequences=False); their
    caches come from the same module's forward."""
    calls = {}
    for name, G, S, make_weights in _cells(H):
        projected = rng.standard_normal((N, T, G * H)).astype(dtype)
        states = tuple(np.zeros((N, H), dtype) for _ in range(S))
        weights = make_weights(rng, dtype)
        dfinal = (rng.standard_normal((N, H)).astype(dtype),) + (None,) * (S - 1)
        forward = getattr(module, name + "_forward")
        backward = getattr(module, name + "_backward")
        cache = forward(projected, states, weights)[2]

        def both(f=forward, b=backward, a=(projected, states, weights), d=dfinal):
            b(None, d, f(*a)[2])

        calls[f"{name}_forward"] = lambda f=forward, a=(projected, states, weights): f(*a)
        calls[f"{name}_backward"] = lambda b=backward, d=dfinal, c=cache: b(None, d, c)
        calls[f"{name}_forward+backward"] = both
    ids = rng.integers(0, V, (N, T))
    for C in (H, E):
        table = rng.standard_normal((V, C)).astype(dtype)
        values = rng.standard_normal((N, T, C)).astype(dtype)
        calls[f"gather_rows ({V}x{C} table)"] = lambda t=table: module.gather_rows(t, ids)
        calls[f"scatter_add_rows (C={C})"] = lambda v=values: module.scatter_add_rows(v, ids, V)
    param = rng.standard_normal((V, E)).astype(dtype)
    grad = rng.standard_normal((V, E)).astype(dtype)
    velocity = np.abs(rng.standard_normal((V, E))).astype(dtype)
    calls[f"rmsprop_update ({V}x{E})"] = lambda: module.rmsprop_update(
        param, grad, velocity, 1e-4, 0.9, 1e-7)
    return calls


def kernel_table(sizes, repeats, min_seconds):
    N, T, H, V, E = sizes
    rows = []
    for dtype in (np.float32, np.float64):
        fast_calls = _calls(compiled, np.random.default_rng(0), N, T, H, V, E, dtype)
        slow_calls = _calls(reference, np.random.default_rng(0), N, T, H, V, E, dtype)
        for label, fast in fast_calls.items():
            slow = slow_calls[label]
            t_fast = median_time(fast, repeats=repeats, min_seconds=min_seconds)
            t_slow = median_time(slow, repeats=max(1, repeats // 3), min_seconds=min_seconds)
            rows.append(
                {
                    "kernel": label,
                    "dtype": np.dtype(dtype).name,
                    "compiled_us": t_fast * 1e6,
                    "reference_us": t_slow * 1e6,
                    "speedup": t_slow / t_fast,
                }
            )
    return rows


def tanh_table(count, repeats, min_seconds):
    from numba import njit

    @njit(cache=False, error_model="numpy")
    def libm_tanh(x, out):
        for i in range(x.shape[0]):
            out[i] = np.tanh(x[i])

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(count) * 3).astype(np.float32)
    out = np.empty_like(x)
    timings = {
        "tanh_f32 (compiled approximation)": lambda: _fast_math.tanh_f32_array(x),
        "libm tanhf, scalar calls in Numba": lambda: libm_tanh(x, out),
        "np.tanh (NumPy's SIMD float32)": lambda: np.tanh(x),
        "sigmoid_f32 (compiled approximation)": lambda: _fast_math.sigmoid_f32_array(x),
    }
    return [
        {
            "variant": name,
            "ns_per_element": median_time(fn, repeats=repeats, min_seconds=min_seconds)
            / count
            * 1e9,
        }
        for name, fn in timings.items()
    ]


def parallel_table(batches, T, H, repeats, min_seconds):
    import numba

    rng = np.random.default_rng(2)
    rows = []
    saved = switches.PARALLEL_MIN_BATCH
    max_threads = numba.get_num_threads()
    try:
        for N in batches:
            projected = rng.standard_normal((N, T, H)).astype(np.float32)
            Wh = (rng.standard_normal((H, H)) / np.sqrt(H)).astype(np.float32)
            h0 = np.zeros((N, H), np.float32)
            row = {"N": N}
            switches.PARALLEL_MIN_BATCH = 0
            row["serial_us"] = 1e6 * median_time(
                lambda p=projected, w=Wh, h=h0: compiled.rnn_forward(p, (h,), (w,)),
                repeats=repeats,
                min_seconds=min_seconds,
            )
            switches.PARALLEL_MIN_BATCH = 1
            for threads in sorted({1, min(2, max_threads)}):
                numba.set_num_threads(threads)
                row[f"parallel_{threads}_threads_us"] = 1e6 * median_time(
                    lambda p=projected, w=Wh, h=h0: compiled.rnn_forward(p, (h,), (w,)),
                    repeats=repeats,
                    min_seconds=min_seconds,
                )
            numba.set_num_threads(max_threads)
            rows.append(row)
    finally:
        switches.PARALLEL_MIN_BATCH = saved
        numba.set_num_threads(max_threads)
    return rows


_COMPILE_PROBE = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from nprnn.kernels import compiled
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
first = {}
for dtype in (np.float32, np.float64):
    p = rng.standard_normal((4, 5, 3)).astype(dtype)
    w = rng.standard_normal((3, 3)).astype(dtype)
    p3 = rng.standard_normal((4, 5, 9)).astype(dtype)
    p4 = rng.standard_normal((4, 5, 12)).astype(dtype)
    w3 = rng.standard_normal((3, 9)).astype(dtype)
    w4 = rng.standard_normal((3, 12)).astype(dtype)
    h0 = np.zeros((4, 3), dtype)
    ids = rng.integers(0, 7, (4, 5))
    calls = {
        "rnn_forward+backward": lambda: compiled.rnn_backward(
            p, (None,), compiled.rnn_forward(p, (h0,), (w,))[2]),
        "lstm_forward+backward": lambda: compiled.lstm_backward(
            p, (None, None), compiled.lstm_forward(p4, (h0, h0), (w4,))[2]),
        "gru_forward+backward": lambda: compiled.gru_backward(
            p, (None,), compiled.gru_forward(p3, (h0,), (w3, w3[0]))[2]),
        "gru_reset_before_forward+backward": lambda: compiled.gru_reset_before_backward(
            p, (None,), compiled.gru_reset_before_forward(p3, (h0,), (w3,))[2]),
        "gather_rows": lambda: compiled.gather_rows(w, ids % 3),
        "scatter_add_rows": lambda: compiled.scatter_add_rows(p, ids, 7),
        "rmsprop_update": lambda: compiled.rmsprop_update(w, w, np.abs(w), 1e-3, 0.9, 1e-7),
    }
    for name, call in calls.items():
        t = time.perf_counter()
        call()
        first[name + " " + np.dtype(dtype).name] = time.perf_counter() - t
print(json.dumps({"import_s": t_import, "first_calls_s": first,
                  "total_s": time.perf_counter() - t0}))
"""


def compile_cost():
    """Run the probe twice in fresh processes sharing one new, empty Numba cache folder."""
    with tempfile.TemporaryDirectory(prefix="nprnn-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        runs = {}
        for label in ("cold_cache", "warm_cache"):
            done = subprocess.run(
                [sys.executable, "-c", _COMPILE_PROBE],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            runs[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repeats")
    parser.add_argument("--out", default=None, help="folder for kernels.json")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.quick:
        sizes, repeats, min_seconds = (8, 10, 8, 50, 16), 3, 0.002
    else:
        sizes, repeats, min_seconds = (64, 100, 8, 500, 16), 9, 0.1
    N, T, H, V, E = sizes
    result = {
        "quick": args.quick,
        "machine": machine(),
        "sizes": {"N": N, "T": T, "H": H, "V": V, "E": E},
    }

    rows = kernel_table(sizes, repeats, min_seconds)
    result["kernels"] = rows
    print(f"Kernels at N={N}, T={T}, H={H}, V={V}, E={E} (microseconds per call, median)")
    print(
        table(
            [
                [
                    r["kernel"],
                    r["dtype"],
                    r["compiled_us"],
                    r["reference_us"],
                    f"{r['speedup']:.1f}x",
                ]
                for r in rows
            ],
            ["kernel", "dtype", "compiled us", "reference us", "speedup"],
        )
    )

    tanh_rows = tanh_table(N * T * H, repeats, min_seconds)
    result["tanh_float32"] = tanh_rows
    print("\nfloat32 tanh (and sigmoid) over N*T*H values (ns per element)")
    print(
        table([[r["variant"], r["ns_per_element"]] for r in tanh_rows], ["variant", "ns/element"])
    )

    if not args.quick:
        par_rows = parallel_table([64, 1024, 4096], T, H, repeats, min_seconds)
        result["parallel_forward_float32"] = par_rows
        print("\nForward recurrence, float32, serial vs blocks of 128 on 1 or 2 threads (us)")
        keys = list(par_rows[0])
        print(table([[r.get(k) for k in keys] for r in par_rows], keys))

        result["compile_cost"] = compile_cost()
        cold, warm = result["compile_cost"]["cold_cache"], result["compile_cost"]["warm_cache"]
        print("\nCompile cost (fresh process; import + first call of each kernel, both dtypes)")
        print(
            table(
                [
                    [
                        "empty cache",
                        cold["import_s"],
                        sum(cold["first_calls_s"].values()),
                        cold["total_s"],
                    ],
                    [
                        "warm cache",
                        warm["import_s"],
                        sum(warm["first_calls_s"].values()),
                        warm["total_s"],
                    ],
                ],
                ["process", "import s", "first calls s", "total s"],
            )
        )

    result["seconds"] = time.perf_counter() - started
    path = write_json("kernels.json", result, args.out)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
