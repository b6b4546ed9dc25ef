"""Model-level benchmark: the chapter's three models in nprnn, PyTorch and Keras.

    python benchmarks/bench_models.py                       # full run, ~10 minutes
    python benchmarks/bench_models.py --quick               # tiny sizes, < 1 minute (CI)
    python benchmarks/bench_models.py --keras-python /tmp/kerasenv/bin/python

Models (chapter 9 of the book): SimpleRNN(8) over 100 steps then Dense(1, sigmoid), fed by

* ``embedding``     -- Embedding(500, 16) on the token ids;
* ``onehot_dense``  -- ``to_categorical(ids, 500)``, a dense float32 (N, 100, 500) array
                       (4 GB for the 20,000 training reviews, as in the book);
* ``onehot_sparse`` -- ``to_categorical(ids, 500, sparse=True)``, index-backed (nprnn);
                       PyTorch and Keras one-hot encode each batch on the fly instead.

trained with RMSprop(1e-4), binary cross-entropy, batch 64, on synthetic data of the book's
shapes (20,000 x 100 ids < 500 for training, 5,000 for validation; predict on 25,000), and
on the real IMDB reviews when ``$NPRNN_DATA_DIR/imdb.npz`` exists (``load_data(num_words=
500)``, the book's 80/20 split, padded to 100; predict on the 25,000 test reviews).

Peers, each configuration in its own subprocess (so that peak memory, ``ru_maxrss``, is its
own):

* nprnn with the compiled kernels (``NPRNN_BACKEND=numba``) and with the NumPy reference
  (``NPRNN_BACKEND=numpy``, fewer timed epochs);
* PyTorch (``nn.RNN(tanh, batch_first)`` with ``bias_hh`` zeroed and frozen, so one bias as
  in Keras; ``nn.Embedding``; ``nn.Linear`` + ``BCEWithLogitsLoss``;
  ``RMSprop(lr=1e-4, alpha=0.9, eps=1e-7)``), with ``torch.set_num_threads`` 1 and 2; the
  table shows the faster;
* Keras 3 with the TensorFlow backend, in the interpreter given by ``--keras-python`` (by
  default this one, if it can import keras).

Measured: seconds per training epoch (one ``fit(epochs=1)`` call, or the equivalent loop in
PyTorch; median of the timed epochs after a warm-up epoch), seconds per validation pass
(``evaluate`` on the 5,000, batch 64; median), seconds to predict 25,000 sequences (batch
``--predict-batch``, default 1024; median of 3 after a warm-up on a slice), and peak
resident memory of the process. Prints a table; writes ``benchmarks/results/models.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS = ("embedding", "onehot_dense", "onehot_sparse")
VOCAB, EMBED, UNITS = 500, 16, 8


# ======================================================================================
# Workers (run in subprocesses; they import only what their framework needs)
# ======================================================================================
def _peak_rss_mib():
    """Peak resident memory of this process in MiB.

    VmHWM from /proc (Linux): ``ru_maxrss`` would be wrong here, because after fork + exec
    Linux carries the *parent's* peak over into the child's ru_maxrss."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def worker_nprnn(spec, data):
    import nprnn
    from nprnn import layers

    nprnn.utils.set_random_seed(0)
    kind, steps = spec["model"], data["x_train"].shape[1]
    if kind == "embedding":
        model = nprnn.Sequential(
            [
                layers.Embedding(VOCAB, EMBED, input_length=steps),
                layers.SimpleRNN(UNITS),
                layers.Dense(1, activation="sigmoid"),
            ]
        )

        def encode(ids):
            return ids
    else:
        model = nprnn.Sequential(
            [
                layers.SimpleRNN(UNITS, input_shape=(steps, VOCAB)),
                layers.Dense(1, activation="sigmoid"),
            ]
        )
        sparse = kind == "onehot_sparse"

        def encode(ids):
            return nprnn.utils.to_categorical(ids, num_classes=VOCAB, sparse=sparse)

    model.compile(
        optimizer=nprnn.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    x_train, x_val = encode(data["x_train"]), encode(data["x_val"])
    y_train, y_val = data["y_train"], data["y_val"]
    predict_inputs = (
        [x_train, x_val] if data["predict_is_train_val"] else [encode(data["x_predict"])]
    )
    return _run_keras_like(spec, model, x_train, y_train, x_val, y_val, predict_inputs)


def worker_torch(spec, data):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    kind = spec["model"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, EMBED) if kind == "embedding" else None
            self.rnn = nn.RNN(
                EMBED if kind == "embedding" else VOCAB,
                UNITS,
                nonlinearity="tanh",
                batch_first=True,
            )
            with torch.no_grad():  # one bias, as Keras' SimpleRNN
                self.rnn.bias_hh_l0.zero_()
            self.rnn.bias_hh_l0.requires_grad_(False)
            self.out = nn.Linear(UNITS, 1)

        def forward(self, x):
            if kind == "embedding":
                x = self.embedding(x)
            elif kind == "onehot_sparse":
                x = nn.functional.one_hot(x, VOCAB).float()
            _, h = self.rnn(x)
            return self.out(h[-1]).squeeze(-1)

    def encode(ids):
        if kind == "onehot_dense":
            dense = np.zeros(ids.shape + (VOCAB,), dtype=np.float32)
            np.put_along_axis(dense, ids[..., None].astype(np.int64), 1.0, axis=-1)
            return torch.from_numpy(dense)
        return torch.from_numpy(ids.astype(np.int64))

    net = Net()
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.RMSprop(params, lr=1e-4, alpha=0.9, eps=1e-7)
    loss_fn = nn.BCEWithLogitsLoss()
    x_train, x_val = encode(data["x_train"]), encode(data["x_val"])
    y_train = torch.from_numpy(data["y_train"].astype(np.float32))
    y_val = torch.from_numpy(data["y_val"].astype(np.float32))
    predict_inputs = (
        [x_train, x_val] if data["predict_is_train_val"] else [encode(data["x_predict"])]
    )
    batch = spec["batch_size"]

    def epoch():
        net.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()

    def validate():
        net.eval()
        total, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x_val), batch):
                logits = net(x_val[start : start + batch])
                target = y_val[start : start + batch]
                total += float(loss_fn(logits, target)) * len(target)
                correct += int(((logits > 0).float() == target).sum())
        return total / len(x_val), correct / len(x_val)

    def predict():
        net.eval()
        outputs = []
        with torch.no_grad():
            for x in predict_inputs:
                for start in range(0, len(x), spec["predict_batch"]):
                    outputs.append(torch.sigmoid(net(x[start : start + spec["predict_batch"]])))
        return outputs

    def predict_warmup():
        with torch.no_grad():
            net(predict_inputs[0][:64])

    return _run_protocol(spec, epoch, validate, predict, predict_warmup)


def worker_keras(spec, data):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    kind, steps = spec["model"], data["x_train"].shape[1]
    if kind == "embedding":
        stack = [keras.Input((steps,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED)]
    elif kind == "onehot_dense":
        stack = [keras.Input((steps, VOCAB))]
    else:
        stack = [
            keras.Input((steps,), dtype="int32"),
            keras.layers.Lambda(lambda t: keras.ops.one_hot(t, VOCAB)),
        ]
    model = keras.Sequential(
        stack + [keras.layers.SimpleRNN(UNITS), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )

    def encode(ids):
        if kind == "onehot_dense":
            dense = np.zeros(ids.shape + (VOCAB,), dtype=np.float32)
            np.put_along_axis(dense, ids[..., None].astype(np.int64), 1.0, axis=-1)
            return dense
        return ids.astype(np.int32)

    x_train, x_val = encode(data["x_train"]), encode(data["x_val"])
    y_train, y_val = data["y_train"].astype(np.float32), data["y_val"].astype(np.float32)
    predict_inputs = (
        [x_train, x_val] if data["predict_is_train_val"] else [encode(data["x_predict"])]
    )
    return _run_keras_like(spec, model, x_train, y_train, x_val, y_val, predict_inputs)


def _run_keras_like(spec, model, x_train, y_train, x_val, y_val, predict_inputs):
    """The timing protocol for a model with Keras' fit / evaluate / predict (nprnn or Keras)."""
    batch = spec["batch_size"]

    def epoch():
        model.fit(x_train, y_train, epochs=1, batch_size=batch, verbose=0)

    def validate():
        return model.evaluate(x_val, y_val, batch_size=batch, verbose=0)

    def predict():
        return [
            model.predict(x, batch_size=spec["predict_batch"], verbose=0) for x in predict_inputs
        ]

    def predict_warmup():
        model.predict(predict_inputs[0][:64], batch_size=64, verbose=0)

    return _run_protocol(spec, epoch, validate, predict, predict_warmup)


def _run_protocol(spec, epoch, validate, predict, predict_warmup):
    result = {"warmup_epochs": spec["warmup"], "timed_epochs": spec["epochs"]}
    started = time.perf_counter()
    for _ in range(spec["warmup"]):
        epoch()
        validate()
    result["first_epochs_s"] = time.perf_counter() - started
    train, val = [], []
    for _ in range(spec["epochs"]):
        train.append(_timed(epoch)[0])
        val.append(_timed(validate)[0])
    result["train_epoch_s"] = statistics.median(train)
    result["train_epoch_all_s"] = train
    result["validation_s"] = statistics.median(val)
    predict_warmup()
    runs = [_timed(predict)[0] for _ in range(spec["predict_repeats"])]
    result["predict_s"] = statistics.median(runs)
    result["predict_all_s"] = runs
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def worker_main(spec_json):
    spec = json.loads(spec_json)
    loaded = np.load(spec["data"])
    data = {key: loaded[key] for key in loaded.files}
    data["predict_is_train_val"] = "x_predict" not in data
    framework = spec["framework"]
    if framework.startswith("nprnn"):
        result = worker_nprnn(spec, data)
    elif framework == "torch":
        result = worker_torch(spec, data)
    elif framework == "keras":
        result = worker_keras(spec, data)
    else:
        raise ValueError(f"framework: unknown {framework!r}")
    print("RESULT " + json.dumps(result))
    return 0


# ======================================================================================
# Parent: data, configurations, table
# ======================================================================================
def synthetic_data(n_train, n_val, steps, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, VOCAB, (n_train, steps), dtype=np.int32),
        "y_train": rng.integers(0, 2, n_train).astype(np.int32),
        "x_val": rng.integers(0, VOCAB, (n_val, steps), dtype=np.int32),
        "y_val": rng.integers(0, 2, n_val).astype(np.int32),
    }


def imdb_data(steps, limit=None):
    """The book's IMDB preparation, or None when $NPRNN_DATA_DIR/imdb.npz is missing."""
    folder = os.environ.get("NPRNN_DATA_DIR")
    if not folder or not (Path(folder) / "imdb.npz").is_file():
        return None
    sys.path.insert(0, str(ROOT))
    from sklearn.model_selection import train_test_split

    from nprnn.datasets import imdb
    from nprnn.utils import pad_sequences

    (train_input, train_target), (test_input, _) = imdb.load_data(
        path=str(Path(folder) / "imdb.npz"), num_words=VOCAB
    )
    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42
    )
    data = {
        "x_train": pad_sequences(train_input, maxlen=steps),
        "y_train": np.asarray(train_target, dtype=np.int32),
        "x_val": pad_sequences(val_input, maxlen=steps),
        "y_val": np.asarray(val_target, dtype=np.int32),
        "x_predict": pad_sequences(test_input, maxlen=steps),
    }
    if limit:
        data = {k: v[:limit] for k, v in data.items()}
    return data


def keras_interpreter(option):
    """The Python to run the Keras peer with, or None (with a reason) when there is none."""
    if option:
        return option, None
    if importlib.util.find_spec("keras") is None:
        return None, "Keras not installed (pass --keras-python)"
    return sys.executable, None


def torch_available():
    # find_spec, not import: the parent stays small, its memory is not the workers'
    return importlib.util.find_spec("torch") is not None


def run_worker(python, spec, env_extra, timeout):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    command = [python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def render(results, sizes, predict_batch, notes):
    """The table of a run (also from a saved models.json: ``--table-only PATH``)."""
    from _common import table

    # PyTorch's best: over thread settings, and for the one-hot models over both ways of
    # feeding one-hot data (a dense array, or one_hot() per batch), so that no nprnn row is
    # flattered by a slow PyTorch variant.
    def family(model):
        return "onehot" if model.startswith("onehot") else model

    best_torch = {}
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            key = (row["dataset"], family(row["model"]))
            old = best_torch.setdefault(key, {})
            for metric in ("train_epoch_s", "validation_s", "predict_s"):
                old[metric] = min(old.get(metric, float("inf")), row[metric])
    fastest_threads = {}
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            key = (row["dataset"], row["model"])
            if key not in fastest_threads or (
                row["train_epoch_s"] < fastest_threads[key]["train_epoch_s"]
            ):
                fastest_threads[key] = row
    lines = []
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            if row is not fastest_threads[(row["dataset"], row["model"])]:
                continue
        ref = best_torch.get((row["dataset"], family(row["model"])))
        speed = predict_speed = None
        if ref and "train_epoch_s" in row:
            speed = ref["train_epoch_s"] / row["train_epoch_s"]
            predict_speed = ref["predict_s"] / row["predict_s"]
        lines.append(
            [
                row["dataset"],
                row["model"],
                row["peer"],
                row.get("train_epoch_s"),
                row.get("validation_s"),
                row.get("predict_s"),
                row.get("peak_rss_mib"),
                None if speed is None else f"{speed:.1f}x",
                None if predict_speed is None else f"{predict_speed:.1f}x",
                row.get("error", ""),
            ]
        )
    headers = [
        "data",
        "model",
        "peer",
        "train s/epoch",
        "val s",
        "predict s",
        "peak MiB",
        "train vs torch",
        "predict vs torch",
        "note",
    ]
    print()
    print(
        f"Training: {sizes['n_train']} x {sizes['steps']}, batch 64; validation "
        f"{sizes['n_val']}; predict train+val (synthetic) or the 25,000 test reviews (imdb),"
        f" batch {predict_batch}. Medians. 'vs torch' = PyTorch's best (over thread "
        "settings and, for one-hot, over dense and per-batch one-hot) / this row."
    )
    print(table(lines, headers))
    for note in notes:
        print(note)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny data (512 x 20), 1 timed epoch: a smoke run"
    )
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--peers",
        default="nprnn-numba,nprnn-numpy,torch,keras",
        help="comma-separated subset of nprnn-numba,nprnn-numpy,torch,keras",
    )
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (nprnn compiled)")
    parser.add_argument(
        "--peer-epochs",
        type=int,
        default=3,
        help="timed epochs for PyTorch, Keras and the NumPy reference",
    )
    parser.add_argument("--predict-batch", type=int, default=1024)
    parser.add_argument(
        "--torch-threads",
        default=None,
        help="thread counts to try for PyTorch (default 1,2; --quick: 1)",
    )
    parser.add_argument(
        "--keras-python",
        default=None,
        help="interpreter with keras + tensorflow (e.g. /tmp/kerasenv/bin/python)",
    )
    parser.add_argument("--no-imdb", action="store_true", help="skip the real-data rows")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    parser.add_argument("--out", default=None, help="folder for models.json")
    parser.add_argument(
        "--table-only",
        default=None,
        metavar="JSON",
        help="print the table of a saved models.json and exit",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    sys.path.insert(0, str(HERE))
    from _common import machine, write_json

    if args.table_only:
        saved = json.loads(Path(args.table_only).read_text())
        render(saved["results"], saved["sizes"], saved["predict_batch"], saved["notes"])
        return 0

    models = [m for m in args.models.split(",") if m]
    peers = [p for p in args.peers.split(",") if p]
    if args.quick:
        sizes = {"n_train": 512, "n_val": 128, "steps": 20}
        epochs = peer_epochs = 1
        warmup, predict_repeats = 1, 1
    else:
        sizes = {"n_train": 20000, "n_val": 5000, "steps": 100}
        epochs, peer_epochs = args.epochs, args.peer_epochs
        warmup, predict_repeats = 1, 3

    torch_threads = args.torch_threads or ("1" if args.quick else "1,2")
    datasets = {"synthetic": synthetic_data(sizes["n_train"], sizes["n_val"], sizes["steps"])}
    notes = []
    if args.quick:
        notes.append("IMDB rows skipped in --quick mode")
    elif not args.no_imdb:
        real = imdb_data(sizes["steps"])
        if real is None:
            notes.append("IMDB rows skipped: $NPRNN_DATA_DIR/imdb.npz not found")
        else:
            datasets["imdb"] = real

    keras_python, keras_reason = keras_interpreter(args.keras_python)
    have_torch = torch_available()
    configs = []  # (dataset, model, peer label, python, env, spec extras)
    for dataset in datasets:
        for model in models:
            for peer in peers:
                if dataset == "imdb" and peer not in ("nprnn-numba", "torch"):
                    continue  # real data only changes the numbers, not the code: keep it short
                if peer == "nprnn-numba":
                    configs.append(
                        (
                            dataset,
                            model,
                            peer,
                            sys.executable,
                            {"NPRNN_BACKEND": "numba"},
                            {"epochs": epochs},
                        )
                    )
                elif peer == "nprnn-numpy":
                    configs.append(
                        (
                            dataset,
                            model,
                            peer,
                            sys.executable,
                            {"NPRNN_BACKEND": "numpy"},
                            {"epochs": peer_epochs},
                        )
                    )
                elif peer == "torch":
                    for threads in [int(t) for t in torch_threads.split(",")]:
                        configs.append(
                            (
                                dataset,
                                model,
                                f"torch-{threads}t",
                                sys.executable,
                                {},
                                {"epochs": peer_epochs, "threads": threads},
                            )
                        )
                elif peer == "keras":
                    configs.append(
                        (dataset, model, "keras", keras_python, {}, {"epochs": peer_epochs})
                    )

    results = []
    with tempfile.TemporaryDirectory(prefix="nprnn-bench-") as tmp:
        files = {}
        for name, data in datasets.items():
            files[name] = str(Path(tmp) / f"{name}.npz")
            np.savez(files[name], **data)
        for dataset, model, peer, python, env, extra in configs:
            row = {"dataset": dataset, "model": model, "peer": peer}
            if peer.startswith("torch") and not have_torch:
                row["error"] = "PyTorch not installed"
            elif peer == "keras" and python is None:
                row["error"] = keras_reason
            else:
                spec = {
                    "framework": peer.split("-")[0]
                    if peer != "nprnn-numba" and peer != "nprnn-numpy"
                    else "nprnn",
                    "model": model,
                    "data": files[dataset],
                    "batch_size": 64,
                    "predict_batch": args.predict_batch,
                    "warmup": warmup,
                    "predict_repeats": predict_repeats,
                    "threads": 1,
                    **extra,
                }
                print(f"running {dataset:9s} {model:13s} {peer:12s} ...", end=" ", flush=True)
                row.update(run_worker(python, spec, env, args.timeout))
                print(f"{row.get('train_epoch_s', row.get('error'))}", flush=True)
            results.append(row)

    render(results, sizes, args.predict_batch, notes)
    payload = {
        "quick": args.quick,
        "sizes": sizes,
        "predict_batch": args.predict_batch,
        "machine": machine(),
        "notes": notes,
        "results": results,
    }
    path = write_json("models.json", payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
