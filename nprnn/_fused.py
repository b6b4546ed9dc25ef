"""When and how a model trains through the fused compiled step.

:mod:`nprnn.kernels.compiled.fused` runs a batch of the chapter's models -- ``[Embedding]
-> SimpleRNN | LSTM | GRU -> Dense(1, sigmoid)`` with binary cross-entropy and RMSprop --
in one compiled call, and an epoch in a few. :func:`plan_for` says whether a model is such a
model (everything else, and the NumPy backend, takes the per-layer route, which the fused one
is tested equal to); a :class:`FusedPlan` holds the buffers and calls the kernels.

It draws the same random numbers in the same order as the per-layer route (the epoch's
permutation, then each batch's input dropout mask), so a seeded run gives the same weights
either way (to rounding).
"""

from __future__ import annotations

import numpy as np

from nprnn import config, losses, metrics, optimizers
from nprnn.layers import GRU, LSTM, Dense, Embedding, SimpleRNN, TokenInput
from nprnn.utils.categorical import SparseOneHot

#: Batches per compiled call when no callback needs every batch: bounds how long Ctrl-C and
#: the progress bar wait.
CHUNK = 32
#: Sequences per block in inference: the forward's gates of a block stay in the L2 cache.
PREDICT_BLOCK = 128


def plan_for(model, training=True):
    """A :class:`FusedPlan` for ``model``, or None when it takes the per-layer route.

    ``training=False`` asks for inference only (predict, evaluate's forward pass): the loss,
    optimizer and metrics then do not matter.
    """
    if config.backend() != "numba" or (training and not model.compiled):
        return None
    stack = list(model.layers)
    embedding = stack.pop(0) if stack and isinstance(stack[0], Embedding) else None
    if len(stack) != 2 or not all(layer.trainable for layer in model.layers):
        return None
    rnn, dense = stack
    if embedding is not None and embedding.mask_zero:
        return None
    cell = _cell_number(rnn)
    if cell is None or not _plain(rnn) or not isinstance(dense, Dense):
        return None
    if dense.units != 1 or dense.activation != "sigmoid" or not dense.use_bias:
        return None
    if not all(array.flags.c_contiguous for array in model.weights):
        return None
    if not training:
        return FusedPlan(model, embedding, rnn, dense, cell)
    if not model._uses_logits() or not isinstance(model.loss, losses.BinaryCrossentropy):
        return None
    optimizer = model.optimizer
    if type(optimizer) is not optimizers.RMSprop or any(
            getattr(optimizer, name) is not None
            for name in ("clipnorm", "clipvalue", "global_clipnorm")):
        return None
    if any(function not in (metrics.binary_accuracy, metrics.accuracy)
           for function in model._metric_functions):
        return None
    arrays = model.weights + [v for v in optimizer.slots.get("velocity", [])]
    if not all(array.flags.c_contiguous for array in arrays):
        return None
    return FusedPlan(model, embedding, rnn, dense, cell)


def _cell_number(rnn):
    from nprnn.kernels.compiled import fused

    if type(rnn) is SimpleRNN and rnn.activation == "tanh":
        return fused.SIMPLE_RNN
    if type(rnn) is LSTM and (rnn.activation, rnn.recurrent_activation) == ("tanh", "sigmoid"):
        return fused.LSTM
    if type(rnn) is GRU and rnn.reset_after and (
            rnn.activation, rnn.recurrent_activation) == ("tanh", "sigmoid"):
        return fused.GRU
    return None


def _plain(rnn):
    """No option the fused step does not implement."""
    return (rnn.use_bias and not rnn.go_backwards and not rnn.stateful
            and not rnn.return_sequences and not rnn.return_state
            and rnn.recurrent_dropout == 0)


class FusedPlan:
    """The arrays of one model arranged for the fused kernels (weights are shared, not copied)."""

    def __init__(self, model, embedding, rnn, dense, cell):
        from nprnn.kernels.compiled import fused

        self.kernels = fused
        self.model, self.embedding, self.rnn, self.dense, self.cell = (
            model, embedding, rnn, dense, cell)
        self.dtype = rnn.weights[0].dtype
        self.work = {}

    # -- arrays ------------------------------------------------------------------------------
    def _split(self, arrays):
        """(Wx, b, Wh, rb) of the recurrent layer's weights or gradients, split by its cell
        (a GRU's (2, 3H) bias: input row, recurrent row; no recurrent bias: an empty one)."""
        Wx, b, (Wh, *rest) = self.rnn.cell.split(arrays)
        return Wx, b, Wh, (rest[0] if rest else np.zeros(0, self.dtype))

    def _weights(self):
        """(Wx, b, Wh, rb, Wd, bd): views of the layers' own arrays."""
        return (*self._split(self.rnn.weights), *self.dense.weights)

    def _table(self):
        if self.embedding is None:
            return np.zeros((0, 0), self.dtype), False
        return self.embedding.weights[0], True

    def _work(self, batch_size, steps, rows, training=True):
        """The kernels' buffers for this batch shape, kept for the next call (one set for
        training, one for inference)."""
        key = (batch_size, steps, rows)
        kept_key, work = self.work.get(training, (None, None))
        if kept_key != key:
            work = self.kernels.make_work(self.cell, batch_size, steps, self.rnn.units, rows,
                                          self.dtype, training)
            self.work[training] = (key, work)
        return work

    def _grads(self):
        """Gradient buffers in the kernel's order, views of the layers' ``grads``."""
        dWx, db, dWh, drb = self._split(self.rnn.grads)
        dWd, dbd = self.dense.grads
        dtable = (self.embedding.grads[0] if self.embedding is not None
                  else np.zeros((0, 0), self.dtype))
        return dWx, db, dWh, drb, dWd, dbd, dtable

    def _slots(self):
        """(weight, grad, velocity, staged weight, staged velocity) for every trained array,
        in the optimizer's order."""
        weights, grads = self.model._trainable_pairs()
        optimizer = self.model.optimizer
        if not optimizer.slots:
            optimizer.build(weights)
        velocities = optimizer.slots["velocity"]
        if len(velocities) != len(weights):
            raise ValueError(f"weights: this optimizer holds state for {len(velocities)} "
                             f"weights, got {len(weights)}; use a new optimizer for another "
                             "model")
        return tuple((w, g, v, np.empty(w.shape, w.dtype), np.empty(v.shape, v.dtype))
                     for w, g, v in zip(weights, grads, velocities))

    @staticmethod
    def _ids(x):
        return x.indices if isinstance(x, SparseOneHot) else x

    def _rows(self, x):
        return x.num_classes if isinstance(x, SparseOneHot) else self.embedding.input_dim

    # -- training and inference --------------------------------------------------------------
    def train_batches(self, x, y, order, batch_size, first, last, dropout_masks, losses_,
                      corrects):
        """Batches ``first`` .. ``last - 1`` of an epoch; returns how many were applied."""
        table, has_table = self._table()
        Wx, b, Wh, rb, Wd, bd = self._weights()
        ids = np.ascontiguousarray(self._ids(x))
        has_dmask = dropout_masks is not None
        dmask = dropout_masks if has_dmask else np.zeros((0, 0), self.dtype)
        optimizer = self.model.optimizer
        targets = np.ascontiguousarray(y.reshape(-1), dtype=self.dtype)
        done = self.kernels.train_batches(
            self.cell, ids, targets, order, batch_size, first, last, dmask, has_dmask, table,
            has_table, has_table and self.embedding.trainable, Wx, b, Wh, rb, Wd, bd,
            self._fast(), float(optimizer.learning_rate), float(optimizer.rho),
            float(optimizer.epsilon), self._slots(), self._grads(),
            self._work(batch_size, ids.shape[1], self._rows(x)), losses_, corrects)
        optimizer.iterations += done
        return done

    def dropout_masks(self, order):
        """The epoch's input dropout masks, drawn as the per-layer route draws them: one
        (n, 1, D) draw per batch, in order, which is one (N_total, D) draw."""
        rate = self.rnn.dropout
        if rate == 0:
            return None
        features = self.rnn.weights[0].shape[0]
        return self.rnn._dropout_mask(rate, (len(order), features))

    def logits(self, x, batch_size):
        """The Dense layer's logits (M,) for every sequence of ``x``.

        Sequences are independent in the forward pass, so they are run in blocks of at most
        :data:`PREDICT_BLOCK` whatever ``batch_size`` is (same results, smaller working set).
        """
        batch_size = min(batch_size, PREDICT_BLOCK)
        table, has_table = self._table()
        Wx, b, Wh, rb, Wd, bd = self._weights()
        ids = np.ascontiguousarray(self._ids(x))
        out = np.empty(len(ids), dtype=self.dtype)
        import numba  # loaded with the compiled kernels, on first use

        from nprnn.kernels.compiled import switches

        threshold = switches.PARALLEL_MIN_BATCH
        if threshold and len(ids) >= threshold and numba.get_num_threads() > 1:
            # Blocks handed out one at a time: a thread on a busy core takes fewer of them.
            with numba.parallel_chunksize(1):
                self.kernels.predict_logits_parallel(self.cell, ids, table, has_table, Wx, b,
                                                     Wh, rb, Wd, bd, self._fast(), batch_size,
                                                     out)
            return out
        work = self._work(batch_size, ids.shape[1], self._rows(x), training=False)
        self.kernels.predict_logits(self.cell, ids, table, has_table, Wx, b, Wh, rb, Wd, bd,
                                    self._fast(), work, out)
        return out

    def _fast(self):
        from nprnn.kernels.compiled import _common

        return _common.is_fast(self.dtype)

    def accepts(self, x):
        """True for the inputs the kernels read: token ids, or a SparseOneHot without an
        Embedding."""
        if isinstance(x, SparseOneHot):
            return self.embedding is None
        return self.embedding is not None and not isinstance(x, TokenInput)
