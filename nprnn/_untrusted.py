"""Checks on model files from elsewhere, made before any array is read.

Model files are downloaded and shared, so the loaders treat every file as hostile: what a
file *declares* (its architecture, each array's shape and dtype, each HDF5 link) is checked
before the data behind it is read, so that no file makes a loader allocate more than the
architecture it declares needs, nor read data from anywhere but the file itself.

Size limit
    An architecture whose weights would take more than :func:`max_weight_bytes` bytes is
    refused before it is built. The limit is 2 GiB by default (a SimpleRNN book model takes
    16 kB; an Embedding of 100,000 words by 1,024 in float32 takes 0.4 GB) and is set by the
    environment variable ``NPRNN_MAX_WEIGHT_BYTES`` (an integer number of bytes, read at each
    load), e.g. ``NPRNN_MAX_WEIGHT_BYTES=8000000000`` to load an 8 GB model.

HDF5
    :func:`check_hdf5_file` refuses external links (data from another file), soft links that
    leave the top-level group holding them, virtual datasets and datasets stored in external
    raw files, non-numeric datasets, and datasets declaring more bytes than the size limit
    or far more than the file stores for them (an unallocated or compressed dataset that
    would expand in memory).
"""

from __future__ import annotations

import math
import os
import posixpath

import numpy as np

from nprnn import config as settings

MAX_WEIGHT_BYTES_ENV = "NPRNN_MAX_WEIGHT_BYTES"
DEFAULT_MAX_WEIGHT_BYTES = 2 * 1024**3
"""Default limit on the bytes of an architecture's weights: 2 GiB."""

_EXPANSION_LIMIT = 64
"""An HDF5 dataset may declare at most this many times the bytes the file stores for it..."""
_EXPANSION_SLACK = 1 << 20
"""... or this many bytes, whichever is more (tiny datasets have large relative overheads)."""
_MAX_HDF5_OBJECTS = 100_000


def max_weight_bytes() -> int:
    """The largest architecture (bytes of weights) a loader builds: ``NPRNN_MAX_WEIGHT_BYTES``
    if set, else :data:`DEFAULT_MAX_WEIGHT_BYTES` (2 GiB)."""
    text = os.environ.get(MAX_WEIGHT_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_WEIGHT_BYTES
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise ValueError(f"{MAX_WEIGHT_BYTES_ENV}: expected a positive integer number of "
                         f"bytes, got {text!r}")
    return value


def _itemsize(config) -> int:
    dtype = str(config.get("dtype") or "") if isinstance(config, dict) else ""
    return 8 if "64" in dtype or settings.floatx() == "float64" else 4


def _int(value, what, source):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)):
        raise ValueError(f"{source}: {what} is {value!r}, expected an integer")
    if value != int(value) or value < 0:
        raise ValueError(f"{source}: {what} is {value!r}, expected a non-negative integer")
    return int(value)


# Weight matrices per unit of a recurrent cell: an upper bound for any cell not listed.
_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}


def architecture_weight_bytes(layers, features, source) -> int:
    """An upper bound on the bytes of the weights ``layers`` would create, without building.

    Parameters
    ----------
    layers : list of (str, dict)
        Each layer's class name and configuration (nprnn's ``get_config()`` or the keyword
        arguments :func:`nprnn.interop.parse_keras_model_config` gives).
    features : int or None
        The size of the input's last axis (None when unknown, or for token ids).

    Notes
    -----
    An embedding (``input_dim``, ``output_dim``) holds ``V E`` numbers; a recurrent layer of
    ``units`` ``H`` over ``D`` features ``g H (D + H + 2)`` with ``g`` its gate count (4 for a
    cell this function does not know); any other layer with ``units`` ``H (D + 1)``.
    """
    total = 0
    for class_name, config in layers:
        if not isinstance(config, dict):
            continue
        where = f"layer {config.get('name', class_name)!r} ({class_name})"
        inner = config.get("layer")
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            # A wrapper (Bidirectional): two copies of its layer; concat doubles the features.
            one = architecture_weight_bytes([(inner.get("class_name"), inner["config"])],
                                            features, source)
            total += 2 * one
            if "units" in inner["config"]:
                units = _int(inner["config"]["units"], f"{where} units", source)
                features = units * (2 if config.get("merge_mode", "concat") == "concat" else 1)
            continue
        if "input_dim" in config and "output_dim" in config:
            vocabulary = _int(config["input_dim"], f"{where} input_dim", source)
            features = _int(config["output_dim"], f"{where} output_dim", source)
            count = vocabulary * features
        elif "units" in config:
            units = _int(config["units"], f"{where} units", source)
            inputs = features or 0
            if class_name in _GATES or "return_sequences" in config:
                count = _GATES.get(class_name, 4) * units * (inputs + units + 2)
            else:
                count = units * (inputs + 1)
            features = units
        else:
            count = 0
        total += count * _itemsize(config)
    return total


def check_architecture(layers, features, source) -> None:
    """Refuse an architecture whose weights exceed :func:`max_weight_bytes`, before building."""
    needed = architecture_weight_bytes(layers, features, source)
    limit = max_weight_bytes()
    if needed > limit:
        raise ValueError(f"{source}: the architecture needs {needed:,} bytes of weights, above "
                         f"the limit of {limit:,} bytes; refusing to build it (raise the limit "
                         f"with the environment variable {MAX_WEIGHT_BYTES_ENV} if you trust "
                         "this file)")


def check_declared_array(shape, dtype, expected_shape, where, source) -> None:
    """Refuse a stored array whose declared shape or dtype does not fit the weight it fills."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise ValueError(f"{source}: {where} is declared as {dtype}; expected numbers "
                         "(float or int)")
    if tuple(shape) != tuple(expected_shape):
        raise ValueError(f"{source}: {where} is declared with shape {tuple(shape)}, the "
                         f"architecture needs {tuple(expected_shape)}")


# --------------------------------------------------------------------------------------
# HDF5
# --------------------------------------------------------------------------------------
def check_hdf5_file(handle, source) -> None:
    """Walk every link of an open HDF5 file; raise ValueError naming ``source`` if any is
    hostile (see the module docstring). Reads metadata only, never a dataset's data."""
    import h5py

    visited = set()

    def walk(group, top):
        for name in group:
            path = posixpath.join(group.name, name)
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise ValueError(f"{source}: {path} is an external link to "
                                 f"{link.filename!r}:{link.path}; a model file must hold its "
                                 "own data, refusing to follow it")
            if isinstance(link, h5py.SoftLink):
                target = posixpath.normpath(posixpath.join(group.name, link.path))
                if top is None or not target.startswith(top + "/"):
                    raise ValueError(f"{source}: {path} is a soft link to {target}, outside "
                                     f"{top or 'its group'}; refusing to follow it")
                continue
            item = group.get(name)
            address = h5py.h5o.get_info(item.id).addr
            if address in visited:  # a group or dataset hard-linked twice
                continue
            visited.add(address)
            if len(visited) > _MAX_HDF5_OBJECTS:
                raise ValueError(f"{source}: holds more than {_MAX_HDF5_OBJECTS:,} objects; not "
                                 "a model file")
            if isinstance(item, h5py.Group):
                walk(item, top or path)
            elif isinstance(item, h5py.Dataset):
                check_hdf5_dataset(item, path, source)

    walk(handle, None)


def check_hdf5_dataset(dataset, path, source) -> None:
    """Refuse a virtual, externally stored, non-numeric or inflating HDF5 dataset."""
    if dataset.is_virtual:
        raise ValueError(f"{source}: {path} is a virtual dataset (it maps data from other "
                         "files); refusing to read it")
    if dataset.external:
        raise ValueError(f"{source}: {path} stores its data in external files "
                         f"{[entry[0] for entry in dataset.external]}; refusing to read it")
    dtype = dataset.dtype
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise ValueError(f"{source}: {path} holds {dtype}, not numbers; not a weight")
    declared = math.prod(dataset.shape or ()) * dtype.itemsize
    limit = max_weight_bytes()
    if declared > limit:
        raise ValueError(f"{source}: {path} declares {declared:,} bytes (shape "
                         f"{dataset.shape}), above the limit of {limit:,} bytes "
                         f"({MAX_WEIGHT_BYTES_ENV})")
    stored = dataset.id.get_storage_size()
    if declared > max(_EXPANSION_LIMIT * stored, _EXPANSION_SLACK):
        raise ValueError(f"{source}: {path} declares {declared:,} bytes (shape "
                         f"{dataset.shape}) but the file stores {stored:,} bytes for it; "
                         "refusing to expand it")
