"""How the training time per epoch grows with sequence length, batch size and units.

    python benchmarks/bench_scaling.py           # ~3-5 minutes
    python benchmarks/bench_scaling.py --quick   # seconds (CI smoke run)

The embedding model of the chapter (Embedding(500, 16) -> SimpleRNN(H) -> Dense(1,
sigmoid), RMSprop(1e-4), binary cross-entropy), nprnn with the compiled kernels against
the equivalent PyTorch model (best of ``torch.set_num_threads`` 1 and 2 at each point),
one axis varied at a time around the book's setting (T=100, batch 64, H=8):

* sequence length T in 25 .. 800;
* batch size in 16 .. 512;
* units H in 8 .. 256.

Each point trains on ``--sequences`` random sequences (default 2,048: one warm-up epoch, then
the median of ``--repeats`` timed epochs) and reports seconds per epoch *scaled to the
book's 20,000 training sequences*. Writes ``benchmarks/results/scaling.json`` and
``scaling.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, table, write_json  # noqa: E402

VOCAB, EMBED = 500, 16
BOOK = {"steps": 100, "batch": 64, "units": 8}
SWEEPS = {
    "steps": [25, 50, 100, 200, 400, 800],
    "batch": [16, 32, 64, 128, 256, 512],
    "units": [8, 16, 32, 64, 128, 256],
}
QUICK_SWEEPS = {"steps": [10, 20], "batch": [16, 32], "units": [4, 8]}


def time_nprnn(x, y, steps, batch, units, repeats):
    import nprnn
    from nprnn import layers

    nprnn.utils.set_random_seed(0)
    model = nprnn.Sequential(
        [
            layers.Embedding(VOCAB, EMBED, input_length=steps),
            layers.SimpleRNN(units),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=nprnn.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_torch(x, y, steps, batch, units, repeats, threads):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(threads)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, EMBED)
            self.rnn = nn.RNN(EMBED, units, nonlinearity="tanh", batch_first=True)
            with torch.no_grad():
                self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_hh_l0.requires_grad_(False)
            self.out = nn.Linear(units, 1)

        def forward(self, ids):
            _, h = self.rnn(self.embedding(ids))
            return self.out(h[-1]).squeeze(-1)

    net = Net()
    optimizer = torch.optim.RMSprop(
        [p for p in net.parameters() if p.requires_grad], lr=1e-4, alpha=0.9, eps=1e-7
    )
    loss_fn = nn.BCEWithLogitsLoss()
    xt = torch.from_numpy(x.astype(np.int64))
    yt = torch.from_numpy(y.astype(np.float32))

    def epoch():
        order = torch.randperm(len(xt))
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(xt[index]), yt[index]).backward()
            optimizer.step()

    epoch()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plot(points, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"steps": "sequence length T", "batch": "batch size", "units": "units H"}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for ax, (axis, label) in zip(axes, labels.items()):
        rows = [p for p in points if p["axis"] == axis]
        xs = [p["value"] for p in rows]
        for key, name, style in (
            ("nprnn_s", "nprnn (Numba)", "o-"),
            ("torch_s", "PyTorch (best of 1, 2 threads)", "s--"),
        ):
            ys = [p.get(key) for p in rows]
            if any(v is not None for v in ys):
                ax.plot(xs, ys, style, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds per 20,000-sequence epoch")
        ax.axvline(BOOK[axis], color="grey", lw=0.8, ls=":")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"vary {label} (others: T=100, batch 64, H=8)", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("Training time per epoch, Embedding(500,16) -> SimpleRNN(H) -> Dense(1)")
    fig.tight_layout()
    from nprnn._io import atomic_open  # a failed write leaves the old PNG, not half a new one

    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sequences", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--torch-threads", default="1,2")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--out", default=None, help="folder for scaling.json / scaling.png")
    args = parser.parse_args(argv)

    sweeps = QUICK_SWEEPS if args.quick else SWEEPS
    sequences = 128 if args.quick else args.sequences
    repeats = 1 if args.quick else args.repeats
    base = {"steps": 20, "batch": 16, "units": 4} if args.quick else BOOK
    use_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    threads = [int(t) for t in args.torch_threads.split(",")]
    scale = 20000 / sequences
    rng = np.random.default_rng(0)
    points = []
    for axis, values in sweeps.items():
        for value in values:
            setting = {**base, axis: value}
            x = rng.integers(0, VOCAB, (sequences, setting["steps"]))
            y = rng.integers(0, 2, sequences)
            point = {"axis": axis, "value": value, **setting}
            point["nprnn_s"] = scale * time_nprnn(
                x, y, setting["steps"], setting["batch"], setting["units"], repeats
            )
            if use_torch:
                per_thread = {
                    t: scale
                    * time_torch(
                        x, y, setting["steps"], setting["batch"], setting["units"], repeats, t
                    )
                    for t in threads
                }
                point["torch_by_threads_s"] = per_thread
                point["torch_s"] = min(per_thread.values())
                point["torch_over_nprnn"] = point["torch_s"] / point["nprnn_s"]
            points.append(point)
            print(
                f"{axis}={value}: nprnn {point['nprnn_s']:.3f} s"
                + (f", torch {point['torch_s']:.3f} s" if use_torch else ""),
                flush=True,
            )

    print()
    print(
        table(
            [
                [
                    p["axis"],
                    p["value"],
                    p["nprnn_s"],
                    p.get("torch_s"),
                    None if "torch_over_nprnn" not in p else f"{p['torch_over_nprnn']:.1f}x",
                ]
                for p in points
            ],
            ["axis", "value", "nprnn s/epoch", "torch s/epoch", "torch / nprnn"],
        )
    )
    folder = Path(args.out) if args.out else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / "scaling.png"
    plot(points, png)
    path = write_json(
        "scaling.json",
        {
            "quick": args.quick,
            "sequences": sequences,
            "scaled_to": 20000,
            "machine": machine(),
            "torch": use_torch,
            "points": points,
        },
        folder,
    )
    print(f"wrote {path} and {png}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NPRNN_BACKEND", "numba")
    raise SystemExit(main())
