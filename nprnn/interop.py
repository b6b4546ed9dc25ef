"""Keras interoperability: weights, models and files that move between nprnn and Keras.

Weights in memory
    :meth:`Sequential.get_weights` and :meth:`~Sequential.set_weights` follow Keras' order
    and shapes, layer by layer::

        Embedding      embeddings (V, E)
        SimpleRNN      kernel (D, H), recurrent_kernel (H, H), bias (H,)
        LSTM           kernel (D, 4H), recurrent_kernel (H, 4H), bias (4H,)
        GRU            kernel (D, 3H), recurrent_kernel (H, 3H), bias (2, 3H) or (3H,)
        Bidirectional  the forward layer's, then the backward layer's
        Dense          kernel (H, M), bias (M,)

    (no bias with ``use_bias=False``), so ``keras_model.set_weights(nprnn_model.get_weights())``
    works, and back. With the same weights the two compute the same outputs, loss, gradients
    and RMSprop steps (float32 round-off apart; ``tests/test_keras_parity.py``).

Keras' files (read)
    :func:`load_keras_model` reads what ``model.save('x.h5')`` writes in Keras 2 and Keras 3
    (the legacy HDF5 layout): the architecture from the ``model_config`` attribute, the weights
    from ``model_weights``, and, when nprnn has the same optimizer, loss and metrics, the
    compile settings (``training_config``) and the optimizer state (``optimizer_weights``).
    :func:`load_keras_archive` reads Keras 3's ``.keras`` archive (``config.json`` with its
    ``compile_config``, ``model.weights.h5`` with ``optimizer/vars``; the zip itself is
    checked by :mod:`nprnn.saving`). :func:`load_keras_weights` loads weights alone into a
    built model, from such a file, from a legacy weights file, or from Keras 3's
    ``x.weights.h5``. Only what nprnn computes exactly is accepted: a ``Sequential`` of
    ``InputLayer``, ``Embedding`` (``mask_zero``), ``SimpleRNN``/``LSTM``/``GRU`` (activations
    tanh, relu, sigmoid, linear; ``use_bias``, ``unit_forget_bias``, ``reset_after``, dropout,
    ``return_sequences``/``return_state``, ``go_backwards``, ``stateful``, ``unroll``),
    ``RNN`` with one SimpleRNN/LSTM/GRU cell, ``Bidirectional`` (concat, sum, mul, ave,
    None), ``Dropout``, ``Masking`` and ``Dense``; initializers are ignored (the file's weights
    replace them). Anything else (regularizers, constraints, ``time_major``,
    ``hard_sigmoid``, stacked cells, ``Lambda`` and other layers, a Functional model...)
    raises :class:`KerasCompatibilityError` naming the file, the layer and the option,
    rather than loading a model that would compute something else.

Keras' files (write)
    :func:`keras_model_config`, :func:`keras_training_config`, :func:`keras_weight_paths` and
    :func:`keras_optimizer_weights` describe an nprnn model in the shape Keras' legacy loader
    expects; :mod:`nprnn.saving` writes them into ``.h5`` files, so that
    ``keras.models.load_model('best-2rnn-model.h5')`` gives a compiled Keras model with
    the same weights. Of the optimizer state in such a file (nprnn's or Keras' own), Keras
    3 takes back only the iteration count and the learning rate (see
    :func:`keras_optimizer_weights`); the ``.keras`` archive gives it the whole state.
    :func:`write_keras3_weights` writes Keras 3's ``.weights.h5`` layout
    (for ``save_weights('x.weights.h5')``, and inside ``.keras`` archives with the optimizer's
    ``optimizer/vars``); :func:`keras_archive_config` is the archive's ``config.json``;
    :func:`keras_json` is the text Keras 3's ``model.to_json()`` gives
    (:meth:`Sequential.to_json` stays nprnn's own: ``nprnn.models`` never imports this
    module).

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np

from nprnn import _untrusted, losses, metrics, optimizers
from nprnn import layers as layers_module
from nprnn._io import create_checked_dataset
from nprnn.kernels.reference import ACTIVATIONS
from nprnn.models import Sequential

KERAS_VERSION = "3.15.1"
"""The Keras version whose legacy HDF5 layout nprnn writes (and checks against by hand)."""


class KerasCompatibilityError(ValueError):
    """A Keras file or configuration that nprnn cannot reproduce exactly."""


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.bytes_):
        return bytes(value).decode("utf-8")
    return str(value)


def attribute_strings(group, name):
    """A list-of-strings attribute, also when Keras split it in chunks (``name0``, ``name1``...).

    Keras splits ``layer_names``/``weight_names`` above HDF5's 64 kB header limit.
    """
    if name in group.attrs:
        values = group.attrs[name]
        return [_text(v) for v in np.atleast_1d(values)]
    out, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(_text(v) for v in np.atleast_1d(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return out


def json_attribute(handle, name, source):
    """A JSON attribute of the file, parsed; None when absent."""
    if name not in handle.attrs:
        return None
    raw = handle.attrs[name]
    try:
        return json.loads(_text(raw))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: the {name} attribute is not valid JSON ({error})") from None


def _snake_case(class_name):
    """Keras' ``to_snake_case``: 'SimpleRNN' -> 'simple_rnn', 'Dense' -> 'dense'."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# --------------------------------------------------------------------------------------
# Reading Keras' model_config
# --------------------------------------------------------------------------------------
_NEUTRAL = (None, False, 0, 0.0, "", (), [], {})


def _is_neutral(value):
    return any(value is neutral or (type(value) is type(neutral) and value == neutral)
               for neutral in _NEUTRAL)


# Options that do not change what a layer computes from its weights (or that nprnn reads
# itself); any other option must have its neutral value or be listed in the layer's table.
_IGNORED = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "input_shape",
            "batch_size", "input_dtype", "autocast", "build_config", "seed"}
_INITIALIZERS = {"embeddings_initializer", "kernel_initializer", "recurrent_initializer",
                 "bias_initializer"}


def _activation_name(value):
    """'sigmoid' from 'sigmoid', None, or Keras' serialized function dicts."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        inner = value.get("config")
        if isinstance(inner, str):
            return inner
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            return inner["name"]
        name = value.get("registered_name") or value.get("class_name")
        return str(name).lower() if name else repr(value)
    return str(value)


def _check_options(config, where, handled, required):
    """Refuse options that would make the layer compute something nprnn does not.

    ``handled``: keys the caller reads; ``required``: key -> (allowed value, why).
    """
    for key, value in config.items():
        if key in handled or key in _IGNORED or key in _INITIALIZERS:
            continue
        if key in required:
            allowed, why = required[key]
            if value != allowed and not (_is_neutral(allowed) and _is_neutral(value)):
                raise KerasCompatibilityError(f"{where}: {key}={value!r} is not supported "
                                              f"({why})")
            continue
        if not _is_neutral(value):
            raise KerasCompatibilityError(f"{where}: option {key}={value!r} is not supported "
                                          "by nprnn")


_NO_REGULARIZATION = {
    name: (None, "nprnn trains without regularizers or constraints")
    for name in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                 "activity_regularizer", "embeddings_regularizer", "kernel_constraint",
                 "recurrent_constraint", "bias_constraint", "embeddings_constraint")
}


def _parse_embedding(config, where):
    required = {
        **_NO_REGULARIZATION,
        "sparse": (False, "nprnn's Embedding gradient is dense"),
        "lora_rank": (None, "LoRA is not implemented"),
        "quantization_config": (None, "quantized layers are not implemented"),
    }
    _check_options(config, where, {"input_dim", "output_dim", "input_length", "mask_zero"},
                   required)
    try:
        kwargs = {"input_dim": int(config["input_dim"]), "output_dim": int(config["output_dim"]),
                  "mask_zero": _flag(config, "mask_zero", False, where)}
    except (KeyError, TypeError, ValueError) as error:
        raise KerasCompatibilityError(f"{where}: needs integer input_dim and output_dim "
                                      f"({error!r})") from None
    length = config.get("input_length")
    return kwargs, (None if length is None else (None, int(length)))


def _flag(config, key, default, where):
    """A boolean option, refusing anything but true/false (a hostile file may hold anything)."""
    value = config.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (bool, int)) or value not in (0, 1):
        raise KerasCompatibilityError(f"{where}: {key}={value!r} is not true or false")
    return bool(value)


def _rate(config, key, where):
    value = config.get(key, 0.0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise KerasCompatibilityError(f"{where}: {key}={value!r} is not a rate in [0, 1)")
    return float(value)


def _cell_activation(config, key, default, where):
    name = _activation_name(config.get(key, default))
    if name not in _CELL_ACTIVATIONS:
        raise KerasCompatibilityError(f"{where}: {key}={name!r} is not supported (nprnn's "
                                      f"recurrent cells implement {list(_CELL_ACTIVATIONS)})")
    return name


_CELL_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
# What each cell reads besides units, activation, use_bias, dropout, recurrent_dropout.
_CELL_OPTIONS = {"SimpleRNN": (), "LSTM": ("recurrent_activation", "unit_forget_bias"),
                 "GRU": ("recurrent_activation", "reset_after")}
_RNN_OPTIONS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                "zero_output_for_mask")
_RECURRENT_REQUIRED = {
    **_NO_REGULARIZATION,
    "time_major": (False, "nprnn takes (batch, timesteps, features)"),
}
# Keras 2's `implementation` (1 or 2) and Keras 3's `use_cudnn` choose how the same maths
# is computed; nprnn's kernels compute it one way.
_RECURRENT_IGNORED = {"implementation", "use_cudnn"}


def _parse_cell(family, config, where):
    """nprnn cell keyword arguments from a Keras layer's or cell's config (LSTM/LSTMCell...)."""
    kwargs = {"activation": _cell_activation(config, "activation", "tanh", where),
              "use_bias": _flag(config, "use_bias", True, where),
              "dropout": _rate(config, "dropout", where),
              "recurrent_dropout": _rate(config, "recurrent_dropout", where)}
    for key in _CELL_OPTIONS[family]:
        if key == "recurrent_activation":
            kwargs[key] = _cell_activation(config, key, "sigmoid", where)
        else:
            kwargs[key] = _flag(config, key, True, where)
    try:
        units = config["units"]
        if isinstance(units, bool) or int(units) != units or units < 1:
            raise ValueError(units)
        kwargs["units"] = int(units)
    except (KeyError, TypeError, ValueError) as error:
        raise KerasCompatibilityError(f"{where}: needs a positive integer units "
                                      f"({error!r})") from None
    return kwargs


def _parse_recurrent(family):
    """The parser of Keras' SimpleRNN, LSTM or GRU layer config."""
    def parse(config, where):
        handled = ({"units", "activation", "use_bias", "dropout", "recurrent_dropout"}
                   | set(_CELL_OPTIONS[family]) | set(_RNN_OPTIONS) | _RECURRENT_IGNORED)
        _check_options(config, where, handled, _RECURRENT_REQUIRED)
        kwargs = _parse_cell(family, config, where)
        kwargs.update({key: _flag(config, key, False, where) for key in _RNN_OPTIONS})
        return kwargs, None
    return parse


_CELL_FAMILIES = {"SimpleRNNCell": "SimpleRNN", "LSTMCell": "LSTM", "GRUCell": "GRU"}


def _parse_rnn(config, where):
    """Keras' generic ``RNN(cell)`` with one SimpleRNNCell, LSTMCell or GRUCell."""
    _check_options(config, where, {"cell"} | set(_RNN_OPTIONS) | _RECURRENT_IGNORED,
                   _RECURRENT_REQUIRED)
    cell = config.get("cell")
    cell_class = cell.get("class_name") if isinstance(cell, dict) else None
    if cell_class not in _CELL_FAMILIES:
        raise KerasCompatibilityError(
            f"{where}: cell {cell_class or cell!r} is not supported (nprnn's RNN drives one of "
            f"{sorted(_CELL_FAMILIES)}; stacked or custom cells are not implemented)")
    family = _CELL_FAMILIES[cell_class]
    cell_config = cell.get("config") or {}
    cell_where = f"{where} cell {cell_class}"
    handled = ({"units", "activation", "use_bias", "dropout", "recurrent_dropout"}
               | set(_CELL_OPTIONS[family]) | _RECURRENT_IGNORED)
    if not isinstance(cell_config, dict):
        raise KerasCompatibilityError(f"{cell_where}: the cell configuration is not a dict")
    _check_options(cell_config, cell_where, handled, _RECURRENT_REQUIRED)
    kwargs = {key: _flag(config, key, False, where) for key in _RNN_OPTIONS}
    kwargs["cell"] = (cell_class, _parse_cell(family, cell_config, cell_where))
    return kwargs, None


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _parse_wrapped(spec, where, role):
    """(class_name, kwargs) of the recurrent layer a Bidirectional wraps."""
    class_name = spec.get("class_name") if isinstance(spec, dict) else None
    if class_name not in _RECURRENT_PARSERS:
        raise KerasCompatibilityError(
            f"{where}: {role} {class_name or spec!r} is not supported (Bidirectional wraps one "
            f"of {sorted(_RECURRENT_PARSERS)})")
    config = spec.get("config") or {}
    if not isinstance(config, dict):
        raise KerasCompatibilityError(f"{where}: the {role} configuration is not a dict")
    kwargs, _ = _RECURRENT_PARSERS[class_name](config, f"{where} {role} {class_name}")
    if config.get("name") is not None:
        kwargs["name"] = str(config["name"])
    return class_name, kwargs


def _parse_bidirectional(config, where):
    """Keras' Bidirectional: merge_mode, ``layer`` and (Keras 3 always) ``backward_layer``.

    Keras 2 stores the wrapped layer under its own name, Keras 3 as ``forward_<name>``;
    both give the forward copy the name ``forward_<name>``, as nprnn does. A backward
    layer that is the copy Keras makes anyway (the same settings with ``go_backwards=True``)
    is left to nprnn to make; any other is built as given.
    """
    _check_options(config, where, {"layer", "backward_layer", "merge_mode"}, {})
    merge_mode = config.get("merge_mode", "concat")
    if merge_mode not in _MERGE_MODES:
        raise KerasCompatibilityError(f"{where}: merge_mode={merge_mode!r} is not supported "
                                      f"(nprnn has {list(_MERGE_MODES)})")
    class_name, kwargs = _parse_wrapped(config.get("layer"), where, "layer")
    kwargs["name"] = kwargs.get("name", _snake_case(class_name)).removeprefix("forward_")
    # Nested as {"class_name", "config"}, the shape _untrusted's size bound reads.
    out = {"merge_mode": merge_mode, "layer": {"class_name": class_name, "config": kwargs}}
    if config.get("backward_layer") is not None:
        back_class, back = _parse_wrapped(config["backward_layer"], where, "backward_layer")
        same = {k: v for k, v in kwargs.items() if k not in ("name", "go_backwards",
                                                             "zero_output_for_mask")}
        same_back = {k: v for k, v in back.items() if k not in ("name", "go_backwards",
                                                                "zero_output_for_mask")}
        for key in ("return_sequences", "return_state"):
            if back[key] != kwargs[key]:
                raise KerasCompatibilityError(f"{where}: the backward layer's {key} differs "
                                              "from the forward layer's")
        # nprnn's default copy reads backwards (go_backwards=True), as Keras' does.
        if back_class != class_name or same != same_back or not back["go_backwards"] or (
                kwargs["go_backwards"]):
            out["backward_layer"] = {"class_name": back_class, "config": back}
    return out, None


def _parse_dense(config, where):
    activation = _activation_name(config.get("activation"))
    if activation not in ACTIVATIONS:
        raise KerasCompatibilityError(f"{where}: activation={activation!r} is not supported "
                                      f"(nprnn's Dense has {list(ACTIVATIONS)})")
    required = {
        **_NO_REGULARIZATION,
        "lora_rank": (None, "LoRA is not implemented"),
        "quantization_config": (None, "quantized layers are not implemented"),
    }
    _check_options(config, where, {"units", "activation", "use_bias"}, required)
    try:
        kwargs = {"units": int(config["units"]), "activation": activation,
                  "use_bias": _flag(config, "use_bias", True, where)}
    except (KeyError, TypeError, ValueError) as error:
        raise KerasCompatibilityError(f"{where}: needs an integer units ({error!r})") from None
    return kwargs, None


def _parse_dropout(config, where):
    _check_options(config, where, {"rate", "noise_shape"}, {})
    rate = config.get("rate")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise KerasCompatibilityError(f"{where}: rate={rate!r} is not a rate in [0, 1)")
    noise_shape = config.get("noise_shape")
    if noise_shape is not None:
        noise_shape = _shape(noise_shape, where, "noise_shape")
    return {"rate": float(rate), "noise_shape": noise_shape}, None


def _parse_masking(config, where):
    _check_options(config, where, {"mask_value"}, {})
    value = config.get("mask_value", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KerasCompatibilityError(f"{where}: mask_value={value!r} is not a number")
    return {"mask_value": float(value)}, None


_RECURRENT_PARSERS = {family: _parse_recurrent(family) for family in _CELL_OPTIONS}
_RECURRENT_PARSERS["RNN"] = _parse_rnn
_PARSERS = {"Embedding": _parse_embedding, "Dense": _parse_dense, "Dropout": _parse_dropout,
            "Masking": _parse_masking, "Bidirectional": _parse_bidirectional,
            **_RECURRENT_PARSERS}


def _shape(value, where, key):
    if value is None:
        return None
    try:
        return tuple(None if d is None else int(d) for d in value)
    except (TypeError, ValueError):
        raise KerasCompatibilityError(f"{where}: {key}={value!r} is not a shape") from None


def parse_keras_model_config(model_config, source="model_config"):
    """Read a Keras ``model_config`` into nprnn terms, refusing what nprnn cannot compute.

    Returns a dict: ``name``, ``batch_shape`` (tuple or None) and ``layers``, a list of
    ``(class_name, kwargs)`` for :mod:`nprnn.layers`. Accepts Keras 3's and Keras 2's legacy
    HDF5 configurations (InputLayer with ``batch_shape`` or ``batch_input_shape``, a first layer
    with ``batch_input_shape``, Embedding ``input_length``, Keras <= 2.2's list of layers).
    """
    if isinstance(model_config, (str, bytes)):
        try:
            model_config = json.loads(_text(model_config))
        except ValueError as error:
            raise ValueError(f"{source}: model_config is not valid JSON ({error})") from None
    if not isinstance(model_config, dict) or "config" not in model_config:
        raise KerasCompatibilityError(f"{source}: model_config is not a Keras model "
                                      "configuration (no 'class_name'/'config')")
    class_name = model_config.get("class_name")
    if class_name != "Sequential":
        raise KerasCompatibilityError(
            f"{source}: a Keras {class_name} model; nprnn reads Sequential models only (of "
            f"{', '.join(sorted(_PARSERS))} layers)")
    config = model_config["config"]
    if isinstance(config, list):  # Keras <= 2.2
        config = {"layers": config}
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise KerasCompatibilityError(f"{source}: the Sequential configuration has no layers")
    batch_shape = None
    specs = []
    for position, entry in enumerate(config["layers"]):
        if not isinstance(entry, dict):
            raise KerasCompatibilityError(f"{source}: layer #{position} is not a layer "
                                          f"configuration: {entry!r}")
        layer_class = entry.get("class_name")
        layer_config = entry.get("config") or {}
        layer_name = layer_config.get("name")
        where = f"{source}: layer {layer_name or '#' + str(position)!r} ({layer_class})"
        if layer_class == "InputLayer":
            if specs:
                raise KerasCompatibilityError(f"{where}: an InputLayer after other layers")
            for flag in ("sparse", "ragged"):
                if layer_config.get(flag):
                    raise KerasCompatibilityError(f"{where}: {flag} inputs are not supported")
            key = "batch_shape" if "batch_shape" in layer_config else "batch_input_shape"
            batch_shape = _shape(layer_config.get(key), where, key)
            if batch_shape is None and layer_config.get("shape") is not None:
                batch_shape = (None,) + _shape(layer_config["shape"], where, "shape")
            continue
        if layer_class not in _PARSERS:
            raise KerasCompatibilityError(
                f"{where}: layer type {layer_class!r} is not supported (nprnn has "
                f"{sorted(_PARSERS)})")
        kwargs, shape_hint = _PARSERS[layer_class](layer_config, where)
        if layer_name is not None:
            kwargs["name"] = str(layer_name)
        kwargs["trainable"] = bool(layer_config.get("trainable", True))
        if not specs and batch_shape is None:
            for key in ("batch_input_shape", "batch_shape"):
                if layer_config.get(key) is not None:
                    batch_shape = _shape(layer_config[key], where, key)
            if batch_shape is None and layer_config.get("input_shape") is not None:
                batch_shape = (None,) + _shape(layer_config["input_shape"], where, "input_shape")
            if batch_shape is None:
                batch_shape = shape_hint
        specs.append((layer_class, kwargs))
    if not specs:
        raise KerasCompatibilityError(f"{source}: the Sequential model has no layers")
    if batch_shape is None and config.get("build_input_shape") is not None:
        batch_shape = _shape(config["build_input_shape"], source, "build_input_shape")
    return {"name": config.get("name"), "batch_shape": batch_shape, "layers": specs}


def _build_layer(class_name, kwargs):
    """An nprnn layer from a parsed ``(class_name, kwargs)``, nested specs included."""
    kwargs = dict(kwargs)
    if class_name == "RNN":
        cell_class, cell_kwargs = kwargs["cell"]
        kwargs["cell"] = getattr(layers_module, cell_class)(**cell_kwargs)  # parsed: known
    if class_name == "Bidirectional":
        kwargs["layer"] = _build_layer(kwargs["layer"]["class_name"], kwargs["layer"]["config"])
        if "backward_layer" in kwargs:
            spec = kwargs["backward_layer"]
            kwargs["backward_layer"] = _build_layer(spec["class_name"], spec["config"])
        # (nprnn's Bidirectional sets zero_output_for_mask = return_sequences, as Keras.)
        return layers_module.Bidirectional(**kwargs)
    return layers_module.LAYERS[class_name](**kwargs)


_TAKES_SEQUENCES = ("SimpleRNN", "LSTM", "GRU", "RNN", "Bidirectional")


def model_from_keras_config(model_config, source="model_config", first_kernel_shape=None):
    """An uncompiled, built nprnn ``Sequential`` for a Keras ``model_config``.

    Weights are freshly initialized; :func:`load_keras_model` then loads the file's. When
    the configuration gives no input shape, an Embedding first takes ``(None, None)``, and a
    recurrent (Dense) first layer with weights takes its feature size from
    ``first_kernel_shape`` (the first saved kernel's).
    """
    parsed = parse_keras_model_config(model_config, source)
    batch_shape = parsed["batch_shape"]
    # The input's last axis sizes a first SimpleRNN or Dense (an Embedding ignores it).
    features = (batch_shape[-1] if batch_shape is not None and len(batch_shape) >= 2
                else None if first_kernel_shape is None else int(first_kernel_shape[0]))
    # RNN(cell) sized as the layer its cell makes (LSTMCell as an LSTM...).
    sizing = [(_CELL_FAMILIES[kwargs["cell"][0]], {**kwargs["cell"][1], "name": kwargs.get(
        "name")}) if class_name == "RNN" else (class_name, kwargs)
              for class_name, kwargs in parsed["layers"]]
    _untrusted.check_architecture(sizing, features, source)
    model = Sequential(name=parsed["name"])
    for position, (class_name, kwargs) in enumerate(parsed["layers"]):
        if position == 0 and batch_shape is not None and None not in batch_shape[1:]:
            # As the book writes it: Embedding(..., input_length=T), SimpleRNN(input_shape=..)
            if class_name == "Embedding" and len(batch_shape) == 2:
                kwargs = {**kwargs, "input_length": batch_shape[1]}
            else:
                kwargs = {**kwargs, "input_shape": tuple(batch_shape[1:])}
        try:
            model.add(_build_layer(class_name, kwargs))
        except (TypeError, ValueError) as error:
            raise KerasCompatibilityError(
                f"{source}: layer {kwargs.get('name')!r} ({class_name}): {error}") from None
    if model.built:
        return model
    first = parsed["layers"][0][0]
    with_weights = [c for c, _ in parsed["layers"] if c not in ("Dropout", "Masking")]
    if batch_shape is None:
        if first == "Embedding":
            batch_shape = (None, None)
        elif first_kernel_shape is not None and with_weights and \
                with_weights[0] in _TAKES_SEQUENCES:
            batch_shape = (None, None, int(first_kernel_shape[0]))
        elif first_kernel_shape is not None and with_weights and with_weights[0] == "Dense":
            batch_shape = (None, int(first_kernel_shape[0]))
        else:
            raise KerasCompatibilityError(f"{source}: the configuration gives no input shape")
    try:
        model.build(tuple(batch_shape))
    except (TypeError, ValueError) as error:
        raise KerasCompatibilityError(
            f"{source}: cannot build the model for inputs of shape {tuple(batch_shape)} "
            f"({error})") from None
    return model


# --------------------------------------------------------------------------------------
# Reading Keras' weights
# --------------------------------------------------------------------------------------
def read_legacy_weights(group, source):
    """``[(layer_name, weight_names, datasets)]`` for each saved layer that has weights.

    ``group`` is a legacy HDF5 weights group: a file's ``model_weights`` group, or the root
    of a file written by ``save_weights('x.h5')`` (Keras 2, nprnn). The datasets are not
    read here: :func:`assign_layer_weights` checks their declared shapes first.
    """
    if "layer_names" not in group.attrs and "layer_names0" not in group.attrs:
        raise ValueError(f"{source}: holds no weights (no layer_names attribute)")
    saved = []
    for layer_name in attribute_strings(group, "layer_names"):
        if layer_name not in group:
            raise ValueError(f"{source}: the weights of layer {layer_name!r} are missing")
        layer_group = group[layer_name]
        weight_names = attribute_strings(layer_group, "weight_names")
        arrays = []
        for weight_name in weight_names:
            if weight_name not in layer_group:
                raise ValueError(f"{source}: weight {weight_name!r} of layer {layer_name!r} is "
                                 "missing")
            arrays.append(_dataset(layer_group[weight_name], weight_name, source))
        if weight_names:
            saved.append((layer_name, weight_names, arrays))
    return saved


def _cell_name(layer):
    """Keras' name of a recurrent layer's cell: 'lstm_cell', 'gru_cell', 'simple_rnn_cell'."""
    return _snake_case(type(layer.cell).__name__)


def _keras3_groups(layer):
    """``[(path, name attribute, weight count)]`` of a layer's groups in Keras 3's layout,
    relative to ``layers/<key>``, in ``get_weights`` order (empty groups included, as Keras
    writes them): an RNN keeps its weights in its cell, a Bidirectional in its two layers."""
    if isinstance(layer, layers_module.Bidirectional):
        groups = [("vars", layer.name, 0)]
        for role, inner in (("forward_layer", layer.forward_layer),
                            ("backward_layer", layer.backward_layer)):
            groups += [(f"{role}/{path}", name, count) for path, name, count in
                       _keras3_groups(inner)]
        return groups
    if isinstance(layer, layers_module.RNN):
        return [("vars", layer.name, 0), ("cell/vars", _cell_name(layer), len(layer.weights))]
    return [("vars", layer.name, len(layer.weights))]


def _keras3_keys(model):
    """Keras 3's key of each layer: its class in snake case, numbered from the second one
    (``layers/lstm``, ``layers/lstm_1``...), not its name."""
    keys, used = [], {}
    for layer in model.layers:
        base = _snake_case(type(layer).__name__)
        keys.append(base if base not in used else f"{base}_{used[base] + 1}")
        used[base] = used.get(base, -1) + 1
    return keys


def read_keras3_weights(handle, model, source):
    """Read Keras 3's ``.weights.h5`` layout (also inside ``.keras``) for ``model``'s layers.

    Keras 3 files key each layer by its class (``layers/simple_rnn``, ``layers/dense_1``...),
    not by its name; a recurrent layer's weights sit in its cell (``layers/lstm/cell/vars``),
    a Bidirectional's in its two layers (``layers/bidirectional/forward_layer/cell/vars``,
    then ``backward_layer``). Returns :func:`read_legacy_weights`'s list.
    """
    saved = []
    for layer, key in zip(model.layers, _keras3_keys(model)):
        names, arrays = [], []
        for relative, _, count in _keras3_groups(layer):
            path = f"layers/{key}/{relative}"
            if not count:
                continue
            if path not in handle:
                raise ValueError(f"{source}: no weights at {path!r} for layer {layer.name!r}")
            group = handle[path]
            if any(str(i) not in group for i in range(len(group))):
                raise ValueError(f"{source}: {path} is incomplete (members are not 0..n-1)")
            names += [f"{path}/{i}" for i in range(len(group))]
            arrays += [_dataset(group[str(i)], f"{path}/{i}", source)
                       for i in range(len(group))]
        if arrays:
            saved.append((key, names, arrays))
        elif layer.weights:
            raise ValueError(f"{source}: no weights under 'layers/{key}' for layer "
                             f"{layer.name!r}")
    return saved


def _dataset(item, name, source):
    if not hasattr(item, "shape") or not hasattr(item, "dtype"):
        raise ValueError(f"{source}: weight {name!r} is a {type(item).__name__}, not a dataset")
    return item


def is_keras3_weights_file(handle):
    """True for Keras 3's ``.weights.h5`` layout (a ``layers`` group, no ``layer_names``)."""
    return ("layers" in handle and "layer_names" not in handle.attrs
            and "model_weights" not in handle)


def assign_layer_weights(model, saved, source):
    """Set ``model``'s weights from :func:`read_legacy_weights`'s list, layer by layer in order
    (as Keras' ``load_weights`` does), after checking every count, declared shape and dtype
    (before reading any data) and that every value is finite."""
    targets = [layer for layer in model.layers if layer.weights]
    if len(saved) != len(targets):
        raise ValueError(
            f"{source}: holds weights for {len(saved)} layers ({', '.join(s[0] for s in saved)})"
            f", the model has {len(targets)} layers with weights "
            f"({', '.join(layer.name for layer in targets)})")
    for layer, (saved_name, names, arrays) in zip(targets, saved):
        if len(arrays) != len(layer.weights):
            raise ValueError(
                f"{source}: layer {saved_name!r} holds {len(arrays)} weights ({', '.join(names)})"
                f"; layer {layer.name!r} ({type(layer).__name__}) needs {len(layer.weights)} "
                f"({', '.join(layer.weight_names)})")
        for name, array, own_name, current in zip(names, arrays, layer.weight_names,
                                                  layer.weights):
            if array.shape != current.shape:
                raise ValueError(
                    f"{source}: weight {name!r} of layer {saved_name!r} has shape {array.shape}; "
                    f"{layer.name}/{own_name} needs {current.shape}")
            if array.dtype.kind not in "iuf" or array.dtype.itemsize > 8:
                raise ValueError(f"{source}: weight {name!r} of layer {saved_name!r} holds "
                                 f"{array.dtype}, not numbers")
    values = [[np.asarray(array) for array in arrays] for _, _, arrays in saved]
    for (saved_name, names, _), arrays in zip(saved, values):
        for name, array in zip(names, arrays):
            if not np.all(np.isfinite(array)):
                raise ValueError(f"{source}: weight {name!r} of layer {saved_name!r} is not "
                                 "finite numbers")
    for layer, arrays in zip(targets, values):
        layer.set_weights(arrays)


# --------------------------------------------------------------------------------------
# Reading Keras' training_config and optimizer_weights
# --------------------------------------------------------------------------------------
_OPTIMIZER_KEYS = {
    "RMSprop": {"rho": "rho", "epsilon": "epsilon"},
    "Adam": {"beta_1": "beta_1", "beta_2": "beta_2", "epsilon": "epsilon"},
    "SGD": {"momentum": "momentum", "nesterov": "nesterov"},
}
_OPTIMIZER_NEUTRAL = {
    "RMSprop": {"momentum": 0.0, "centered": False},
    "Adam": {"amsgrad": False},
    "SGD": {},
}
_OPTIMIZER_IGNORED = {"name", "is_legacy_optimizer", "jit_compile", "ema_momentum",
                      "ema_overwrite_frequency", "mesh"}


def optimizer_from_keras_config(optimizer_config, where):
    """An nprnn optimizer equal to a Keras ``optimizer_config``; raises if there is none."""
    if not isinstance(optimizer_config, dict):
        raise KerasCompatibilityError(f"{where}: optimizer {optimizer_config!r} is not a "
                                      "configuration")
    class_name = str(optimizer_config.get("class_name", "")).split(">")[-1].split(".")[-1]
    canonical = {k.lower(): k for k in _OPTIMIZER_KEYS}.get(class_name.lower())
    if canonical is None:
        raise KerasCompatibilityError(f"{where}: optimizer {class_name!r} is not supported "
                                      f"(nprnn has {sorted(_OPTIMIZER_KEYS)})")
    config = dict(optimizer_config.get("config") or {})
    kwargs = {}
    rate = config.pop("learning_rate", config.pop("lr", None))
    if rate is not None:
        if not isinstance(rate, (int, float)):
            raise KerasCompatibilityError(f"{where}: learning-rate schedules are not supported "
                                          f"({rate!r})")
        kwargs["learning_rate"] = float(rate)
    for key, value in list(config.items()):
        if key in _OPTIMIZER_KEYS[canonical]:
            kwargs[_OPTIMIZER_KEYS[canonical][key]] = value
        elif key in ("clipnorm", "clipvalue", "global_clipnorm"):
            if value is not None:
                kwargs[key] = float(value)
        elif key in _OPTIMIZER_NEUTRAL[canonical]:
            if value != _OPTIMIZER_NEUTRAL[canonical][key]:
                raise KerasCompatibilityError(f"{where}: {canonical}({key}={value!r}) is not "
                                              "supported")
        elif key in _OPTIMIZER_IGNORED or _is_neutral(value):
            continue
        elif key == "decay" and not value:
            continue
        else:
            raise KerasCompatibilityError(f"{where}: {canonical}({key}={value!r}) is not "
                                          "supported")
    try:
        return optimizers.deserialize(canonical, kwargs)
    except (TypeError, ValueError) as error:
        raise KerasCompatibilityError(f"{where}: {canonical}: {error}") from None


_KERAS_LOSS_CLASSES = ("BinaryCrossentropy", "CategoricalCrossentropy",
                       "SparseCategoricalCrossentropy", "MeanSquaredError")


def _loss_from_keras(loss_config, where):
    if isinstance(loss_config, list) and len(loss_config) == 1:
        loss_config = loss_config[0]
    if isinstance(loss_config, dict) and "class_name" not in loss_config and len(loss_config) == 1:
        loss_config = next(iter(loss_config.values()))  # {output name: loss}
    if isinstance(loss_config, str):
        try:
            return losses.get(loss_config)
        except ValueError:
            raise KerasCompatibilityError(f"{where}: loss {loss_config!r} is not supported") \
                from None
    if isinstance(loss_config, dict):
        class_name = loss_config.get("class_name")
        config = loss_config.get("config") or {}
        if class_name in _KERAS_LOSS_CLASSES and isinstance(config, dict):
            try:  # refuses label_smoothing, axis, a reduction other than the mean...
                return losses.deserialize({"class_name": class_name, "config": config})
            except (TypeError, ValueError) as error:
                raise KerasCompatibilityError(f"{where}: {error}") from None
        if class_name == "function" and isinstance(config, str):
            return _loss_from_keras(config, where)
    raise KerasCompatibilityError(f"{where}: loss {loss_config!r} is not supported")


def _metrics_from_keras(metrics_config, where):
    if metrics_config is None:
        return []
    if isinstance(metrics_config, dict):  # {output name: [metrics]}
        metrics_config = [m for value in metrics_config.values()
                          for m in (value if isinstance(value, list) else [value])]
    names = []
    for item in metrics_config:
        if isinstance(item, list):
            names.extend(_metrics_from_keras(item, where))
            continue
        if isinstance(item, dict):
            config = item.get("config")
            item = config.get("name") if isinstance(config, dict) else config
        try:
            names.append(metrics.get(item)[0])
        except ValueError:
            raise KerasCompatibilityError(f"{where}: metric {item!r} is not supported") from None
    return names


def compile_from_keras(model, training_config, source):
    """Compile ``model`` as Keras' ``training_config`` says; return the reason if it cannot.

    Returns None when compiled; otherwise a message (the caller warns and leaves the model
    uncompiled, as Keras does for a file without a training configuration).
    """
    where = f"{source}: training_config"
    try:
        optimizer = optimizer_from_keras_config(training_config.get("optimizer_config"), where)
        loss = _loss_from_keras(training_config.get("loss"), where)
        metric_names = _metrics_from_keras(training_config.get("metrics"), where)
        for key in ("loss_weights", "weighted_metrics", "sample_weight_mode"):
            if not _is_neutral(training_config.get(key)):
                raise KerasCompatibilityError(f"{where}: {key}={training_config[key]!r} is not "
                                              "supported")
    except KerasCompatibilityError as error:
        return str(error)
    model.compile(optimizer=optimizer, loss=loss, metrics=metric_names)
    return None


# Keras' slot names -> nprnn's, for Keras 3 ('..._velocity') and Keras 2 ('.../rms:0').
_SLOT_ALIASES = {
    "RMSprop": {"velocity": "velocity", "rms": "velocity"},
    "Adam": {"momentum": "momentum", "m": "momentum", "velocity": "velocity", "v": "velocity"},
    "SGD": {"momentum": "momentum"},
}
_ITERATION_NAMES = {"iteration", "iterations", "iter"}
_LEARNING_RATE_NAMES = {"learning_rate", "lr"}


def _slot_of(name, optimizer_class):
    """(kind, slot) for a Keras optimizer weight name; kind is 'iterations', 'learning_rate',
    'slot' or None. Keras 3: ``rmsprop/<variable path>_velocity``; Keras 2 (tf_keras 2.11+):
    ``RMSprop/velocity/<layer>/<weight>:0``; older tf.keras: ``RMSprop/<layer>/<weight>/rms:0``.
    """
    parts = name.split(":")[0].strip("/").split("/")
    last = parts[-1]
    if last in _ITERATION_NAMES:
        return "iterations", None
    if last in _LEARNING_RATE_NAMES or last == "decay":
        return "learning_rate", None
    aliases = _SLOT_ALIASES.get(optimizer_class, {})
    for alias in sorted(aliases, key=len, reverse=True):  # Keras 3
        if len(alias) > 1 and last.endswith("_" + alias):
            return "slot", aliases[alias]
    if last in aliases:  # old tf.keras: '.../kernel/rms:0'
        return "slot", aliases[last]
    if len(parts) > 2 and parts[1] in aliases:  # tf_keras: 'RMSprop/velocity/dense/kernel:0'
        return "slot", aliases[parts[1]]
    return None, None


def restore_keras_optimizer_weights(model, group, source):
    """Load Keras' ``optimizer_weights`` into ``model.optimizer``; the reason if it cannot.

    Slots are matched by name (Keras 3 ``<variable>_velocity``, Keras 2 ``<variable>/rms:0``;
    Adam ``momentum``/``velocity`` or ``m``/``v``), each slot's arrays in the order of the
    model's trainable weights, and every shape checked. Returns None when restored.
    """
    optimizer = model.optimizer
    optimizer_class = type(optimizer).__name__
    names = attribute_strings(group, "weight_names")
    if not names:
        return "no optimizer weight names"
    weights = model.trainable_weights
    state = {"iterations": 0, **{slot: [] for slot in optimizer.slot_names}}
    for name in names:
        kind, slot = _slot_of(name, optimizer_class)
        if name not in group:
            return f"optimizer weight {name!r} is missing"
        if kind == "learning_rate":
            continue  # the training_config's learning rate is the one used
        if kind not in ("iterations", "slot") or (kind == "slot" and slot not in state):
            return f"optimizer weight {name!r} has no counterpart in nprnn's {optimizer_class}"
        # The declared shape first: read nothing a trainable weight could not hold.
        item = group[name]
        shapes = {weight.shape for weight in weights} if kind == "slot" else {(), (1,)}
        if getattr(item, "shape", None) not in shapes:
            return (f"optimizer weight {name!r} has shape {getattr(item, 'shape', None)}, "
                    f"which no trainable weight of the model has")
        value = np.asarray(item)
        if kind == "iterations":
            state["iterations"] = int(value.reshape(()))
        else:
            state[slot].append(value)
    if state["iterations"] == 0 and not any(state[slot] for slot in optimizer.slot_names):
        return None  # saved before any step: nothing to restore
    for slot in optimizer.slot_names:
        values = state[slot]
        if not values and isinstance(optimizer, optimizers.SGD) and optimizer.momentum == 0:
            state[slot] = [np.zeros_like(w) for w in weights]
            continue
        if len(values) != len(weights):
            return (f"{len(values)} '{slot}' arrays for {len(weights)} trainable weights")
        for value, weight in zip(values, weights):
            if value.shape != weight.shape:
                return f"a '{slot}' array of shape {value.shape} for a weight of {weight.shape}"
    try:
        optimizer.set_state(state, weights)
    except ValueError as error:
        return str(error)
    return None


# --------------------------------------------------------------------------------------
# Loading a Keras file
# --------------------------------------------------------------------------------------
def load_keras_model(handle, source, compile=True):
    """An nprnn model from an open Keras legacy HDF5 file (``model.save('x.h5')``).

    Builds the architecture from ``model_config``, loads ``model_weights``; with
    ``compile=True`` also compiles from ``training_config`` and restores ``optimizer_weights``
    when nprnn has the same optimizer, loss and metrics (otherwise warns, as Keras does, and
    returns the uncompiled model or a fresh optimizer).
    """
    keras_version = _text(handle.attrs.get("keras_version", "2"))
    if keras_version.startswith("1"):
        raise KerasCompatibilityError(f"{source}: written by Keras {keras_version}; nprnn reads "
                                      "files of Keras 2 and 3 (re-save it with a newer Keras)")
    model_config = json_attribute(handle, "model_config", source)
    if model_config is None:
        raise ValueError(f"{source}: no model_config attribute: a weights-only file? Build the "
                         "model and call model.load_weights() instead")
    if "model_weights" not in handle:
        raise ValueError(f"{source}: holds no model_weights group")
    saved = read_legacy_weights(handle["model_weights"], source)
    first_kernel = saved[0][2][0].shape if saved and saved[0][2] else None
    model = model_from_keras_config(model_config, source, first_kernel_shape=first_kernel)
    assign_layer_weights(model, saved, source)
    if not compile:
        return model
    training_config = json_attribute(handle, "training_config", source)
    if training_config is None:
        return model
    state = handle.get("optimizer_weights")
    return _compile_and_restore(model, training_config, source, None if state is None else
                                lambda: restore_keras_optimizer_weights(model, state, source))


def _compile_and_restore(model, settings, source, restore_optimizer):
    """Compile ``model`` with Keras' training settings, then call ``restore_optimizer`` (or
    None: the file holds no optimizer state), which returns None or what went wrong. Either
    failure is a warning, never an error: the weights are loaded all the same."""
    problem = compile_from_keras(model, settings, source)
    if problem is not None:
        warnings.warn(f"{problem}; the model is returned uncompiled: compile it yourself",
                      UserWarning, stacklevel=4)
        return model
    problem = restore_optimizer() if restore_optimizer is not None else None
    if problem is not None:
        warnings.warn(f"{source}: the optimizer state was not restored ({problem}); "
                      "training resumes with a fresh optimizer", UserWarning, stacklevel=4)
    return model


def load_keras_weights(model, handle, source):
    """Load the weights of an open Keras HDF5 file into a built ``model`` (in layer order).

    Reads a full model file (``model_weights``), a legacy weights file, or Keras 3's
    ``.weights.h5``.
    """
    if is_keras3_weights_file(handle):
        saved = read_keras3_weights(handle, model, source)
    else:
        group = handle["model_weights"] if ("layer_names" not in handle.attrs
                                            and "model_weights" in handle) else handle
        saved = read_legacy_weights(group, source)
    assign_layer_weights(model, saved, source)


# --------------------------------------------------------------------------------------
# Writing what Keras reads
# --------------------------------------------------------------------------------------
def _dtype_name(model):
    return model._dtype().name


_RANDOM_UNIFORM = {"class_name": "RandomUniform",
                   "config": {"minval": -0.05, "maxval": 0.05, "seed": None}}


def _recurrent_config(layer):
    """Keras' options of a SimpleRNN, LSTM or GRU (or a cell's, for ``RNN(cell)``): the
    keys Keras 3 writes and tf_keras 2 accepts (Keras 3's ``seed`` is left out: tf_keras
    refuses it, and it only seeds dropout)."""
    cell = layer.cell
    config = {"units": cell.units, "activation": cell.activation, "use_bias": cell.use_bias,
              "dropout": cell.dropout, "recurrent_dropout": cell.recurrent_dropout}
    if isinstance(cell, layers_module.LSTMCell):
        config.update(recurrent_activation=cell.recurrent_activation,
                      unit_forget_bias=cell.unit_forget_bias)
    elif isinstance(cell, layers_module.GRUCell):
        config.update(recurrent_activation=cell.recurrent_activation,
                      reset_after=cell.reset_after)
    return config


def _nested(entry):
    """A layer or cell inside another's config names its module even in legacy ``.h5``
    files: Keras 3's Bidirectional and RNN deserialize it with the new serializer, which
    finds ``keras.layers.LSTM`` by it (tf_keras 2 reads the key too)."""
    return {"module": "keras.layers", **{k: v for k, v in entry.items() if k != "module"},
            "registered_name": None}


def _keras_layer_entry(layer, dtype, keras3=False, input_shape=None):
    """``{"class_name", "config"}`` of one layer (``module``/``build_config`` for Keras 3)."""
    common = {"name": layer.name, "trainable": layer.trainable, "dtype": layer.dtype or dtype}
    class_name = type(layer).__name__
    if isinstance(layer, layers_module.Embedding):
        specific = {"input_dim": layer.input_dim, "output_dim": layer.output_dim,
                    "embeddings_initializer": _RANDOM_UNIFORM,
                    "embeddings_regularizer": None, "activity_regularizer": None,
                    "embeddings_constraint": None, "mask_zero": layer.mask_zero}
    elif isinstance(layer, layers_module.Bidirectional):
        inner = _nested(_keras_layer_entry(layer.forward_layer, dtype, keras3, input_shape))
        inner["config"]["name"] = inner["config"]["name"].removeprefix("forward_")
        specific = {"merge_mode": layer.merge_mode, "layer": inner}
        backward = layer.backward_layer
        default = {**layer.forward_layer.get_config(), "go_backwards": True,
                   "name": backward.name}
        if type(backward) is not type(layer.forward_layer) or \
                backward.get_config() != default:
            specific["backward_layer"] = _nested(_keras_layer_entry(backward, dtype, keras3,
                                                                    input_shape))
    elif isinstance(layer, layers_module.RNN):
        specific = {"return_sequences": layer.return_sequences,
                    "return_state": layer.return_state, "go_backwards": layer.go_backwards,
                    "stateful": layer.stateful, "unroll": layer.unroll,
                    "zero_output_for_mask": layer.zero_output_for_mask}
        if type(layer) is layers_module.RNN:
            cell_class = type(layer.cell).__name__
            cell = {"class_name": cell_class,
                    "config": {"name": _cell_name(layer), "trainable": layer.trainable,
                               "dtype": common["dtype"], **_recurrent_config(layer)}}
            if keras3 and input_shape is not None:
                cell["build_config"] = {"input_shape": [None, input_shape[-1]]}
            specific["cell"] = _nested(cell)
        else:
            specific.update(_recurrent_config(layer))
    elif isinstance(layer, layers_module.Dense):
        specific = {"units": layer.units, "activation": layer.activation,
                    "use_bias": layer.use_bias}
    elif isinstance(layer, layers_module.Dropout):
        specific = {"rate": layer.rate, "seed": layer.seed,
                    "noise_shape": None if layer.noise_shape is None else list(
                        layer.noise_shape)}
    elif isinstance(layer, layers_module.Masking):
        specific = {"mask_value": layer.mask_value}
    else:
        raise KerasCompatibilityError(f"layer {layer.name!r}: Keras has no counterpart for "
                                      f"{class_name}")
    entry = {"class_name": class_name, "config": {**common, **specific}}
    if keras3:
        entry = {"module": "keras.layers", **entry, "registered_name": None}
        # Keras records a build_config for layers that build weights (not Dropout, Masking).
        if input_shape is not None and not isinstance(layer, (layers_module.Dropout,
                                                               layers_module.Masking)):
            entry["build_config"] = {"input_shape": list(input_shape)}
    return entry


def _stateful_batch_size(model):
    """The batch size a stateful layer holds states for, else None. Keras builds a stateful
    RNN only for a static batch size (nprnn's Sequential keeps none: the states tell)."""
    for layer in model.layers:
        inner = ([layer.forward_layer, layer.backward_layer]
                 if isinstance(layer, layers_module.Bidirectional) else [layer])
        for each in inner:
            if getattr(each, "stateful", False) and each.states is not None:
                return int(len(each.states[0]))
    return None


def keras_model_config(model, keras3=False):
    """A Keras ``model_config`` for an nprnn model, readable by Keras 3 and tf_keras 2.

    ``Sequential`` with an ``InputLayer`` giving ``batch_input_shape`` (which Keras 3 maps to
    ``batch_shape``), then one entry per layer with the options that define what it
    computes. ``keras3=True`` gives what Keras 3 writes into a ``.keras`` archive's
    ``config.json`` and into ``to_json()``: ``batch_shape``, and every entry with its
    ``module``, ``registered_name`` and ``build_config`` (the input shape it was built for).
    """
    is_embedding = isinstance(model.layers[0], layers_module.Embedding)
    batch_shape = None if model.input_shape is None else list(model.input_shape)
    if batch_shape is not None and batch_shape[0] is None:
        batch_shape[0] = _stateful_batch_size(model)
    dtype = _dtype_name(model)
    input_config = {"batch_input_shape": batch_shape,
                    "dtype": "int32" if is_embedding else dtype,
                    "sparse": False, "ragged": False, "name": "input_layer"}
    if keras3:
        input_config["batch_shape"] = input_config.pop("batch_input_shape")
    entries = [{"class_name": "InputLayer", "config": input_config}]
    if keras3:
        entries[0] = {"module": "keras.layers", **entries[0], "registered_name": None}
    shape = None if batch_shape is None else tuple(batch_shape)
    for layer in model.layers:
        entries.append(_keras_layer_entry(layer, dtype, keras3, shape))
        shape = None if shape is None or layer.output_shape is None else (
            (shape[0],) + tuple(layer.output_shape[1:]))
    config = {"name": model.name, "trainable": True, "layers": entries}
    if batch_shape is not None:
        config["build_input_shape"] = batch_shape
    if not keras3:
        return {"class_name": "Sequential", "config": config}
    out = {"module": "keras", "class_name": "Sequential", "config": config,
           "registered_name": None}
    if batch_shape is not None:
        out["build_config"] = {"input_shape": batch_shape}
    return out


def _legacy_paths(prefix, layer):
    if isinstance(layer, layers_module.Bidirectional):
        return (_legacy_paths(f"{prefix}/{layer.forward_layer.name}", layer.forward_layer)
                + _legacy_paths(f"{prefix}/{layer.backward_layer.name}", layer.backward_layer))
    if isinstance(layer, layers_module.RNN):
        prefix += f"/{_cell_name(layer)}"
    return [f"{prefix}/{name}" for name in layer.weight_names]


def keras_weight_paths(model):
    """Dataset names per layer, as Keras 3 writes them in legacy ``.h5`` files:
    ``sequential/dense/kernel``, ``sequential/lstm/lstm_cell/kernel``,
    ``sequential/bidirectional/forward_lstm/lstm_cell/kernel`` (then ``backward_lstm``)."""
    return [_legacy_paths(f"{model.name}/{layer.name}", layer) for layer in model.layers]


def _keras_optimizer_config(optimizer):
    """The optimizer's Keras config, with only keys Keras 3 and Keras 2 (tf_keras) both know
    (Keras 3's ``weight_decay``, ``use_ema``... make Keras 2's legacy loader fail)."""
    config = {"name": optimizer.name, "learning_rate": optimizer.learning_rate}
    for key in ("clipnorm", "global_clipnorm", "clipvalue"):
        if getattr(optimizer, key) is not None:
            config[key] = getattr(optimizer, key)
    if isinstance(optimizer, optimizers.RMSprop):
        config.update(rho=optimizer.rho, momentum=0.0, epsilon=optimizer.epsilon, centered=False)
    elif isinstance(optimizer, optimizers.Adam):
        config.update(beta_1=optimizer.beta_1, beta_2=optimizer.beta_2,
                      epsilon=optimizer.epsilon, amsgrad=False)
    elif isinstance(optimizer, optimizers.SGD):
        config.update(momentum=optimizer.momentum, nesterov=optimizer.nesterov)
    else:
        return None
    return {"class_name": type(optimizer).__name__, "config": config}


def keras_training_config(model):
    """Keras' ``training_config`` for a compiled model, or None when Keras has no equal
    (a custom loss or optimizer): Keras then loads the model uncompiled."""
    if not model.compiled:
        return None
    optimizer_config = _keras_optimizer_config(model.optimizer)
    loss = model.loss
    if isinstance(loss, losses.MeanSquaredError):
        loss = "mean_squared_error"
    elif type(loss).__name__ in _KERAS_LOSS_CLASSES:  # the three cross-entropies
        loss = (loss.name if not loss.from_logits else
                {"module": "keras.losses", "class_name": type(loss).__name__,
                 "config": {"name": loss.name, "from_logits": True},
                 "registered_name": None})
    else:
        loss = None
    if optimizer_config is None or loss is None:
        return None
    metric_names = [name for name in model.metric_names if name in metrics._BY_NAME]
    return {"loss": loss, "loss_weights": None, "metrics": metric_names,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False, "optimizer_config": optimizer_config}


def keras_optimizer_weights(model):
    """``[(name, array, slot)]`` in Keras 3's order: iteration, learning_rate (slot None),
    then for each trainable weight each slot (RMSprop: velocity; Adam: momentum, velocity;
    SGD with momentum: momentum; none for plain SGD).

    This is what Keras 3's ``model.save('x.h5')`` writes into the ``optimizer_weights``
    group (its ``optimizer.variables``, each named by its path, such as
    ``adam/sequential_lstm_lstm_cell_kernel_momentum``, int64 iteration, float32 others), and
    the order its legacy loader (``keras/src/legacy/saving/legacy_h5_format.py``) needs: the
    loader reads the datasets named in the ``weight_names`` attribute, in that order (the
    names only locate the datasets), and hands the list to the optimizer's ``set_weights``,
    which assigns it to the optimizer's variables by position, checking shapes only.
    ``tests/test_keras_files.py`` compares this layout with Keras-written files for RMSprop,
    Adam and SGD.

    What Keras 3 (3.15.1) restores from it is nevertheless only the iteration count and the
    learning rate, from nprnn's files and from its own alike: before ``set_weights`` the
    loader builds the optimizer over ``model._trainable_variables``, the variables the model
    object tracks itself, which for a ``Sequential`` is an empty list (the weights belong to
    its layers), so the optimizer has just its two scalars and the slots are left out. The
    optimizer then counts as built over no weight, and Keras' ``fit`` raises "Unknown
    variable" until the model is compiled again. No layout avoids this (the slots are
    complete and in the right places: building the optimizer over
    ``model.trainable_variables`` and calling ``set_weights`` with the datasets restores all
    of them; ``tests/fixtures/check_nprnn_h5_optimizer_in_keras.py``). tf_keras 2 builds its
    legacy optimizer over all trainable variables, but its variable list has no learning
    rate entry and must match in length, so it keeps a fresh optimizer (with a warning), as
    it does for Keras 3's files. The ``.keras`` archive (:func:`write_keras3_weights`) gives
    Keras 3 the whole state.
    """
    optimizer = model.optimizer
    state = optimizer.get_state()
    prefix = optimizer.name
    out = [(f"{prefix}/iteration", np.asarray(state["iterations"], dtype=np.int64), None),
           (f"{prefix}/learning_rate", np.asarray(optimizer.learning_rate, dtype=np.float32),
            None)]
    slots = [slot for slot in optimizer.slot_names if state.get(slot)]
    if isinstance(optimizer, optimizers.SGD) and optimizer.momentum == 0:
        slots = []  # Keras' SGD without momentum has no slot variables
    trainable = [(layer, name) for layer in model.layers if layer.trainable
                 for name in layer.weight_names]
    paths = dict(zip([(layer.name, n) for layer in model.layers for n in layer.weight_names],
                     [p for group in keras_weight_paths(model) for p in group]))
    for index, (layer, name) in enumerate(trainable):
        variable = paths[(layer.name, name)].replace("/", "_")
        for slot in slots:
            out.append((f"{prefix}/{variable}_{slot}", state[slot][index], slot))
    return out


def write_keras3_weights(handle, model, include_optimizer=False):
    """Write Keras 3's ``.weights.h5`` layout into an open, empty HDF5 file.

    With ``include_optimizer`` and a compiled model whose optimizer Keras has, also
    ``optimizer/vars/0..``: iteration, learning_rate, then the slots in Keras 3's order
    (:func:`keras_optimizer_weights`), as ``model.save('x.keras')`` stores them.
    """
    root_vars = handle.create_group("vars")
    root_vars.attrs["name"] = model.name
    layers_group = handle.create_group("layers")
    for layer, key in zip(model.layers, _keras3_keys(model)):
        weights = iter(layer.weights)
        for relative, name, count in _keras3_groups(layer):
            group = layers_group.create_group(f"{key}/{relative}")
            group.attrs["name"] = name
            for position in range(count):
                create_checked_dataset(group, str(position), next(weights))
    if include_optimizer and keras_training_config(model) is not None:
        group = handle.create_group("optimizer").create_group("vars")
        group.attrs["name"] = model.optimizer.name
        for position, (_, value, _) in enumerate(keras_optimizer_weights(model)):
            create_checked_dataset(group, str(position), value)


# --------------------------------------------------------------------------------------
# Keras 3's .keras archive: config.json, metadata.json, model.weights.h5
# --------------------------------------------------------------------------------------
def keras_compile_config(model):
    """Keras 3's ``compile_config`` for a compiled model (None when Keras has no equal)."""
    training = keras_training_config(model)
    if training is None:
        return None
    optimizer = {"module": "keras.optimizers", **training.pop("optimizer_config"),
                 "registered_name": None}
    return {"optimizer": optimizer, **training}


def keras_archive_config(model, include_optimizer=True):
    """The ``config.json`` of a ``.keras`` archive, as Keras 3's ``model.save`` writes it:
    the serialized Sequential (:func:`keras_model_config` with ``keras3=True``) and, for a
    compiled model, its ``compile_config``."""
    config = keras_model_config(model, keras3=True)
    compile_config = keras_compile_config(model) if include_optimizer else None
    if compile_config is not None:
        config["compile_config"] = compile_config
    return config


def keras_json(model, **kwargs):
    """What Keras 3's ``model.to_json()`` gives for this model (the architecture, and the
    ``compile_config`` once compiled, as Keras includes it), for
    ``keras.models.model_from_json`` in Keras 3 or :func:`nprnn.saving.model_from_json`.

    :meth:`Sequential.to_json` stays nprnn's own JSON (every nprnn setting, such as the
    initializers, survives it); this is the text to hand to Keras.
    """
    return json.dumps(keras_archive_config(model), **kwargs)


def _compile_settings(config):
    """Keras 3's ``compile_config`` in the shape of the legacy ``training_config``."""
    settings = dict(config)
    settings["optimizer_config"] = settings.pop("optimizer", None)
    return settings


def restore_keras3_optimizer(model, group, source):
    """Load Keras 3's ``optimizer/vars`` (0 iteration, 1 learning_rate, then each trainable
    weight's slots in turn; tf_keras 2's ``.keras`` has no learning_rate variable) into
    ``model.optimizer``; the reason if it cannot, else None."""
    optimizer = model.optimizer
    weights = model.trainable_weights
    count = len(group)
    if any(str(i) not in group for i in range(count)):
        return "optimizer/vars members are not 0..n-1"
    slots = list(optimizer.slot_names)
    if isinstance(optimizer, optimizers.SGD) and optimizer.momentum == 0:
        slots = []  # Keras' SGD without momentum has no slot variables
    if "0" not in group or getattr(group["0"], "shape", None) not in ((), (1,)):
        return "optimizer/vars/0 is not an iteration count"
    iterations = np.asarray(group["0"]).reshape(())
    if iterations.dtype.kind not in "iu" or int(iterations) < 0:
        return f"the iteration count is not a non-negative integer ({iterations!r})"
    if count <= 2 and int(iterations) == 0:
        return None  # saved before any step: the optimizer was never built; nothing to load
    # Keras 3: iteration, learning_rate, slots; tf_keras 2's .keras: iteration, slots.
    first = 2 if count == 2 + len(slots) * len(weights) else 1
    if count != first + len(slots) * len(weights):
        return (f"{count} optimizer variables; nprnn's {type(optimizer).__name__} needs "
                f"{2 + len(slots) * len(weights)} for {len(weights)} trainable weights")
    state = {"iterations": int(iterations)}
    for slot in optimizer.slot_names:
        state[slot] = [np.zeros_like(w) for w in weights] if slot not in slots else []
    for index, weight in enumerate(weights):
        for offset, slot in enumerate(slots):
            item = group[str(first + index * len(slots) + offset)]
            # The declared shape and dtype first: read nothing the weight could not hold.
            shape, dtype = getattr(item, "shape", None), getattr(item, "dtype", None)
            if shape != weight.shape or dtype is None or dtype.kind != "f":
                return (f"a '{slot}' variable of shape {shape} ({dtype}) for a weight of "
                        f"{weight.shape}")
            value = np.asarray(item)
            if not np.all(np.isfinite(value)):
                return f"a '{slot}' variable holds NaN or infinity"
            state[slot].append(value)
    try:
        optimizer.set_state(state, weights)
    except ValueError as error:
        return str(error)
    return None


def load_keras_archive(config, handle, source, compile=True):
    """An nprnn model from a ``.keras`` archive's parsed ``config.json`` and its open
    ``model.weights.h5``: the architecture, the weights, and with ``compile=True`` the
    ``compile_config`` and the optimizer state (``optimizer/vars``) when nprnn has the same
    optimizer, loss and metrics (otherwise a warning, as for ``.h5`` files)."""
    model = model_from_keras_config(config, source)
    assign_layer_weights(model, read_keras3_weights(handle, model, source), source)
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    if not compile or not isinstance(compile_config, dict):
        return model
    state = handle.get("optimizer/vars")
    return _compile_and_restore(model, _compile_settings(compile_config), source,
                                None if state is None else
                                lambda: restore_keras3_optimizer(model, state, source))
