"""Callbacks with Keras' names and behaviour: History, EarlyStopping, ModelCheckpoint,
TerminateOnNaN.

``Sequential.fit`` calls, on each callback: ``set_model(model)``, ``on_train_begin(logs)``,
then per epoch ``on_epoch_begin(epoch, logs)``, per batch ``on_train_batch_begin(batch,
logs)`` / ``on_train_batch_end(batch, logs)``, ``on_epoch_end(epoch, logs)`` with logs such
as ``{'loss', 'accuracy', 'val_loss', 'val_accuracy'}``, and ``on_train_end(logs)``. Epochs
are counted from 0 here and shown from 1, as in Keras.
"""

from __future__ import annotations

import math
import os
import string
import warnings

import numpy as np

from nprnn._validation import (
    check_bool,
    check_choice,
    check_float,
    check_non_negative_int,
    check_str,
)


class Callback:
    """Base class; every hook does nothing."""

    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None): ...

    def on_train_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Records the logs of every epoch: ``history.history['val_loss'][epoch]``.

    ``fit`` returns it. ``epoch`` lists the epoch numbers (from 0), ``params`` the fit
    settings.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict = {}

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


_MAXIMISED = ("accuracy", "acc", "binary_accuracy", "auc")
_MINIMISED = ("loss", "mse", "mean_squared_error", "mae", "mean_absolute_error",
              "binary_crossentropy")


def _monitor_is_better(monitor, mode, owner="EarlyStopping", strict=True):
    """'min' or 'max'; for mode 'auto' decided from the name as Keras 3 does.

    ``loss`` and error-like names are minimised, accuracy-like names maximised (with or
    without ``val_``). Any other name in mode 'auto' raises ValueError (Keras 3 raises too:
    it cannot tell the direction), unless ``strict`` is False, where it means 'min'.
    """
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    if name in _MAXIMISED:
        return "max"
    if name in _MINIMISED or not strict:
        return "min"
    raise ValueError(
        f"mode: {owner} cannot tell whether monitor={monitor!r} should go down or up; pass "
        f"mode='min' or mode='max' (mode 'auto' knows {sorted(_MINIMISED)} (min) and "
        f"{sorted(_MAXIMISED)} (max), with or without 'val_')")


def _check_verbose(verbose):
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    return check_non_negative_int(verbose, "verbose")


def _check_optional_float(value, name):
    return None if value is None else check_float(value, name)


class EarlyStopping(Callback):
    """Stop training when the monitored value stops improving (Keras 3 semantics).

    An epoch improves when ``current - min_delta < best`` (mode 'min'; ``> best`` with
    ``+ min_delta`` in mode 'max'). After each non-improving epoch ``wait`` grows; when it
    reaches ``patience`` training stops. With ``restore_best_weights=True`` the weights of
    the best epoch are put back when training ends (Keras 3 does this at the end of training
    even when it ran all its epochs; the book's TF 2.3 restored only when it stopped early).
    ``baseline``: training also stops if the value never beats it within ``patience`` epochs.
    ``start_from_epoch``: epochs before it are not monitored.

    Attributes after training: ``stopped_epoch`` (0 if not stopped), ``best``,
    ``best_epoch`` (from 0).
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = check_str(monitor, "monitor")
        self.min_delta = abs(check_float(min_delta, "min_delta"))
        self.patience = check_non_negative_int(patience, "patience")
        self.verbose = _check_verbose(verbose)
        self.mode = _monitor_is_better(monitor, check_choice(mode, "mode", ("auto", "min", "max")))
        self.baseline = _check_optional_float(baseline, "baseline")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self.start_from_epoch = check_non_negative_int(start_from_epoch, "start_from_epoch")
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(
                f"EarlyStopping: monitor {self.monitor!r} is not in the logs "
                f"(available: {sorted(logs or {})}); nothing is monitored", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after epochs, or only when the monitored value improves.

    ``filepath`` may hold ``str.format`` fields such as ``{epoch:02d}`` (from 1) or
    ``{val_loss:.4f}``. With ``save_best_only=True`` the file is written when the monitored
    value beats the best so far (the first epoch always does). A ``.h5`` path writes HDF5;
    any other suffix nprnn's native format. Files are written atomically: a crash mid-save
    leaves the previous checkpoint whole.

    A save that fails (a full disk, a quota, ``ulimit -f``) does not stop training: the
    checkpoint warns (a UserWarning naming the file and the error), keeps the previous file
    whole, and with ``save_best_only`` keeps its best value at the last one saved, so the
    next improvement is saved. To stop instead, turn the warning into an error:
    ``warnings.filterwarnings('error', message='ModelCheckpoint')`` (fit then raises it).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", initial_value_threshold=None):
        super().__init__()
        if not isinstance(filepath, (str, bytes)) and not hasattr(filepath, "__fspath__"):
            raise TypeError(f"filepath: expected a path, got {type(filepath).__name__}")
        self.filepath = os.fsdecode(os.fspath(filepath))
        if not self.filepath.strip():
            raise ValueError("filepath: expected a file path, got an empty string")
        if os.path.isdir(self.filepath):
            raise ValueError(f"filepath: {self.filepath!r} is a folder; expected a file path "
                             f"such as {os.path.join(self.filepath, 'best-model.h5')!r}")
        self._fields = _format_fields(self.filepath)
        self.monitor = check_str(monitor, "monitor")
        self.verbose = _check_verbose(verbose)
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only")
        self.mode = _monitor_is_better(monitor, check_choice(mode, "mode", ("auto", "min", "max")),
                                       "ModelCheckpoint", strict=self.save_best_only)
        self.best = _check_optional_float(initial_value_threshold, "initial_value_threshold")
        self.last_saved_path = None

    def on_train_begin(self, logs=None):
        metric_names = list(getattr(self.model, "metric_names", []) or [])
        known = {"epoch", "loss", *metric_names}
        known |= {f"val_{name}" for name in ("loss", *metric_names)}
        unknown = sorted(field for field in self._fields if field not in known)
        if unknown:
            raise ValueError(f"filepath: {self.filepath!r} names {unknown}, which fit will not "
                             f"log; expected fields among {sorted(known)}")

    def _format_path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as error:
            raise ValueError(f"filepath: {self.filepath!r} needs {error.args[0]!r}, which is not "
                             f"in this epoch's logs {sorted(logs)} (nor 'epoch')") from None
        except (ValueError, TypeError, IndexError) as error:
            raise ValueError(f"filepath: cannot format {self.filepath!r} with epoch={epoch + 1} "
                             f"and the logs {logs}: {error}") from None

    def _improved(self, current):
        if self.best is None:
            return True
        return current < self.best if self.mode == "min" else current > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self._format_path(epoch, logs)
        previous_best = self.best
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: monitor {self.monitor!r} is not in the logs "
                              f"(available: {sorted(logs)}); skipping", stacklevel=2)
                return
            if not np.isfinite(current):
                return
            if not self._improved(current):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        try:
            if self.save_weights_only:
                self.model.save_weights(path)
            else:
                self.model.save(path)
        except OSError as error:
            if self.save_best_only:
                self.best = previous_best
            warnings.warn(f"ModelCheckpoint: epoch {epoch + 1} was not saved to {path!r} "
                          f"({error}); the previous file is kept and training goes on",
                          UserWarning, stacklevel=2)
            return
        self.last_saved_path = path


def _format_fields(filepath):
    """The field names of a ``str.format`` path; ValueError if its syntax is wrong."""
    try:
        parsed = list(string.Formatter().parse(filepath))
    except ValueError as error:
        raise ValueError(f"filepath: {filepath!r} is not a valid format string ({error}); "
                         "write fields as {epoch:02d} or {val_loss:.4f}, and braces as {{ }}"
                         ) from None
    fields = set()
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = field.split(".")[0].split("[")[0]
        if not name or name.isdigit():
            raise ValueError(f"filepath: {filepath!r} has a positional field {{{field}}}; "
                             "use names such as {epoch:02d} or {val_loss:.4f}")
        fields.add(name)
    return fields


class TerminateOnNaN(Callback):
    """Stop training when a batch loss is NaN or infinite (fit also does this by itself)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
