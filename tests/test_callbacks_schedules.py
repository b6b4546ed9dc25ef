"""ReduceLROnPlateau, LearningRateScheduler, CSVLogger and TerminateOnNaN (Keras 3 semantics).

The ReduceLROnPlateau oracle below restates Keras 3's ``keras/src/callbacks/
reduce_lr_on_plateau.py`` on plain numbers: at each epoch end, if in cooldown count it down
and reset ``wait``; an improvement (``current - min_delta < best`` in mode 'min', ``best``
None counting as beaten) sets ``best`` and resets ``wait``; otherwise, out of cooldown,
``wait += 1`` and at ``wait >= patience`` a rate above ``float32(min_lr)`` becomes
``max(lr * factor, min_lr)``, after which ``cooldown_counter = cooldown`` and ``wait = 0``.
"""

from __future__ import annotations

import csv
import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nprnn as keras
from nprnn.callbacks import CSVLogger, LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN


class KerasReduceLROnPlateau:
    """Keras 3's ReduceLROnPlateau on numbers: returns the learning rate after each epoch."""

    def __init__(self, lr, factor=0.1, patience=10, mode="min", min_delta=1e-4, cooldown=0,
                 min_lr=0.0):
        self.lr, self.factor, self.patience, self.cooldown = lr, factor, patience, cooldown
        self.min_lr = min_lr
        self.delta = -abs(min_delta) if mode == "min" else abs(min_delta)
        self.op = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)
        self.best, self.wait, self.cooldown_counter = None, 0, 0

    def epoch_end(self, current):
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.best is None or self.op(current - self.delta, self.best):
            self.best = current
            self.wait = 0
        elif not self.cooldown_counter > 0:
            self.wait += 1
            if self.wait >= self.patience:
                if self.lr > np.float32(self.min_lr):
                    self.lr = max(self.lr * self.factor, self.min_lr)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
        return self.lr


class FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class FakeModel:
    def __init__(self, learning_rate=1.0):
        self.optimizer = FakeOptimizer(learning_rate)
        self.stop_training = False
        self.metric_names = ["accuracy"]


def run_plateau(callback, values, lr=1.0, monitor="val_loss"):
    model = FakeModel(lr)
    callback.set_model(model)
    callback.on_train_begin()
    rates, logged = [], []
    for epoch, value in enumerate(values):
        logs = {monitor: value, "loss": 0.0}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        rates.append(model.optimizer.learning_rate)
    return rates, logged


SETTINGS = [dict(factor=f, patience=p, mode=m, min_delta=d, cooldown=c, min_lr=lo)
            for f, p, m, d, c, lo in itertools.product(
                [0.5, 0.1], [0, 1, 3], ["min", "max"], [0.0, 0.05], [0, 2], [0.0, 0.2])]


@pytest.mark.parametrize("settings", SETTINGS, ids=[str(i) for i in range(len(SETTINGS))])
def test_reduce_lr_matches_keras_3_on_random_curves(settings):
    rng = np.random.default_rng(len(str(settings)))
    for trial in range(20):
        values = np.round(np.cumsum(rng.normal(0, 0.08, size=15)) + 0.6, 2).tolist()
        if trial % 5 == 0:
            values[rng.integers(0, 15)] = float("nan")
        oracle = KerasReduceLROnPlateau(1.0, **settings)
        expected = [oracle.epoch_end(v) for v in values]
        rates, logged = run_plateau(ReduceLROnPlateau(**settings), values)
        assert rates == expected, values
        assert logged == [1.0] + expected[:-1]  # the rate in use during each epoch


@pytest.mark.parametrize("values, settings, rates", [
    # patience 2: two epochs without improvement after the best, then x0.5
    ([1.0, 1.0, 1.0, 1.0, 1.0], dict(factor=0.5, patience=2), [1, 1, 0.5, 0.5, 0.25]),
    # an improvement resets wait
    ([1.0, 1.0, 0.5, 0.6, 0.6], dict(factor=0.5, patience=2), [1, 1, 1, 1, 0.5]),
    # min_delta: 0.95 is not 0.1 below 1.0, 0.85 is
    ([1.0, 0.95, 0.85], dict(factor=0.5, patience=1, min_delta=0.1), [1, 0.5, 0.5]),
    # cooldown 2: the counter goes 2 -> 1 (no counting) -> 0 at the next epoch, which in
    # Keras' order already counts again: one idle epoch between reductions here
    ([1.0, 2, 2, 2, 2, 2, 2], dict(factor=0.5, patience=1, cooldown=2),
     [1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]),
    # min_lr: never below it, and no more reductions once there
    ([1.0, 2, 2, 2], dict(factor=0.1, patience=1, min_lr=0.05), [1, 0.1, 0.05, 0.05]),
    # mode max (accuracy): falling accuracy reduces
    ([0.5, 0.4, 0.3], dict(factor=0.5, patience=1, monitor="val_accuracy"), [1, 0.5, 0.25]),
])
def test_reduce_lr_by_hand(values, settings, rates):
    monitor = settings.get("monitor", "val_loss")
    assert run_plateau(ReduceLROnPlateau(**settings), values, monitor=monitor)[0] == rates


def test_reduce_lr_resets_on_train_begin_and_warns_without_its_monitor():
    callback = ReduceLROnPlateau(factor=0.5, patience=1)
    assert run_plateau(callback, [1.0, 2.0])[0] == [1.0, 0.5]
    assert run_plateau(callback, [5.0, 4.0])[0] == [1.0, 1.0]  # best reset, fresh model
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.warns(UserWarning, match=r"ReduceLROnPlateau: monitor 'val_loss' is not in"):
        callback.on_epoch_end(0, {"loss": 1.0})
    assert model.optimizer.learning_rate == 1.0


def test_reduce_lr_verbose(capsys):
    run_plateau(ReduceLROnPlateau(factor=0.5, patience=0, verbose=1), [1.0, 2.0])
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.5." in capsys.readouterr().out


# -- through fit ------------------------------------------------------------------------------
def task(samples=64):
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 30, size=(samples, 8))
    return ids, (ids[:, -1] < 15).astype(int)


def small_model(learning_rate=0.02):
    model = keras.Sequential([keras.layers.Embedding(30, 4, input_length=8),
                              keras.layers.SimpleRNN(4),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def test_reduce_lr_in_fit_changes_the_optimizer_and_history():
    ids, y = task()
    model = small_model(0.02)
    # min_delta 10: after the first epoch nothing improves, so every epoch reduces
    callback = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10)
    history = model.fit(ids, y, epochs=4, batch_size=16, verbose=0, callbacks=[callback])
    assert history.history["learning_rate"] == [0.02, 0.02, 0.01, 0.005]
    assert model.optimizer.learning_rate == 0.0025


class RateRecorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rates = []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(self.model.optimizer.learning_rate)


def test_scheduler_in_fit_sets_each_epochs_rate_before_its_first_step():
    ids, y = task()
    model = small_model(0.5)
    recorder = RateRecorder()
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return 0.1 / (epoch + 1)

    history = model.fit(ids, y, epochs=3, batch_size=32, verbose=0,
                        callbacks=[LearningRateScheduler(schedule), recorder])
    assert calls == [(0, 0.5), (1, 0.1), (2, 0.05)]
    assert recorder.rates == [0.1, 0.1, 0.05, 0.05, 0.1 / 3, 0.1 / 3]  # 2 batches an epoch
    assert history.history["learning_rate"] == [0.1, 0.05, 0.1 / 3]
    # resuming: epochs are counted from initial_epoch; a one-argument schedule works too
    seen = []
    model.fit(ids, y, epochs=4, initial_epoch=2, batch_size=32, verbose=0,
              callbacks=[LearningRateScheduler(lambda epoch: seen.append(epoch) or 1e-3)])
    assert seen == [2, 3] and model.optimizer.learning_rate == 1e-3


def test_scheduler_does_not_swallow_type_errors_and_prints(capsys):
    def broken(epoch, lr):
        return lr + "x"  # a TypeError inside: Keras would retry as schedule(epoch)

    callback = LearningRateScheduler(broken)
    callback.set_model(FakeModel())
    with pytest.raises(TypeError):
        callback.on_epoch_begin(0)
    verbose = LearningRateScheduler(lambda epoch, lr: lr / 2, verbose=1)
    verbose.set_model(FakeModel(0.5))
    verbose.on_epoch_begin(4)
    assert "Epoch 5: LearningRateScheduler setting learning rate to 0.25." in \
        capsys.readouterr().out


@pytest.mark.parametrize("schedule, message", [
    (lambda epoch, lr: "fast", r"schedule: expected a learning rate \(a float\) from "
                               r"schedule\(0, 1.0\), got str 'fast'"),
    (lambda epoch, lr: True, r"schedule: expected a learning rate"),
    (lambda epoch, lr: float("nan"), r"schedule: expected a finite learning rate >= 0"),
    (lambda epoch, lr: -0.1, r"schedule: expected a finite learning rate >= 0 .* got -0.1"),
])
def test_scheduler_checks_what_the_schedule_returns(schedule, message):
    callback = LearningRateScheduler(schedule)
    callback.set_model(FakeModel())
    with pytest.raises(ValueError, match=message):
        callback.on_epoch_begin(0)
    assert callback.model.optimizer.learning_rate == 1.0  # unchanged


def test_scheduler_accepts_ints_and_numpy_floats():
    callback = LearningRateScheduler(lambda epoch, lr: np.float32(0.25) if epoch else 1)
    callback.set_model(FakeModel())
    callback.on_epoch_begin(0)
    assert callback.model.optimizer.learning_rate == 1.0
    callback.on_epoch_begin(1)
    assert callback.model.optimizer.learning_rate == 0.25


# -- CSVLogger -------------------------------------------------------------------------------
def read_rows(path, separator=","):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle, delimiter=separator))


def test_csv_logger_in_fit_writes_the_history(tmp_path):
    ids, y = task()
    path = tmp_path / "training.csv"
    history = small_model().fit(ids[:48], y[:48], epochs=3, batch_size=16, verbose=0,
                                validation_data=(ids[48:], y[48:]),
                                callbacks=[CSVLogger(path)])
    rows = read_rows(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(rows) == 4
    for epoch, row in enumerate(rows[1:]):
        assert int(row[0]) == epoch
        for key, text in zip(rows[0][1:], row[1:]):
            assert float(text) == history.history[key][epoch]  # repr: exact round trip
    assert path.read_bytes().count(b"\r\n") == 4  # Keras' (Excel's) line ends


def test_csv_logger_without_validation_adds_na_columns_and_appends(tmp_path):
    path = tmp_path / "log.csv"
    logger = CSVLogger(str(path), separator=";")
    logger.set_model(FakeModel())
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75})
    logger.on_train_end()
    assert read_rows(path, ";") == [["epoch", "accuracy", "loss", "val_accuracy", "val_loss"],
                                    ["0", "0.75", "0.5", "NA", "NA"]]
    again = CSVLogger(path, separator=";", append=True)
    again.on_train_begin()
    again.on_epoch_end(1, {"loss": 0.25, "accuracy": 1.0})
    again.on_train_end()
    assert read_rows(path, ";")[1:] == [["0", "0.75", "0.5", "NA", "NA"],
                                        ["1", "1.0", "0.25", "NA", "NA"]]  # no second header
    # overwriting (append=False) starts again
    fresh = CSVLogger(path, separator=";")
    fresh.on_train_begin()
    fresh.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    fresh.on_train_end()
    assert read_rows(path, ";") == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"]]


def test_csv_logger_appends_after_an_incomplete_line_and_to_an_empty_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\r\n0,0.5\r\n1,0.4")  # a line cut short by someone else
    logger = CSVLogger(path, append=True)
    logger.on_train_begin()
    logger.on_epoch_end(2, {"loss": 0.3, "val_loss": 0.35})
    logger.on_train_end()
    assert read_rows(path)[-2:] == [["1", "0.4"], ["2", "0.3", "0.35"]]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    logger = CSVLogger(empty, append=True)
    logger.on_train_begin()
    logger.on_epoch_end(0, {"loss": 0.3})
    logger.on_train_end()
    assert read_rows(empty)[0] == ["epoch", "loss", "val_loss"]


def test_csv_logger_leaves_complete_lines_when_the_process_dies(tmp_path):
    """A process killed (os._exit: no clean-up, no buffer flushing) after its third epoch
    leaves the header and three whole rows."""
    path = tmp_path / "crash.csv"
    script = textwrap.dedent(f"""
        import os
        from nprnn.callbacks import CSVLogger
        logger = CSVLogger({str(path)!r})
        logger.on_train_begin()
        for epoch in range(3):
            logger.on_epoch_end(epoch, {{"loss": 1.0 / (epoch + 1), "val_loss": 2.0}})
        os._exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert result.returncode == 3, result.stderr.decode()
    text = path.read_bytes()
    assert text.endswith(b"\r\n")
    assert read_rows(path) == [["epoch", "loss", "val_loss"], ["0", "1.0", "2.0"],
                               ["1", "0.5", "2.0"], ["2", str(1 / 3), "2.0"]]


@pytest.mark.parametrize("make, error, message", [
    (lambda tmp: CSVLogger(3), TypeError, r"filename: expected a path, got int"),
    (lambda tmp: CSVLogger(""), ValueError, r"filename: expected a file path"),
    (lambda tmp: CSVLogger(tmp), ValueError, r"filename: .* is a folder"),
    (lambda tmp: CSVLogger(tmp / "a.csv", separator=",,"), ValueError,
     r"separator: expected one character"),
    (lambda tmp: CSVLogger(tmp / "a.csv", separator=None), ValueError, r"separator: expected"),
    (lambda tmp: CSVLogger(tmp / "a.csv", append="yes"), TypeError,
     r"append: expected True or False"),
    (lambda tmp: CSVLogger(tmp / "a.csv").on_epoch_end(0, {}), ValueError,
     r"CSVLogger: on_epoch_end before on_train_begin"),
    (lambda tmp: ReduceLROnPlateau(factor=1.0), ValueError,
     r"factor: expected a number in \[0.0, 1.0\), got 1.0"),
    (lambda tmp: ReduceLROnPlateau(factor=-0.5), ValueError, r"factor: expected a number"),
    (lambda tmp: ReduceLROnPlateau(patience=-1), ValueError, r"patience: expected a non-neg"),
    (lambda tmp: ReduceLROnPlateau(cooldown=1.5), TypeError, r"cooldown: expected a non-neg"),
    (lambda tmp: ReduceLROnPlateau(min_lr=-1e-3), ValueError, r"min_lr: expected a number"),
    (lambda tmp: ReduceLROnPlateau(mode="median"), ValueError, r"mode: expected one of"),
    (lambda tmp: ReduceLROnPlateau(monitor="val_f1"), ValueError,
     r"mode: ReduceLROnPlateau cannot tell whether monitor='val_f1'"),
    (lambda tmp: ReduceLROnPlateau(monitor=3), TypeError, r"monitor: expected a str"),
    (lambda tmp: LearningRateScheduler(0.1), TypeError,
     r"schedule: expected a function schedule\(epoch, lr\) -> lr, got float"),
    (lambda tmp: TerminateOnNaN(raise_error="yes"), TypeError,
     r"raise_error: expected True or False"),
])
def test_bad_arguments_raise_naming_them(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        make(tmp_path)


def test_rate_callbacks_need_a_compiled_model():
    for callback in (ReduceLROnPlateau(), LearningRateScheduler(lambda e, lr: lr)):
        callback.set_model(keras.Sequential([keras.layers.Dense(1)]))
        with pytest.raises(ValueError, match=r"the model has no optimizer with a learning_rate"):
            callback.on_train_begin()
            callback.on_epoch_begin(0)


# -- TerminateOnNaN ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss, stops", [(float("nan"), True), (float("inf"), True),
                                         (-np.inf, True), (np.float32("nan"), True),
                                         (0.7, False), (None, False)])
def test_terminate_on_nan_fires_on_a_non_finite_batch_loss(loss, stops, capsys):
    callback = TerminateOnNaN()
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_batch_end(4, {} if loss is None else {"loss": loss, "accuracy": 0.5})
    assert model.stop_training is stops
    assert ("Batch 4: Invalid loss, terminating training" in capsys.readouterr().out) is stops


def test_terminate_on_nan_can_raise():
    callback = TerminateOnNaN(raise_error=True)
    callback.set_model(FakeModel())
    callback.on_train_batch_end(0, {"loss": 0.5})
    with pytest.raises(RuntimeError, match=r"NaN or Inf loss encountered at batch 2\. Loss "
                                           r"value: nan"):
        callback.on_train_batch_end(2, {"loss": math.nan})
