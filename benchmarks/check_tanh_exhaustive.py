"""Check the float32 tanh / sigmoid of the compiled kernels over ALL 2^32 float32 inputs.

    python benchmarks/check_tanh_exhaustive.py                      # tanh, every bit pattern
    python benchmarks/check_tanh_exhaustive.py --function sigmoid   # sigmoid, every bit pattern
    python benchmarks/check_tanh_exhaustive.py --step 97            # a sweep, seconds

Prints the max error in float32 ulps (against float64 ``math.tanh`` or the float64 sigmoid
``e / (1 + e)``, ``e = exp(-|x|)``, i.e. the exact value to ~1e-16), where it is reached,
and the count of invariant failures (NaN propagation, range, symmetry; see
``nprnn.kernels._fast_math._sweep``), and writes
``benchmarks/results/<function>_exhaustive.json``. Each run takes a few minutes on one core.
Since the float32 domain is finite, a run with ``--step 1`` is a proof of the bound. The
exit status is 1 when an invariant fails or the max error exceeds ``--bound`` (2 ulp).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json  # noqa: E402

from nprnn.kernels._fast_math import FUNCTIONS, max_ulp_error  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--function", choices=FUNCTIONS, default="tanh",
                        help="the approximation to check (default tanh)")
    parser.add_argument("--step", type=int, default=1, help="sweep every STEP-th bit pattern")
    parser.add_argument("--bound", type=float, default=2.0,
                        help="the max error in ulps that passes (default 2)")
    args = parser.parse_args(argv)
    if args.step < 1:
        parser.error(f"--step must be a positive integer, got {args.step}")
    chunks = 16
    size = 2**32 // chunks
    worst, worst_x, bad, count = 0.0, None, 0, 0
    start = time.perf_counter()
    for i in range(chunks):
        # keep the stride global: start each chunk on the sweep's grid
        lo = i * size
        first = lo + (-lo) % args.step
        w, wx, b, c = max_ulp_error(step=args.step, start=first, stop=lo + size,
                                    function=args.function)
        if w > worst:
            worst, worst_x = w, wx
        bad += b
        count += c
        print(f"chunk {i + 1}/{chunks}: max so far {worst:.6f} ulp", flush=True)
    seconds = time.perf_counter() - start
    result = {
        "function": args.function,
        "inputs_checked": count,
        "step": args.step,
        "max_ulp_error": worst,
        "worst_input": None if worst_x is None else float(worst_x),
        "invariant_failures": bad,
        "seconds": round(seconds, 1),
    }
    print(json.dumps(result, indent=2))
    write_json(f"{args.function}_exhaustive.json", result)
    return 0 if bad == 0 and worst <= args.bound else 1


if __name__ == "__main__":
    raise SystemExit(main())
