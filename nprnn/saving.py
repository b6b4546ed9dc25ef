"""Saving and loading models without pickle.

Three formats, chosen by the file's suffix:

``.h5`` / ``.hdf5``
    HDF5 (h5py), in Keras' legacy HDF5 layout, so that the book's checkpoint names
    (``best-simplernn-model.h5``) load in Keras with ``keras.models.load_model`` (compiled)
    or ``model.load_weights``: root attributes ``model_config`` and
    ``training_config`` (Keras' JSON), ``keras_version``, ``backend``; a group
    ``model_weights`` with ``layer_names``, one group per layer with ``weight_names`` and one
    dataset per weight; a group ``optimizer_weights`` with ``weight_names``, as Keras 3 lays
    it out (of which Keras 3's own loader takes back only the iteration count and the
    learning rate, from its own files too: :func:`nprnn.interop.keras_optimizer_weights`;
    nprnn reads the whole state back). nprnn adds the
    attributes ``nprnn_config`` (its own JSON, used when nprnn reads the file back) and
    ``nprnn_format_version``. Files written by Keras (2 or 3) load too, for the models nprnn
    can compute (:mod:`nprnn.interop`). ``save_weights('x.weights.h5')`` writes Keras 3's
    weights layout instead, which Keras 3 requires for that suffix.
``.keras``
    Keras 3's archive, as ``model.save('x.keras')`` writes it, so that Keras 3's
    ``keras.models.load_model('x.keras')`` loads nprnn's file (compiled, optimizer state
    included) and nprnn loads Keras': a zip of exactly ``metadata.json``, ``config.json``
    (the serialized Sequential and its ``compile_config``) and ``model.weights.h5`` (Keras
    3's weights layout, ``layers/<class>/.../vars/N`` and ``optimizer/vars/N``; nprnn adds
    the root attributes ``nprnn_config``/``nprnn_format_version``, which Keras ignores).
    Reading treats the zip as hostile: any other member, an encrypted or oddly compressed
    one, or a member larger than its limit (:data:`KERAS_ARCHIVE_LIMITS`) is refused before
    anything is decompressed beyond that limit, and nothing is unpickled. nprnn's native
    files that earlier releases wrote under a ``.keras`` name still load.
any other suffix (``.nprnn``, and ``.npz`` as earlier releases wrote)
    nprnn's native format: a NumPy ``.npz`` archive (a zip of ``.npy`` arrays) read with
    ``allow_pickle=False``. The member ``config`` holds the JSON (architecture, compile
    settings, weight names, format version) as bytes; ``weights/NNNN`` and
    ``optimizer/<slot>/NNNN`` the arrays at full precision. ``.nprnn`` is its own suffix;
    it keeps every nprnn setting (such as initializers) that Keras' formats do not carry.

Every write is atomic (:func:`nprnn._io.atomic_open`): a temporary file in the same folder,
fsynced, then renamed over the target, so a crash mid-save leaves the previous file whole,
and a save that cannot complete (a full disk, ``ulimit -f``) raises OSError naming the
file and leaves no temporary file. HDF5 files are built in memory first (HDF5 crashes the
process when its own writes fail), then written the same way.

Reading never unpickles; a truncated, corrupted or foreign file, or one whose weights do not
fit the architecture, raises ValueError naming the file and what is wrong. Files are treated
as hostile (:mod:`nprnn._untrusted`): the architecture a file declares is refused above
``NPRNN_MAX_WEIGHT_BYTES`` (default 2 GiB of weights) before it is built; each array's
declared shape and dtype (the ``.npy`` headers of the native archive, the HDF5 dataset
shapes) is checked against the architecture before its data is read; HDF5 external links,
soft links leaving their group, virtual or externally stored datasets, and datasets
declaring far more than they store are refused.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from nprnn import _untrusted, interop, losses, models, optimizers
from nprnn._io import atomic_open, atomic_write_bytes, create_checked_dataset
from nprnn.models import Sequential

FORMAT_VERSION = 1
"""Version of the files this release writes; files of every version up to it keep loading."""

_HDF5_SUFFIXES = (".h5", ".hdf5")
KERAS_ARCHIVE_SUFFIX = ".keras"
KERAS_ARCHIVE_LIMITS = {"config.json": 64 * 2**20, "metadata.json": 2**20,
                        "model.weights.h5": 2 * 2**30}
"""The members a ``.keras`` archive may hold, and the largest size (bytes) read of each."""


def _is_hdf5(path) -> bool:
    return Path(path).suffix.lower() in _HDF5_SUFFIXES


def _is_keras_archive_name(path) -> bool:
    return Path(path).suffix.lower() == KERAS_ARCHIVE_SUFFIX


def _check_path(filepath, writing=False):
    """``filepath`` as a Path; refuse a non-path, an empty path or a folder."""
    if isinstance(filepath, bytes):
        filepath = os.fsdecode(filepath)
    if not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(f"filepath: expected a file path (str or os.PathLike), got "
                        f"{type(filepath).__name__}")
    text = os.fspath(filepath)
    if not str(text).strip():
        raise ValueError("filepath: expected a file path, got an empty string")
    if os.path.isdir(text):
        if writing:
            raise ValueError(f"filepath: {text!r} is a folder; expected a file path such as "
                             f"{os.path.join(text, 'model.npz')!r}")
        raise ValueError(f"filepath: {text!r} is a folder, not a model file")
    return Path(text)


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


def _model_from_document(document, source, compile=True):
    """Rebuild (uncompiled weights aside) the model a document describes."""
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
        _untrusted.check_architecture(
            [(entry["class_name"], entry["config"]) for entry in model_config["layers"]],
            _input_features(model_config), source)
        model = Sequential.from_config(model_config)
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: the model configuration is incomplete ({error!r})") from None
    compile_config = document.get("compile")
    if compile_config and compile:
        optimizer = optimizers.deserialize(compile_config["optimizer"]["class_name"],
                                           compile_config["optimizer"]["config"])
        loss = losses.deserialize(compile_config["loss"])
        model.compile(optimizer=optimizer, loss=loss, metrics=compile_config["metrics"])
    return model


def _input_features(model_config):
    """The last axis of the input shape a configuration declares (None if it declares none)."""
    shape = model_config.get("input_shape")
    layers = model_config.get("layers") or [{}]
    first = layers[0].get("config") if isinstance(layers[0], dict) else None
    if shape is None and isinstance(first, dict):
        shape = first.get("batch_input_shape") or first.get("input_shape")
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[-1], int):
        return shape[-1]
    return None


def _check_weight_count(model, count, expected_names, source):
    names = [f"{layer.name}/{n}" for layer in model.layers for n in layer.weight_names]
    if expected_names is not None and list(expected_names) != names:
        raise ValueError(f"{source}: the file's weights {list(expected_names)} do not match the "
                         f"architecture's {names}")
    if count != len(names):
        raise ValueError(f"{source}: holds {count} weight arrays, the architecture needs "
                         f"{len(names)} ({', '.join(names)})")
    return names


def _set_loaded_weights(model, arrays, expected_names, source):
    names = _check_weight_count(model, len(arrays), expected_names, source)
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


_CONFIG_MAX_BYTES = 16 * 1024**2
"""The largest ``config`` member (JSON bytes) the native loader reads."""


def _npy_header(archive, info, source):
    """The declared ``(shape, dtype)`` of one ``.npy`` member, reading its header only.

    Refuses a header whose data would not fit in the member's declared size.
    """
    name = info.filename
    with archive.open(info) as stream:
        version = npy_format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{source}: {name} is an .npy of version {version}; expected 1.0 "
                             "or 2.0")
        read_header = (npy_format.read_array_header_1_0 if version == (1, 0)
                       else npy_format.read_array_header_2_0)
        shape, _, dtype = read_header(stream)
        offset = stream.tell()
    if dtype.hasobject:
        raise ValueError(f"{source}: {name} holds Python objects (a pickle); nprnn never "
                         "unpickles model files")
    declared = math.prod(shape) * dtype.itemsize
    if declared + offset != info.file_size:
        raise ValueError(f"{source}: {name} declares {declared:,} bytes of data (shape "
                         f"{shape}, {dtype}), its zip entry holds {info.file_size - offset:,}")
    return shape, dtype


def _read_npy(archive, info, source):
    with archive.open(info) as stream:
        return npy_format.read_array(stream, allow_pickle=False)


def _open_native(path, source):
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        with open(path, "rb") as handle:
            start = handle.read(2)
        if start[:1] == b"\x80" or start == b"(d":
            raise ValueError(f"{source}: a pickle file, not an nprnn model file; nprnn never "
                             "unpickles model files") from None
        raise ValueError(f"{source}: not a readable nprnn model file ({error})") from None


def _load_native(path, compile=True):
    """Read a native archive; every member's declared shape and dtype is checked against
    the architecture before its data is read."""
    source = str(path)
    with _open_native(path, source) as archive:
        members = {info.filename[:-4]: info for info in archive.infolist()
                   if info.filename.endswith(".npy")}
        if "config" not in members:
            raise ValueError(f"{source}: not an nprnn model file (no 'config' member)")
        shape, dtype = _npy_header(archive, members["config"], source)
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > _CONFIG_MAX_BYTES:
            raise ValueError(f"{source}: the config member is declared as {dtype} of shape "
                             f"{shape}; expected at most {_CONFIG_MAX_BYTES:,} bytes of JSON")
        try:
            document = json.loads(_read_npy(archive, members["config"], source).tobytes()
                                  .decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source}: the configuration is corrupted ({error})") from None
        model = _model_from_document(document, source, compile=compile)
        keys = sorted(key for key in members if key.startswith("weights/"))
        names = _check_weight_count(model, len(keys), document.get("weight_names"), source)
        for key, name, current in zip(keys, names, model.weights):
            shape, dtype = _npy_header(archive, members[key], source)
            _untrusted.check_declared_array(shape, dtype, current.shape, f"weight {name}",
                                            source)
        weights = [_read_npy(archive, members[key], source) for key in keys]
        _set_loaded_weights(model, weights, None, source)
        state = document.get("optimizer_state")
        if state and model.compiled:
            _restore_optimizer_native(model, archive, members, state, source)
    return model


def _restore_optimizer_native(model, archive, members, state, source):
    restored = {"iterations": state["iterations"]}
    trainable = model.trainable_weights
    for slot, count in state["slots"].items():
        keys = [f"optimizer/{slot}/{i:04d}" for i in range(count)]
        missing = [k for k in keys if k not in members]
        if missing:
            raise ValueError(f"{source}: optimizer state is missing {missing[0]}")
        if count not in (0, len(trainable)):
            raise ValueError(f"{source}: optimizer state: {count} '{slot}' arrays for "
                             f"{len(trainable)} trainable weights")
        for key, weight in zip(keys, trainable):
            shape, dtype = _npy_header(archive, members[key], source)
            _untrusted.check_declared_array(shape, dtype, weight.shape, key, source)
        restored[slot] = [_read_npy(archive, members[key], source) for key in keys]
    try:
        model.optimizer.set_state(restored, trainable)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from None


# --------------------------------------------------------------------------------------
# HDF5, Keras' legacy layout
# --------------------------------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is a dependency
        raise ImportError("saving to .h5 needs h5py (pip install h5py)") from error
    return h5py


def _is_keras3_weights_name(path) -> bool:
    return Path(path).name.lower().endswith(".weights.h5")


def _save_hdf5(model, path, include_optimizer=True, weights_only=False):
    """Write Keras' legacy HDF5 layout, plus nprnn's own configuration.

    Root attributes ``model_config`` and ``training_config`` (JSON, as Keras writes them),
    ``keras_version``, ``backend``, and nprnn's ``nprnn_config``/``nprnn_format_version``;
    group ``model_weights`` (attribute ``layer_names``; per layer a group with
    ``weight_names`` and the datasets, named as Keras 3 names them); group
    ``optimizer_weights`` (attribute ``weight_names``: iteration, learning_rate, then the
    slots, in Keras 3's order, which its loader assigns by position; Keras 3 itself keeps
    only the first two, see :func:`nprnn.interop.keras_optimizer_weights`).
    ``save_weights`` writes the layer groups at the root, as Keras' legacy
    ``save_weights('x.h5')`` did, or, for a name ending in ``.weights.h5``, Keras 3's
    weights layout (which Keras 3's ``load_weights`` requires for that suffix).
    """
    h5py = _h5py()
    with_optimizer = include_optimizer and not weights_only and model.compiled
    document = _model_document(model, with_optimizer)
    optimizer_arrays = []
    if "optimizer_state" in document:
        optimizer_arrays = interop.keras_optimizer_weights(model)
        datasets = {}
        for name, _, slot in optimizer_arrays:
            if slot is not None:
                datasets.setdefault(slot, []).append(name)
        document["optimizer_state"]["h5_datasets"] = datasets
    # HDF5 is built in memory, then written by the atomic writer: HDF5 itself crashes the
    # process when a write fails (a full disk, ``ulimit -f``), where os-level writes raise
    # OSError and leave the previous file whole.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        _write_hdf5(handle, model, path, document, optimizer_arrays, with_optimizer,
                    weights_only)
    atomic_write_bytes(path, buffer.getbuffer())


def _write_hdf5(handle, model, path, document, optimizer_arrays, with_optimizer,
                weights_only):
    handle.attrs["nprnn_format_version"] = FORMAT_VERSION
    handle.attrs["nprnn_config"] = json.dumps(document)
    if weights_only and _is_keras3_weights_name(path):
        interop.write_keras3_weights(handle, model)
        return
    handle.attrs["keras_version"] = interop.KERAS_VERSION
    handle.attrs["backend"] = "tensorflow"
    if not weights_only:
        handle.attrs["model_config"] = json.dumps(interop.keras_model_config(model))
        training_config = interop.keras_training_config(model) if with_optimizer else None
        if training_config is not None:
            handle.attrs["training_config"] = json.dumps(training_config)
    group = handle if weights_only else handle.create_group("model_weights")
    group.attrs["layer_names"] = np.array([layer.name.encode() for layer in model.layers])
    group.attrs["backend"] = "tensorflow"
    group.attrs["keras_version"] = interop.KERAS_VERSION
    for layer, paths in zip(model.layers, interop.keras_weight_paths(model)):
        layer_group = group.create_group(layer.name)
        layer_group.attrs["weight_names"] = (np.array([p.encode() for p in paths]) if paths
                                             else np.array([], dtype="S1"))
        for name, weight in zip(paths, layer.weights):
            create_checked_dataset(layer_group, name, weight)
    if optimizer_arrays:
        optimizer_group = handle.create_group("optimizer_weights")
        optimizer_group.attrs["weight_names"] = np.array(
            [name.encode() for name, _, _ in optimizer_arrays])
        for name, value, _ in optimizer_arrays:
            create_checked_dataset(optimizer_group, name, value)
        # A slot Keras does not have (SGD without momentum) under nprnn's own names.
        state = model.optimizer.get_state()
        for slot, count in document["optimizer_state"]["slots"].items():
            if not document["optimizer_state"]["h5_datasets"].get(slot):
                for position in range(count):
                    create_checked_dataset(optimizer_group, f"{slot}/{position:04d}",
                                           state[slot][position])


def _restore_optimizer_hdf5(model, handle, state, source):
    """nprnn's optimizer state from an nprnn-written file, each array's declared shape
    checked before it is read."""
    if "optimizer_weights" not in handle:
        return
    group = handle["optimizer_weights"]
    restored = {"iterations": state["iterations"]}
    try:
        datasets = state.get("h5_datasets") or {}
        weights = model.trainable_weights
        for slot, count in state["slots"].items():
            # Keras' names when recorded; else nprnn's optimizer_weights/<slot>/NNNN.
            names = datasets.get(slot) or [f"{slot}/{i:04d}" for i in range(count)]
            if len(names) not in (0, len(weights)):
                raise ValueError(f"{len(names)} '{slot}' arrays for {len(weights)} weights")
            for name, weight in zip(names, weights):
                item = group[name]
                _untrusted.check_declared_array(getattr(item, "shape", None),
                                                getattr(item, "dtype", object), weight.shape,
                                                f"optimizer_weights/{name}", source)
            restored[slot] = [np.asarray(group[name]) for name in names]
        model.optimizer.set_state(restored, model.trainable_weights)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{source}: optimizer state: {error}") from None


def _load_hdf5(path, compile=True):
    h5py = _h5py()
    source = str(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{source}: not a readable HDF5 file ({error})") from None
    with handle:
        _untrusted.check_hdf5_file(handle, source)
        if "nprnn_config" not in handle.attrs:
            if "model_config" in handle.attrs:  # written by Keras
                return interop.load_keras_model(handle, source, compile=compile)
            raise ValueError(f"{source}: an HDF5 file without a model configuration (neither "
                             "nprnn's nor Keras' model_config): a weights-only file? Build the "
                             "model and call model.load_weights() instead")
        try:
            document = json.loads(interop._text(handle.attrs["nprnn_config"]))
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source}: the nprnn configuration is corrupted ({error})") from None
        model = _model_from_document(document, source, compile=compile)
        if "model_weights" not in handle:
            raise ValueError(f"{source}: holds no model_weights group (a weights-only file? "
                             "Build the model and call model.load_weights() instead)")
        saved = interop.read_legacy_weights(handle["model_weights"], source)
        interop.assign_layer_weights(model, saved, source)
        state = document.get("optimizer_state")
        if state and model.compiled:
            _restore_optimizer_hdf5(model, handle, state, source)
    return model


# --------------------------------------------------------------------------------------
# Keras 3's .keras archive
# --------------------------------------------------------------------------------------
def _save_keras_archive(model, path, include_optimizer=True):
    """Write ``metadata.json``, ``config.json`` and ``model.weights.h5`` as Keras 3 does."""
    h5py = _h5py()
    with_optimizer = include_optimizer and model.compiled
    document = _model_document(model, with_optimizer)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        handle.attrs["nprnn_format_version"] = FORMAT_VERSION
        handle.attrs["nprnn_config"] = json.dumps(document)
        interop.write_keras3_weights(handle, model, include_optimizer=with_optimizer)
    metadata = {"keras_version": interop.KERAS_VERSION,
                "date_saved": time.strftime("%Y-%m-%d@%H:%M:%S")}
    config = interop.keras_archive_config(model, include_optimizer=with_optimizer)
    with atomic_open(path, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())


def _zip_names(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None


def _is_keras_archive(path):
    """A zip holding ``config.json`` (Keras) rather than ``config.npy`` (nprnn's npz)."""
    names = _zip_names(path)
    if names is None:
        return _is_keras_archive_name(path)
    return "config.npy" not in names and (
        "config.json" in names or _is_keras_archive_name(path))


def _read_keras_archive(path):
    """The members of a ``.keras`` archive, checked before they are read (hostile input)."""
    source = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ValueError(f"{source}: not a readable .keras archive ({error})") from None
    members = {}
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        unexpected = sorted(set(names) - set(KERAS_ARCHIVE_LIMITS))
        if unexpected:
            raise ValueError(f"{source}: a .keras archive holds only "
                             f"{sorted(KERAS_ARCHIVE_LIMITS)}; refusing member(s) "
                             f"{unexpected[:5]}")
        if len(names) != len(set(names)):
            raise ValueError(f"{source}: a .keras archive with duplicate members")
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise ValueError(f"{source}: not a .keras archive (no {required})")
        for info in infos:
            limit = KERAS_ARCHIVE_LIMITS[info.filename]
            if info.flag_bits & 0x1:
                raise ValueError(f"{source}: member {info.filename} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ValueError(f"{source}: member {info.filename} uses compression method "
                                 f"{info.compress_type} (expected stored or deflated)")
            if info.file_size > limit:
                raise ValueError(f"{source}: member {info.filename} claims {info.file_size} "
                                 f"bytes, above the limit of {limit}")
            try:
                with archive.open(info) as handle:
                    data = handle.read(min(limit, info.file_size) + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
                raise ValueError(f"{source}: member {info.filename} is damaged "
                                 f"({error})") from None
            if len(data) != info.file_size:
                raise ValueError(f"{source}: member {info.filename} holds {len(data)}+ bytes, "
                                 f"not the {info.file_size} its header says")
            members[info.filename] = data
    return members


def _json_member(members, name, source):
    try:
        return json.loads(members[name].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{source}: {name} is not valid JSON ({error})") from None


def _load_keras_archive(path, compile=True):
    """A model from a ``.keras`` archive: nprnn's own (its ``nprnn_config``) or Keras'."""
    source = str(path)
    members = _read_keras_archive(path)
    config = _json_member(members, "config.json", source)
    if "metadata.json" in members:
        _json_member(members, "metadata.json", source)
    h5py = _h5py()
    try:
        handle = h5py.File(io.BytesIO(members["model.weights.h5"]), "r")
    except OSError as error:
        raise ValueError(f"{source}: model.weights.h5 is not readable HDF5 ({error})") from None
    with handle:
        _untrusted.check_hdf5_file(handle, source)
        if "nprnn_config" not in handle.attrs:
            return interop.load_keras_archive(config, handle, source, compile=compile)
        try:
            document = json.loads(interop._text(handle.attrs["nprnn_config"]))
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{source}: the nprnn configuration is corrupted ({error})") from None
        model = _model_from_document(document, source, compile=compile)
        interop.assign_layer_weights(model, interop.read_keras3_weights(handle, model, source),
                                     source)
        if model.compiled and document.get("optimizer_state") and "optimizer/vars" in handle:
            problem = interop.restore_keras3_optimizer(model, handle["optimizer/vars"], source)
            if problem is not None:
                raise ValueError(f"{source}: optimizer state: {problem}")
    return model


# --------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------
def save_model(model, filepath, include_optimizer=True):
    """Save a built model: architecture, weights and (if compiled) optimizer state.

    ``.h5``/``.hdf5`` writes HDF5 in Keras' legacy layout, ``.keras`` Keras 3's archive, any
    other suffix (``.nprnn``) nprnn's native format. The write is atomic.
    """
    path = _check_path(filepath, writing=True)
    model._require_built("save")
    if _is_hdf5(path):
        _save_hdf5(model, path, include_optimizer)
    elif _is_keras_archive_name(path):
        _save_keras_archive(model, path, include_optimizer)
    else:
        _save_native(model, path, include_optimizer)


def load_model(filepath, compile=True):
    """Load a model saved by :func:`save_model` (either format), compiled if it was.

    The file is treated as hostile (see the module docstring): an architecture whose
    weights exceed the environment variable ``NPRNN_MAX_WEIGHT_BYTES`` (bytes; default
    2 GiB) is refused before it is built, and nothing is read that the architecture does
    not declare.

    Also reads the ``.h5`` files Keras 2 and 3 write with ``model.save('x.h5')`` and Keras 3's
    ``.keras`` archives, for models nprnn can compute (a Sequential of the layers of
    :mod:`nprnn.layers`): the architecture from Keras' configuration, its weights, and, when
    nprnn has the same optimizer, loss and metrics, the compile settings and optimizer state
    (:func:`nprnn.interop.load_keras_model`, :func:`nprnn.interop.load_keras_archive`).
    ``compile=False`` returns the model uncompiled.
    """
    return _reading(lambda path: _load_model_file(path, compile), filepath)


def _load_model_file(filepath, compile):
    path = _check_path(filepath)
    if not path.is_file():
        raise FileNotFoundError(f"filepath: no such file {str(path)!r}")
    if _is_hdf5(path) or _looks_like_hdf5(path):
        return _load_hdf5(path, compile=compile)
    if _is_keras_archive(path):
        return _load_keras_archive(path, compile=compile)
    return _load_native(path, compile=compile)


def _reading(function, filepath):
    """Call a saving reader; report any failure to read the file as ValueError naming it.

    The readers check what they know of; a damaged file can still make the zip, NPY or
    HDF5 layers fail in their own ways (OSError, KeyError, struct errors...). Those become
    ``ValueError('<file>: not a readable nprnn model file (...)')``. FileNotFoundError and
    the argument checks of the readers pass through unchanged.
    """
    filepath = _check_path(filepath)
    source = str(filepath)
    try:
        return function(filepath)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError) as error:
        if source in str(error) or str(error).startswith(
                ("filepath:", "load_weights:", _untrusted.MAX_WEIGHT_BYTES_ENV)):
            raise
        raise ValueError(f"{source}: not a readable nprnn model file "
                         f"({type(error).__name__}: {error})") from None
    except Exception as error:
        raise ValueError(f"{source}: not a readable nprnn model file "
                         f"({type(error).__name__}: {error})") from None


def _looks_like_hdf5(path):
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89HDF\r\n\x1a\n"


def save_weights(model, filepath):
    """Save the weights alone, atomically.

    ``.h5``/``.hdf5``: Keras' legacy weights layout (Keras 2's ``save_weights('x.h5')``), or
    Keras 3's layout for a name ending in ``.weights.h5``; native (``.nprnn``) otherwise. A
    ``.keras`` name is refused, as Keras 3 refuses it: that archive holds a whole model.
    """
    path = _check_path(filepath, writing=True)
    model._require_built("save_weights")
    if _is_keras_archive_name(path):
        raise ValueError(f"filepath: {str(path)!r}: a .keras archive holds a whole model; use "
                         "model.save() for it, or a name ending in .weights.h5 (Keras 3's "
                         "weights file) or .nprnn")
    if _is_hdf5(path):
        _save_hdf5(model, path, include_optimizer=False, weights_only=True)
    else:
        _save_native(model, path, include_optimizer=False)


def load_weights(model, filepath):
    """Load weights into ``model`` from a file written by save_weights or save_model."""
    _reading(lambda path: _load_weights_file(model, path), filepath)


def _load_weights_file(model, filepath):
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
            _untrusted.check_hdf5_file(handle, source)
            interop.load_keras_weights(model, handle, source)
        return
    if _is_keras_archive(path):
        members = _read_keras_archive(path)
        try:
            handle = _h5py().File(io.BytesIO(members["model.weights.h5"]), "r")
        except OSError as error:
            raise ValueError(f"{source}: model.weights.h5 is not readable HDF5 "
                             f"({error})") from None
        with handle:
            _untrusted.check_hdf5_file(handle, source)
            saved = interop.read_keras3_weights(handle, model, source)
            interop.assign_layer_weights(model, saved, source)
        return
    loaded = _load_native(path, compile=False)
    _set_loaded_weights(model, loaded.get_weights(), None, source)


def model_from_json(json_string):
    """A model from :meth:`Sequential.to_json` (nprnn's) or from Keras' ``to_json`` text.

    The architecture only: weights are freshly initialised, as in Keras. Keras' text (Keras
    3, tf_keras 2, Keras 2 with ``keras_version``) goes through
    :func:`nprnn.interop.model_from_keras_config`, which refuses what nprnn does not compute;
    :func:`nprnn.interop.keras_json` writes such text for Keras.
    """
    if not isinstance(json_string, (str, bytes)):
        raise TypeError(f"json_string: expected a JSON str, got {type(json_string).__name__}")
    try:
        document = json.loads(json_string)
    except ValueError as error:
        raise ValueError(f"json_string: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("class_name") != "Sequential":
        raise ValueError("json_string: expected a Sequential model's JSON, got "
                         f"{str(document)[:60]!r}")
    config = document.get("config")
    is_nprnn = isinstance(config, dict) and all(
        isinstance(entry, dict) and "module" not in entry for entry in config.get("layers", []))
    if is_nprnn and "build_input_shape" not in config and "keras_version" not in document:
        try:
            return Sequential.from_config(config)
        except (KeyError, TypeError) as error:
            raise ValueError(f"json_string: incomplete model configuration ({error!r})") from None
    return interop.model_from_keras_config(document, "json_string")


models.register_file_io(sys.modules[__name__])
