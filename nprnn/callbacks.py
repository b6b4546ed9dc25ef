"""Callbacks with Keras' names and behaviour: History, EarlyStopping, ModelCheckpoint,
TerminateOnNaN, ReduceLROnPlateau, LearningRateScheduler, CSVLogger.

``Sequential.fit`` calls, on each callback: ``set_model(model)``, ``on_train_begin(logs)``,
then per epoch ``on_epoch_begin(epoch, logs)``, per batch ``on_train_batch_begin(batch,
logs)`` / ``on_train_batch_end(batch, logs)``, ``on_epoch_end(epoch, logs)`` with logs such
as ``{'loss', 'accuracy', 'val_loss', 'val_accuracy'}``, and ``on_train_end(logs)``. Epochs
are counted from 0 here and shown from 1, as in Keras.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import numbers
import os
import string
import warnings
from collections.abc import Iterable

import numpy as np

from nprnn._validation import (
    check_bool,
    check_choice,
    check_float,
    check_non_negative_int,
    check_str,
    check_verbose,
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
    return check_verbose(verbose, allow_auto=False)


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
    """Stop training when a batch loss is NaN or infinite (Keras 3's ``TerminateOnNaN``).

    The rule: at ``on_train_batch_end(batch, logs)``, if ``logs['loss']`` is NaN or
    infinite, print ``Batch {batch}: Invalid loss, terminating training`` and set
    ``model.stop_training = True``; with ``raise_error=True`` raise RuntimeError instead
    (as Keras 3.15: the error leaves ``fit`` at once, so other callbacks' ``on_train_end`` does
    not run).

    The contract with ``fit`` that makes it fire: when a batch's loss is not finite, ``fit``
    calls every callback's ``on_train_batch_end(step, logs)`` with that non-finite loss in
    ``logs['loss']`` (the running mean over the epoch, which includes it, is non-finite
    too), *without* applying that batch's update, before it stops on its own. Without this
    callback ``fit`` still stops on a non-finite loss (with a warning); with it, the stop is
    Keras' message, or an exception.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = check_bool(raise_error, "raise_error")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raise_error:
            raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                               f"{loss}. Terminating training immediately.")
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True


def _optimizer_of(model, owner):
    """The model's optimizer, which must have a float ``learning_rate``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"{owner}: the model has no optimizer with a learning_rate; compile "
                         "it first, e.g. model.compile(optimizer=RMSprop(1e-4), ...)")
    return optimizer


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when the monitored value stops improving.

    Keras 3's rule, at the end of each epoch (``best`` starts as None, which any value
    beats; ``_is_improvement`` as EarlyStopping's, with ``min_delta``):

    1. write the current rate into ``logs['learning_rate']`` (so History records it);
    2. if in cooldown (``cooldown_counter > 0``): ``cooldown_counter -= 1``, ``wait = 0``;
    3. if the value improves on ``best``: ``best = value``, ``wait = 0``;
    4. else, if not in cooldown: ``wait += 1``; when ``wait >= patience`` and the rate is
       above ``min_lr``: ``lr = max(lr * factor, min_lr)``, then ``cooldown_counter =
       cooldown`` and ``wait = 0``.

    The optimizer's ``learning_rate`` attribute is set, so the next step uses the new rate.
    ``mode='auto'`` picks 'min' for losses and 'max' for accuracies from the name (any other
    name raises: Keras 3 too cannot tell); Keras 3 only warns about an unknown mode and
    falls back to 'auto', nprnn raises. State is reset in ``on_train_begin``.

    Parameters
    ----------
    monitor : str, default 'val_loss'
    factor : float in [0, 1), default 0.1
    patience : int >= 0, default 10
    verbose : int, default 0 (1 prints each reduction)
    mode : {'auto', 'min', 'max'}
    min_delta : float, default 1e-4
    cooldown : int >= 0, default 0 (epochs to wait after a reduction)
    min_lr : float >= 0, default 0
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        self.monitor = check_str(monitor, "monitor")
        self.factor = check_float(factor, "factor", low=0.0, high=1.0, high_open=True)
        self.patience = check_non_negative_int(patience, "patience")
        self.verbose = _check_verbose(verbose)
        self.mode = _monitor_is_better(monitor, check_choice(mode, "mode", ("auto", "min", "max")),
                                       "ReduceLROnPlateau")
        self.min_delta = abs(check_float(min_delta, "min_delta"))
        self.cooldown = check_non_negative_int(cooldown, "cooldown")
        self.min_lr = check_float(min_lr, "min_lr", low=0.0)
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return value + self.min_delta < reference
        return value - self.min_delta > reference

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        _optimizer_of(self.model, "ReduceLROnPlateau")
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = _optimizer_of(self.model, "ReduceLROnPlateau")
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ReduceLROnPlateau: monitor {self.monitor!r} is not in the logs "
                          f"(available: {sorted(logs)}); the learning rate is not changed",
                          stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        old = float(optimizer.learning_rate)
        if old > np.float32(self.min_lr):  # Keras compares with the float32 min_lr
            new = max(old * self.factor, self.min_lr)
            optimizer.learning_rate = new
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0


def _takes_two_arguments(function):
    """True if ``function(epoch, lr)`` can be called with two positional arguments."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return True
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values())
    return variadic or len(positional) >= 2


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)``.

    ``epoch`` counts from 0 (from ``initial_epoch`` when fit resumes), ``lr`` is the current
    rate; the returned rate is written to the optimizer's ``learning_rate`` and, at the end
    of the epoch, to ``logs['learning_rate']``. A one-argument ``schedule(epoch)`` is
    accepted too (Keras' old API). Keras 3 tells the two apart by calling ``schedule(epoch,
    lr)`` and retrying with ``schedule(epoch)`` on *any* TypeError (even one raised inside
    the schedule); nprnn reads the signature instead. Keras refuses a returned int (it must
    be a float); nprnn accepts any real number, but it must be finite and >= 0.

    Example: ``LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.9)``.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule: expected a function schedule(epoch, lr) -> lr, got "
                            f"{type(schedule).__name__} {schedule!r}")
        self.schedule = schedule
        self.verbose = _check_verbose(verbose)
        self._two_arguments = _takes_two_arguments(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of(self.model, "LearningRateScheduler")
        current = float(optimizer.learning_rate)
        new = self.schedule(epoch, current) if self._two_arguments else self.schedule(epoch)
        if isinstance(new, (bool, np.bool_)) or not isinstance(new, numbers.Real):
            raise ValueError(f"schedule: expected a learning rate (a float) from schedule("
                             f"{epoch}, {current}), got {type(new).__name__} {new!r}")
        if not math.isfinite(new) or new < 0:
            raise ValueError(f"schedule: expected a finite learning rate >= 0 from schedule("
                             f"{epoch}, {current}), got {new}")
        optimizer.learning_rate = float(new)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(new)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(_optimizer_of(self.model, "LearningRateScheduler")
                                          .learning_rate)


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file, as Keras 3's ``CSVLogger``.

    The columns are ``epoch`` (from 0) and the first epoch's log keys, sorted; if none of
    them starts with ``val_``, ``val_<key>`` columns are added for every key (Keras' rule,
    so that the columns exist if validation values appear), and a value missing from an
    epoch's logs is written ``NA``. ``append=True`` adds rows to an existing file, with a
    header only if the file is empty. Lines end with CRLF, as Keras writes them (Python's
    ``csv`` Excel dialect).

    Crash safety: each row is formatted whole, written with one ``write`` call, flushed and
    fsynced at the end of its epoch, so a process killed during training leaves complete
    lines (the epochs finished so far); when appending to a file whose last line is
    incomplete, a line break is written first so that no row merges with it. The file is
    closed in ``on_train_end``.

    Parameters
    ----------
    filename : str or path-like
    separator : str of one character, default ','
    append : bool, default False (overwrite)
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(filename, (str, bytes)) and not hasattr(filename, "__fspath__"):
            raise TypeError(f"filename: expected a path, got {type(filename).__name__}")
        self.filename = os.fsdecode(os.fspath(filename))
        if not self.filename.strip():
            raise ValueError("filename: expected a file path, got an empty string")
        if os.path.isdir(self.filename):
            raise ValueError(f"filename: {self.filename!r} is a folder; expected a file path "
                             f"such as {os.path.join(self.filename, 'training.csv')!r}")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator: expected one character such as ',' or ';', got "
                             f"{separator!r}")
        self.sep = separator
        self.append = check_bool(append, "append")
        self.keys = None
        self.csv_file = None
        self._write_header = True

    def on_train_begin(self, logs=None):
        self.on_train_end()
        prefix = ""
        self._write_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "rb") as existing:
                existing.seek(0, os.SEEK_END)
                if existing.tell() > 0:
                    self._write_header = False
                    existing.seek(-1, os.SEEK_END)
                    prefix = "" if existing.read(1) in (b"\n", b"\r") else "\n"
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="",
                             encoding="utf-8")
        if prefix:
            self.csv_file.write(prefix)
        self.keys = None

    @staticmethod
    def _value(value):
        if isinstance(value, str):
            return value
        if isinstance(value, Iterable) and not (isinstance(value, np.ndarray)
                                                 and value.ndim == 0):
            return f'"[{", ".join(map(str, value))}]"'
        return value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.csv_file is None:
            raise ValueError("CSVLogger: on_epoch_end before on_train_begin (fit calls "
                             "on_train_begin first)")
        header = None
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend(f"val_{key}" for key in list(self.keys))
            if self._write_header:
                header = ["epoch", *self.keys]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.sep)  # Excel's dialect, CRLF, as Keras
        if header is not None:
            writer.writerow(header)
        writer.writerow([epoch, *(self._value(logs.get(key, "NA")) for key in self.keys)])
        self.csv_file.write(buffer.getvalue())  # one write: a whole line or nothing
        self.csv_file.flush()
        try:
            os.fsync(self.csv_file.fileno())
        except OSError:  # pipes and some file systems cannot fsync; flushed is the best then
            pass

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = None
