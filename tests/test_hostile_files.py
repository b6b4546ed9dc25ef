"""Hostile model and dataset files: each is built here, and each must be refused with a
ValueError naming the file before its data is read, without the loader's memory growing.

Memory is measured in a fresh subprocess: the peak resident size while loading (Linux's
``VmHWM``, reset through ``/proc/self/clear_refs`` just before) minus the resident size
before. The figures print with ``-s``.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.lib import format as npy_format

import nprnn as keras
from nprnn import _untrusted
from nprnn.datasets import _files

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MB = 1 << 20


def small_model():
    model = keras.Sequential([keras.layers.Embedding(50, 4, input_length=7),
                              keras.layers.SimpleRNN(3),
                              keras.layers.Dense(1, activation="sigmoid")], name="small")
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(np.arange(56).reshape(8, 7) % 50, np.arange(8) % 2, epochs=1, verbose=0)
    return model


def refused(path, what, load=None):
    """Assert that loading ``path`` raises ValueError naming it and saying ``what``."""
    with pytest.raises(ValueError) as info:
        (load or keras.load_model)(path)
    message = str(info.value)
    assert str(path) in message and what in message, message
    return message


def weight_dataset(handle, layer="embedding"):
    group = handle["model_weights"][layer]
    return group, group.attrs["weight_names"][0].decode()


# -- HDF5 links and datasets ----------------------------------------------------------------
@pytest.fixture
def h5_model(tmp_path):
    model = small_model()
    path = tmp_path / "m.h5"
    model.save(path)
    return model, path


def test_external_link_is_refused(h5_model, tmp_path):
    model, path = h5_model
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["w"] = np.full((50, 4), 7.0, np.float32)
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group[name] = h5py.ExternalLink(str(other), "/w")
    refused(path, "external link")
    refused(path, "external link", load=small_model().load_weights)


def test_external_link_in_a_keras_file_is_refused(tmp_path):
    path = tmp_path / "keras.h5"
    path.write_bytes((FIXTURES / "keras_simplernn_model.h5").read_bytes())
    with h5py.File(path, "r+") as handle:
        handle["optimizer_weights"]["evil"] = h5py.ExternalLink("/etc/passwd", "/x")
    refused(path, "external link")


def test_soft_link_leaving_the_weights_group_is_refused(h5_model):
    _, path = h5_model
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        handle["elsewhere"] = np.full((50, 4), 7.0, np.float32)
        del group[name]
        group[name] = h5py.SoftLink("/elsewhere")
    refused(path, "soft link")


def test_soft_link_inside_the_weights_group_is_followed(h5_model):
    model, path = h5_model
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        group.move(name, "moved")
        group[name] = h5py.SoftLink(f"{group.name}/moved")
    loaded = keras.load_model(path)
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_virtual_dataset_is_refused(h5_model, tmp_path):
    _, path = h5_model
    other = tmp_path / "source.h5"
    with h5py.File(other, "w") as handle:
        handle["w"] = np.full((50, 4), 7.0, np.float32)
    layout = h5py.VirtualLayout(shape=(50, 4), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(other), "w", shape=(50, 4))
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group.create_virtual_dataset(name, layout)
    refused(path, "virtual dataset")


def test_dataset_stored_in_an_external_raw_file_is_refused(h5_model, tmp_path):
    _, path = h5_model
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.full((50, 4), 7.0, np.float32).tobytes())
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group.create_dataset(name, shape=(50, 4), dtype=np.float32,
                             external=[(str(raw), 0, 800)])
    refused(path, "external files")


def test_non_numeric_dataset_is_refused(h5_model):
    _, path = h5_model
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group.create_dataset(name, data=np.array([b"x" * 10] * 4), dtype=h5py.string_dtype())
    refused(path, "not numbers")


@pytest.mark.parametrize("shape, what", [
    ((20_000_000, 4), "but the file stores 0 bytes"),  # 320 MB declared, nothing stored
    ((2_000_000_000, 4), "above the limit"),  # 32 GB declared
])
def test_inflating_dataset_is_refused(h5_model, shape, what):
    _, path = h5_model
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group.create_dataset(name, shape=shape, dtype=np.float32, chunks=(1000, 4),
                             fillvalue=1.0)
    assert path.stat().st_size < MB
    refused(path, what)


def test_declared_shape_is_checked_before_reading(h5_model, monkeypatch):
    """A dataset of the wrong shape is refused and never read: h5py's reader is not called."""
    _, path = h5_model
    with h5py.File(path, "r+") as handle:
        group, name = weight_dataset(handle)
        del group[name]
        group[name] = np.zeros((60, 4), np.float32)
    reads = []
    original = h5py.Dataset.__array__
    monkeypatch.setattr(h5py.Dataset, "__array__",
                        lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    refused(path, "shape (60, 4)")
    assert reads == []


def test_wrong_optimizer_slot_shape_is_refused_before_reading(h5_model, monkeypatch):
    _, path = h5_model
    with h5py.File(path, "r+") as handle:
        group = handle["optimizer_weights"]
        name = [n for n in group.attrs["weight_names"] if n.endswith(b"velocity")][0].decode()
        del group[name]
        group[name] = np.zeros((7, 3), np.float32)
    reads = []
    original = h5py.Dataset.__array__
    monkeypatch.setattr(h5py.Dataset, "__array__",
                        lambda self, *a, **k: reads.append(self.name) or original(self, *a, **k))
    refused(path, f"optimizer_weights/{name} is declared with shape (7, 3)")
    assert not any(n.startswith("/optimizer_weights") for n in reads), reads


def test_a_keras_model_with_a_huge_dense_input_is_refused_before_building(tmp_path):
    path = tmp_path / "keras.h5"
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3_000_000_000]}},
        {"class_name": "Dense", "config": {"name": "d", "units": 1}}]}}
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "3.0.0"
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = np.array([b"d"])
        weights.create_group("d").attrs["weight_names"] = np.array([], dtype="S1")
    refused(path, "the architecture needs 12,000,000,004 bytes")


# -- the architecture's size ---------------------------------------------------------------
def native_config(layers, input_shape):
    document = {"format": "nprnn", "format_version": 1,
                "model": {"class_name": "Sequential",
                          "config": {"name": "big", "input_shape": input_shape,
                                     "layers": layers}}}
    return np.frombuffer(json.dumps(document).encode(), np.uint8)


def test_an_architecture_above_the_limit_is_refused_before_building(tmp_path):
    path = tmp_path / "big.npz"
    layers = [{"class_name": "Embedding", "config": {"input_dim": 1_000_000,
                                                     "output_dim": 1_000}}]  # 4 GB
    np.savez(path, config=native_config(layers, [None, 10]))
    refused(path, "above the limit of 2,147,483,648 bytes")


def test_the_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    small_model().save(path)
    monkeypatch.setenv(_untrusted.MAX_WEIGHT_BYTES_ENV, "500")  # the model takes 912 bytes
    refused(path, "NPRNN_MAX_WEIGHT_BYTES")
    monkeypatch.setenv(_untrusted.MAX_WEIGHT_BYTES_ENV, "1000")
    assert keras.load_model(path).count_params() * 4 == 912
    monkeypatch.setenv(_untrusted.MAX_WEIGHT_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match="NPRNN_MAX_WEIGHT_BYTES: expected a positive integer"):
        keras.load_model(path)


def test_the_bound_covers_what_building_allocates():
    """The bound computed from the configuration is at least what the built model holds."""
    model = keras.Sequential([keras.layers.SimpleRNN(7, input_shape=(5, 11),
                                                     return_sequences=True),
                              keras.layers.SimpleRNN(3), keras.layers.Dense(2)])
    config = model.get_config()
    bound = _untrusted.architecture_weight_bytes(
        [(e["class_name"], e["config"]) for e in config["layers"]], 11, "x")
    actual = sum(w.nbytes for w in model.get_weights())
    assert actual <= bound <= 4 * actual


# -- zip bombs -----------------------------------------------------------------------------
def write_zip(path, members):
    """A zip of ``(name, data_chunks, uncompressed_size, crc)``, deflated when the chunks
    are raw deflate data, written by hand so that 4 GB of zeros take seconds, not minutes."""
    with open(path, "wb") as handle:
        directory = []
        for name, chunks, size, crc, method in members:
            offset = handle.tell()
            encoded = name.encode()
            header_at = handle.tell()
            handle.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, 0,
                                     size, len(encoded), 0) + encoded)
            start = handle.tell()
            for chunk in chunks:
                handle.write(chunk)
            compressed = handle.tell() - start
            handle.seek(header_at + 18)
            handle.write(struct.pack("<L", compressed))
            handle.seek(0, 2)
            directory.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0,
                                         crc, compressed, size, len(encoded), 0, 0, 0, 0, 0,
                                         offset) + encoded)
        start = handle.tell()
        for entry in directory:
            handle.write(entry)
        handle.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(directory),
                                 len(directory), handle.tell() - start, start, 0))


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def bomb_member(name, shape, dtype):
    """A deflated ``.npy`` whose header declares ``shape`` of zeros, a few MB long."""
    header = npy_bytes(np.zeros(0, dtype))
    header = header[:header.index(b"(0,)")] + repr(tuple(shape)).encode() + \
        header[header.index(b"(0,)") + 4:]
    header_length = len(header) - 10
    padding = (-len(header)) % 64
    header = header[:-1] + b" " * padding + b"\n"
    header = header[:8] + struct.pack("<H", header_length + padding) + header[10:]
    size = len(header) + int(np.prod(shape)) * np.dtype(dtype).itemsize
    block = bytes(MB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunks = [compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)]
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    whole, rest = divmod(size - len(header), MB)
    for _ in range(whole):  # after a full flush the same input compresses to the same bytes
        crc = zlib.crc32(block, crc)
    chunks.append(repeated * whole)
    chunks.append(compressor.compress(bytes(rest)) + compressor.flush())
    crc = zlib.crc32(bytes(rest), crc)
    return (name, chunks, size, crc, 8)


def stored_member(name, data):
    return (name, [data], len(data), zlib.crc32(data), 0)


MEMORY_PROBE = textwrap.dedent("""
    import sys
    import nprnn
    from nprnn.datasets import imdb
    def rss(field):
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith(field + ":"))
        return int(line.split()[1]) * 1024
    load = {"model": nprnn.load_model, "imdb": imdb.load_data}[sys.argv[1]]
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets the peak (VmHWM) to the current resident size
    before = rss("VmRSS")
    try:
        load(sys.argv[2])
        outcome = "loaded"
    except ValueError as error:
        outcome = "refused: " + str(error)
    print(rss("VmHWM") - before)
    print(outcome)
""")


def memory_growth(kind, path):
    """Peak-memory growth of loading ``path`` in a fresh process, and the outcome."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, kind, str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    growth, outcome = result.stdout.splitlines()[-2:]
    return int(growth), outcome


def test_a_native_zip_bomb_is_refused_without_growing_memory(tmp_path):
    """weights/0000 declares 1e9 float32 (4 GB of zeros) in a file of about 4 MB."""
    model = small_model()
    good = tmp_path / "good.npz"
    model.save(good)
    with np.load(good, allow_pickle=False) as archive:
        config = npy_bytes(archive["config"])
        others = {name: npy_bytes(archive[name]) for name in archive.files
                  if name not in ("config", "weights/0000")}
    path = tmp_path / "bomb.npz"
    write_zip(path, [stored_member("config.npy", config),
                     bomb_member("weights/0000.npy", (1_000_000_000,), np.float32),
                     *[stored_member(f"{name}.npy", data) for name, data in others.items()]])
    assert path.stat().st_size < 8 * MB
    import zipfile

    with zipfile.ZipFile(path) as archive:  # a well-formed zip declaring 4 GB
        assert archive.getinfo("weights/0000.npy").file_size > 4_000_000_000
    growth, outcome = memory_growth("model", path)
    print(f"\nnative zip bomb ({path.stat().st_size / MB:.1f} MB declaring 4 GB): "
          f"peak memory growth {growth / MB:.1f} MB; {outcome}")
    assert outcome.startswith("refused: ") and str(path) in outcome
    assert "shape (1000000000,)" in outcome
    assert growth < 50 * MB
    # The probe sees real allocations: a legitimate 64 MB model grows the loader by more.
    big = keras.Sequential([keras.layers.Embedding(8000, 2000), keras.layers.Dense(1)])
    big.build((None, 3))
    big.save(tmp_path / "big.npz")
    control, outcome = memory_growth("model", tmp_path / "big.npz")
    print(f"control: a 64 MB model grows the loader by {control / MB:.1f} MB")
    assert outcome == "loaded" and control > 64 * MB


def test_a_bomb_in_imdb_npz_is_refused_without_growing_memory(tmp_path):
    """y_train declares 5e8 int64 (4 GB of zeros) in a file of about 4 MB."""
    path = tmp_path / "imdb.npz"
    labels = npy_bytes(np.zeros(2, np.int64))
    reviews = np.empty(2, dtype=object)
    reviews[0], reviews[1] = [1, 2], [3]
    buffer = io.BytesIO()
    np.save(buffer, reviews, allow_pickle=True)
    objects = buffer.getvalue()
    write_zip(path, [stored_member("x_train.npy", objects),
                     bomb_member("y_train.npy", (500_000_000,), np.int64),
                     stored_member("x_test.npy", objects), stored_member("y_test.npy", labels)])
    growth, outcome = memory_growth("imdb", path)
    print(f"\nimdb.npz bomb ({path.stat().st_size / MB:.1f} MB declaring 4 GB): peak memory "
          f"growth {growth / MB:.1f} MB; {outcome}")
    assert outcome.startswith("refused: ") and "y_train.npy" in outcome
    assert growth < 50 * MB
    assert "above the limit of 1,073,741,824" in outcome
    # Under the limit, a header must not declare more than its zip entry holds.
    write_zip(path, [stored_member("y.npy", labels.replace(b"(2,)", b"(9,)"))])
    with pytest.raises(_files.DatasetFileError, match=r"declares shape \(9,\) of int64"):
        _files.load_npz(path, ["y"])


def test_an_object_array_whose_pickle_is_shorter_than_its_shape_is_refused(tmp_path):
    """NumPy crashes (segmentation fault) on ``__setstate__`` of an object array whose list
    is shorter than its shape; the restricted unpickler refuses it first."""
    import pickle

    class ShortObjectArray:  # pickles as NumPy pickles an object array, one item short
        def __reduce__(self):
            reconstruct = np.empty(0, dtype=object).__reduce__()[0]
            return (reconstruct, (np.ndarray, (0,), b"b"),
                    (1, (3,), np.dtype(object), False, [[1, 2], [3]]))

    hostile = pickle.dumps(ShortObjectArray(), protocol=2)
    header = npy_bytes(np.zeros(0, np.int64)).replace(b"'<i8'", b"'|O' ")
    header = header.replace(b"(0,)", b"(3,)")
    path = tmp_path / "short.npz"
    write_zip(path, [stored_member("x.npy", header + hostile)])
    script = ("import sys; from nprnn.datasets import _files\n"
              "try:\n    _files.load_npz(sys.argv[1], ['x'])\n"
              "except _files.UnsafeFileError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, (result.returncode, result.stderr)  # -11: the crash
    assert "shape (3,)" in result.stdout and str(path) in result.stdout, result.stdout


def test_a_model_config_member_that_declares_too_much_is_refused(tmp_path):
    path = tmp_path / "config.npz"
    write_zip(path, [bomb_member("config.npy", (3_000_000_000,), np.uint8)])
    refused(path, "expected at most 16,777,216 bytes of JSON")


def test_the_zip_entry_must_hold_what_the_header_declares(tmp_path):
    good = tmp_path / "good.npz"
    small_model().save(good)
    with np.load(good, allow_pickle=False) as archive:
        members = {name: npy_bytes(archive[name]) for name in archive.files}
    weights = members["weights/0000"]
    members["weights/0000"] = weights[:-8]  # the header still declares (50, 4)
    path = tmp_path / "short.npz"
    write_zip(path, [stored_member(f"{name}.npy", data) for name, data in members.items()])
    refused(path, "its zip entry holds")


def test_npy_header_helper_matches_numpy():
    """The hand-made bomb header parses as NumPy's own reader would."""
    name, chunks, size, _, _ = bomb_member("x.npy", (3, 5), np.float32)
    raw = zlib.decompress(b"".join(chunks), -15)
    assert len(raw) == size
    array = npy_format.read_array(io.BytesIO(raw))
    assert array.shape == (3, 5) and array.dtype == np.float32 and not array.any()
