"""``Sequential``: a stack of layers with Keras' training API (compile, fit, evaluate, predict).

One training step on a batch, in the order the maths goes (:meth:`Sequential.train_step`)::

    outputs = layer_k(... layer_1(x))             forward, each layer caching what it needs
    loss    = mean loss(y, outputs)               from the logits when the output is a sigmoid
    grads   = backward through the layers         full BPTT inside a recurrent layer
    weights <- optimizer(weights, grads)          in place

Batching: each epoch shuffles the training samples (``shuffle=True``) and keeps the last,
smaller batch, as Keras does; the epoch's ``loss`` and ``accuracy`` are means over samples
(each batch weighted by its size).

Files: :meth:`Sequential.save`, :meth:`Sequential.save_weights`, :meth:`Sequential.load_weights`,
:func:`load_model` and the JSON functions are implemented in :mod:`nprnn.saving`, which
depends on this module; it registers itself here when imported (``import nprnn`` does), so
that no module imports one that imports it back.
"""

from __future__ import annotations

import json
import math
import sys
import warnings

import numpy as np

from nprnn import _fused, _random, config, kernels, losses, optimizers
from nprnn import callbacks as callbacks_module
from nprnn import metrics as metrics_module
from nprnn._training import (
    NonFiniteError,
    Progress,
    RunningMeans,
    check_finite_outputs,
    compute_setting,
    stop_on_interrupt,
)
from nprnn._validation import (
    all_finite,
    as_array,
    as_float_array,
    as_token_ids,
    check_bool,
    check_float,
    check_non_negative_int,
    check_positive_int,
    check_verbose,
)
from nprnn.layers import (
    RNN,
    Bidirectional,
    Dense,
    Embedding,
    InputLayer,
    Layer,
    TokenInput,
    check_shape,
    deserialize,
    unique_name,
)
from nprnn.utils.categorical import SparseOneHot

_file_io = None  # the nprnn.saving module, registered by it on import


def register_file_io(module) -> None:
    """Called by :mod:`nprnn.saving` on import: the module that reads and writes files."""
    global _file_io
    _file_io = module


def _files():
    if _file_io is None:  # pragma: no cover - ``import nprnn`` imports nprnn.saving
        raise RuntimeError("nprnn.saving is not loaded; import nprnn first")
    return _file_io


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
        self._declared_input_shape = None
        for layer in layers or []:
            self.add(layer)

    # -- structure -----------------------------------------------------------------------
    def add(self, layer):
        """Append a layer; build the model at once if the input shape is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"layer: expected an nprnn Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):  # keras.Input: declares the shape, adds no layer
            if self.layers:
                raise ValueError("layer: an Input can only come first")
            self._declared_input_shape = layer.input_shape
            return
        if not self.layers and layer.input_shape is None and self._declared_input_shape:
            layer.input_shape = self._declared_input_shape
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
        input_shape = check_shape(input_shape, "input_shape")
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
                layer.unbuild()
                layer.dtype = dtype
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
            checked.append(layer.check_weights(weights[position:position + count]))
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
        resolved = [metrics_module.get(m, loss=self.loss) for m in metrics]
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
            if raw.dtype.kind in "iu" and raw.ndim == 2 and isinstance(first, (RNN,
                                                                                Bidirectional)):
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
        if isinstance(first, (RNN, Bidirectional)) and prepared.ndim != 3:
            raise ValueError(
                f"{name}: {type(first).__name__} expects 3-D inputs (samples, timesteps, "
                f"features), got shape {prepared.shape}; token ids need an Embedding first, or "
                "to_categorical")
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
        if self._sparse_targets():
            if targets.size != count or np.any(targets != np.floor(targets)) or (
                    targets.min() < 0 or targets.max() >= output_units):
                raise ValueError(f"{name}: sparse_categorical_crossentropy expects one class id "
                                 f"in [0, {output_units}) per sample, shape ({count},), got "
                                 f"shape {raw.shape} with values in [{targets.min()}, "
                                 f"{targets.max()}]")
            return targets.reshape(count).astype(np.intp)
        if targets.size != count * output_units:
            raise ValueError(f"{name}: expected shape ({count},) or ({count}, {output_units}), "
                             f"got {raw.shape}")
        if isinstance(self.loss, losses.BinaryCrossentropy) and (
                targets.min() < 0 or targets.max() > 1):
            raise ValueError(f"{name}: binary_crossentropy expects targets in [0, 1] (class "
                             f"labels 0 and 1), got values in [{targets.min()}, {targets.max()}]")
        return targets.reshape(count, output_units)


    def _sparse_targets(self):
        sparse_class = getattr(losses, "SparseCategoricalCrossentropy", None)
        return sparse_class is not None and isinstance(self.loss, sparse_class)

    def _prepare_sample_weight(self, sample_weight, class_weight, targets, name="sample_weight"):
        """Per-sample weights (N,) from ``sample_weight`` and/or ``class_weight``, or None."""
        count = len(targets)
        weights = None
        if sample_weight is not None and class_weight is not None:
            raise ValueError("sample_weight, class_weight: give one of them, not both (as "
                             "Keras 3)")
        if sample_weight is not None:
            weights = as_float_array(sample_weight, name, self._dtype())
            if weights.shape not in ((count,), (count, 1)):
                raise ValueError(f"{name}: expected one weight per sample, shape ({count},), got "
                                 f"{weights.shape}")
            if np.any(weights < 0):
                raise ValueError(f"{name}: expected weights >= 0, found {weights.min()}")
            weights = weights.reshape(count)
        if class_weight is not None:
            per_class = losses.sample_weights_from_class_weight(targets, class_weight)
            per_class = per_class.astype(self._dtype())
            weights = per_class if weights is None else weights * per_class
        return weights

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
        """True when the loss can be taken from the logits of the output layer.

        A sigmoid output with binary cross-entropy, or a softmax output with (sparse)
        categorical cross-entropy, both from probabilities: the gradient with respect to the
        logits is then exact, ``p - y``, with no division by a saturated probability (Keras'
        TensorFlow backend does the same with the logits it keeps on the output).
        """
        last = self.layers[-1]
        if not isinstance(last, Dense) or getattr(self.loss, "from_logits", True):
            return False
        if last.activation == "sigmoid":
            return isinstance(self.loss, losses.BinaryCrossentropy)
        return last.activation == "softmax" and isinstance(
            self.loss, (losses.CategoricalCrossentropy, losses.SparseCategoricalCrossentropy))

    def _loss_from_logits(self, targets, sample_weight, need_gradient=True):
        """``(loss, dL/dlogits)`` from the output layer's cached logits."""
        logits = self.layers[-1].preactivation
        if self.layers[-1].activation == "sigmoid":
            ops = kernels.active()
            loss = ops.sigmoid_binary_crossentropy(logits, targets, sample_weight)
            return loss, (ops.sigmoid_binary_crossentropy_backward(logits, targets, sample_weight)
                          if need_gradient else None)
        if isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            value, gradient = (losses.sparse_categorical_crossentropy,
                               losses.sparse_categorical_crossentropy_gradient)
        else:
            value, gradient = (losses.categorical_crossentropy,
                               losses.categorical_crossentropy_gradient)
        loss = losses.reduce_loss(value(targets, logits, from_logits=True), sample_weight)
        if not need_gradient:
            return loss, None
        return loss, losses.reduce_gradient(gradient(targets, logits, from_logits=True),
                                            sample_weight)

    def _forward(self, inputs, training=False):
        """Every layer's forward in turn; a mask travels with the outputs."""
        outputs, mask = inputs, None
        for layer in self.layers:
            if isinstance(outputs, TokenInput) and not layer.accepts_token_input:
                outputs = outputs.materialize(self._dtype())
            outputs = layer.forward(outputs, training=training, mask=mask)
            mask = layer.output_mask
        if isinstance(outputs, TokenInput):
            outputs = outputs.materialize(self._dtype())
        return outputs

    def _loss_and_backward(self, inputs, targets, sample_weight=None):
        """Forward, loss, backward on one batch; gradients land in each layer's ``grads``."""
        outputs = self._forward(inputs, training=True)
        remaining = self.layers
        if self._uses_logits():
            loss, dlogits = self._loss_from_logits(targets, sample_weight)
            gradient = self.layers[-1].backward_from_preactivation(dlogits, len(self.layers) > 1)
            remaining = self.layers[:-1]
        else:
            loss = self.loss(targets, outputs, **_weights(sample_weight))
            gradient = self.loss.gradient(targets, outputs, **_weights(sample_weight))
        for position in range(len(remaining) - 1, -1, -1):
            gradient = remaining[position].backward(gradient, need_input_gradient=position > 0)
        return float(loss), outputs

    def _loss_value(self, targets, outputs, sample_weight=None):
        if self._uses_logits():
            return self._loss_from_logits(targets, sample_weight, need_gradient=False)[0]
        return self.loss(targets, outputs, **_weights(sample_weight))

    def _trainable_pairs(self):
        weights, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                weights.extend(layer.weights)
                grads.extend(layer.grads)
        return weights, grads

    def _metric_values(self, targets, outputs, sample_weight=None):
        """The compiled metrics on a batch; unweighted, as Keras 3's ``metrics=`` are
        (``sample_weight`` and ``class_weight`` weight the loss only)."""
        return [function(targets, outputs) for function in self._metric_functions]

    # -- training ------------------------------------------------------------------------
    def compute_gradients(self, x, y, sample_weight=None):
        """Gradients of the mean loss on (x, y), in ``get_weights()`` order; weights unchanged.

        For people who study them: ``model.compute_gradients(x[:8], y[:8])[2]`` is dL/dWh.
        """
        self._require_compiled("compute_gradients")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        weights = self._prepare_sample_weight(sample_weight, None, targets)
        with compute_setting():
            self._loss_and_backward(self._batch(prepared, slice(None)), targets, weights)
        return [g.copy() for layer in self.layers for g in layer.grads]

    def train_step(self, inputs, targets, sample_weight=None):
        """One step of the book's loop on a prepared batch: forward, loss, backward, update.

        Returns ``(loss, outputs)``, or ``(loss, None)`` with nothing changed when the loss or
        the update is not finite (the optimizer leaves weights and slots as they were).
        """
        loss, outputs = self._loss_and_backward(inputs, targets, sample_weight)
        if not math.isfinite(loss) or not self.optimizer.apply(*self._trainable_pairs()):
            return loss, None
        return loss, outputs

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns [loss, metrics...] before the step."""
        self._require_compiled("train_on_batch")
        return_dict = check_bool(return_dict, "return_dict")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        weights = self._prepare_sample_weight(sample_weight, class_weight, targets)
        with compute_setting():
            loss, outputs = self.train_step(self._batch(prepared, slice(None)), targets, weights)
        if outputs is None:
            what = f"the loss is {loss}" if not math.isfinite(loss) else (
                "the update gave non-finite weights or optimizer state")
            raise FloatingPointError(f"train_on_batch: {what}; weights and optimizer state "
                                     "are left as they were")
        values = [loss] + self._metric_values(targets, outputs, weights)
        return self._format_results(values, return_dict)

    def _format_results(self, values, return_dict):
        names = ["loss"] + self.metric_names
        if return_dict:
            return dict(zip(names, values))
        return values[0] if len(values) == 1 else values

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0):
        """Train for ``epochs`` epochs of mini-batch gradient descent; return the History.

        Parameters follow Keras: ``batch_size`` defaults to 32; ``validation_split`` takes
        the *last* fraction of the samples (before shuffling) for validation;
        ``validation_data=(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)`` overrides
        it; ``class_weight`` ({class: weight}) and ``sample_weight`` (N,) weight each
        sample's loss; ``verbose`` 0 (silent), 1 (progress bar) or 2 (one line per epoch).

        Robustness: a NaN or infinite batch loss stops training with a warning naming the
        epoch and batch (callbacks see the loss first, so ``TerminateOnNaN`` reports it), and
        the weights of before that step are kept; so does an update that makes a weight or
        an optimizer slot non-finite. A validation pass whose outputs or loss are not finite
        stops training too, and that epoch is not recorded. Ctrl-C stops at the end of the
        current batch and returns the history so far (callbacks' ``on_train_end`` still runs,
        so EarlyStopping restores its best weights; every save is atomic).
        """
        self._require_compiled("fit")
        batch_size, epochs, initial_epoch, verbose, shuffle, callback_list = _fit_arguments(
            batch_size, epochs, initial_epoch, verbose, shuffle, callbacks)
        train, validation = self._fit_data(x, y, sample_weight, class_weight, validation_split,
                                           validation_data)
        steps = math.ceil(len(train[0]) / batch_size)
        history = callbacks_module.History()
        callback_list = [*callback_list, history]
        history.params = {"verbose": verbose, "epochs": epochs, "steps": steps}
        self.stop_training, self.history = False, history
        for callback in callback_list:
            callback.set_model(self)
            callback.on_train_begin()
        with stop_on_interrupt() as interrupted, compute_setting():
            for epoch in range(initial_epoch, epochs):
                if verbose and epochs > 1:  # Keras prints this line only for several epochs
                    print(f"Epoch {epoch + 1}/{epochs}")
                for callback in callback_list:
                    callback.on_epoch_begin(epoch)
                order = (_random.generator().permutation(len(train[0])) if shuffle
                         else np.arange(len(train[0])))
                means, progress = RunningMeans(self.metric_names), Progress(steps, verbose)
                self._train_epoch(train, order, batch_size, epoch, callback_list, progress,
                                  interrupted, means)
                if means.count == 0:
                    break
                epoch_logs = means.logs()
                if validation is not None and not interrupted():
                    try:
                        values = self._evaluate_prepared(*validation, batch_size,
                                                         "validation_data")
                    except NonFiniteError as error:
                        warnings.warn(f"fit: validation after epoch {epoch + 1} failed ({error}); "
                                      "training stopped and this epoch is not recorded",
                                      RuntimeWarning, stacklevel=2)
                        break
                    epoch_logs.update({f"val_{name}": value for name, value in
                                       zip(["loss"] + self.metric_names, values)})
                progress.finish(steps, epoch_logs)
                if interrupted():
                    print(f"fit: interrupted during epoch {epoch + 1}; stopping", file=sys.stderr)
                    break
                for callback in callback_list:
                    callback.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
        for callback in callback_list:
            callback.on_train_end()
        return history

    def _train_epoch(self, train, order, batch_size, epoch, callback_list, progress,
                     interrupted, means):
        """One pass over the batches of ``order``: forward, loss, backward, update per batch.

        The running means of the loss and metrics land in ``means``. A model of the chapter's
        shape takes the fused compiled step (:mod:`nprnn._fused`), tested equal to this loop.
        """
        x_train, y_train, w_train = train
        plan = self._fused_plan(x_train) if w_train is None else None
        if plan is not None:
            return self._train_epoch_fused(plan, train, order, batch_size, epoch,
                                           callback_list, progress, interrupted, means)
        for step in range(math.ceil(len(order) / batch_size)):
            index = order[step * batch_size:(step + 1) * batch_size]
            weights = None if w_train is None else w_train[index]
            for callback in callback_list:
                callback.on_train_batch_begin(step)
            loss, outputs = self.train_step(self._batch(x_train, index), y_train[index], weights)
            if outputs is None:
                return self._stop_on_non_finite(loss, epoch, step, callback_list)
            means.add([loss, *self._metric_values(y_train[index], outputs, weights)],
                      len(index))
            for callback in callback_list:
                callback.on_train_batch_end(step, means.logs())
            progress.update(step + 1, means.logs())
            if interrupted() or self.stop_training:
                return None
        return None

    def _fused_plan(self, x, training=True):
        plan = _fused.plan_for(self, training)
        return plan if plan is not None and plan.accepts(x) else None

    def _train_epoch_fused(self, plan, train, order, batch_size, epoch, callback_list,
                           progress, interrupted, means):
        """:meth:`_train_epoch` through the fused kernels, a chunk of batches per call (one
        batch per call when a callback watches every batch)."""
        x_train, y_train, _ = train
        steps = math.ceil(len(order) / batch_size)
        watched = [c for c in callback_list if _watches_batches(c)]
        chunk = 1 if watched else _fused.CHUNK
        order = np.ascontiguousarray(order, dtype=np.int64)
        masks = plan.dropout_masks(order, batch_size)
        batch_losses, corrects = np.empty(steps), np.zeros(steps, dtype=np.int64)
        for first in range(0, steps, chunk):
            last = min(steps, first + chunk)
            for callback in watched:
                callback.on_train_batch_begin(first)
            done = plan.train_batches(x_train, y_train, order, batch_size, first, last, masks,
                                      batch_losses, corrects)
            for step in range(first, first + done):
                count = min(batch_size, len(order) - step * batch_size)
                accuracy = [corrects[step] / count] if self.metric_names else []
                means.add([batch_losses[step], *accuracy], count)
                for callback in watched:
                    callback.on_train_batch_end(step, means.logs())
            if done < last - first:
                return self._stop_on_non_finite(batch_losses[first + done], epoch, first + done,
                                                callback_list)
            if means.count:
                progress.update(last, means.logs())
            if interrupted() or self.stop_training:
                return None
        return None

    def _stop_on_non_finite(self, loss, epoch, step, callback_list):
        """A step gave a non-finite loss or update: nothing was changed; stop training."""
        if not math.isfinite(loss):
            for callback in callback_list:  # TerminateOnNaN reports it as Keras' does
                callback.on_train_batch_end(step, {"loss": loss})
            what = f"the loss became {loss} at epoch {epoch + 1}, batch {step + 1}"
        else:
            what = (f"the update at epoch {epoch + 1}, batch {step + 1} gave non-finite weights "
                    "or optimizer state")
        warnings.warn(f"fit: {what}; training stopped and the weights from before that batch "
                      "are kept", RuntimeWarning, stacklevel=3)
        self.stop_training = True

    def _fit_data(self, x, y, sample_weight, class_weight, validation_split, validation_data):
        """Validated ``(x, y, w)`` for training and for validation (or None)."""
        if x is None or y is None:
            raise ValueError("x, y: fit needs both training inputs and targets")
        validation_split = check_float(validation_split, "validation_split", low=0.0, high=1.0,
                                       high_open=True)
        x_train = self._prepare_x(x)
        y_train = self._prepare_y(y, len(x_train))
        w_train = self._prepare_sample_weight(sample_weight, class_weight, y_train)
        validation = None
        if validation_data is not None:
            x_val, y_val, w_val = _unpack_validation(validation_data)
            x_val = self._prepare_x(x_val, "validation_data[0]")
            y_val = self._prepare_y(y_val, len(x_val), "validation_data[1]")
            w_val = self._prepare_sample_weight(w_val, None, y_val, "validation_data[2]")
            validation = (x_val, y_val, w_val)
        elif validation_split > 0:
            split_at = int(len(x_train) * (1 - validation_split))
            if split_at == 0 or split_at == len(x_train):
                raise ValueError(f"validation_split: {validation_split} leaves an empty "
                                 f"training or validation set of {len(x_train)} samples")
            validation = (x_train[split_at:], y_train[split_at:],
                          None if w_train is None else w_train[split_at:])
            x_train, y_train = x_train[:split_at], y_train[:split_at]
            w_train = None if w_train is None else w_train[:split_at]
        return (x_train, y_train, w_train), validation

    # -- inference -----------------------------------------------------------------------
    def _fused_outputs(self, x, batch_size):
        """``(outputs, logits)`` of the whole of ``x`` through the fused kernels, or None when
        the model takes the per-layer route."""
        plan = self._fused_plan(x, training=False)
        if plan is None:
            return None
        logits = plan.logits(x, batch_size)[:, None]
        return kernels.active().sigmoid(logits), logits

    def _evaluate_prepared(self, x, y, sample_weight, batch_size, name="x"):
        """Mean loss and metrics; NonFiniteError if an output or the loss is not finite."""
        fused = (self._fused_outputs(x, batch_size)
                 if sample_weight is None and self._uses_logits() else None)
        if fused is not None:
            outputs, logits = fused
            check_finite_outputs(outputs, 0, name)
            loss = float(kernels.active().sigmoid_binary_crossentropy(logits, y))
            if not math.isfinite(loss):
                raise NonFiniteError(f"{name}: the loss is {loss} (the outputs are too large "
                                     "for the loss)")
            return [loss, *(float(v) for v in self._metric_values(y, outputs))]
        means = RunningMeans(self.metric_names)
        for start in range(0, len(x), batch_size):
            index = slice(start, start + batch_size)
            outputs = self._forward(self._batch(x, index))
            check_finite_outputs(outputs, start, name)
            targets = y[index]
            weights = None if sample_weight is None else sample_weight[index]
            loss = float(self._loss_value(targets, outputs, weights))
            if not math.isfinite(loss):
                last = start + len(targets) - 1
                raise NonFiniteError(f"{name}: the loss on samples {start}..{last} is {loss} "
                                     "(the outputs are too large for the loss)")
            means.add([loss, *self._metric_values(targets, outputs, weights)], len(targets))
        return list(means.logs().values())

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 return_dict=False):
        """Mean loss and metrics over (x, y): ``[loss, accuracy]`` for the book's models."""
        self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
        verbose = check_verbose(verbose)
        return_dict = check_bool(return_dict, "return_dict")
        if x is None:
            raise ValueError("x: evaluate needs inputs, got None")
        prepared = self._prepare_x(x)
        targets = self._prepare_y(y, len(prepared))
        weights = self._prepare_sample_weight(sample_weight, None, targets)
        steps = math.ceil(len(prepared) / batch_size)
        progress = Progress(steps, verbose)
        with compute_setting():
            values = self._evaluate_prepared(prepared, targets, weights, batch_size)
        progress.finish(steps, dict(zip(["loss"] + self.metric_names, values)))
        return self._format_results(values, return_dict)

    def predict(self, x, batch_size=None, verbose="auto"):
        """Model outputs for ``x``, shape (samples,) + output_shape[1:]: (N, 1) here."""
        batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
        verbose = check_verbose(verbose)
        prepared = self._prepare_x(x)
        steps = math.ceil(len(prepared) / batch_size)
        progress = Progress(steps, verbose)
        with compute_setting():
            fused = self._fused_outputs(prepared, batch_size)
        if fused is not None:
            check_finite_outputs(fused[0], 0, "x")
            progress.finish(steps, {})
            return fused[0]
        outputs = []
        with compute_setting():
            for start in range(0, len(prepared), batch_size):
                batch = self._forward(self._batch(prepared, slice(start, start + batch_size)))
                check_finite_outputs(batch, start, "x")
                outputs.append(batch)
        progress.finish(steps, {})
        return np.concatenate(outputs, axis=0)

    def __call__(self, x, training=False):
        """Forward pass on x, without batching."""
        self._require_built("__call__")
        training = check_bool(training, "training")
        prepared = self._prepare_x(x)
        with compute_setting():
            outputs = self._forward(self._batch(prepared, slice(None)), training=training)
        check_finite_outputs(outputs, 0, "x")
        return outputs

    def reset_states(self):
        """Forget the carried states of every stateful recurrent layer."""
        for layer in self.layers:
            if isinstance(layer, RNN) or getattr(layer, "stateful", False):
                layer.reset_states()  # an RNN, or a Bidirectional around a stateful one

    # -- configuration and files ---------------------------------------------------------
    def get_config(self):
        return {"name": self.name,
                "input_shape": None if self.input_shape is None else list(self.input_shape),
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config_):
        """A new, unbuilt-or-freshly-built model from :meth:`get_config` (new weights)."""
        model = cls(name=config_.get("name"))
        for entry in config_["layers"]:
            model.add(deserialize(entry["class_name"], entry["config"]))
        if config_.get("input_shape") is not None and not model.built:
            model.build(tuple(config_["input_shape"]))
        return model

    def to_json(self, **kwargs):
        """The architecture as JSON (no weights), as ``keras.Model.to_json``."""
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def save(self, filepath, include_optimizer=True):
        """Save architecture, weights and optimizer state (atomically; never pickled).

        See :func:`nprnn.saving.save_model` for the formats.
        """
        _files().save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath):
        """Save the weights alone (atomically)."""
        _files().save_weights(self, filepath)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` or :meth:`save` into this model."""
        _files().load_weights(self, filepath)


def _watches_batches(callback):
    """True when a callback does something at every batch (overrides a batch hook)."""
    base = callbacks_module.Callback
    return any(getattr(type(callback), hook) is not getattr(base, hook)
               for hook in ("on_train_batch_begin", "on_train_batch_end"))


def _weights(sample_weight):
    """Keyword arguments passing ``sample_weight`` on only when there is one."""
    return {} if sample_weight is None else {"sample_weight": sample_weight}


def _fit_arguments(batch_size, epochs, initial_epoch, verbose, shuffle, callbacks):
    """Check fit's scalar arguments and callbacks (once, where they enter)."""
    batch_size = 32 if batch_size is None else check_positive_int(batch_size, "batch_size")
    epochs = check_non_negative_int(epochs, "epochs")
    initial_epoch = check_non_negative_int(initial_epoch, "initial_epoch")
    return (batch_size, epochs, initial_epoch, check_verbose(verbose),
            check_bool(shuffle, "shuffle"), _check_callbacks(callbacks))


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
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
        raise ValueError("validation_data: expected a tuple (x_val, y_val) or (x_val, y_val, "
                         f"sample_weight_val), got {type(validation_data).__name__}"
                         + (f" of length {len(validation_data)}"
                            if isinstance(validation_data, (tuple, list)) else ""))
    x_val, y_val, *rest = validation_data
    return x_val, y_val, (rest[0] if rest else None)


def clone_model(model):
    """A new model with ``model``'s architecture and freshly initialised weights (Keras)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a Sequential, got {type(model).__name__}")
    return Sequential.from_config(model.get_config())


def model_from_json(json_string):
    """A model from :meth:`Sequential.to_json` (nprnn's) or Keras' ``to_json`` text."""
    return _files().model_from_json(json_string)


def load_model(filepath, compile=True):
    """Load a model saved by :meth:`Sequential.save` (or the book's models saved by Keras).

    See :func:`nprnn.saving.load_model`; ``compile=False`` returns it uncompiled.
    """
    return _files().load_model(filepath, compile=compile)
