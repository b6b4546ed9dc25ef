"""What surrounds the training loop but is not the maths: the progress line, Ctrl-C, the
thread setting in which a model computes, and checks of non-finite values.

:meth:`nprnn.models.Sequential.fit` reads as the book's loop; these helpers keep it short.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

import numpy as np

from nprnn import config


class NonFiniteError(ValueError):
    """An output or a loss that is NaN or infinite (fit stops on it instead of raising)."""


def check_finite_outputs(outputs, start, name):
    """ValueError naming the first sample whose output is NaN or infinite."""
    values = np.asarray(outputs)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))[0])
        raise NonFiniteError(
            f"{name}: the model's output for sample {start + bad} is not finite (NaN or "
            "infinity): the inputs or the weights are so large that float arithmetic "
            "overflows; scale the inputs")


@contextlib.contextmanager
def compute_setting():
    """The setting in which a model computes; restored on exit.

    * BLAS runs on one thread if ``config.deterministic()``: OpenBLAS splits a matrix
      product differently for each thread count and the rounding differs, so a seeded run
      would give other weights under OPENBLAS_NUM_THREADS=2 than under 1.
    * NumPy's overflow and invalid-value warnings are silenced: a non-finite loss, update
      or output is detected and reported by the model itself, with the epoch and batch or
      the sample, instead of NumPy's line of the kernel.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if not config.deterministic():
            yield
            return
        with _blas_controller().limit(limits=1, user_api="blas"):
            yield


_controller = None


def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries, found once (finding them takes
    milliseconds, which a loop of ``fit(epochs=1)`` calls would pay every time)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


@contextlib.contextmanager
def stop_on_interrupt():
    """Turn Ctrl-C into a flag checked at the end of each batch (main thread only).

    Yields a function that tells whether Ctrl-C was pressed; a second Ctrl-C interrupts at
    once.
    """
    state = {"interrupted": False}
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main_thread else None

    def handler(signum, frame):
        if state["interrupted"]:
            raise KeyboardInterrupt
        state["interrupted"] = True
        print("\nfit: Ctrl-C received; stopping at the end of this batch "
              "(press again to abort now)", file=sys.stderr)

    installed = False
    if in_main_thread and previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, handler)
        installed = True
    try:
        yield lambda: state["interrupted"]
    finally:
        if installed:
            signal.signal(signal.SIGINT, previous)


class RunningMeans:
    """Sample-weighted running means of the loss and metrics over an epoch's batches."""

    def __init__(self, metric_names):
        self.names = ["loss", *metric_names]
        self.sums = np.zeros(len(self.names))
        self.count = 0

    def add(self, values, count):
        self.sums += np.asarray(values, dtype=float) * count
        self.count += count

    def logs(self, prefix=""):
        return {prefix + name: float(total / self.count)
                for name, total in zip(self.names, self.sums)}


class Progress:
    """Keras 3's per-epoch progress line: ``313/313 - 1s - 3ms/step - accuracy: ... - loss: ...``.

    verbose=1 redraws a bar in place on a terminal (and prints only the final line
    elsewhere); verbose=2 prints one line per epoch.
    """

    width = 20

    def __init__(self, steps, verbose):
        self.steps = steps
        self.verbose = verbose
        self.interactive = verbose == 1 and sys.stdout.isatty()
        self.last_draw = 0.0
        self.started = time.perf_counter()

    @staticmethod
    def _metrics(logs):
        # Keras' format: 4 decimals, or scientific notation for values of 1e-3 and below.
        return "".join(f" - {key}: {value:.4f}" if abs(value) > 1e-3 else
                       f" - {key}: {value:.4e}" for key, value in sorted(logs.items()))

    @staticmethod
    def _timing(elapsed, steps):
        per_step = elapsed / max(steps, 1)
        per_step_text = (f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3
                         else f"{per_step * 1e6:.0f}us/step")
        return f"{elapsed:.0f}s", per_step_text

    def update(self, step, logs):
        if not self.interactive or step == self.steps:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(self.width * step / self.steps)
        bar = "━" * filled + " " * (self.width - filled)
        total, per_step = self._timing(now - self.started, step)
        line = f"\r{step:>{len(str(self.steps))}}/{self.steps} {bar} {total} {per_step}"
        sys.stdout.write(line + self._metrics(logs))
        sys.stdout.flush()

    def finish(self, steps, logs):
        if not self.verbose:
            return
        total, per_step = self._timing(time.perf_counter() - self.started, steps)
        if self.verbose == 1:
            line = f"{steps}/{self.steps} {'━' * self.width} {total} {per_step}"
        else:
            line = f"{steps}/{self.steps} - {total} - {per_step}"
        text = line + self._metrics(logs)
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            text = text.replace("━", "=")
        sys.stdout.write(("\r" if self.interactive else "") + text + "\n")
        sys.stdout.flush()
