"""EarlyStopping as Keras 3 does it, and ModelCheckpoint.

The oracle below restates Keras 3's ``keras/src/callbacks/early_stopping.py`` (after
keras-team/keras#20533, which resets ``best`` in ``on_train_begin`` so an instance can be
reused): in mode 'min' an epoch improves when ``current - min_delta < best`` (``best`` None
counts as beaten), in 'max' when ``current + min_delta > best``; ``wait`` grows by one every
monitored epoch and goes back to 0 on an improvement that also beats ``baseline``; training
stops when ``wait >= patience`` on an epoch > 0 that did not improve; with
``restore_best_weights`` the weights of the best epoch (or of the first monitored epoch if
none improved) are put back at the end of training, stopped early or not.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

import nprnn as keras
from nprnn.callbacks import Callback, EarlyStopping, ModelCheckpoint


class KerasEarlyStopping:
    """Keras 3's EarlyStopping logic on plain numbers (the test oracle)."""

    def __init__(self, min_delta=0.0, patience=0, mode="min", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        self.better = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)
        self.min_delta = -abs(min_delta) if mode == "min" else abs(min_delta)
        self.patience, self.baseline = patience, baseline
        self.restore, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait, self.stopped_epoch, self.best = 0, 0, None
        self.best_weights, self.best_epoch = None, 0

    def improved(self, value, reference):
        return True if reference is None else self.better(value - self.min_delta, reference)

    def on_epoch_end(self, epoch, value):
        """Returns True when training must stop."""
        if value is None or epoch < self.start_from_epoch:
            return False
        if self.restore and self.best_weights is None:
            self.best_weights, self.best_epoch = epoch, epoch
        self.wait += 1
        if self.improved(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore:
                self.best_weights = epoch
            if self.baseline is None or self.improved(value, self.baseline):
                self.wait = 0
            return False
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False

    def restored(self):
        return self.best_weights if self.restore else None


class FakeModel:
    """Weights are [the epoch number]; set_weights records what was restored."""

    def __init__(self):
        self.stop_training = False
        self.epoch = 0
        self.restored = None
        self.metric_names = ["accuracy"]

    def get_weights(self):
        return [np.array([self.epoch])]

    def set_weights(self, weights):
        self.restored = int(weights[0][0])


def drive(callback, values, monitor="val_loss"):
    """Run ``callback`` over epochs with the monitored ``values``; return the stop epoch."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin()
    stopped_at = None
    for epoch, value in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_end(epoch, {monitor: value, "loss": 0.0})
        if model.stop_training:
            stopped_at = epoch
            break
    callback.on_train_end()
    return stopped_at, model.restored


def drive_oracle(oracle, values):
    stopped_at = None
    for epoch, value in enumerate(values):
        if oracle.on_epoch_end(epoch, value):
            stopped_at = epoch
            break
    return stopped_at, oracle.restored()


SETTINGS = [dict(patience=p, min_delta=d, mode=m, baseline=b, restore_best_weights=r,
                 start_from_epoch=s)
            for p, d, m, b, r, s in itertools.product(
                [0, 1, 3], [0.0, 0.05], ["min", "max"], [None, 0.5], [False, True], [0, 2])]


@pytest.mark.parametrize("settings", SETTINGS, ids=[str(i) for i in range(len(SETTINGS))])
def test_early_stopping_matches_keras_3_on_random_curves(settings):
    rng = np.random.default_rng(len(str(settings)))
    for trial in range(25):
        # noisy curves with plateaus, ties and, sometimes, a NaN
        values = np.round(np.cumsum(rng.normal(0, 0.08, size=12)) + 0.6, 2).tolist()
        if trial % 5 == 0:
            values[rng.integers(0, 12)] = float("nan")
        callback = EarlyStopping(**settings)
        oracle = KerasEarlyStopping(**settings)
        assert drive(callback, values) == drive_oracle(oracle, values), values
        assert callback.stopped_epoch == oracle.stopped_epoch
        assert callback.best_epoch == oracle.best_epoch
        assert callback.wait == oracle.wait
        if oracle.best is None or callback.best is None:
            assert oracle.best is callback.best
        else:
            assert callback.best == oracle.best or (math.isnan(callback.best)
                                                    and math.isnan(oracle.best))


@pytest.mark.parametrize("values, settings, stopped_at, restored", [
    # patience 0: the first epoch that does not improve stops training
    ([1.0, 2.0, 0.5], dict(patience=0), 1, None),
    # patience 2: two epochs without improvement after the best (epoch 1)
    ([1.0, 0.9, 0.95, 0.92, 0.91], dict(patience=2), 3, None),
    # an equal value is no improvement
    ([1.0, 1.0, 1.0], dict(patience=1), 1, None),
    # min_delta: 0.97 is not 0.05 below 1.0
    ([1.0, 0.97, 0.96], dict(patience=1, min_delta=0.05), 1, None),
    # mode max (accuracy): falling accuracy stops
    ([0.5, 0.7, 0.6, 0.65], dict(patience=2, monitor="val_accuracy"), 3, None),
    # restore_best_weights: the best epoch's weights come back when stopped
    ([1.0, 0.5, 0.7, 0.8], dict(patience=2, restore_best_weights=True), 3, 1),
    # ... and also when training ran all its epochs (Keras 3)
    ([1.0, 0.5, 0.7], dict(patience=5, restore_best_weights=True), None, 1),
    # baseline 0.5 never beaten: improvements do not reset wait, but Keras returns before the
    # patience check on an improving epoch, so a steadily improving run is never stopped
    ([0.9, 0.8, 0.7, 0.6], dict(patience=1, baseline=0.5), None, None),
    # ... and a non-improving epoch after patience epochs stops it
    ([0.9, 0.8, 0.85], dict(patience=2, baseline=0.5), 2, None),
    # start_from_epoch: epochs before it are not monitored
    ([1.0, 2.0, 3.0, 2.5, 2.6], dict(patience=0, start_from_epoch=2), 4, None),
])
def test_early_stopping_by_hand(values, settings, stopped_at, restored):
    monitor = settings.get("monitor", "val_loss")
    assert drive(EarlyStopping(**settings), values, monitor) == (stopped_at, restored)


def test_early_stopping_is_reusable_and_warns_when_monitor_missing():
    callback = EarlyStopping(patience=0)
    assert drive(callback, [1.0, 2.0]) == (1, None)
    assert drive(callback, [5.0, 4.0, 3.0]) == (None, None)  # best was reset
    with pytest.warns(UserWarning, match="monitor 'val_loss' is not in the logs"):
        callback.set_model(FakeModel())
        callback.on_train_begin()
        callback.on_epoch_end(0, {"loss": 1.0})


def test_auto_mode_follows_the_name():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="acc").mode == "max"
    assert EarlyStopping(monitor="loss").mode == "min"
    assert EarlyStopping(monitor="val_f1", mode="max").mode == "max"


# -- through fit ------------------------------------------------------------------------------
def task(samples=96):
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 30, size=(samples, 8))
    return ids, (ids[:, -1] < 15).astype(int)


def model_for(task_ids, learning_rate=0.02):
    model = keras.Sequential([keras.layers.Embedding(30, 4, input_length=8),
                              keras.layers.SimpleRNN(4),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def test_early_stopping_in_fit_restores_the_best_epoch():
    ids, y = task()
    model = model_for(ids, learning_rate=0.2)  # large steps: val_loss goes up and down
    recorder = Recorder()
    stopper = EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(ids[:64], y[:64], epochs=30, batch_size=8, verbose=0,
                        validation_data=(ids[64:], y[64:]), callbacks=[recorder, stopper])
    val_loss = history.history["val_loss"]
    oracle = KerasEarlyStopping(patience=2, restore_best_weights=True)
    expected_stop, expected_best = drive_oracle(oracle, val_loss)
    assert stopper.stopped_epoch == (expected_stop or 0)
    assert len(val_loss) == (expected_stop + 1 if expected_stop is not None else 30)
    assert stopper.best_epoch == expected_best == int(np.argmin(val_loss))
    for a, b in zip(model.get_weights(), recorder.weights[expected_best]):
        np.testing.assert_array_equal(a, b)


# -- ModelCheckpoint ------------------------------------------------------------------------
def fit_with(callback, epochs=6, validation=True, learning_rate=0.2):
    ids, y = task()
    model = model_for(ids, learning_rate)
    recorder = Recorder()
    kwargs = dict(validation_data=(ids[64:], y[64:])) if validation else {}
    history = model.fit(ids[:64], y[:64], epochs=epochs, batch_size=8, verbose=0,
                        callbacks=[recorder, callback], **kwargs)
    return model, history, recorder


def improving_epochs(values, mode="min", threshold=None):
    best, kept = threshold, []
    for epoch, value in enumerate(values):
        if best is None or (value < best if mode == "min" else value > best):
            best = value
            kept.append(epoch)
    return kept


def assert_file_holds(path, weights):
    loaded = keras.load_model(path)
    for a, b in zip(loaded.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_save_best_only_with_epoch_in_the_name(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "best-{epoch:02d}.npz"), save_best_only=True)
    _, history, recorder = fit_with(callback, epochs=8)
    kept = improving_epochs(history.history["val_loss"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"best-{e + 1:02d}.npz" for e in kept]
    for epoch in kept:
        assert_file_holds(tmp_path / f"best-{epoch + 1:02d}.npz", recorder.weights[epoch])
    assert callback.best == min(history.history["val_loss"])


def test_checkpoint_every_epoch_and_logs_in_the_name(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.4f}.h5"))
    model, history, recorder = fit_with(callback, epochs=3)
    expected = [f"m-{e + 1:02d}-{v:.4f}.h5" for e, v in enumerate(history.history["val_loss"])]
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    assert callback.last_saved_path == str(tmp_path / expected[-1])
    assert_file_holds(tmp_path / expected[-1], model.get_weights())


def test_checkpoint_one_name_keeps_the_best(tmp_path):
    path = tmp_path / "best-model.h5"
    callback = ModelCheckpoint(str(path), save_best_only=True)
    _, history, recorder = fit_with(callback, epochs=8)
    best = int(np.argmin(history.history["val_loss"]))
    assert_file_holds(path, recorder.weights[best])
    assert [p.name for p in tmp_path.iterdir()] == ["best-model.h5"]  # no temporary left


def test_checkpoint_mode_max_and_weights_only(tmp_path):
    path = tmp_path / "w.npz"
    callback = ModelCheckpoint(str(path), monitor="val_accuracy", save_best_only=True,
                               save_weights_only=True)
    model, history, recorder = fit_with(callback, epochs=6)
    best = improving_epochs(history.history["val_accuracy"], "max")[-1]
    fresh = model_for(None)
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), recorder.weights[best]):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_initial_value_threshold(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m.npz"), save_best_only=True,
                               initial_value_threshold=1e-6)
    fit_with(callback, epochs=2)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_without_its_monitor_warns_and_skips(tmp_path):
    callback = ModelCheckpoint(str(tmp_path / "m.npz"), save_best_only=True)
    with pytest.warns(UserWarning, match="monitor 'val_loss' is not in the logs"):
        fit_with(callback, epochs=1, validation=False)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_verbose_messages(tmp_path, capsys):
    callback = ModelCheckpoint(str(tmp_path / "m.npz"), save_best_only=True, verbose=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_with(callback, epochs=2)
    out = capsys.readouterr().out
    assert "Epoch 1: val_loss improved from inf to " in out
    assert f"saving model to {tmp_path / 'm.npz'}" in out
