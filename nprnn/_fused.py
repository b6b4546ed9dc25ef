"""When and how a model trains through the fused compiled step.

:mod:`nprnn.kernels.compiled.fused` runs a batch of the chapter's models -- ``[Embedding]
-> SimpleRNN | LSTM | GRU (one, or a stack whose lower layers return sequences) ->
Dense(1, sigmoid)`` with binary cross-entropy and RMSprop, the Embedding with or without
``mask_zero`` -- in one compiled call, and an
epoch in a few. :func:`plan_for` says whether a model is such a model (everything else, and
the NumPy backend, takes the per-layer route, which the fused one is tested equal to); a
:class:`FusedPlan` holds the buffers and calls the kernels.

It draws the same random numbers in the same order as the per-layer route (the epoch's
permutation, then each batch's input dropout masks, bottom layer first), so a seeded run
gives the same weights either way (to rounding).
"""

from __future__ import annotations

import contextlib

import numpy as np

from nprnn import config, losses, metrics, optimizers
from nprnn.layers import GRU, LSTM, Dense, Embedding, SimpleRNN, TokenInput
from nprnn.utils.categorical import SparseOneHot

#: Batches per compiled call when no callback needs every batch: bounds how long Ctrl-C and
#: the progress bar wait.
CHUNK = 32
#: Sequences per block in inference: the forward's gates of a block stay in the L2 cache.
PREDICT_BLOCK = 128

_pools = {}
_switched_off = 0  # depth of per_layer_route() blocks


@contextlib.contextmanager
def per_layer_route():
    """Within the block every model takes the per-layer route (for the tests and benchmarks
    that compare the two routes)."""
    global _switched_off
    _switched_off += 1
    try:
        yield
    finally:
        _switched_off -= 1


def _pool(threads):
    """A thread pool of ``threads`` workers, made once per size."""
    if threads not in _pools:
        from concurrent.futures import ThreadPoolExecutor

        _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="nprnn-predict")
    return _pools[threads]


def plan_for(model, training=True):
    """A :class:`FusedPlan` for ``model``, or None when it takes the per-layer route.

    ``training=False`` asks for inference only (predict, evaluate's forward pass): the loss,
    optimizer and metrics then do not matter.
    """
    if _switched_off or config.backend() != "numba" or not model.built or (
            training and not model.compiled):
        return None
    stack = list(model.layers)
    embedding = stack.pop(0) if stack and isinstance(stack[0], Embedding) else None
    if len(stack) < 2 or not all(layer.trainable for layer in model.layers):
        return None
    *rnns, dense = stack
    cells = tuple(_cell_number(rnn) for rnn in rnns)
    if None in cells or not all(_plain(rnn, top=(i == len(rnns) - 1))
                                for i, rnn in enumerate(rnns)):
        return None
    if not isinstance(dense, Dense) or dense.units != 1 or dense.activation != "sigmoid" \
            or not dense.use_bias:
        return None
    if len({array.dtype for array in model.weights}) > 1 or not all(
            array.flags.c_contiguous for array in model.weights):
        return None
    if not training:
        return FusedPlan(model, embedding, rnns, dense, cells)
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
    return FusedPlan(model, embedding, rnns, dense, cells)


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


def _plain(rnn, top):
    """No option the fused step does not implement; the layers below the top return their
    sequences, the top one its last state."""
    return (rnn.use_bias and not rnn.go_backwards and not rnn.stateful
            and rnn.return_sequences != top and not rnn.return_state
            and rnn.recurrent_dropout == 0)


class FusedPlan:
    """The arrays of one model arranged for the fused kernels (weights are shared, not copied)."""

    def __init__(self, model, embedding, rnns, dense, cells):
        from nprnn.kernels.compiled import fused

        self.kernels = fused
        self.model, self.embedding, self.rnns, self.dense, self.cells = (
            model, embedding, rnns, dense, cells)
        self.dtype = rnns[0].weights[0].dtype
        self.work = {}

    # -- arrays ------------------------------------------------------------------------------
    def _split(self, rnn, arrays):
        """(Wx, b, Wh, rb) of a recurrent layer's weights or gradients, split by its cell
        (a GRU's (2, 3H) bias: input row, recurrent row; no recurrent bias: an empty one)."""
        Wx, b, (Wh, *rest) = rnn.cell.split(arrays)
        return Wx, b, Wh, (rest[0] if rest else np.zeros(0, self.dtype))

    def _layer_arrays(self):
        """(Wxs, bs, Whs, rbs): one tuple per kind, one entry per recurrent layer (views)."""
        per_layer = [self._split(rnn, rnn.weights) for rnn in self.rnns]
        return tuple(tuple(arrays) for arrays in zip(*per_layer))

    def _table(self):
        if self.embedding is None:
            return np.zeros((0, 0), self.dtype), False
        return self.embedding.weights[0], True

    def _dims(self, x):
        """(D_1, H_1, ..., H_L): the first layer's input width and every layer's units."""
        first = x.num_classes if isinstance(x, SparseOneHot) else self.embedding.output_dim
        return (first, *(rnn.units for rnn in self.rnns))

    def _work(self, batch_size, steps, x, training=True, part=0):
        """The kernels' buffers for batches of ``batch_size``, kept for the next call (one set
        per batch size for training, one for inference; ``part``: one set per range of
        :meth:`_logits_on_threads`)."""
        dims = self._dims(x)
        key = (training, batch_size, steps, dims, part)
        if key not in self.work:
            if len(self.work) > 16:  # a long run of odd sizes: start again
                self.work.clear()
            rows = dims[0] if isinstance(x, SparseOneHot) else self.embedding.input_dim
            dropout_first = training and self.embedding is not None and self.rnns[0].dropout > 0
            self.work[key] = self.kernels.make_work(self.cells, batch_size, steps, dims, rows,
                                                    self.dtype, dropout_first, training)
        return self.work[key]

    def _grads(self):
        """Gradient buffers in the kernel's order, views of the layers' ``grads``: one
        (dWx, db, dWh, drb) per recurrent layer, and (dWd, dbd, dtable)."""
        per_layer = tuple(self._split(rnn, rnn.grads) for rnn in self.rnns)
        dWd, dbd = self.dense.grads
        dtable = (self.embedding.grads[0] if self.embedding is not None
                  else np.zeros((0, 0), self.dtype))
        return per_layer, (dWd, dbd, dtable)

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

    def _has_mask(self):
        """The Embedding's ``mask_zero``: every recurrent layer skips the steps of token 0
        (Keras passes the mask up through the layers that return sequences)."""
        return self.embedding is not None and self.embedding.mask_zero

    @staticmethod
    def _ids(x):
        return x.indices if isinstance(x, SparseOneHot) else x

    # -- training and inference --------------------------------------------------------------
    def train_batches(self, x, y, order, batch_size, first, last, dropout_masks, losses_,
                      corrects):
        """Batches ``first`` .. ``last - 1`` of an epoch; returns how many were applied."""
        table, has_table = self._table()
        Wxs, bs, Whs, rbs = self._layer_arrays()
        Wd, bd = self.dense.weights
        ids = np.ascontiguousarray(self._ids(x))
        steps = ids.shape[1]
        last_size = len(order) % batch_size or batch_size
        optimizer = self.model.optimizer
        targets = np.ascontiguousarray(y.reshape(-1), dtype=self.dtype)
        grads, dense_grads = self._grads()
        done = self.kernels.train_batches(
            self.cells, ids, targets, order, batch_size, first, last, self._has_mask(),
            dropout_masks, table, has_table, has_table and self.embedding.trainable, Wxs, bs,
            Whs, rbs, Wd, bd,
            self._fast(), float(optimizer.learning_rate), float(optimizer.rho),
            float(optimizer.epsilon), self._slots(), grads, dense_grads,
            self._work(batch_size, steps, x), self._work(last_size, steps, x), losses_,
            corrects)
        optimizer.iterations += done
        return done

    def dropout_masks(self, order, batch_size):
        """The epoch's input dropout masks of every recurrent layer, (N_total, D_l) each (an
        empty one for a layer without dropout), drawn as the per-layer route draws them:
        batch after batch, in each batch the layers bottom to top, one (n, 1, D_l) draw
        each."""
        total = len(order)
        widths = [rnn.weights[0].shape[0] for rnn in self.rnns]
        masks = [np.empty((total, width), self.dtype) if rnn.dropout > 0
                 else np.zeros((0, 0), self.dtype) for rnn, width in zip(self.rnns, widths)]
        for start in range(0, total, batch_size):
            stop = min(total, start + batch_size)
            for rnn, width, mask in zip(self.rnns, widths, masks):
                if rnn.dropout > 0:
                    mask[start:stop] = rnn._dropout_mask(rnn.dropout, (stop - start, width))
        return tuple(masks)

    def logits(self, x, batch_size):
        """The Dense layer's logits (M,) for every sequence of ``x``.

        Sequences are independent in the forward pass, so they are run in blocks of at most
        :data:`PREDICT_BLOCK` whatever ``batch_size`` is (same results, smaller working set).
        """
        import numba  # loaded with the compiled kernels, on first use

        from nprnn.kernels.compiled import switches

        batch_size = min(batch_size, PREDICT_BLOCK)
        table, has_table = self._table()
        Wxs, bs, Whs, rbs = self._layer_arrays()
        Wd, bd = self.dense.weights
        ids = np.ascontiguousarray(self._ids(x))
        total, steps = ids.shape
        out = np.empty(total, dtype=self.dtype)
        no_masks = tuple(np.zeros((0, 0), self.dtype) for _ in self.rnns)
        P = self._work(batch_size, steps, x, training=False)[0]
        self.kernels.project_table(table, has_table, Wxs[0], bs[0], P)
        last_size = total % batch_size or batch_size
        args = (self._has_mask(), no_masks, table, has_table, Wxs, bs, Whs, rbs, Wd, bd,
                self._fast(), P)
        threshold = switches.PARALLEL_MIN_BATCH
        threads = numba.get_num_threads()
        if threshold and total >= threshold and threads > 1:
            self._logits_on_threads(x, ids, batch_size, threads, args, out)
            return out
        layers = self._work(batch_size, steps, x, training=False)[2]
        last_layers = self._work(last_size, steps, x, training=False)[2]
        self.kernels.predict_logits(self.cells, ids, 0, total, *args, layers, last_layers, out)
        return out

    def _logits_on_threads(self, x, ids, batch_size, threads, args, out):
        """:meth:`logits` on ``threads`` threads: the blocks split into two ranges a thread,
        handed out one at a time (a thread on a busy core takes fewer), each range with
        buffers of its own (kept for the next call). The kernel releases the GIL; the logits
        are the serial ones bit for bit."""
        total, steps = ids.shape
        blocks = -(-total // batch_size)
        count = min(blocks, 2 * threads)
        bounds = [min(total, blocks * p // count * batch_size) for p in range(count + 1)]
        buffers = [self._work(batch_size, steps, x, training=False, part=p)[2]
                   for p in range(count)]
        # only the last range can end in a smaller block
        last = self._work(total % batch_size or batch_size, steps, x, training=False,
                          part=count - 1)[2]

        def run(p):
            self.kernels.predict_logits(self.cells, ids, bounds[p], bounds[p + 1], *args,
                                        buffers[p], last if p == count - 1 else buffers[p],
                                        out)

        for future in [_pool(threads).submit(run, p) for p in range(count)]:
            future.result()

    def _fast(self):
        from nprnn.kernels.compiled import _common

        return _common.is_fast(self.dtype)

    def accepts(self, x):
        """True for the inputs the kernels read: token ids, or a SparseOneHot without an
        Embedding."""
        if isinstance(x, SparseOneHot):
            return self.embedding is None
        return self.embedding is not None and not isinstance(x, TokenInput)
