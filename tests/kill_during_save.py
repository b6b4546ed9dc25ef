"""Save one model file over and over, for the kill test of ``tests/test_files.py``.

    python tests/kill_during_save.py PATH

Version k of the model has every weight equal to ``base_weights()[i] + k``, its RMSprop
velocities equal to ``k`` and ``optimizer.iterations == k``, so a reader can tell which
version a file holds and whether it is whole. If PATH already holds version k (left by an
earlier run, perhaps killed), this run goes on from k + 1. It prints ``ready k`` once the
first new version is saved, then ``saved k`` after each save (flushed), and saves until it
is killed.

With ``--slow-writes`` every write to the file goes out in 8 kB pieces 1 ms apart (a save
then takes some 40 to 70 ms instead of a few), so that most kills land while the temporary
file is half written: the state the atomic writer exists for.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

VOCABULARY, EMBEDDING, UNITS, STEPS = 2000, 32, 16, 20


def base_weights():
    """Fixed weights; version k adds k to each entry."""
    rng = np.random.default_rng(20240611)
    shapes = [(VOCABULARY, EMBEDDING), (EMBEDDING, UNITS), (UNITS, UNITS), (UNITS,),
              (UNITS, 1), (1,)]
    return [rng.uniform(-0.25, 0.25, size=shape).astype(np.float32) for shape in shapes]


def build_model(keras):
    model = keras.Sequential([
        keras.layers.Embedding(VOCABULARY, EMBEDDING, input_length=STEPS, name="embedding"),
        keras.layers.SimpleRNN(UNITS, name="simple_rnn"),
        keras.layers.Dense(1, activation="sigmoid", name="dense"),
    ], name="kill_test")
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.optimizer.build(model.trainable_weights)
    return model


def version_of(model):
    """The version k a loaded model holds; AssertionError if it is not a whole version."""
    k = model.optimizer.iterations
    for got, base in zip(model.get_weights(), base_weights()):
        expected = base + np.float32(k)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected), f"weights do not match version {k}"
    for slot in model.optimizer.slots["velocity"]:
        assert np.all(slot == np.float32(k)), f"optimizer state does not match version {k}"
    return k


def set_version(model, k):
    model.set_weights([base + np.float32(k) for base in base_weights()])
    for slot in model.optimizer.slots["velocity"]:
        slot[...] = k
    model.optimizer.iterations = k


def slow_down_writes():
    import time

    from nprnn import _io

    write = _io._TargetFileIO.write

    def slow_write(self, data):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), 8192):
            write(self, view[start:start + 8192])
            time.sleep(0.001)
        return len(view)

    _io._TargetFileIO.write = slow_write


def main(path, slow=False):
    import nprnn as keras

    if slow:
        slow_down_writes()

    path = Path(path)
    k = version_of(keras.load_model(path)) + 1 if path.exists() else 0
    model = build_model(keras)
    set_version(model, k)
    model.save(path)
    print(f"ready {k}", flush=True)
    while True:
        k += 1
        set_version(model, k)
        model.save(path)
        print(f"saved {k}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], slow="--slow-writes" in sys.argv[2:])
