"""Model-level benchmark: the chapter's models in nprnn, PyTorch and Keras.

    python benchmarks/bench_models.py                       # full run, ~15 minutes
    python benchmarks/bench_models.py --quick               # tiny sizes, < 1 minute (CI)
    python benchmarks/bench_models.py --keras-python PATH/TO/kerasenv/bin/python
    python benchmarks/bench_models.py --before PATH/TO/OLD/CHECKOUT --repeats 3

Models, all trained with RMSprop(1e-4), binary cross-entropy, batch 64, Dense(1, sigmoid) on
top. Chapter 9-2: SimpleRNN(8) over 100 steps fed by

* ``embedding``     -- Embedding(500, 16) on the token ids;
* ``onehot_dense``  -- ``to_categorical(ids, 500)``, a dense float32 (N, 100, 500) array
                       (4 GB for the 20,000 training reviews, as in the book);
* ``onehot_sparse`` -- ``to_categorical(ids, 500, sparse=True)``, index-backed (nprnn);
                       PyTorch gathers rows of its input projection instead (its fastest
                       form of a one-hot input: the same maths as ``one_hot(ids) @ W_ih``).

Chapter 9-3, all after Embedding(500, 16):

* ``lstm``          -- LSTM(8);
* ``lstm2_dropout`` -- LSTM(8, dropout=0.3, return_sequences=True) then LSTM(8, dropout=0.3);
* ``gru``           -- GRU(8) (Keras 3's ``reset_after=True``, PyTorch's only GRU).

Data: synthetic, of the book's shapes (20,000 x 100 ids < 500 for training, 5,000 for
validation; predict on 25,000), and the real IMDB reviews when ``$NPRNN_DATA_DIR/imdb.npz``
exists (``load_data(num_words=500)``, the book's 80/20 split, padded to 100; predict on the
25,000 test reviews).

Peers, each configuration in its own subprocess (so that peak memory is its own):

* nprnn with the compiled kernels (``NPRNN_BACKEND=numba``) and with the NumPy reference
  (``NPRNN_BACKEND=numpy``, fewer timed epochs);
* PyTorch, ``torch.set_num_threads`` 1 and 2 (the table shows the faster): ``nn.RNN(tanh)``,
  ``nn.LSTM`` or ``nn.GRU`` (``batch_first``) with ``bias_hh`` zeroed and frozen for the
  RNN and the LSTM (one bias, as Keras; the GRU keeps both, as Keras 3's ``reset_after``),
  ``nn.Embedding``, ``nn.Linear`` + ``BCEWithLogitsLoss``, ``RMSprop(lr=1e-4, alpha=0.9,
  eps=1e-7)``. Dropout as Keras 3: one mask per sequence, shape (N, 1, D), scaled by
  1/(1-p), multiplied into the layer's inputs (PyTorch's own ``nn.LSTM(dropout=)`` and
  ``nn.Dropout`` would draw a new mask at every step, and ``nn.LSTM`` never drops the first
  layer's inputs);
* Keras 3 with the TensorFlow backend, in the interpreter given by ``--keras-python`` (by
  default this one, if it can import keras).

Measured: seconds per training epoch (one ``fit(epochs=1)`` call, or the equivalent loop in
PyTorch; median of the timed epochs after a warm-up epoch), seconds per validation pass
(``evaluate`` on the 5,000, batch 64), their sum per epoch ("epoch with validation", the
median of the sums), seconds to predict 25,000 sequences (batch ``--predict-batch``, default
1024; median of 3 after a warm-up on a slice), and peak resident memory of the process. For
the nprnn embedding model also ``fit(epochs=1)`` called 5 times against one ``fit(epochs=5)``
(per-call overhead). The compiled floor of each model: the FLOPs of one epoch with
validation over this machine's single-core float32 matrix-product throughput.

``--before DIR`` instead runs only the nprnn compiled rows of the chosen models (default the
9-2 ``embedding,onehot_sparse``) twice per repetition, once with ``PYTHONPATH=DIR`` (an older
checkout) and once with this one, interleaved, and prints both with their ratio.

Prints tables; writes ``benchmarks/results/models.json`` (``before_after.json``).
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
MODELS_9_2 = ("embedding", "onehot_dense", "onehot_sparse")
MODELS_9_3 = ("lstm", "lstm2_dropout", "gru")
MODELS = MODELS_9_2 + MODELS_9_3
VOCAB, EMBED, UNITS, DROPOUT = 500, 16, 8, 0.3
#: Targets of the fused-step issue: epoch with validation, and predict, vs PyTorch's best.
TARGET_TRAIN = {**dict.fromkeys(MODELS_9_2, 20.0), **dict.fromkeys(MODELS_9_3, 10.0)}
TARGET_PREDICT = 5.0


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

    def encode(ids):
        return ids

    if kind == "embedding":
        recurrent = [layers.SimpleRNN(UNITS)]
    elif kind == "lstm":
        recurrent = [layers.LSTM(UNITS)]
    elif kind == "lstm2_dropout":
        recurrent = [
            layers.LSTM(UNITS, dropout=DROPOUT, return_sequences=True),
            layers.LSTM(UNITS, dropout=DROPOUT),
        ]
    elif kind == "gru":
        recurrent = [layers.GRU(UNITS)]
    else:
        recurrent = None
    if recurrent is not None:
        stack = [layers.Embedding(VOCAB, EMBED, input_length=steps), *recurrent]
    else:
        stack = [layers.SimpleRNN(UNITS, input_shape=(steps, VOCAB))]
        sparse = kind == "onehot_sparse"

        def encode(ids):
            return nprnn.utils.to_categorical(ids, num_classes=VOCAB, sparse=sparse)

    model = nprnn.Sequential([*stack, layers.Dense(1, activation="sigmoid")])
    model.compile(
        optimizer=nprnn.optimizers.RMSprop(1e-4), loss="binary_crossentropy", metrics=["accuracy"]
    )
    x_train, x_val = encode(data["x_train"]), encode(data["x_val"])
    y_train, y_val = data["y_train"], data["y_val"]
    predict_inputs = (
        [x_train, x_val] if data["predict_is_train_val"] else [encode(data["x_predict"])]
    )
    result = _run_keras_like(spec, model, x_train, y_train, x_val, y_val, predict_inputs)
    if spec.get("fit_loop"):
        result.update(_fit_loop_overhead(model, x_train, y_train, spec["batch_size"]))
    return result


def _fit_loop_overhead(model, x, y, batch_size, calls=5, repeats=3):
    """``fit(epochs=1)`` called ``calls`` times vs one ``fit(epochs=calls)``, interleaved;
    medians over ``repeats``."""
    loop, single = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
        loop.append(time.perf_counter() - start)
        single.append(
            _timed(lambda: model.fit(x, y, epochs=calls, batch_size=batch_size, verbose=0))[0]
        )
    loop_s, single_s = statistics.median(loop), statistics.median(single)
    return {
        "fit_loop_calls": calls,
        "fit_loop_s": loop_s,
        "fit_single_s": single_s,
        "fit_loop_all_s": loop,
        "fit_single_all_s": single,
        "fit_loop_overhead": loop_s / single_s - 1.0,
    }


def worker_torch(spec, data):
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    kind = spec["model"]

    def freeze_zero(parameter):
        """A second bias PyTorch has and Keras has not: zero and frozen."""
        with torch.no_grad():
            parameter.zero_()
        parameter.requires_grad_(False)

    def sequence_dropout(x, training):
        """Keras 3's input dropout: one mask per sequence, (N, 1, D), reused at every step."""
        if not training:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - DROPOUT)
        return x * keep.div_(1.0 - DROPOUT)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = None
            if kind == "onehot_sparse":
                # one_hot(ids) @ W_ih is a gather of W_ih's rows: nn.Embedding(500, 8) holds
                # them, the RNN's own input weight is the identity (frozen)
                self.embedding = nn.Embedding(VOCAB, UNITS)
                self.rnn = nn.RNN(UNITS, UNITS, nonlinearity="tanh", batch_first=True)
                with torch.no_grad():
                    self.rnn.weight_ih_l0.copy_(torch.eye(UNITS))
                self.rnn.weight_ih_l0.requires_grad_(False)
            elif kind == "onehot_dense":
                self.rnn = nn.RNN(VOCAB, UNITS, nonlinearity="tanh", batch_first=True)
            else:
                self.embedding = nn.Embedding(VOCAB, EMBED)
                cls = {"embedding": nn.RNN, "lstm": nn.LSTM, "lstm2_dropout": nn.LSTM}.get(
                    kind, nn.GRU
                )
                self.rnn = cls(EMBED, UNITS, batch_first=True)
            self.rnn2 = nn.LSTM(UNITS, UNITS, batch_first=True) if kind == "lstm2_dropout" else None
            for rnn in (self.rnn, self.rnn2):
                if rnn is not None and not isinstance(rnn, nn.GRU):
                    freeze_zero(rnn.bias_hh_l0)
            self.out = nn.Linear(UNITS, 1)

        def forward(self, x):
            if self.embedding is not None:
                x = self.embedding(x)
            if kind == "lstm2_dropout":
                x, _ = self.rnn(sequence_dropout(x, self.training))
                _, (h, _) = self.rnn2(sequence_dropout(x, self.training))
            else:
                _, h = self.rnn(x)
                if kind == "lstm":
                    h = h[0]
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
        net.eval()
        with torch.no_grad():
            net(predict_inputs[0][:64])

    result = _run_protocol(spec, epoch, validate, predict, predict_warmup)
    result["parameters"] = sum(p.numel() for p in params)
    return result


def worker_keras(spec, data):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(0)
    kind, steps = spec["model"], data["x_train"].shape[1]
    if kind == "onehot_dense":
        stack = [keras.Input((steps, VOCAB))]
    elif kind == "onehot_sparse":
        stack = [
            keras.Input((steps,), dtype="int32"),
            keras.layers.Lambda(lambda t: keras.ops.one_hot(t, VOCAB)),
        ]
    else:
        stack = [keras.Input((steps,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED)]
    if kind == "lstm":
        stack.append(keras.layers.LSTM(UNITS))
    elif kind == "lstm2_dropout":
        stack.append(keras.layers.LSTM(UNITS, dropout=DROPOUT, return_sequences=True))
        stack.append(keras.layers.LSTM(UNITS, dropout=DROPOUT))
    elif kind == "gru":
        stack.append(keras.layers.GRU(UNITS))
    else:
        stack.append(keras.layers.SimpleRNN(UNITS))
    model = keras.Sequential(stack + [keras.layers.Dense(1, activation="sigmoid")])
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
    result["validation_all_s"] = val
    result["train_val_epoch_s"] = statistics.median(t + v for t, v in zip(train, val))
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


def run_worker(python, spec, env_extra, timeout, root=ROOT):
    """Run one configuration in a subprocess importing nprnn from ``root``."""
    env = dict(os.environ, PYTHONPATH=str(root), **env_extra)
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


def load_average():
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


# ======================================================================================
# The compiled floor: FLOPs of one epoch over single-core matrix-product throughput
# ======================================================================================
#: Elementwise operations per unit and step of each cell's forward pass (adds of the
#: projection and biases, activations counted as one operation, gate products).
_CELL = {"simple": (1, 2), "lstm": (4, 13), "gru": (3, 14)}  # gates G, elementwise per unit


def epoch_flops(model, n_train, n_val, steps, batch=64):
    """FLOPs of one training epoch plus one validation pass of ``model``, as nprnn computes
    it (a dict of the parts).

    Matrix products count 2 m n k; a backward pass counts twice its forward products
    (gradients of the inputs and of the weights) and twice its elementwise work; the
    embedding models project the (500, 16) table once per batch and gather rows (the
    one-hot index-backed model gathers rows of W_x), the dense one-hot model multiplies
    the (N, T, 500) array. RMSprop: 6 operations per parameter per batch."""
    H, V, E = UNITS, VOCAB, EMBED
    cell = {"lstm": "lstm", "lstm2_dropout": "lstm", "gru": "gru"}.get(model, "simple")
    G, elementwise = _CELL[cell]
    layers = 2 if model == "lstm2_dropout" else 1
    batches_train = -(-n_train // batch)
    batches_val = -(-n_val // batch)
    step_fwd = layers * (2 * H * G * H + elementwise * H)  # per sample and step
    if layers == 2:
        step_fwd += 2 * H * G * H  # second layer's input projection
    if model == "lstm2_dropout":
        step_fwd += E + H  # the two input masks
    table = 0
    if model == "onehot_dense":
        step_fwd += 2 * V * G * H
    elif model != "onehot_sparse":
        table = 2 * V * E * G * H  # (table @ W_x + b) once per batch
    params = G * H * ((E if model not in ("onehot_dense", "onehot_sparse") else V) + H + 2)
    params += (layers - 1) * G * H * (2 * H + 2) + H + 1
    if model not in ("onehot_dense", "onehot_sparse"):
        params += V * E
    scatter = G * H  # per sample and step: the gradient rows added into the table
    train = n_train * steps * (3 * step_fwd + scatter) + batches_train * (3 * table + 6 * params)
    validation = n_val * steps * step_fwd + batches_val * table
    return {"train": train, "validation": validation, "total": train + validation}


def single_core_gflops(size=1024, repeats=7):
    """Best float32 matrix-product throughput of one core (BLAS limited to one thread)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        a @ b
        best = min(_timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2 * size**3 / best / 1e9


# ======================================================================================
# Tables
# ======================================================================================
def _ratio(value):
    return None if value is None else f"{value:.1f}x"


def best_torch(results):
    """PyTorch's best per (dataset, model family), over thread settings and, for the
    one-hot models, over a dense array and the gather of input-projection rows."""

    def family(model):
        return "onehot" if model.startswith("onehot") else model

    best = {}
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            key = (row["dataset"], family(row["model"]))
            old = best.setdefault(key, {})
            for metric in ("train_epoch_s", "train_val_epoch_s", "validation_s", "predict_s"):
                if metric in row:
                    old[metric] = min(old.get(metric, float("inf")), row[metric])
    return lambda row: best.get((row["dataset"], family(row["model"])))


def render(results, sizes, predict_batch, notes, floor=None):
    """The tables of a run (also from a saved models.json: ``--table-only PATH``)."""
    from _common import table

    reference = best_torch(results)
    fastest_threads = {}
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            key = (row["dataset"], row["model"])
            if key not in fastest_threads or (
                row["train_val_epoch_s"] < fastest_threads[key]["train_val_epoch_s"]
            ):
                fastest_threads[key] = row
    lines = []
    for row in results:
        if row["peer"].startswith("torch") and "train_epoch_s" in row:
            if row is not fastest_threads[(row["dataset"], row["model"])]:
                continue
        ref = reference(row)
        train = train_val = predict = None
        if ref and "train_epoch_s" in row:
            train = ref["train_epoch_s"] / row["train_epoch_s"]
            train_val = ref["train_val_epoch_s"] / row["train_val_epoch_s"]
            predict = ref["predict_s"] / row["predict_s"]
        target = None
        if row["peer"] == "nprnn-numba":
            target = f"{TARGET_TRAIN[row['model']]:.0f}x / {TARGET_PREDICT:.0f}x"
        lines.append(
            [
                row["dataset"],
                row["model"],
                row["peer"],
                row.get("train_epoch_s"),
                row.get("validation_s"),
                row.get("train_val_epoch_s"),
                row.get("predict_s"),
                row.get("peak_rss_mib"),
                _ratio(train),
                _ratio(train_val),
                _ratio(predict),
                target,
                row.get("load_1min"),
                row.get("error", ""),
            ]
        )
    headers = [
        "data",
        "model",
        "peer",
        "train s/epoch",
        "val s",
        "epoch+val s",
        "predict s",
        "peak MiB",
        "train vs torch",
        "epoch+val vs torch",
        "predict vs torch",
        "target",
        "load",
        "note",
    ]
    print()
    print(
        f"Training: {sizes['n_train']} x {sizes['steps']}, batch 64; validation "
        f"{sizes['n_val']}; predict train+val (synthetic) or the 25,000 test reviews (imdb),"
        f" batch {predict_batch}. Medians. 'vs torch' = PyTorch's best (over thread "
        "settings and, for one-hot, over a dense array and a row gather) / this row; "
        "target = epoch+val / predict; load = 1-minute load average when the row started."
    )
    print(table(lines, headers))
    loops = [row for row in results if "fit_loop_overhead" in row]
    for row in loops:
        print(
            f"\n{row['dataset']} {row['model']} {row['peer']}: fit(epochs=1) x "
            f"{row['fit_loop_calls']} = {row['fit_loop_s']:.3f} s, fit(epochs="
            f"{row['fit_loop_calls']}) = {row['fit_single_s']:.3f} s: "
            f"{100 * row['fit_loop_overhead']:+.1f}% (target <= +5%)"
        )
    if floor:
        floor_lines = []
        for row in results:
            if row["peer"] != "nprnn-numba" or "train_val_epoch_s" not in row:
                continue
            flops = epoch_flops(row["model"], sizes["n_train"], sizes["n_val"], sizes["steps"])
            floor_s = flops["total"] / (floor["gflops"] * 1e9)
            floor_lines.append(
                [
                    row["dataset"],
                    row["model"],
                    flops["total"] / 1e9,
                    floor_s,
                    row["train_val_epoch_s"],
                    f"{row['train_val_epoch_s'] / floor_s:.0f}x",
                ]
            )
        print(
            f"\nCompiled floor: FLOPs of one epoch with validation / {floor['gflops']:.0f} "
            "GFLOP/s (one core, float32 1024^3 matrix product, best of 7)"
        )
        print(
            table(
                floor_lines,
                ["data", "model", "GFLOP", "floor s", "nprnn epoch+val s", "above floor"],
            )
        )
    for note in notes:
        print(note)


def render_before_after(payload):
    from _common import table

    lines = []
    for model, pair in payload["models"].items():
        before, after = pair["before"], pair["after"]
        line = [model]
        for metric in ("train_epoch_s", "train_val_epoch_s", "predict_s"):
            b, a = before.get(metric), after.get(metric)
            ratio = None if not (a and b) else f"{100 * (a / b - 1):+.1f}%"
            line += [b, a, ratio]
        lines.append(line)
    print(
        f"\nnprnn compiled, before ({payload['before']}) vs after (this checkout); medians "
        f"over {payload['repeats']} interleaved repetitions of each worker's median; "
        f"load {payload['load_start']} -> {payload['load_end']}; negative = faster now"
    )
    print(
        table(
            lines,
            [
                "model",
                "train before",
                "train after",
                "change",
                "epoch+val before",
                "epoch+val after",
                "change",
                "predict before",
                "predict after",
                "change",
            ],
        )
    )


def compare_before(args, models, sizes, files, spec_base):
    """nprnn-numba of ``models`` under ``args.before`` and this checkout, interleaved."""
    runs = {model: {"before": [], "after": []} for model in models}
    load_start = load_average()
    for repeat in range(args.repeats):
        order = [("before", args.before), ("after", ROOT)]
        if repeat % 2:
            order.reverse()  # neither version always runs first
        for model in models:
            for label, root in order:
                spec = {**spec_base, "model": model, "data": files["synthetic"]}
                print(f"run {repeat + 1} {model:13s} {label:6s} ...", end=" ", flush=True)
                row = run_worker(
                    sys.executable, spec, {"NPRNN_BACKEND": "numba"}, args.timeout, root=root
                )
                row["load_1min"] = load_average()
                print(row.get("train_epoch_s", row.get("error")), flush=True)
                runs[model][label].append(row)
    summary = {}
    for model, pair in runs.items():
        summary[model] = {}
        for label, rows in pair.items():
            ok = [row for row in rows if "train_epoch_s" in row]
            summary[model][label] = {
                metric: statistics.median(row[metric] for row in ok) if ok else None
                for metric in ("train_epoch_s", "validation_s", "train_val_epoch_s", "predict_s")
            }
            summary[model][label]["errors"] = [row["error"] for row in rows if "error" in row]
    return {
        "before": str(args.before),
        "repeats": args.repeats,
        "sizes": sizes,
        "load_start": load_start,
        "load_end": load_average(),
        "models": summary,
        "runs": runs,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny data (512 x 20), 1 timed epoch: a smoke run"
    )
    parser.add_argument(
        "--models",
        default=None,
        help=f"comma-separated subset of {','.join(MODELS)} (default all; --before: "
        "embedding,onehot_sparse)",
    )
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
        help="interpreter with keras + tensorflow (e.g. PATH/TO/kerasenv/bin/python)",
    )
    parser.add_argument("--no-imdb", action="store_true", help="skip the real-data rows")
    parser.add_argument(
        "--before",
        default=None,
        metavar="DIR",
        help="checkout of an older nprnn: compare its compiled rows with this one's",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repetitions for --before"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    parser.add_argument("--out", default=None, help="folder for models.json")
    parser.add_argument(
        "--table-only",
        default=None,
        metavar="JSON",
        help="print the tables of a saved models.json or before_after.json and exit",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)

    sys.path.insert(0, str(HERE))
    from _common import machine, write_json

    if args.table_only:
        saved = json.loads(Path(args.table_only).read_text())
        if "before" in saved:
            render_before_after(saved)
        else:
            render(
                saved["results"],
                saved["sizes"],
                saved["predict_batch"],
                saved["notes"],
                saved.get("floor"),
            )
        return 0

    default_models = "embedding,onehot_sparse" if args.before else ",".join(MODELS)
    models = [m for m in (args.models or default_models).split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"--models: unknown {unknown}; expected some of {','.join(MODELS)}")
    peers = [p for p in args.peers.split(",") if p]
    if args.quick:
        sizes = {"n_train": 512, "n_val": 128, "steps": 20}
        epochs = peer_epochs = 1
        warmup, predict_repeats = 1, 1
    else:
        sizes = {"n_train": 20000, "n_val": 5000, "steps": 100}
        epochs, peer_epochs = args.epochs, args.peer_epochs
        warmup, predict_repeats = 1, 3
    spec_base = {
        "framework": "nprnn",
        "batch_size": 64,
        "predict_batch": args.predict_batch,
        "warmup": warmup,
        "predict_repeats": predict_repeats,
        "threads": 1,
        "epochs": epochs,
    }

    torch_threads = args.torch_threads or ("1" if args.quick else "1,2")
    datasets = {"synthetic": synthetic_data(sizes["n_train"], sizes["n_val"], sizes["steps"])}
    notes = []
    if args.quick:
        notes.append("IMDB rows skipped in --quick mode")
    elif not args.no_imdb and not args.before:
        real = imdb_data(sizes["steps"])
        if real is None:
            notes.append("IMDB rows skipped: $NPRNN_DATA_DIR/imdb.npz not found")
        else:
            datasets["imdb"] = real

    if args.before:
        args.before = Path(args.before).resolve()
        if not (args.before / "nprnn" / "__init__.py").is_file():
            parser.error(f"--before: {args.before} holds no nprnn/__init__.py")
        with tempfile.TemporaryDirectory(prefix="nprnn-bench-") as tmp:
            files = {"synthetic": str(Path(tmp) / "synthetic.npz")}
            np.savez(files["synthetic"], **datasets["synthetic"])
            payload = compare_before(args, models, sizes, files, spec_base)
        payload["quick"] = args.quick
        payload["machine"] = machine()
        render_before_after(payload)
        path = write_json("before_after.json", payload, args.out)
        print(f"wrote {path}")
        return 0

    keras_python, keras_reason = keras_interpreter(args.keras_python)
    have_torch = torch_available()
    if "torch" in peers and not have_torch:
        notes.append(
            "PyTorch rows skipped: torch is not installed in this interpreter (it is not a "
            "dependency of nprnn; pip install torch to compare)"
        )
    configs = []  # (dataset, model, peer label, python, env, spec extras)
    for dataset in datasets:
        for model in models:
            for peer in peers:
                if dataset == "imdb" and peer not in ("nprnn-numba", "torch"):
                    continue  # real data only changes the numbers, not the code: keep it short
                if peer == "nprnn-numba":
                    extra = {"epochs": epochs}
                    if model == "embedding" and dataset == "synthetic":
                        extra["fit_loop"] = True
                    configs.append(
                        (dataset, model, peer, sys.executable, {"NPRNN_BACKEND": "numba"}, extra)
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
                                {"framework": "torch", "epochs": peer_epochs, "threads": threads},
                            )
                        )
                elif peer == "keras":
                    configs.append(
                        (
                            dataset,
                            model,
                            "keras",
                            keras_python,
                            {},
                            {"framework": "keras", "epochs": peer_epochs},
                        )
                    )

    results = []
    with tempfile.TemporaryDirectory(prefix="nprnn-bench-") as tmp:
        files = {}
        for name, data in datasets.items():
            files[name] = str(Path(tmp) / f"{name}.npz")
            np.savez(files[name], **data)
        for dataset, model, peer, python, env, extra in configs:
            row = {"dataset": dataset, "model": model, "peer": peer, "load_1min": load_average()}
            if peer.startswith("torch") and not have_torch:
                row["error"] = "PyTorch not installed"
            elif peer == "keras" and python is None:
                row["error"] = keras_reason
            else:
                spec = {**spec_base, "model": model, "data": files[dataset], **extra}
                print(f"running {dataset:9s} {model:13s} {peer:12s} ...", end=" ", flush=True)
                row.update(run_worker(python, spec, env, args.timeout))
                print(f"{row.get('train_epoch_s', row.get('error'))}", flush=True)
            results.append(row)

    floor = None if args.quick else {"gflops": single_core_gflops()}
    render(results, sizes, args.predict_batch, notes, floor)
    payload = {
        "quick": args.quick,
        "sizes": sizes,
        "predict_batch": args.predict_batch,
        "machine": machine(),
        "notes": notes,
        "floor": floor,
        "results": results,
    }
    path = write_json("models.json", payload, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
