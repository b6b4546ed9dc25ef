"""Padded reviews with ``Embedding(mask_zero=True)``: nprnn's fused step, its per-layer route,
and PyTorch's packed sequences.

    python benchmarks/bench_masked.py [--quick] [--models simple_rnn,lstm,gru]
                                      [--peers nprnn-fused,nprnn-layers,torch] [--out DIR]

Model: ``Embedding(500, 16, mask_zero=True) -> SimpleRNN | LSTM | GRU (8) -> Dense(1,
sigmoid)``, RMSprop(1e-4), binary cross-entropy, batch 64. Data: 20,000 training and 5,000
validation sequences of 100 steps, random ids 1..499, each of a random length from 20 to
100 (uniform), padded with 0 in front as ``pad_sequences`` does by default (the mask skips
the padding). Per peer, the median over repetitions of one training epoch
(``fit(epochs=1)`` after a warm-up epoch), of the validation pass and of predicting all
25,000 sequences.

* ``nprnn-fused``: nprnn as a user runs it (the fused compiled step, :mod:`nprnn._fused`).
* ``nprnn-layers``: the same model with the fused route switched off, i.e. the per-layer
  route with its compiled kernels, which masked models took before they could be fused.
* ``torch``: ``nn.Embedding(padding_idx=0)``, ``nn.RNN/LSTM/GRU(batch_first=True)`` over
  ``pack_padded_sequence`` of each batch (the same tokens, left-aligned: PyTorch packs from
  the front), the last real step's state into ``nn.Linear``; ``BCEWithLogitsLoss``,
  ``RMSprop(lr=1e-4, alpha=0.9, eps=1e-7)``; 1 and 2 threads, the faster shown. Skipped,
  with a note, when PyTorch is not installed.

Prints a table and writes ``results/masked.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, median_time, table, write_json  # noqa: E402

V, E, UNITS, T, BATCH = 500, 16, 8, 100, 64
MODELS = ("simple_rnn", "lstm", "gru")
PEERS = ("nprnn-fused", "nprnn-layers", "torch")


def padded_data(count, steps, seed=0):
    """``(ids, lengths, labels)``: ids (count, steps) int64 pre-padded with 0."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, steps // 5), steps + 1, size=count)
    ids = rng.integers(1, V, size=(count, steps))
    for n, length in enumerate(lengths):
        ids[n, :steps - length] = 0
    return ids, lengths, rng.integers(0, 2, size=count)


def median_seconds(run, repeats):
    """Median over ``repeats`` single calls (each a whole epoch or pass; no warm-up here)."""
    return median_time(run, repeats=repeats, number=1, warmup=0)


def time_nprnn(kind, fused, train, val, repeats):
    import nprnn
    from nprnn import _fused, layers

    cell = {"simple_rnn": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[kind]
    nprnn.utils.set_random_seed(0)
    model = nprnn.Sequential([layers.Embedding(V, E, mask_zero=True), cell(UNITS),
                              layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nprnn.optimizers.RMSprop(1e-4), loss="binary_crossentropy",
                  metrics=["accuracy"])
    (x, _, y), (x_val, _, y_val) = train, val
    with contextlib.nullcontext() if fused else _fused.per_layer_route():
        everything = np.concatenate([x, x_val])
        # warm-up: every compiled kernel the timed calls use
        model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
        model.evaluate(x_val, y_val, batch_size=BATCH, verbose=0)
        model.predict(everything, batch_size=1024, verbose=0)
        took_fused = _fused.plan_for(model) is not None
        epoch = median_seconds(lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0),
                               repeats)
        validation = median_seconds(
            lambda: model.evaluate(x_val, y_val, batch_size=BATCH, verbose=0), repeats)
        predict = median_seconds(lambda: model.predict(everything, batch_size=1024, verbose=0),
                                 repeats)
    return {"train_s": epoch, "val_s": validation, "predict_s": predict,
            "route": "fused" if took_fused else "per-layer"}


def time_torch(kind, train, val, repeats, threads):
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, E, padding_idx=0)
            self.rnn = {"simple_rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](
                E, UNITS, batch_first=True)
            self.dense = nn.Linear(UNITS, 1)

        def forward(self, ids, lengths):
            packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                          enforce_sorted=False)
            _, state = self.rnn(packed)
            last = state[0] if kind == "lstm" else state
            return self.dense(last[-1]).squeeze(1)

    def left_aligned(ids, lengths):
        out = np.zeros_like(ids)
        for n, length in enumerate(lengths):
            out[n, :length] = ids[n, ids.shape[1] - length:]
        return torch.from_numpy(out), torch.from_numpy(lengths.astype(np.int64))

    (x, lengths, y), (x_val, val_lengths, y_val) = train, val
    x_t, len_t = left_aligned(x, lengths)
    xv_t, lenv_t = left_aligned(x_val, val_lengths)
    y_t = torch.from_numpy(y.astype(np.float32))
    yv_t = torch.from_numpy(y_val.astype(np.float32))
    model = Model()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-4, alpha=0.9, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = np.random.default_rng(0)

    def epoch():
        order = torch.from_numpy(generator.permutation(len(x_t)))
        for start in range(0, len(order), BATCH):
            index = order[start:start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(x_t[index], len_t[index]), y_t[index])
            loss.backward()
            optimizer.step()

    def infer(ids, lens, batch, labels=None):
        """Logits (or, with ``labels``, the loss and correct count) batch by batch."""
        with torch.no_grad():
            for start in range(0, len(ids), batch):
                logits = model(ids[start:start + batch], lens[start:start + batch])
                if labels is not None:  # what evaluate reports: loss and accuracy
                    loss_fn(logits, labels[start:start + batch])
                    ((logits > 0).float() == labels[start:start + batch]).sum()

    epoch()  # warm-up
    all_ids, all_lengths = torch.cat([x_t, xv_t]), torch.cat([len_t, lenv_t])
    return {"train_s": median_seconds(epoch, repeats),
            "val_s": median_seconds(lambda: infer(xv_t, lenv_t, BATCH, yv_t), repeats),
            "predict_s": median_seconds(lambda: infer(all_ids, all_lengths, 1024), repeats),
            "route": f"{threads} thread{'s' if threads > 1 else ''}"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for masked.json")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    peers = args.peers.split(",")
    for name, given, known in (("--models", models, MODELS), ("--peers", peers, PEERS)):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"{name}: unknown {unknown}; expected some of {','.join(known)}")
    count, val_count, steps = (640, 160, 20) if args.quick else (20_000, 5_000, T)
    repeats = 1 if args.quick else args.repeats
    train = padded_data(count, steps, seed=0)
    val = padded_data(val_count, steps, seed=1)
    notes = []
    if "torch" in peers and importlib.util.find_spec("torch") is None:
        peers.remove("torch")
        notes.append("PyTorch is not installed: its rows are missing")
    rows = []
    for kind in models:
        results = {}
        for peer in peers:
            if peer == "torch":
                runs = [time_torch(kind, train, val, repeats, threads) for threads in (1, 2)]
                results[peer] = min(runs, key=lambda r: r["train_s"] + r["val_s"])
            else:
                results[peer] = time_nprnn(kind, peer == "nprnn-fused", train, val, repeats)
        torch_total = (results["torch"]["train_s"] + results["torch"]["val_s"]
                       if "torch" in results else None)
        for peer, result in results.items():
            total = result["train_s"] + result["val_s"]
            rows.append({"model": kind, "peer": peer, **result, "epoch_val_s": total,
                         "vs_torch": None if torch_total is None else torch_total / total})
    print(f"Embedding({V}, {E}, mask_zero=True) -> cell({UNITS}) -> Dense(1): {count} x "
          f"{steps} padded sequences (lengths {max(1, steps // 5)}-{steps}), batch {BATCH}, "
          f"validation {val_count}; medians of {repeats}")
    headers = ["model", "peer", "route", "train s/epoch", "val s", "epoch+val s", "predict s",
               "epoch+val vs torch"]
    print(table([[r["model"], r["peer"], r["route"], r["train_s"], r["val_s"],
                  r["epoch_val_s"], r["predict_s"],
                  None if r["vs_torch"] is None else f"{r['vs_torch']:.1f}x"] for r in rows],
                headers))
    for note in notes:
        print(note)
    path = write_json("masked.json", {"quick": args.quick, "machine": machine(), "rows": rows,
                                      "notes": notes}, args.out)
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
