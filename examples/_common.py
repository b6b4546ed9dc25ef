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
