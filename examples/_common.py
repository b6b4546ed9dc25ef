"""What the chapter's examples share: arguments, the data as the book prepares it, the two
models exactly as the book builds them, the book's training settings, and small reporting
helpers (peak memory, JSON). Not an example itself; the scripts next to it import it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

# The book's numbers (TensorFlow 2.3), for the comparison tables.
BOOK = {
    "onehot": {"best_epoch": 32, "val_loss": 0.4533, "val_accuracy": 0.7916, "epochs_run": 35,
               "rerun_band": (0.779, 0.794)},
    "embedding": {"best_epoch": 28, "val_loss": 0.4575, "val_accuracy": 0.7934,
                  "epochs_run": 31, "rerun_band": (0.782, 0.793)},
    "train_length_mean": 239.00925,
    "train_length_median": 178.0,
}
TARGET_VAL_ACCURACY = 0.78

# Chapter 9-3 in the book's notebook (rickiepark/hg-mldl, 9-3.ipynb): best epoch (lowest
# val_loss, counted from 1), its val_loss and val_accuracy, epochs run, for the run printed in
# the book (TensorFlow 2.3), and the 2xLSTM checkpoint evaluated on the test set.
BOOK_9_3 = {
    "lstm": {"best_epoch": 41, "val_loss": 0.4273, "val_accuracy": 0.8056, "epochs_run": 44},
    "dropout": {"best_epoch": 47, "val_loss": 0.4286, "val_accuracy": 0.8020,
                "epochs_run": 50},
    "2rnn": {"best_epoch": 39, "val_loss": 0.4295, "val_accuracy": 0.8058, "epochs_run": 42,
             "test_loss": 0.4252, "test_accuracy": 0.8019},
    "gru": {"best_epoch": 52, "val_loss": 0.4338, "val_accuracy": 0.7994, "epochs_run": 55},
}
# The notebook re-run by its author on later versions (best val_accuracy of lstm, dropout,
# 2rnn, gru, then the 2xLSTM test accuracy), read from the notebook's history. The book's
# run saved a checkpoint every epoch (no save_best_only), so its test accuracy is the last
# epoch's; the reruns pass save_best_only=True, as this project does.
BOOK_9_3_RERUNS = {
    "TF 2.3 (book)": (0.8056, 0.8020, 0.8058, 0.7994, 0.8019),
    "TF 2.4": (0.8030, 0.8042, 0.7968, 0.7896, 0.7988),
    "TF 2.5": (0.8062, 0.7970, 0.8002, 0.7938, 0.8018),
    "TF 2.6": (0.7976, 0.7972, 0.7976, 0.7976, 0.8004),
    "TF 2.8": (0.8030, 0.8044, 0.7990, 0.7908, 0.7988),
    "TF 2.9": (0.8002, 0.8004, 0.7986, 0.7914, 0.7975),
    "TF 2.11-2.14": (0.8000, 0.8018, 0.7938, 0.7930, 0.7975),
    "Keras 3.4": (0.7934, 0.7904, 0.7844, 0.7978, 0.7848),
}
MODELS_9_3 = ("lstm", "dropout", "2rnn", "gru")


def rerun_band_9_3(name):
    """(lowest, highest) best val_accuracy of ``name`` (or 'test') over the notebook's runs."""
    column = (*MODELS_9_3, "test").index(name)
    values = [run[column] for run in BOOK_9_3_RERUNS.values()]
    return min(values), max(values)


# Sizes of --quick runs (a CI smoke test, not a result).
QUICK = {"train": 2000, "val": 500, "test": 1000, "epochs": 2}

NUM_WORDS = 500  # vocabulary kept by imdb.load_data
MAXLEN = 100  # pad_sequences length


def parser(description, **defaults):
    """The arguments every example takes: --quick, --output-dir, --data-dir, --seed."""
    arguments = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_argument("--quick", action="store_true",
                           help=f"a smoke run: {QUICK['train']} training reviews, "
                                f"{QUICK['epochs']} epochs")
    arguments.add_argument("--output-dir", default="outputs", type=Path,
                           help="where plots, checkpoints and results go (default: outputs/)")
    arguments.add_argument("--data-dir", type=Path, default=None,
                           help="folder holding imdb.npz and imdb_word_index.json (default: "
                                "$NPRNN_DATA_DIR, then nprnn's cache, then a download)")
    arguments.add_argument("--seed", type=int, default=defaults.get("seed", 42),
                           help="seed of the initial weights and shuffles (default: 42; the "
                                "book does not seed)")
    return arguments


def add_epochs_argument(arguments):
    """--epochs: the most epochs to train (default: the book's 100; --quick: QUICK's)."""
    arguments.add_argument("--epochs", type=int, default=None,
                           help=f"maximum epochs (default: 100, the book's; --quick: "
                                f"{QUICK['epochs']})")


def max_epochs(args):
    """The epoch limit that --epochs and --quick ask for."""
    return args.epochs or (QUICK["epochs"] if args.quick else 100)


def setup(args):
    """Apply --data-dir and --seed, create the output folder; return it."""
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            sys.exit(f"--data-dir: {args.data_dir} is not a folder")
        # nprnn.datasets reads NPRNN_DATA_DIR; child processes inherit it.
        os.environ["NPRNN_DATA_DIR"] = str(args.data_dir.resolve())
    import nprnn

    nprnn.utils.set_random_seed(args.seed)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    return args.output_dir


def load_chapter_data(quick=False, verbose=True):
    """The book's data pipeline: load_data(num_words=500), a 20,000 / 5,000 split with
    random_state=42, pad_sequences(maxlen=100). With ``quick``, the first reviews of each
    part are kept (QUICK sizes); the split itself is the book's.
    """
    from sklearn.model_selection import train_test_split

    from nprnn.datasets import imdb
    from nprnn.preprocessing.sequence import pad_sequences

    started = time.perf_counter()
    (train_input, train_target), (test_input, test_target) = imdb.load_data(
        num_words=NUM_WORDS)
    train_input, val_input, train_target, val_target = train_test_split(
        train_input, train_target, test_size=0.2, random_state=42)
    if quick:
        train_input, train_target = train_input[:QUICK["train"]], train_target[:QUICK["train"]]
        val_input, val_target = val_input[:QUICK["val"]], val_target[:QUICK["val"]]
        test_input, test_target = test_input[:QUICK["test"]], test_target[:QUICK["test"]]
    data = SimpleNamespace(
        train_input=train_input, train_target=train_target,
        val_input=val_input, val_target=val_target,
        test_input=test_input, test_target=test_target,
        train_seq=pad_sequences(train_input, maxlen=MAXLEN),
        val_seq=pad_sequences(val_input, maxlen=MAXLEN),
        test_seq=pad_sequences(test_input, maxlen=MAXLEN),
    )
    if verbose:
        print(f"data: {len(train_input):,} train / {len(val_input):,} validation / "
              f"{len(test_input):,} test reviews, padded to {MAXLEN} steps "
              f"({time.perf_counter() - started:.1f} s){'  [--quick subset]' if quick else ''}")
    return data


def build_onehot_model():
    """The book's first model: SimpleRNN(8) on (100, 500) one-hot steps, Dense(1, sigmoid)."""
    import nprnn as keras

    model = keras.Sequential()
    model.add(keras.layers.SimpleRNN(8, input_shape=(100, 500)))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def build_embedding_model():
    """The book's second model: Embedding(500, 16), SimpleRNN(8), Dense(1, sigmoid)."""
    import nprnn as keras

    model2 = keras.Sequential()
    model2.add(keras.layers.Embedding(500, 16, input_length=100))
    model2.add(keras.layers.SimpleRNN(8))
    model2.add(keras.layers.Dense(1, activation="sigmoid"))
    return model2


# The four models of chapter 9-3: label, checkpoint name (the book's), loss-plot name.
LABELS_9_3 = {
    "lstm": "LSTM(8)",
    "dropout": "LSTM(8, dropout=0.3)",
    "2rnn": "2 x LSTM(8, dropout=0.3)",
    "gru": "GRU(8)",
}


def build_9_3_model(name):
    """One of chapter 9-3's models, as the book builds it: Embedding(500, 16), then

    * ``lstm``: LSTM(8) (8,809 parameters);
    * ``dropout``: LSTM(8, dropout=0.3) (8,809);
    * ``2rnn``: LSTM(8, dropout=0.3, return_sequences=True), LSTM(8, dropout=0.3) (9,353);
    * ``gru``: GRU(8) (8,633);

    then Dense(1, activation='sigmoid').
    """
    import nprnn as keras

    if name not in MODELS_9_3:
        raise ValueError(f"name: expected one of {MODELS_9_3}, got {name!r}")
    model = keras.Sequential()
    model.add(keras.layers.Embedding(500, 16, input_length=100))
    if name == "lstm":
        model.add(keras.layers.LSTM(8))
    elif name == "dropout":
        model.add(keras.layers.LSTM(8, dropout=0.3))
    elif name == "2rnn":
        model.add(keras.layers.LSTM(8, dropout=0.3, return_sequences=True))
        model.add(keras.layers.LSTM(8, dropout=0.3))
    else:
        model.add(keras.layers.GRU(8))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    return model


def model_list(text, allowed=MODELS_9_3):
    """'lstm,gru' -> ['lstm', 'gru'], checked against ``allowed``."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {', '.join(allowed)}, got {text!r}")
    return names


def run_9_3_model(name, data, output_dir, epochs, args):
    """Train one 9-3 model with the book's settings, plot its loss curves, evaluate the
    reloaded checkpoint on the test set (as the book does for the 2xLSTM model), and write
    ``<name>_results.json``. Returns the results dict.
    """
    import nprnn as keras
    from nprnn import plotting

    started = time.perf_counter()
    book = BOOK_9_3[name]
    print(f"\n{'-' * 30} {LABELS_9_3[name]} {'-' * 30}")
    model = build_9_3_model(name)
    model.summary()
    checkpoint = output_dir / f"best-{name}-model.h5"
    history, early_stopping, fit_seconds = compile_and_fit(
        model, data.train_seq, data.train_target, (data.val_seq, data.val_target),
        checkpoint, epochs)
    results = summarize_fit(history, early_stopping)
    print(f"\nbest epoch {results['best_epoch']} of {results['epochs_run']}: val_loss "
          f"{results['val_loss']:.4f}, val_accuracy {results['val_accuracy']:.4f} (book: "
          f"epoch {book['best_epoch']} of {book['epochs_run']}, {book['val_loss']:.4f}, "
          f"{book['val_accuracy']:.4f}); fit took {fit_seconds:.0f} s")
    path = plotting.plot_history(history, output_dir / f"{name}-loss.png",
                                 best_epoch=results["best_epoch"],
                                 title=f"{LABELS_9_3[name]} on a 16-d word embedding")
    print("wrote", path)
    # The book's last cell: keras.models.load_model('best-2rnn-model.h5').evaluate(test_seq)
    restored = keras.models.load_model(checkpoint)
    test_loss, test_accuracy = restored.evaluate(data.test_seq, data.test_target, verbose=0)
    print(f"{checkpoint.name} reloaded, test: loss {test_loss:.4f}, accuracy "
          f"{test_accuracy:.4f} ({len(data.test_seq):,} reviews)"
          + (f" (book: {book['test_loss']:.4f}, {book['test_accuracy']:.4f})"
             if "test_accuracy" in book else ""))
    results.update({
        "model": name, "label": LABELS_9_3[name], "parameters": int(model.count_params()),
        "quick": args.quick, "seed": args.seed, "max_epochs": epochs,
        "test_loss": float(test_loss), "test_accuracy": float(test_accuracy),
        "checkpoint": checkpoint.name, "fit_seconds": fit_seconds,
        "seconds_per_epoch": fit_seconds / results["epochs_run"],
        "wall_seconds": time.perf_counter() - started,
    })
    write_json(output_dir / f"{name}_results.json", results)
    return results


def compile_and_fit(model, x, y, validation_data, checkpoint_path, epochs=100):
    """The book's training: RMSprop(1e-4), binary cross-entropy, batch 64, ModelCheckpoint
    (save_best_only) and EarlyStopping(patience=3, restore_best_weights=True).

    Returns (history, early_stopping, fit seconds).
    """
    import nprnn as keras

    rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
    model.compile(optimizer=rmsprop, loss="binary_crossentropy", metrics=["accuracy"])
    checkpoint_cb = keras.callbacks.ModelCheckpoint(str(checkpoint_path), save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    started = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, batch_size=64, validation_data=validation_data,
                        callbacks=[checkpoint_cb, early_stopping_cb])
    return history, early_stopping_cb, time.perf_counter() - started


def evaluate_in_chunks(model, encode, seq, target, chunk=5000):
    """``model.evaluate`` over ``encode(seq[i:i + chunk])`` pieces, weighted by size.

    For the dense one-hot test set (25,000 x 100 x 500 float32 = 5 GB at once).
    """
    loss_sum = accuracy_sum = 0.0
    for start in range(0, len(seq), chunk):
        part = slice(start, start + chunk)
        loss, accuracy = model.evaluate(encode(seq[part]), target[part], verbose=0)
        count = len(seq[part])
        loss_sum += loss * count
        accuracy_sum += accuracy * count
    return loss_sum / len(seq), accuracy_sum / len(seq)


def peak_memory_bytes():
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def gib(count):
    return f"{count / 2**30:.2f} GiB"


def summarize_fit(history, early_stopping):
    """Best epoch (from 1, the one EarlyStopping restored), its val_loss and val_accuracy."""
    values = history.history
    best = int(np.argmin(values["val_loss"]))
    if early_stopping.best_epoch != best:  # both pick the first minimum; say so if not
        print(f"note: EarlyStopping kept epoch {early_stopping.best_epoch + 1}, the lowest "
              f"val_loss is at epoch {best + 1}")
    return {
        "best_epoch": best + 1,
        "val_loss": float(values["val_loss"][best]),
        "val_accuracy": float(values["val_accuracy"][best]),
        "max_val_accuracy": float(np.max(values["val_accuracy"])),
        "epochs_run": len(values["val_loss"]),
        "history": {key: [float(v) for v in series] for key, series in values.items()},
    }


def write_json(path, document):
    from nprnn._io import atomic_open

    with atomic_open(path, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    return path


def word_list(num_words=NUM_WORDS):
    """The word each id 0 .. num_words - 1 stands for ('<pad>', '<start>', '<unk>', 'the'...)."""
    from nprnn.datasets import imdb

    words = imdb.decode_review(range(num_words), imdb.get_word_index()).split(" ")
    if len(words) != num_words:  # a word with a space in it: decode one by one
        index = imdb.get_word_index()
        words = [imdb.decode_review([i], index) for i in range(num_words)]
    return words


def seed_list(text):
    """``'1-5'`` -> [1, 2, 3, 4, 5]; ``'1,4,9'`` -> [1, 4, 9] (the seed sweeps' --seeds)."""
    seeds = []
    for part in text.split(","):
        if "-" in part:
            first, last = part.split("-")
            seeds.extend(range(int(first), int(last) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError("expected seeds such as 1-10 or 1,2,5")
    return seeds


def book_setup(doc, figure_names):
    """The set-up of ``book_code.py`` and ``book_code_9_3.py`` (not in the book).

    Parses ``[--quick] [--output-dir DIR] [--data-dir DIR] [--seed N]``; makes the output
    folder the working directory (the book's checkpoint files land there); makes
    ``plt.show()`` save the current figure there as the next of ``figure_names`` and close
    it; with ``--quick``, ``imdb.load_data`` returns 2,500 training and 1,000 test reviews
    and every ``fit`` stops after 2 epochs. Returns the parsed arguments.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import nprnn
    from nprnn.datasets import imdb

    arguments = argparse.ArgumentParser(description=doc.split("\n")[0])
    arguments.add_argument("--quick", action="store_true")
    arguments.add_argument("--output-dir", type=Path, default=Path("outputs"))
    arguments.add_argument("--data-dir", type=Path, default=None)
    arguments.add_argument("--seed", type=int, default=None)
    args = arguments.parse_args()
    if args.data_dir is not None:
        os.environ["NPRNN_DATA_DIR"] = str(args.data_dir)
    if os.environ.get("NPRNN_DATA_DIR"):  # absolute, before changing directory
        os.environ["NPRNN_DATA_DIR"] = str(Path(os.environ["NPRNN_DATA_DIR"]).resolve())
    args.output_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.output_dir)
    if args.seed is not None:
        nprnn.utils.set_random_seed(args.seed)
    shown = []

    def show(*_, **__):
        """plt.show() in a script: save the current figure in the output folder, close it."""
        name = (figure_names[len(shown)] if len(shown) < len(figure_names)
                else f"book_figure_{len(shown) + 1}.png")
        plt.gcf().savefig(name, dpi=100)
        plt.close("all")
        shown.append(name)
        print(f"[plt.show() -> {Path.cwd() / name}]")

    plt.show = show
    if args.quick:
        load_data, fit = imdb.load_data, nprnn.Sequential.fit

        def quick_load_data(*a, **k):
            (x, y), (x_test, y_test) = load_data(*a, **k)
            return (x[:2500], y[:2500]), (x_test[:1000], y_test[:1000])

        def quick_fit(self, *a, **k):
            k["epochs"] = min(k.get("epochs", 1), 2)
            return fit(self, *a, **k)

        imdb.load_data, nprnn.Sequential.fit = quick_load_data, quick_fit
        print("[--quick: 2,500 training reviews, at most 2 epochs per fit]")
    sys.stdout.reconfigure(line_buffering=True)
    return args
