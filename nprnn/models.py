"""``Sequential``: a stack of layers with Keras' training API (compile, fit, evaluate, predict).

One training step on a batch, in the order the maths goes::

    outputs = layer_k(... layer_1(x))             forward, each layer caching what it needs
    loss    = mean BCE(y, outputs)                from the logits when the output is a sigmoid
    grads   = backward through the layers         full BPTT inside the SimpleRNN
    weights <- optimizer(weights, grads)          in place

Batching: each epoch shuffles the training samples (``shuffle=True``) and keeps the last,
smaller batch, as Keras does; the epoch's ``loss`` and ``accuracy`` are means over samples
(each batch weighted by its size).
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
import warnings

import numpy as np

from nprnn import _random, config, losses, optimizers
from nprnn import callbacks as callbacks_module
from nprnn import metrics as metrics_module
from nprnn._validation import (
    all_finite,
    as_array,
    as_float_array,
    as_token_ids,
    check_bool,
    check_float,
    check_non_negative_int,
    check_positive_int,
)
from nprnn.kernels import reference
from nprnn.layers import (
    Dense,
    Embedding,
    Layer,
    SimpleRNN,
    TokenInput,
    _check_shape,
    unique_name,
)
from nprnn.utils.categorical import SparseOneHot


class Sequential:
    """A linear stack of layers, built with ``add`` or from a list, as in Keras.

    Examples
    --------
    The book's embedding model::

        model = Sequential()
        model.add(Embedding(500, 16, input_length=100))
        model.add(SimpleRNN(8))
        model.add(Dense(1, activation='sigmoid'))
        model.compile(optimizer=RMSprop(1e-4), loss='binary_crossentropy',
                      metrics=['accuracy'])
    """

    def __init__(self, layers=None, name=None):
        self.name = name or unique_name("sequential")
        self.layers: list[Layer] = []
        self.optimizer = None
        self.loss = None
        self.metric_names: list[str] = []
        self._metric_functions = []
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.input_shape = None
        for layer in layers or []:
            self.add(layer)

    # -- structure -----------------------------------------------------------------------
    def add(self, layer):
        """Append a layer; build the model at once if the input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected an nprnn Layer, got {type(layer).__name__}")
        if any(existing is layer for existing in self.layers):
            raise ValueError(f"layer: {layer.name!r} is already in this model")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(f"layer: a layer named {layer.name!r} is already in this model")
        self.layers.append(layer)
        try:
            if len(self.layers) == 1 and layer.input_shape is not None:
                self.build((None,) + tuple(layer.input_shape))
            elif self.input_shape is not None:
                self._build_layers(self.input_shape, start=len(self.layers) - 1)
        except Exception:
            self.layers.pop()  # a layer that cannot be built is not added, as in Keras
            if not self.layers:
                self.input_shape = None
            raise

    def pop(self):
        """Remove the last layer."""
        if not self.layers:
            raise ValueError("pop: the model has no layers")
        return self.layers.pop()

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def build(self, input_shape=None):
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first)."""
        if not self.layers:
            raise ValueError("build: the model has no layers; add some first")
        if input_shape is None:
            if self.layers[0].input_shape is None:
                raise ValueError("input_shape: unknown; pass it to build() or to the first layer")
            input_shape = (None,) + tuple(self.layers[0].input_shape)
        if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
            raise TypeError(f"input_shape: expected a tuple such as (None, 100), got "
                            f"{input_shape!r}")
        input_shape = _check_shape(input_shape, "input_shape")
        previous = self.input_shape
        self.input_shape = input_shape
        try:
            self._build_layers(self.input_shape, start=0)
        except Exception:
            self.input_shape = previous
            raise

    def _build_layers(self, input_shape, start):
        """Build the layers from ``start`` on; if one fails, those built here are undone."""
        shape = tuple(input_shape)
        touched = []
        try:
            for index, layer in enumerate(self.layers):
                if index >= start and not layer.built:
                    touched.append((layer, layer.dtype))
                    layer.build(shape)
                shape = layer.output_shape
        except Exception:
            for layer, dtype in touched:
                layer.weights, layer.grads, layer.weight_names = [], [], []
                layer.built, layer.output_shape, layer.dtype = False, None, dtype
            raise

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.built else None

    @property
    def weights(self):
        """The weight arrays themselves (not copies), layer by layer in Keras' order."""
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers if layer.trainable for w in layer.weights]

    def count_params(self):
        """Number of weights: 4,081 for the book's one-hot model, 8,209 for the embedding one."""
        self._require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        """Copies of every weight, in Keras' order and shapes."""
        self._require_built("get_weights")
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set every weight from a list in ``get_weights()`` order; each shape is checked."""
        self._require_built("set_weights")
        if isinstance(weights, np.ndarray) or not hasattr(weights, "__iter__"):
            raise TypeError(f"weights: expected a list of arrays (as get_weights() returns), "
                            f"got {type(weights).__name__}")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            names = [f"{layer.name}/{n}" for layer in self.layers for n in layer.weight_names]
            raise ValueError(f"weights: expected {expected} arrays ({', '.join(names)}), "
                             f"got {len(weights)}")
        # Check every array first, so that a bad list leaves the model as it was.
        checked, position = [], 0
        for layer in self.layers:
            count = len(layer.weights)
            checked.append(layer._check_weights(weights[position:position + count]))
            position += count
        for layer, values in zip(self.layers, checked):
            for current, new in zip(layer.weights, values):
                current[...] = new

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"{what}: the model is not built yet; give the first layer input_shape (or "
                "Embedding input_length), call build(input_shape), or fit it on data"
            )

    # -- summary -------------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print Keras' summary table: each layer's output shape and parameter count.

        For the book's models: SimpleRNN 4,072 + Dense 9 = 4,081, and Embedding 8,000 +
        SimpleRNN 200 + Dense 9 = 8,209. The layout is Keras 3's; terminals that cannot show
        its box-drawing characters get the same table in ASCII.
        """
        from nprnn._summary import format_summary

        text = format_summary(self)
        if print_fn is not None:
            print_fn(text)
            return None
        encoding = getattr(sys.stdout, "encoding", None) or "ascii"
        try:
            text.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            text = format_summary(self, ascii_only=True)
        print(text)
        return None

    # -- compile -------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer, the loss and the metrics (names or objects, as in Keras)."""
        if loss is None:
            raise ValueError(f"loss: expected one of {sorted(losses._BY_NAME)} or a Loss, "
                             "got None")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, str) or not hasattr(metrics, "__iter__"):
            raise TypeError(f"metrics: expected a list such as ['accuracy'], got {metrics!r}")
        resolved = [metrics_module.get(m) for m in metrics]
        self.metric_names = [name for name, _ in resolved]
        self._metric_functions = [function for _, function in resolved]
        self.compiled = True

    def _require_compiled(self, what):
        if not self.compiled:
            raise ValueError(f"{what}: the model must be compiled first: "
                             "model.compile(optimizer=..., loss=..., metrics=[...])")

    # -- data ----------------------------------------------------------------------------
    def _prepare_x(self, x, name="x"):
        """Validate inputs once; return them in the form the first layer takes.

        Token ids for an Embedding, a SparseOneHot, or a float array of the model's dtype.
        Builds the model from the inputs' shape if it is not built yet.
        """
        if not self.layers:
            raise ValueError("build: the model has no layers; add some first")
        first = self.layers[0]
        if isinstance(first, Embedding):
            if isinstance(x, SparseOneHot):
                raise TypeError(f"{name}: an Embedding takes token ids, got a one-hot array")
            ids = as_token_ids(x, name, vocabulary_size=first.input_dim)
            if ids.ndim != 2:
                raise ValueError(f"{name}: an Embedding expects ids of shape (samples, "
                                 f"timesteps), got shape {ids.shape}")
            prepared = ids
        elif isinstance(x, SparseOneHot):
            if x.indices.size and (x.indices.min() < 0 or x.indices.max() >= x.num_classes):
                raise ValueError(f"{name}: a SparseOneHot holds ids outside [0, "
                                 f"{x.num_classes}): its indices were changed after creation")
            prepared = x
        else:
            raw = x if isinstance(x, np.ndarray) else as_array(x, name)
            if raw.dtype.kind in "iu" and raw.ndim == 2 and isinstance(first, SimpleRNN):
                raise ValueError(
                    f"{name}: got integer ids of shape {raw.shape}, but the first layer "
                    f"({type(first).__name__}) expects features per step; add an "
                    "Embedding or one-hot encode with to_categorical")
            dtype = self._dtype()
            if raw.dtype == dtype:
                if not all_finite(raw):
                    raise ValueError(f"{name}: expected finite values, found NaN or infinity")
                prepared = raw
            else:
                prepared = as_float_array(raw, name, dtype)
        if prepared.ndim == 0:
            raise ValueError(f"{name}: expected an array of samples, got a scalar")
        if len(prepared) == 0:
            raise ValueError(f"{name}: expected at least one sample, got an empty array")
        if prepared.ndim >= 2 and prepared.shape[1] == 0:
            raise ValueError(f"{name}: expected sequences of at least one step, got shape "
                             f"{prepared.shape}")
        if 0 in prepared.shape:
            raise ValueError(f"{name}: expected no empty axis, got shape {prepared.shape}")
        if isinstance(first, SimpleRNN) and prepared.ndim != 3:
            raise ValueError(
                f"{name}: SimpleRNN expects 3-D inputs (samples, timesteps, features), got "
                f"shape {prepared.shape}; token ids need an Embedding first, or to_categorical")
        if not self.built:
            try:
                self.build((None,) + tuple(prepared.shape[1:]))
            except ValueError as error:
                raise ValueError(f"{name}: cannot build the model for inputs of shape "
                                 f"{prepared.shape}: {error}") from None
        elif self.input_shape is not None:
            expected = self.input_shape[1:]
            got = tuple(prepared.shape[1:])
            if len(expected) != len(got) or any(
                    e is not None and e != g for e, g in zip(expected, got)):
                raise ValueError(f"{name}: the model expects samples of shape "
                                 f"{tuple(expected)}, got {got}")
        return prepared

    def _prepare_y(self, y, count, name="y"):
        if y is None:
            raise ValueError(f"{name}: expected {count} targets (one per sample of x), got None")
        raw = as_array(y, name)
        if raw.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected numeric targets, got dtype {raw.dtype}")
        if len(raw) != count if raw.ndim else True:
            raise ValueError(f"{name}: expected {count} targets (one per sample of x), got "
                             f"{len(raw) if raw.ndim else 'a scalar'}")
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raise ValueError(f"{name}: expected finite targets, found NaN or infinity")
        with np.errstate(over="ignore"):
            targets = raw.astype(self._dtype())
        if not np.isfinite(targets).all():
            raise ValueError(f"{name}: targets up to {np.abs(raw).max():.3g} overflow "
                             f"{targets.dtype}")
        output_units = self.layers[-1].output_shape[-1]
        if targets.size != count * output_units:
            raise ValueError(f"{name}: expected shape ({count},) or ({count}, {output_units}), "
                             f"got {raw.shape}")
        if isinstance(self.loss, losses.BinaryCrossentropy) and (
                targets.min() < 0 or targets.max() > 1):
            raise ValueError(f"{name}: binary_crossentropy expects targets in [0, 1] (class "
                             f"labels 0 and 1), got values in [{targets.min()}, {targets.max()}]")
        return targets.reshape(count, output_units)

    def _dtype(self):
        for layer in self.layers:
            if layer.weights:
                return layer.weights[0].dtype
        return np.dtype(config.floatx())

    @staticmethod
    def _batch(x, index):
        """Rows ``index`` of the prepared inputs, in the form the first layer takes."""
        if isinstance(x, SparseOneHot):
            return TokenInput(x.indices[index], None, x.num_classes)
        return x[index]

    # -- forward and backward ------------------------------------------------------------
    def _uses_logits(self):
        """True when the loss can be taken from the logits of a sigmoid output."""
        last = self.layers[-1]
        return (isinstance(self.loss, losses.BinaryCrossentropy) and not self.loss.from_logits
                and isinstance(last, Dense) and last.activation == "sigmoid")

    def _forward(self, inputs, training=False):
        outputs = inputs
        for layer in self.layers:
            if isinstance(outputs, TokenInput) and not layer.accepts_token_input:
                outputs = outputs.materialize(self._dtype())
            outputs = layer.forward(outputs, training=training)
        if isinstance(outputs, TokenInput):
            outputs = outputs.materialize(self._dtype())
        return outputs

    def _loss_and_backward(self, inputs, targets):
        """Forward, loss, backward on one batch; gradients land in each layer's ``grads``."""
        outputs = self._forward(inputs, training=True)
        last = self.layers[-1]
        if self._uses_logits():
            logits = last.preactivation
            loss = reference.sigmoid_binary_crossentropy(logits, targets)
            dlogits = reference.sigmoid_binary_crossentropy_backward(logits, targets)
            gradient = last.backward_from_preactivation(dlogits)
            remaining = self.layers[:-1]
        else:
            loss = self.loss(targets, outputs)
            gradient = self.loss.gradient(targets, outputs)
            remaining = self.layers
        for position in range(len(remaining) - 1, -1, -1):
            layer = remaining[position]
            gradient = layer.backward(gradient, need_input_gradient=position > 0)
        return float(loss), outputs

    def _trainable_pairs(self):
        weights, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                weights.extend(layer.weights)
                grads.extend(layer.grads)
        return weights, grads

    def _metric_values(self, targets, outputs):
        return [function(targets, outputs) for function in self._metric_functions]

    # -- training ------------------------------------------------------------------------
    def compute_gradients(self, x, y):
        """Gradients of the mean loss on (x, y), in ``get_weights()`` order; weights unchanged.

        For people who study them: ``model.compute_gradients(x[:8], y[:8])[2]`` is dL/dWh.
        """
        self._require_compiled("compute_gradients")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        with _blas_threads():
            self._loss_and_backward(self._batch(prepared, slice(None)), targets)
        return [g.copy() for layer in self.layers for g in layer.grads]

    def train_on_batch(self, x, y, return_dict=False):
        """One optimizer step on one batch; returns [loss, metrics...] before the step."""
        self._require_compiled("train_on_batch")
        return_dict = check_bool(return_dict, "return_dict")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        with _blas_threads():
            loss, outputs = self._loss_and_backward(self._batch(prepared, slice(None)), targets)
            if not math.isfinite(loss):
                raise FloatingPointError(f"train_on_batch: the loss is {loss}; weights unchanged")
            if not self.optimizer.apply(*self._trainable_pairs()):
                raise FloatingPointError("train_on_batch: the update gave non-finite weights or "
                                         "optimizer state; both are left as they were")
        values = [loss] + self._metric_values(targets, outputs)
        return self._format_results(values, return_dict)

    def _format_results(self, values, return_dict):
        names = ["loss"] + self.metric_names
        if return_dict:
            return dict(zip(names, values))
        return values[0] if len(values) == 1 else values

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train for ``epochs`` epochs of mini-batch gradient descent; return the History.

        Parameters follow Keras: ``batch_size`` defaults to 32; ``validation_split`` takes
        the *last* fraction of the samples (before shuffling) for validation;
        ``validation_data=(x_val, y_val)`` overrides it; ``verbose`` 0 (silent), 1 (progress
        bar) or 2 (one line per epoch), 'auto' = 1.

        Robustness: a NaN or infinite batch loss stops training with a warning naming the
        epoch and batch, and the weights of before that step are kept; so does an update
        that makes a weight or an optimizer slot non-finite (both are put back). A
        validation pass whose outputs or loss are not finite stops training too, and that
        epoch is not recorded. Ctrl-C stops at the end of the current batch and returns the
        history so far, without the unfinished epoch (callbacks' ``on_train_end`` still
        runs, so EarlyStopping restores its best weights; a checkpoint being written when a
        second Ctrl-C aborts keeps its previous version, as every save is atomic).
        """
        self._require_compiled("fit")
        if x is None or y is None:
            raise ValueError("x, y: fit needs both training inputs and targets")
        batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
        epochs = check_non_negative_int(epochs, "epochs")
        initial_epoch = check_non_negative_int(initial_epoch, "initial_epoch")
        verbose = _check_verbose(verbose)
        validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                       high_open=True)
        shuffle = check_bool(shuffle, "shuffle")
        callback_list = _check_callbacks(callbacks)

        x_train = self._prepare_x(x)
        y_train = self._prepare_y(y, len(x_train))
        if validation_data is not None:
            x_val, y_val = _unpack_validation(validation_data)
            x_val = self._prepare_x(x_val, "validation_data[0]")
            y_val = self._prepare_y(y_val, len(x_val), "validation_data[1]")
        elif validation_split > 0:
            split_at = int(len(x_train) * (1 - validation_split))
            if split_at == 0 or split_at == len(x_train):
                raise ValueError(f"validation_split: {validation_split} leaves an empty "
                                 f"training or validation set of {len(x_train)} samples")
            x_train, x_val = x_train[:split_at], x_train[split_at:]
            y_train, y_val = y_train[:split_at], y_train[split_at:]
        else:
            x_val = y_val = None

        history = callbacks_module.History()
        callback_list = [*callback_list, history]
        steps = math.ceil(len(x_train) / batch_size)
        history.params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        for callback in callback_list:
            callback.set_model(self)
        self.stop_training = False
        self.history = history
        weights, grads = self._trainable_pairs()

        for callback in callback_list:
            callback.on_train_begin()
        with _stop_on_interrupt() as interrupted, _blas_threads():
            for epoch in range(initial_epoch, epochs):
                if verbose and epochs > 1:  # Keras prints this line only for several epochs
                    print(f"Epoch {epoch + 1}/{epochs}")
                for callback in callback_list:
                    callback.on_epoch_begin(epoch)
                started = time.perf_counter()
                order = (_random.generator().permutation(len(x_train)) if shuffle
                         else np.arange(len(x_train)))
                loss_sum = 0.0
                metric_sums = np.zeros(len(self._metric_functions))
                seen = 0
                progress = _Progress(steps, verbose)
                for step in range(steps):
                    index = order[step * batch_size:(step + 1) * batch_size]
                    for callback in callback_list:
                        callback.on_train_batch_begin(step)
                    loss, outputs = self._loss_and_backward(self._batch(x_train, index),
                                                            y_train[index])
                    if not math.isfinite(loss):
                        warnings.warn(f"fit: the loss became {loss} at epoch {epoch + 1}, batch "
                                      f"{step + 1}; training stopped and the weights from "
                                      "before that batch are kept", RuntimeWarning,
                                      stacklevel=2)
                        self.stop_training = True
                        break
                    if not self.optimizer.apply(weights, grads):
                        warnings.warn(f"fit: the update at epoch {epoch + 1}, batch {step + 1} "
                                      "gave non-finite weights or optimizer state; training "
                                      "stopped and the weights from before that batch are kept",
                                      RuntimeWarning, stacklevel=2)
                        self.stop_training = True
                        break
                    count = len(index)
                    seen += count
                    loss_sum += loss * count
                    metric_sums += np.array(self._metric_values(y_train[index], outputs)) * count
                    logs = _mean_logs(loss_sum, metric_sums, seen, self.metric_names)
                    for callback in callback_list:
                        callback.on_train_batch_end(step, logs)
                    progress.update(step + 1, logs, time.perf_counter() - started)
                    if interrupted() or self.stop_training:
                        break
                if seen == 0:
                    break
                epoch_logs = _mean_logs(loss_sum, metric_sums, seen, self.metric_names)
                if x_val is not None and not interrupted():
                    try:
                        values = self._evaluate_prepared(x_val, y_val, batch_size,
                                                         "validation_data")
                    except _NonFiniteError as error:
                        warnings.warn(f"fit: validation after epoch {epoch + 1} failed ({error}); "
                                      "training stopped and this epoch is not recorded",
                                      RuntimeWarning, stacklevel=2)
                        break
                    epoch_logs.update({f"val_{name}": value for name, value in
                                       zip(["loss"] + self.metric_names, values)})
                progress.finish(steps, epoch_logs, time.perf_counter() - started)
                if interrupted():
                    print(f"fit: interrupted during epoch {epoch + 1}; stopping",
                          file=sys.stderr)
                    break
                for callback in callback_list:
                    callback.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        for callback in callback_list:
            callback.on_train_end()
        return history

    # -- inference -----------------------------------------------------------------------
    def _evaluate_prepared(self, x, y, batch_size, name="x"):
        """Mean loss and metrics; ValueError if an output or the loss is not finite."""
        loss_sum = 0.0
        metric_sums = np.zeros(len(self._metric_functions))
        for start in range(0, len(x), batch_size):
            index = slice(start, start + batch_size)
            outputs = self._forward(self._batch(x, index))
            _check_finite_outputs(outputs, start, name)
            targets = y[index]
            if self._uses_logits():
                loss = reference.sigmoid_binary_crossentropy(self.layers[-1].preactivation, targets)
            else:
                loss = self.loss(targets, outputs)
            if not math.isfinite(loss):
                last = start + len(targets) - 1
                raise _NonFiniteError(f"{name}: the loss on samples {start}..{last} is {loss} "
                                      "(the outputs are too large for the loss)")
            count = len(targets)
            loss_sum += float(loss) * count
            metric_sums += np.array(self._metric_values(targets, outputs)) * count
        return [loss_sum / len(x), *(float(v) for v in metric_sums / len(x))]

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Mean loss and metrics over (x, y): ``[loss, accuracy]`` for the book's models."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
        verbose = _check_verbose(verbose)
        return_dict = check_bool(return_dict, "return_dict")
        if x is None:
            raise ValueError("x: evaluate needs inputs, got None")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        started = time.perf_counter()
        with _blas_threads():
            values = self._evaluate_prepared(prepared, targets, batch_size)
        if verbose:
            steps = math.ceil(len(prepared) / batch_size)
            _Progress(steps, verbose).finish(
                steps, dict(zip(["loss"] + self.metric_names, values)),
                time.perf_counter() - started)
        return self._format_results(values, return_dict)

    def predict(self, x, batch_size=None, verbose="auto"):
        """Model outputs for ``x``, shape (samples,) + output_shape[1:]: (N, 1) here."""
        batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
        verbose = _check_verbose(verbose)
        prepared = self._prepare_x(x)
        started = time.perf_counter()
        outputs = []
        with _blas_threads():
            for start in range(0, len(prepared), batch_size):
                batch = self._forward(self._batch(prepared, slice(start, start + batch_size)))
                _check_finite_outputs(batch, start, "x")
                outputs.append(batch)
        if verbose:
            steps = math.ceil(len(prepared) / batch_size)
            _Progress(steps, verbose).finish(steps, {}, time.perf_counter() - started)
        return np.concatenate(outputs, axis=0)

    def __call__(self, x):
        """Forward pass on x, without batching."""
        self._require_built("__call__")
        prepared = self._prepare_x(x)
        with _blas_threads():
            outputs = self._forward(self._batch(prepared, slice(None)))
        _check_finite_outputs(outputs, 0, "x")
        return outputs

    # -- saving --------------------------------------------------------------------------
    def get_config(self):
        return {"name": self.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    def save(self, filepath):
        """Save architecture, weights and optimizer state (atomically; never pickled).

        ``.h5``/``.hdf5``/``.keras``... : see :func:`nprnn.saving.save_model`.
        """
        from nprnn import saving

        saving.save_model(self, filepath)

    def save_weights(self, filepath):
        """Save the weights alone (atomically)."""
        from nprnn import saving

        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` or :meth:`save` into this model."""
        from nprnn import saving

        saving.load_weights(self, filepath)


class _NonFiniteError(ValueError):
    """An output or a loss that is NaN or infinite (fit stops on it instead of raising)."""


def _check_finite_outputs(outputs, start, name):
    """ValueError naming the first sample whose output is NaN or infinite."""
    values = np.asarray(outputs)
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))[0])
        raise _NonFiniteError(
            f"{name}: the model's output for sample {start + bad} is not finite (NaN or "
            "infinity): the inputs or the weights are so large that float arithmetic "
            "overflows; scale the inputs")


@contextlib.contextmanager
def _blas_threads():
    """The setting in which the model computes; restored on exit.

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
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            yield
            return
        with threadpool_limits(limits=1, user_api="blas"):
            yield


def _mean_logs(loss_sum, metric_sums, count, metric_names):
    """Sample-weighted means of the loss and metrics, as plain floats."""
    return {"loss": loss_sum / count,
            **{name: float(total / count) for name, total in zip(metric_names, metric_sums)}}


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if isinstance(callbacks, callbacks_module.Callback):
        raise TypeError("callbacks: expected a list of callbacks, got a single Callback; "
                        "wrap it in a list")
    callbacks = list(callbacks)
    for position, callback in enumerate(callbacks):
        if isinstance(callback, type) and issubclass(callback, callbacks_module.Callback):
            raise TypeError(f"callbacks: item {position} is the class {callback.__name__}, "
                            f"expected an instance such as {callback.__name__}()")
        if not isinstance(callback, callbacks_module.Callback):
            raise TypeError(f"callbacks: item {position} is {type(callback).__name__}, "
                            "expected an nprnn.callbacks.Callback")
    return callbacks


def _unpack_validation(validation_data):
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data: expected a tuple (x_val, y_val), got "
                         f"{type(validation_data).__name__}"
                         + (f" of length {len(validation_data)}"
                            if isinstance(validation_data, (tuple, list)) else ""))
    return validation_data


@contextlib.contextmanager
def _stop_on_interrupt():
    """Turn Ctrl-C into a flag checked at the end of each batch (main thread only)."""
    state = {"interrupted": False}
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if in_main_thread else None

    def handler(signum, frame):
        if state["interrupted"]:  # a second Ctrl-C interrupts at once
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


class _Progress:
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

    def update(self, step, logs, elapsed):
        if not self.interactive or step == self.steps:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(self.width * step / self.steps)
        bar = "━" * filled + " " * (self.width - filled)
        total, per_step = self._timing(elapsed, step)
        line = f"\r{step:>{len(str(self.steps))}}/{self.steps} {bar} {total} {per_step}"
        sys.stdout.write(line + self._metrics(logs))
        sys.stdout.flush()

    def finish(self, steps, logs, elapsed):
        if not self.verbose:
            return
        total, per_step = self._timing(elapsed, steps)
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


def load_model(filepath, compile=True):
    """Load a model saved by :meth:`Sequential.save` (or the book's models saved by Keras).

    See :func:`nprnn.saving.load_model`; ``compile=False`` returns it uncompiled.
    """
    from nprnn import saving

    return saving.load_model(filepath, compile=compile)
