"""Where the time of a training epoch goes: kernels vs Python in the layers and the model.

    python benchmarks/profile_training.py                 # embedding model
    python benchmarks/profile_training.py --model onehot_sparse
    python benchmarks/profile_training.py --quick

Three views of one epoch of the chapter's setting (20,000 x 100 ids, batch 64, H=8):

1. ``model.fit(epochs=1)`` under cProfile: the functions with the most own time.
2. A *lean loop*: the same maths, batch by batch, calling only the active kernels and
   NumPy (no layer objects, no callbacks, no checks), timed kernel by kernel. Its total is
   what the kernels alone cost; the gap to ``fit`` is Python overhead in the layers and
   the model.
3. The same lean loop with the cheaper NumPy idioms recommended in benchmarks/README.md
   (bias folded into the gathered table, ``db`` by a matrix product instead of
   ``sum(axis=(0, 1))``), to show what they save.

Writes ``benchmarks/results/profile_<model>.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, table, write_json  # noqa: E402

import nprnn  # noqa: E402
from nprnn import kernels, layers  # noqa: E402

VOCAB, EMBED, UNITS = 500, 16, 8


def build(kind, steps):
    if kind == "embedding":
        stack = [layers.Embedding(VOCAB, EMBED, input_length=steps)]
    else:
        stack = []
    first = (
        layers.SimpleRNN(UNITS) if stack else layers.SimpleRNN(UNITS, input_shape=(steps, VOCAB))
    )
    model = nprnn.Sequential(stack + [first, layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer=nprnn.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def lean_epoch(ids, y, weights, batch, timings, improved):
    """One epoch of the embedding / sparse one-hot model with kernels only."""
    ops = kernels.active()
    E, Wx, Wh, b, Wd, bd = weights
    slots = [np.zeros_like(w) for w in weights]
    N_all = len(ids)
    order = np.random.default_rng(0).permutation(N_all)
    clock = time.perf_counter

    def tick(name, start):
        now = clock()
        timings[name] += now - start
        return now

    for s in range(0, N_all, batch):
        t = clock()
        index = order[s : s + batch]
        xb, yb = ids[index], y[index].astype(np.float32)
        t = tick("batch slicing", t)
        table_proj = Wx if E is None else E @ Wx
        if improved:
            projected = ops.gather_rows(table_proj + b, xb)
            t = tick("table projection + gather", t)
        else:
            projected = ops.gather_rows(table_proj, xb)
            projected += b
            t = tick("table projection + gather", t)
        N = projected.shape[0]
        h0 = np.zeros((N, UNITS), dtype=projected.dtype)
        _, (last,), cache = ops.rnn_forward(projected, (h0,), (Wh,))
        t = tick("rnn_forward", t)
        z = last @ Wd + bd
        dz = ops.sigmoid_binary_crossentropy_backward(z, yb)
        dWd, dbd = last.T @ dz, dz.sum(axis=0)
        dlast = dz @ Wd.T
        t = tick("dense + loss", t)
        dprojected, _, (dWh,) = ops.rnn_backward(None, (dlast,), cache)
        t = tick("rnn_backward", t)
        if improved:
            db = np.ones(
                dprojected.shape[0] * dprojected.shape[1], dtype=dprojected.dtype
            ) @ dprojected.reshape(-1, UNITS)
        else:
            db = dprojected.sum(axis=(0, 1))
        t = tick("db = sum of dprojected", t)
        G = ops.scatter_add_rows(dprojected, xb, VOCAB)
        if E is None:
            dWx, dE = G, None
        else:
            dWx, dE = E.T @ G, G @ Wx.T
        t = tick("scatter_add_rows + table grads", t)
        grads = [dE, dWx, dWh, db, dWd, dbd]
        for i, (w, g) in enumerate(zip(weights, grads)):
            if w is None:
                continue
            new_w, new_v = ops.rmsprop_update(w, g, slots[i], 1e-4, 0.9, 1e-7)
            w[...] = new_w
            slots[i][...] = new_v
        t = tick("rmsprop_update x params", t)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedding", choices=["embedding", "onehot_sparse"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    n, steps = (512, 20) if args.quick else (20000, 100)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (n, steps))
    y = rng.integers(0, 2, n)
    x = (
        ids
        if args.model == "embedding"
        else nprnn.utils.to_categorical(ids, num_classes=VOCAB, sparse=True)
    )
    result = {"model": args.model, "backend": nprnn.config.backend(), "machine": machine()}

    model = build(args.model, steps)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)  # warm-up (compiles)
    fit_times = []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=64, verbose=0)
        fit_times.append(time.perf_counter() - start)
    result["fit_epoch_s"] = float(np.median(fit_times))

    profiler = cProfile.Profile()
    profiler.enable()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(18)
    result["cprofile_top"] = stream.getvalue()

    weights = [w.copy() for w in model.get_weights()]
    if args.model != "embedding":
        weights = [None] + weights
    lean = {}
    for improved in (False, True):
        timings = defaultdict(float)
        lean_epoch(
            ids,
            y,
            [None if w is None else w.copy() for w in weights],
            64,
            defaultdict(float),
            improved,
        )  # warm-up
        runs = []
        for _ in range(3):
            timings = defaultdict(float)
            start = time.perf_counter()
            lean_epoch(
                ids, y, [None if w is None else w.copy() for w in weights], 64, timings, improved
            )
            runs.append((time.perf_counter() - start, dict(timings)))
        runs.sort(key=lambda r: r[0])
        lean["improved" if improved else "as_layers_do"] = {
            "epoch_s": runs[1][0],
            "by_part_s": runs[1][1],
        }
    result["lean_loop"] = lean

    print(
        f"model.fit, one epoch ({n} x {steps}, batch 64, backend "
        f"{nprnn.config.backend()}): {result['fit_epoch_s']:.3f} s (median of 3)\n"
    )
    print("cProfile of one fit epoch (own time):")
    print("\n".join(result["cprofile_top"].splitlines()[:30]))
    base, better = lean["as_layers_do"], lean["improved"]
    parts = list(base["by_part_s"])
    print("Lean loop (kernels + NumPy only), seconds per epoch by part:")
    print(
        table(
            [[p, base["by_part_s"][p], better["by_part_s"].get(p)] for p in parts]
            + [["total", base["epoch_s"], better["epoch_s"]]],
            ["part", "as the layers do it", "with the README's idioms"],
        )
    )
    print(
        f"\nPython overhead of layers + model ~ {result['fit_epoch_s'] - base['epoch_s']:.3f}"
        " s per epoch (fit minus lean loop)"
    )
    path = write_json(f"profile_{args.model}.json", result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
