"""Where the time of a training epoch goes: the fused step's parts, kernels vs Python.

    python benchmarks/profile_training.py                 # embedding model
    python benchmarks/profile_training.py --model onehot_sparse   # or lstm, gru, lstm2_dropout
    python benchmarks/profile_training.py --quick

Views of one epoch of the chapter's setting (20,000 x 100 ids, batch 64, H=8, validation on
5,000):

1. ``model.fit(epochs=1)`` and ``model.evaluate`` on the validation set, timed; ``fit`` under
   cProfile: the functions with the most own time. The chapter's models take the fused
   compiled step (``nprnn/kernels/compiled/fused.py``): nearly all of the epoch is one
   compiled function, and the rest is ``fit``'s Python.
2. Inside the fused step (models that take it): each compiled part of a batch --
   input projection, the cell's forward core, the Dense head with the loss, the cell's
   backward core, the projection's gradients, RMSprop -- run many times on one batch by a
   compiled loop (no Python dispatch in between) on the fused step's own buffers, scaled
   to the epoch's batches; beside it the whole epoch in one ``train_batches`` call. The
   parts add up to about the whole (the rest: copying each batch's ids and targets).
3. SimpleRNN models: a *lean loop* of the per-layer route (the fallback), batch by batch,
   calling only the active kernels and NumPy (no layer objects, no callbacks, no checks),
   timed kernel by kernel, as the layers do it and with two cheaper NumPy idioms (bias
   folded into the gathered table, ``db`` by a matrix product instead of
   ``sum(axis=(0, 1))``).

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
from _common import machine, median_time, table, write_json  # noqa: E402

import nprnn  # noqa: E402
from nprnn import kernels, layers  # noqa: E402

VOCAB, EMBED, UNITS = 500, 16, 8
MODELS = ("embedding", "onehot_sparse", "lstm", "lstm2_dropout", "gru")


def build(kind, steps):
    if kind == "onehot_sparse":
        stack = [layers.SimpleRNN(UNITS, input_shape=(steps, VOCAB))]
    else:
        recurrent = {
            "embedding": [layers.SimpleRNN(UNITS)],
            "lstm": [layers.LSTM(UNITS)],
            "lstm2_dropout": [
                layers.LSTM(UNITS, dropout=0.3, return_sequences=True),
                layers.LSTM(UNITS, dropout=0.3),
            ],
            "gru": [layers.GRU(UNITS)],
        }[kind]
        stack = [layers.Embedding(VOCAB, EMBED, input_length=steps), *recurrent]
    model = nprnn.Sequential(stack + [layers.Dense(1, activation="sigmoid")])
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


def _harnesses():
    """Compiled loops that call one part of the fused step ``repeats`` times: timing a part
    from Python would add a dispatch (unboxing a dozen arrays) that the fused call does not
    pay."""
    from numba import njit

    from nprnn.kernels.compiled import fused

    @njit
    def project_first(repeats, ids, table, has_table, Wx, b, dmask, P, work):
        for _ in range(repeats):
            fused._project_first(ids, table, has_table, Wx, b, dmask, 0, P, work)

    @njit
    def project_above(repeats, inputs, Wx, b, work):
        for _ in range(repeats):
            fused._dense_project(inputs, Wx, b, work[fused.PROJECTED])

    @njit
    def forward(repeats, cell, Wh, rb, fast, work):
        no_padding = np.zeros((0, 0), dtype=np.bool_)
        for _ in range(repeats):
            fused._forward(cell, Wh, rb, fast, no_padding, False, work)

    @njit
    def head(repeats, hidden, Wd, bd, y, fast, dWd, dbd, dh):
        for _ in range(repeats):
            fused._head(hidden, Wd, bd, y, fast, dWd, dbd, dh)

    @njit
    def backward(repeats, cell, dh_in, Wh, work, has_dhidden, dWh, drb):
        no_padding = np.zeros((0, 0), dtype=np.bool_)
        for _ in range(repeats):
            work[fused.DH][:] = dh_in  # the backward overwrites dh: start from the same one
            fused._backward(cell, Wh, no_padding, False, work, has_dhidden, dWh, drb)

    @njit
    def project_first_backward(repeats, ids, table, has_table, Wx, dmask, G_rows, work, dWx,
                               db, dtable, train_table):
        for _ in range(repeats):
            fused._project_first_backward(ids, table, has_table, Wx, dmask, 0, G_rows, work,
                                          dWx, db, dtable, train_table)

    @njit
    def project_above_backward(repeats, inputs, Wx, work, dWx, db, dinputs):
        for _ in range(repeats):
            fused._dense_project_backward(inputs, Wx, work[fused.DPROJECTED], dWx, db, dinputs)

    @njit
    def rmsprop(repeats, slots, lr, rho, eps):
        for _ in range(repeats):
            fused._apply_rmsprop(slots, lr, rho, eps)

    return (project_first, project_above, forward, head, backward, project_first_backward,
            project_above_backward, rmsprop)


def fused_parts(model, x, y, batch, batches):
    """Seconds per epoch (``batches`` batches) of each compiled part of the fused step, or
    None when ``model`` takes the per-layer route. Dropout masks are left out (all ones would
    time the same loops; the parts then run as in a model without dropout)."""
    from nprnn import _fused

    plan = _fused.plan_for(model)
    if plan is None or not plan.accepts(x):
        return None
    k = plan.kernels
    table, has_table = plan._table()
    Wxs, bs, Whs, rbs = plan._layer_arrays()
    Wd, bd = plan.dense.weights
    ids_all = np.ascontiguousarray(plan._ids(x))
    ids = np.ascontiguousarray(ids_all[:batch])
    yb = np.ascontiguousarray(y[:batch], dtype=plan.dtype)
    P, G_rows, layers = plan._work(batch, ids.shape[1], x)
    grads, (dWd, dbd, dtable) = plan._grads()
    no_mask = np.zeros((0, 0), plan.dtype)
    fast = plan._fast()
    opt = model.optimizer
    lr, rho, eps = float(opt.learning_rate), float(opt.rho), float(opt.epsilon)
    slots = plan._slots()
    train_table = has_table and plan.embedding.trainable
    (project_first, project_above, forward, head, backward, project_first_backward,
     project_above_backward, rmsprop) = _harnesses()
    L = len(plan.cells)
    top = layers[L - 1]
    # one pass in order, so that every buffer holds what the next part reads
    project_first(1, ids, table, has_table, Wxs[0], bs[0], no_mask, P, layers[0])
    for i in range(L):
        if i:
            project_above(1, layers[i - 1][k.HIDDEN], Wxs[i], bs[i], layers[i])
        forward(1, plan.cells[i], Whs[i], rbs[i], fast, layers[i])
    head(1, top[k.HIDDEN], Wd, bd, yb, fast, dWd, dbd, top[k.DH])
    dh_in = top[k.DH].copy()
    zeros = np.zeros_like(dh_in)
    parts = {}

    def add(name, run):
        parts[name] = parts.get(name, []) + [run]

    add("input projection (table Wx + b, row gather)", lambda r: project_first(
        r, ids, table, has_table, Wxs[0], bs[0], no_mask, P, layers[0]))
    for i in range(L):
        work = layers[i]
        if i:
            add("projections between layers (dense)", lambda r, i=i: project_above(
                r, layers[i - 1][k.HIDDEN], Wxs[i], bs[i], layers[i]))
        add("cell forward cores", lambda r, i=i: forward(
            r, plan.cells[i], Whs[i], rbs[i], fast, layers[i]))
        dWx, db, dWh, drb = grads[i]
        start = dh_in if i == L - 1 else zeros
        add("cell backward cores (BPTT)", lambda r, i=i, start=start, dWh=dWh, drb=drb: backward(
            r, plan.cells[i], start, Whs[i], layers[i], i < L - 1, dWh, drb))
        if i:
            add("projection gradients between layers", lambda r, i=i, dWx=dWx, db=db:
                project_above_backward(r, layers[i - 1][k.HIDDEN], Wxs[i], layers[i], dWx, db,
                                       layers[i - 1][k.DHIDDEN]))
        else:
            add("input projection gradients (scatter, dWx, db, dtable)",
                lambda r, dWx=dWx, db=db, work=work: project_first_backward(
                    r, ids, table, has_table, Wxs[0], no_mask, G_rows, work, dWx, db, dtable,
                    train_table))
    add("Dense head + loss + dL/dh_T", lambda r: head(
        r, top[k.HIDDEN], Wd, bd, yb, fast, dWd, dbd, top[k.DH]))
    add("RMSprop, all weights (staged, finite check)", lambda r: rmsprop(r, slots, lr, rho, eps))
    result = {}
    for name, runs in parts.items():
        total = 0.0
        for run in runs:
            run(1)  # compile
            once = max(_timed_call(run, 1), 1e-7)
            repeats = max(1, int(0.02 / once))
            samples = [_timed_call(run, repeats) / repeats for _ in range(5)]
            total += float(np.median(samples)) * batches
        result[name] = total
    order = np.arange(len(ids_all), dtype=np.int64)
    losses = np.empty(batches)
    corrects = np.zeros(batches, dtype=np.int64)
    masks = tuple(no_mask for _ in plan.cells)

    def whole_epoch():  # what fit calls, in one call (no dropout masks, as the parts above)
        plan.train_batches(x, y, order, batch, 0, batches, masks, losses, corrects)

    result["sum of the parts"] = sum(result.values())
    result["train_batches, whole epoch in one call"] = median_time(whole_epoch, repeats=3, number=1)
    return result


def _timed_call(run, repeats):
    start = time.perf_counter()
    run(repeats)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedding", choices=MODELS)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    n, n_val, steps = (512, 128, 20) if args.quick else (20000, 5000, 100)
    batch = 64
    batches = -(-n // batch)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, (n, steps))
    y = rng.integers(0, 2, n)
    ids_val = rng.integers(0, VOCAB, (n_val, steps))
    y_val = rng.integers(0, 2, n_val)
    sparse = args.model == "onehot_sparse"

    def encode(tokens):
        if sparse:
            return nprnn.utils.to_categorical(tokens, num_classes=VOCAB, sparse=True)
        return tokens

    x, x_val = encode(ids), encode(ids_val)
    result = {"model": args.model, "backend": nprnn.config.backend(), "machine": machine()}

    model = build(args.model, steps)
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0)  # warm-up (compiles)
    model.evaluate(x_val, y_val, batch_size=batch, verbose=0)
    fit_times, val_times = [], []
    for _ in range(3):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        fit_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        model.evaluate(x_val, y_val, batch_size=batch, verbose=0)
        val_times.append(time.perf_counter() - start)
    result["fit_epoch_s"] = float(np.median(fit_times))
    result["evaluate_s"] = float(np.median(val_times))
    from nprnn import _fused

    result["route"] = "fused" if _fused.plan_for(model) is not None else "per-layer"

    profiler = cProfile.Profile()
    profiler.enable()
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(18)
    result["cprofile_top"] = stream.getvalue()

    print(
        f"{args.model}, {result['route']} route ({n} x {steps}, batch {batch}, backend "
        f"{nprnn.config.backend()}): fit(epochs=1) {result['fit_epoch_s']:.3f} s, evaluate on "
        f"{n_val} {result['evaluate_s']:.4f} s (medians of 3)\n"
    )
    print("cProfile of one fit epoch (own time):")
    print("\n".join(result["cprofile_top"].splitlines()[:30]))

    if nprnn.config.backend() == "numba":
        trial = build(args.model, steps)
        trial.set_weights(model.get_weights())
        trial.fit(x[:batch], y[:batch], epochs=1, batch_size=batch, verbose=0)  # slots
        parts = fused_parts(trial, x, y, batch, batches)
        result["fused_parts_s"] = parts
        if parts is not None:
            print(f"Inside the fused step, seconds per epoch ({batches} batches):")
            print(table([[name, value] for name, value in parts.items()], ["part", "s/epoch"]))

    if args.model in ("embedding", "onehot_sparse"):
        weights = [w.copy() for w in model.get_weights()]
        if args.model != "embedding":
            weights = [None] + weights
        lean = {}
        for improved in (False, True):
            lean_epoch(
                ids,
                y,
                [None if w is None else w.copy() for w in weights],
                batch,
                defaultdict(float),
                improved,
            )  # warm-up
            runs = []
            for _ in range(3):
                timings = defaultdict(float)
                start = time.perf_counter()
                lean_epoch(
                    ids,
                    y,
                    [None if w is None else w.copy() for w in weights],
                    batch,
                    timings,
                    improved,
                )
                runs.append((time.perf_counter() - start, dict(timings)))
            runs.sort(key=lambda r: r[0])
            lean["improved" if improved else "as_layers_do"] = {
                "epoch_s": runs[1][0],
                "by_part_s": runs[1][1],
            }
        result["lean_loop"] = lean
        base, better = lean["as_layers_do"], lean["improved"]
        print("\nPer-layer route as a lean loop (kernels + NumPy only), seconds per epoch:")
        print(
            table(
                [[p, base["by_part_s"][p], better["by_part_s"].get(p)] for p in base["by_part_s"]]
                + [["total", base["epoch_s"], better["epoch_s"]]],
                ["part", "as the layers do it", "with the README's idioms"],
            )
        )
    path = write_json(f"profile_{args.model}.json", result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
