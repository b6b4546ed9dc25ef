"""Saving and loading models without pickle.

Two formats, chosen by the file's suffix:

``.h5`` / ``.hdf5``
    HDF5 (h5py), laid out like Keras' legacy HDF5 files so that the book's checkpoint names
    (``best-simplernn-model.h5``) hold what a Keras user expects: root attributes
    ``model_config`` (Keras-style JSON), ``keras_version``, ``backend``; a group
    ``model_weights`` with ``layer_names``, one group per layer with ``weight_names`` and one
    dataset per weight; ``optimizer_weights``. nprnn adds the attribute ``nprnn_config`` (its
    own JSON) and ``nprnn_format_version``.
any other suffix (``.npz``, ``.nprnn``, ``.keras`` ...)
    nprnn's native format: a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) read with
    ``allow_pickle=False``. The member ``config`` holds the JSON (architecture, compile
    settings, weight names, format version) as bytes; ``weights/NNNN`` and
    ``optimizer/<slot>/NNNN`` the arrays at full precision.

Every write is atomic (:func:`nprnn._io.atomic_path`): a temporary file in the same folder,
fsynced, then renamed over the target, so a crash mid-save leaves the previous file whole.
Reading never unpickles; a truncated, corrupted or foreign file, or one whose weights do not
fit the architecture, raises ValueError naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from nprnn import layers as layers_module
from nprnn import losses, optimizers
from nprnn._io import atomic_open, atomic_path

FORMAT_VERSION = 1
"""Version of the files this release writes; files of every version up to it keep loading."""

_HDF5_SUFFIXES = (".h5", ".hdf5")


def _is_hdf5(path) -> bool:
    return Path(path).suffix.lower() in _HDF5_SUFFIXES


def _check_path(filepath, name="filepath"):
    if isinstance(filepath, bytes):
        filepath = filepath.decode()
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path, got {type(filepath).__name__}")
    return Path(filepath)


# --------------------------------------------------------------------------------------
# What a saved model holds, independent of the container
# --------------------------------------------------------------------------------------
def _model_document(model, include_optimizer=True):
    """The JSON-able description of a model (everything but the arrays)."""
    document = {
        "format": "nprnn",
        "format_version": FORMAT_VERSION,
        "model": {"class_name": "Sequential", "config": model.get_config()},
        "weight_names": [f"{layer.name}/{name}" for layer in model.layers
                         for name in layer.weight_names],
    }
    if model.compiled and include_optimizer:
        document["compile"] = {
            "optimizer": {"class_name": type(model.optimizer).__name__,
                          "config": model.optimizer.get_config()},
            "loss": model.loss.get_config(),
            "metrics": list(model.metric_names),
        }
        state = model.optimizer.get_state()
        document["optimizer_state"] = {"iterations": state["iterations"],
                                       "slots": {k: len(v) for k, v in state.items()
                                                 if k != "iterations"}}
    return document


def _model_from_document(document, source):
    """Rebuild (uncompiled weights aside) the model a document describes."""
    from nprnn.models import Sequential

    if not isinstance(document, dict) or document.get("format") != "nprnn":
        raise ValueError(f"{source}: not an nprnn model file (no nprnn configuration)")
    version = document.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{source}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(f"{source}: written by a newer nprnn (format {version}); this release "
                         f"reads formats up to {FORMAT_VERSION}")
    try:
        model_config = document["model"]["config"]
        model = Sequential(name=model_config.get("name"))
        for entry in model_config["layers"]:
            model.add(layers_module.deserialize(entry["class_name"], entry["config"]))
        if not model.built and model_config.get("input_shape") is not None:
            model.build(tuple(model_config["input_shape"]))
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: the model configuration is incomplete ({error!r})") from None
    compile_config = document.get("compile")
    if compile_config:
        optimizer = optimizers.deserialize(compile_config["optimizer"]["class_name"],
                                           compile_config["optimizer"]["config"])
        loss_config = dict(compile_config["loss"])
        loss = losses.get(loss_config.pop("name"))
        if isinstance(loss, losses.BinaryCrossentropy):
            loss = losses.BinaryCrossentropy(**loss_config)
        model.compile(optimizer=optimizer, loss=loss, metrics=compile_config["metrics"])
    return model


def _set_loaded_weights(model, arrays, expected_names, source):
    names = [f"{layer.name}/{n}" for layer in model.layers for n in layer.weight_names]
    if expected_names is not None and list(expected_names) != names:
        raise ValueError(f"{source}: the file's weights {list(expected_names)} do not match the "
                         f"architecture's {names}")
    if len(arrays) != len(names):
        raise ValueError(f"{source}: holds {len(arrays)} weight arrays, the architecture needs "
                         f"{len(names)} ({', '.join(names)})")
    for name, array, current in zip(names, arrays, model.weights):
        if array.shape != current.shape:
            raise ValueError(f"{source}: weight {name} has shape {array.shape}, the "
                             f"architecture needs {current.shape}")
    try:
        model.set_weights(arrays)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


# --------------------------------------------------------------------------------------
# Native format: .npz without pickle
# --------------------------------------------------------------------------------------
def _save_native(model, path, include_optimizer=True):
    document = _model_document(model, include_optimizer)
    arrays = {"config": np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)}
    for position, weight in enumerate(model.weights):
        arrays[f"weights/{position:04d}"] = weight
    if "optimizer_state" in document:
        for slot, values in model.optimizer.get_state().items():
            if slot == "iterations":
                continue
            for position, value in enumerate(values):
                arrays[f"optimizer/{slot}/{position:04d}"] = value
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _load_native(path):
    source = str(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(f"{source}: not a readable nprnn model file ({error})") from None
    if "config" not in members:
        raise ValueError(f"{source}: not an nprnn model file (no 'config' member)")
    try:
        document = json.loads(members["config"].tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: the configuration is corrupted ({error})") from None
    model = _model_from_document(document, source)
    weights = [members[key] for key in sorted(k for k in members if k.startswith("weights/"))]
    _set_loaded_weights(model, weights, document.get("weight_names"), source)
    state = document.get("optimizer_state")
    if state and model.compiled:
        restored = {"iterations": state["iterations"]}
        for slot, count in state["slots"].items():
            keys = [f"optimizer/{slot}/{i:04d}" for i in range(count)]
            missing = [k for k in keys if k not in members]
            if missing:
                raise ValueError(f"{source}: optimizer state is missing {missing[0]}")
            restored[slot] = [members[k] for k in keys]
        try:
            model.optimizer.set_state(restored, model.trainable_weights)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
    return model


# --------------------------------------------------------------------------------------
# HDF5, Keras' legacy layout
# --------------------------------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise ImportError("saving to .h5 needs h5py (pip install h5py)") from error
    return h5py


_KERAS_CLASS_CONFIG = {
    "Embedding": lambda layer: {"input_dim": layer.input_dim, "output_dim": layer.output_dim,
                                "embeddings_initializer": {"class_name": "RandomUniform",
                                                           "config": {"minval": -0.05,
                                                                      "maxval": 0.05}},
                                "mask_zero": False},
    "SimpleRNN": lambda layer: {"units": layer.units, "activation": layer.activation,
                                "use_bias": True, "return_sequences": layer.return_sequences,
                                "return_state": False, "go_backwards": False,
                                "stateful": False, "unroll": False},
    "Dense": lambda layer: {"units": layer.units, "activation": layer.activation,
                            "use_bias": True},
}


def keras_model_config(model):
    """A Keras-style ``model_config`` for the HDF5 file (Sequential with an InputLayer)."""
    batch_shape = list(model.input_shape) if model.input_shape is not None else None
    layer_entries = [{"class_name": "InputLayer",
                      "config": {"batch_shape": batch_shape,
                                 "dtype": "int32" if isinstance(
                                     model.layers[0], layers_module.Embedding)
                                 else model._dtype().name,
                                 "sparse": False, "name": "input_layer"}}]
    for layer in model.layers:
        config = {"name": layer.name, "trainable": layer.trainable,
                  "dtype": layer.dtype, **_KERAS_CLASS_CONFIG[type(layer).__name__](layer)}
        layer_entries.append({"class_name": type(layer).__name__, "config": config})
    return {"class_name": "Sequential",
            "config": {"name": model.name, "trainable": True, "layers": layer_entries}}


def _save_hdf5(model, path, include_optimizer=True, weights_only=False):
    h5py = _h5py()
    document = _model_document(model, include_optimizer and not weights_only)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["nprnn_format_version"] = FORMAT_VERSION
        handle.attrs["nprnn_config"] = json.dumps(document)
        handle.attrs["keras_version"] = "3.15.1"
        handle.attrs["backend"] = "tensorflow"
        if not weights_only:
            handle.attrs["model_config"] = json.dumps(keras_model_config(model))
        group = handle if weights_only else handle.create_group("model_weights")
        group.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
        group.attrs["backend"] = "tensorflow"
        group.attrs["keras_version"] = "3.15.1"
        for layer in model.layers:
            layer_group = group.create_group(layer.name)
            names = [f"{layer.name}/{name}".encode() for name in layer.weight_names]
            layer_group.attrs["weight_names"] = np.array(names) if names else np.array([],
                                                                                      dtype="S1")
            for name, weight in zip(names, layer.weights):
                layer_group.create_dataset(name.decode(), data=weight)
        if "optimizer_state" in document:
            optimizer_group = handle.create_group("optimizer_weights")
            state = model.optimizer.get_state()
            optimizer_group.create_dataset("iterations", data=np.int64(state["iterations"]))
            for slot, values in state.items():
                if slot == "iterations":
                    continue
                for position, value in enumerate(values):
                    optimizer_group.create_dataset(f"{slot}/{position:04d}", data=value)


def _read_hdf5_weights(group, source):
    arrays, names = [], []
    try:
        layer_names = [n.decode() if isinstance(n, bytes) else str(n)
                       for n in group.attrs["layer_names"]]
        for layer_name in layer_names:
            layer_group = group[layer_name]
            for raw_name in layer_group.attrs["weight_names"]:
                weight_name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                arrays.append(np.asarray(layer_group[weight_name]))
                names.append(weight_name)
    except KeyError as error:
        raise ValueError(f"{source}: the weights are incomplete (missing {error})") from None
    return arrays, names


def _load_hdf5(path):
    h5py = _h5py()
    source = str(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{source}: not a readable HDF5 file ({error})") from None
    with handle:
        if "nprnn_config" not in handle.attrs:
            raise ValueError(f"{source}: an HDF5 file without nprnn's configuration (not a model "
                             "saved by nprnn)")
        try:
            document = json.loads(handle.attrs["nprnn_config"])
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source}: the nprnn configuration is corrupted ({error})") from None
        model = _model_from_document(document, source)
        if "model_weights" not in handle:
            raise ValueError(f"{source}: holds no model_weights group")
        arrays, _ = _read_hdf5_weights(handle["model_weights"], source)
        _set_loaded_weights(model, arrays, None, source)
        state = document.get("optimizer_state")
        if state and model.compiled and "optimizer_weights" in handle:
            group = handle["optimizer_weights"]
            restored = {"iterations": state["iterations"]}
            try:
                for slot, count in state["slots"].items():
                    restored[slot] = [np.asarray(group[f"{slot}/{i:04d}"]) for i in range(count)]
                model.optimizer.set_state(restored, model.trainable_weights)
            except (KeyError, ValueError) as error:
                raise ValueError(f"{source}: optimizer state: {error}") from None
    return model


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------
def save_model(model, filepath, include_optimizer=True):
    """Save a built model: architecture, weights and (if compiled) optimizer state.

    ``.h5``/``.hdf5`` writes HDF5 in Keras' legacy layout; any other suffix nprnn's native
    ``.npz`` format. The write is atomic.
    """
    path = _check_path(filepath)
    model._require_built("save")
    if _is_hdf5(path):
        _save_hdf5(model, path, include_optimizer)
    else:
        _save_native(model, path, include_optimizer)


def load_model(filepath):
    """Load a model saved by :func:`save_model` (either format), compiled if it was."""
    path = _check_path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"filepath: no such file {str(path)!r}")
    if _is_hdf5(path) or _looks_like_hdf5(path):
        return _load_hdf5(path)
    return _load_native(path)


def _looks_like_hdf5(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def save_weights(model, filepath):
    """Save the weights alone (HDF5 for .h5, native otherwise), atomically."""
    path = _check_path(filepath)
    model._require_built("save_weights")
    if _is_hdf5(path):
        _save_hdf5(model, path, include_optimizer=False, weights_only=True)
    else:
        _save_native(model, path, include_optimizer=False)


def load_weights(model, filepath):
    """Load weights into ``model`` from a file written by save_weights or save_model."""
    path = _check_path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"filepath: no such file {str(path)!r}")
    model._require_built("load_weights")
    source = str(path)
    if _is_hdf5(path) or _looks_like_hdf5(path):
        h5py = _h5py()
        try:
            handle = h5py.File(path, "r")
        except OSError as error:
            raise ValueError(f"{source}: not a readable HDF5 file ({error})") from None
        with handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in group.attrs:
                raise ValueError(f"{source}: holds no weights (no layer_names attribute)")
            arrays, _ = _read_hdf5_weights(group, source)
    else:
        loaded = _load_native(path)
        arrays = loaded.get_weights()
    _set_loaded_weights(model, arrays, None, source)
