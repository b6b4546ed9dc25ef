"""The chapter 9-3 layers in Keras' files: ``.h5`` and Keras 3's ``.keras`` both ways, and
Keras' ``to_json`` text (no TensorFlow needed).

Fixtures in ``fixtures/keras_interop/``, written by ``make_keras_interop_fixtures.py`` with
Keras 3.15 (``<name>.keras``, ``<name>.h5``) and tf_keras 2.21 (``<name>.tf_keras.*``) after
two RMSprop steps: the book's four 9-3 models (small) and two models that use Bidirectional,
masks, Dropout, Masking, GRU(reset_after=False), go_backwards, SimpleRNN(relu, no bias),
RNN(LSTMCell) and Dense(softmax, no bias). That Keras 3 and tf_keras load the files nprnn
writes is checked by hand with ``fixtures/check_nprnn_keras_files.py``.
"""

import io
import json
import re
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import nprnn as keras
from nprnn import interop, saving

FIXTURES = Path(__file__).parent / "fixtures" / "keras_interop"
BOOK = ["lstm", "lstm_dropout", "two_lstm", "gru"]
OTHERS = ["mixed", "cells"]
KERAS2 = ["lstm", "gru", "mixed"]
LOSSES = {"mixed": "categorical_crossentropy", "cells": "mse"}
FILES = ([f"{name}.keras" for name in BOOK + OTHERS] + [f"{name}.h5" for name in BOOK + OTHERS]
         + [f"{name}.tf_keras{suffix}" for name in KERAS2 for suffix in (".h5", ".keras")])


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def tag_of(file_name):
    return file_name.removesuffix(".keras").removesuffix(".h5")


def inputs(name, expected):
    return expected["floats"] if name.startswith("cells") else expected["ids"]


def targets(name, expected):
    y = expected["y"]
    return np.stack([y, 1 - y], axis=1) if name.startswith("mixed") else y


def weights_of(tag, expected):
    count = sum(1 for key in expected if key.startswith(f"{tag}/w"))
    return [expected[f"{tag}/w{i}"] for i in range(count)]


def velocities_of(tag, expected):
    count = sum(1 for key in expected if key.startswith(f"{tag}/v"))
    return [expected[f"{tag}/v{i}"] for i in range(count)]


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path, contents):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def h5_entries(data_or_path):
    """{path: (shape, dtype)} of every dataset, and the set of groups, of an HDF5 file."""
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    datasets, groups = {}, set()
    with h5py.File(source, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                datasets[name] = (item.shape, item.dtype)
            else:
                groups.add(name)
        handle.visititems(visit)
    return datasets, groups


def strip_nprnn_config(path):
    """Make an nprnn-written .keras or .h5 file look Keras-written (no nprnn_config)."""
    if str(path).endswith(".h5"):
        with h5py.File(path, "r+") as handle:
            del handle.attrs["nprnn_config"]
        return
    contents = members(path)
    buffer = io.BytesIO(contents["model.weights.h5"])
    with h5py.File(buffer, "r+") as handle:
        del handle.attrs["nprnn_config"]
        del handle.attrs["nprnn_format_version"]
    contents["model.weights.h5"] = buffer.getvalue()
    write_zip(path, contents)


# --------------------------------------------------------------------------------------
# Keras' files in nprnn
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("file_name", FILES)
def test_keras_files_of_the_9_3_models_load_with_weights_optimizer_and_predictions(
        file_name, expected):
    tag = tag_of(file_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete: compiled, optimizer state restored
        model = keras.load_model(FIXTURES / file_name)
    for got, want in zip(model.get_weights(), weights_of(tag, expected), strict=True):
        np.testing.assert_array_equal(got, want)
    probs = model.predict(inputs(tag, expected), verbose=0)
    assert np.max(np.abs(probs - expected[f"{tag}/probs"])) <= 1e-6
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.optimizer.learning_rate == pytest.approx(1e-2)
    assert model.optimizer.iterations == 2
    for got, want in zip(model.optimizer.get_state()["velocity"], velocities_of(tag, expected),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_keras_layers_become_nprnn_layers_with_their_settings():
    model = keras.load_model(FIXTURES / "mixed.keras")
    embedding, bidirectional, dropout, gru, dense = model.layers
    assert embedding.mask_zero
    assert bidirectional.merge_mode == "sum"
    forward, backward = bidirectional.forward_layer, bidirectional.backward_layer
    assert isinstance(forward, keras.layers.LSTM) and forward.name.startswith("forward_lstm")
    assert backward.name == "backward_" + forward.name.removeprefix("forward_")
    assert backward.go_backwards and not forward.go_backwards
    assert forward.return_sequences and forward.zero_output_for_mask  # Keras forces it
    assert dropout.rate == 0.25
    assert isinstance(gru, keras.layers.GRU) and not gru.reset_after and gru.go_backwards
    assert gru.weights[2].shape == (9,)
    assert dense.activation == "softmax" and not dense.use_bias
    cells = keras.load_model(FIXTURES / "cells.keras")
    masking, simple, bidirectional, rnn, dense = cells.layers
    assert masking.mask_value == 0.0
    assert simple.activation == "relu" and not simple.use_bias
    assert type(rnn) is keras.layers.RNN and isinstance(rnn.cell, keras.layers.LSTMCell)
    assert dense.activation == "linear"
    lstm = keras.load_model(FIXTURES / "two_lstm.h5").layers[1]
    assert lstm.dropout == pytest.approx(0.3) and lstm.return_sequences


@pytest.mark.parametrize("tag", BOOK + OTHERS + [f"{name}.tf_keras" for name in KERAS2])
def test_keras_to_json_text_loads_with_model_from_json(tag, expected):
    model = keras.models.model_from_json(str(expected[f"{tag}/json"]))
    model.set_weights(weights_of(tag, expected))
    probs = model.predict(inputs(tag, expected), verbose=0)
    assert np.max(np.abs(probs - expected[f"{tag}/probs"])) <= 1e-6


def test_load_weights_from_a_keras_archive(expected):
    model = keras.load_model(FIXTURES / "gru.h5")
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.load_weights(FIXTURES / "gru.keras")
    for got, want in zip(model.get_weights(), weights_of("gru", expected)):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------------------
# nprnn's files: round trips, and the layout Keras reads
# --------------------------------------------------------------------------------------
def nprnn_model(name, expected):
    """The fixture's architecture built in nprnn, trained two steps from Keras' weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = keras.load_model(FIXTURES / f"{name}.h5", compile=False)
    loss = LOSSES.get(name, "binary_crossentropy")
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-3), loss=loss,
                  metrics=[] if loss == "mse" else ["accuracy"])
    for _ in range(2):
        model.train_on_batch(inputs(name, expected), targets(name, expected))
    return model


def assert_same_model(model, loaded, name, expected, exact_config=True):
    if exact_config:
        assert loaded.get_config() == model.get_config()
    else:
        assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
        assert [a.name for a in loaded.layers] == [b.name for b in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    state, loaded_state = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert loaded_state["iterations"] == state["iterations"] == 2
    for a, b in zip(state["velocity"], loaded_state["velocity"], strict=True):
        np.testing.assert_array_equal(a, b)
    x = inputs(name, expected)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
@pytest.mark.parametrize("name", BOOK + OTHERS)
def test_round_trip_through_keras_formats(name, suffix, expected, tmp_path):
    model = nprnn_model(name, expected)
    path, keras_only = tmp_path / f"model{suffix}", tmp_path / f"keras_only{suffix}"
    model.save(path)
    model.save(keras_only)
    # Read as Keras would write it: from Keras' configuration alone.
    strip_nprnn_config(keras_only)
    loaded = keras.load_model(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_keras_config = keras.load_model(keras_only)
    assert_same_model(model, loaded, name, expected)
    assert_same_model(model, from_keras_config, name, expected, exact_config=False)
    # Training resumes identically (dropout drawn from the same seed in each).
    x, y = inputs(name, expected), targets(name, expected)
    for each in (model, loaded, from_keras_config):
        keras.utils.set_random_seed(5)
        each.train_on_batch(x, y)
    for a, b, c in zip(model.get_weights(), loaded.get_weights(),
                       from_keras_config.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", BOOK + OTHERS)
def test_written_keras_archive_has_keras_layout(name, expected, tmp_path):
    """Same members, HDF5 groups, dataset paths, shapes and dtypes as Keras' own file of
    the same model; config.json with Keras' structure and only option names Keras writes."""
    model = nprnn_model(name, expected)
    path = tmp_path / "model.keras"
    model.save(path)
    ours, theirs = members(path), members(FIXTURES / f"{name}.keras")
    assert sorted(ours) == sorted(theirs) == ["config.json", "metadata.json",
                                              "model.weights.h5"]
    assert h5_entries(ours["model.weights.h5"]) == h5_entries(theirs["model.weights.h5"])
    with h5py.File(io.BytesIO(ours["model.weights.h5"]), "r") as handle:
        for layer, key in zip(model.layers, interop._keras3_keys(model)):
            assert handle[f"layers/{key}/vars"].attrs["name"] == layer.name
    config, keras_config = json.loads(ours["config.json"]), json.loads(theirs["config.json"])
    assert json.loads(ours["metadata.json"])["keras_version"].startswith("3.")
    assert set(config) == set(keras_config)
    assert config["build_config"] == keras_config["build_config"]
    assert config["compile_config"]["optimizer"]["class_name"] == "RMSprop"

    def walk(entry, keras_entry):
        assert entry["class_name"] == keras_entry["class_name"]
        assert entry["module"] == keras_entry["module"] == "keras.layers"
        assert set(entry["config"]) <= set(keras_entry["config"]), entry["class_name"]
        assert entry.get("build_config") == keras_entry.get("build_config")
        for key in ("layer", "cell"):
            if key in entry["config"]:
                walk(entry["config"][key], keras_entry["config"][key])

    layers, keras_layers = config["config"]["layers"], keras_config["config"]["layers"]
    assert len(layers) == len(keras_layers)
    for entry, keras_entry in zip(layers, keras_layers):
        walk(entry, keras_entry)


@pytest.mark.parametrize("name", BOOK + OTHERS)
def test_written_h5_has_keras_weight_and_optimizer_names(name, expected, tmp_path):
    model = nprnn_model(name, expected)
    path = tmp_path / "model.h5"
    model.save(path)

    def names(file_path):
        with h5py.File(file_path, "r") as handle:
            group = handle["model_weights"]
            weights = [n.decode() if isinstance(n, bytes) else str(n)
                       for layer in group.attrs["layer_names"]
                       for n in group[layer.decode() if isinstance(layer, bytes) else
                                      layer].attrs["weight_names"]]
            slots = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in handle["optimizer_weights"].attrs["weight_names"]]
        return weights, [n.split("/", 1)[1] for n in slots]

    def numbered_cells(paths):  # Keras numbers a free-standing cell: 'lstm_cell_1'
        return [re.sub(r"(_cell)_\d+/", r"\1/", p) for p in paths]

    ours, theirs = names(path), names(FIXTURES / f"{name}.h5")
    assert numbered_cells(ours[0]) == numbered_cells(theirs[0])
    assert numbered_cells(ours[1]) == [p.replace("_cell_1_", "_cell_") for p in theirs[1]]


def test_save_writes_keras_archive_and_nprnn_suffix_the_native_format(tmp_path):
    model = keras.Sequential([keras.layers.Embedding(20, 3, input_length=5),
                              keras.layers.LSTM(2), keras.layers.Dense(1, "sigmoid")])
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.nprnn")
    assert sorted(members(tmp_path / "m.keras")) == ["config.json", "metadata.json",
                                                     "model.weights.h5"]
    assert "config.npy" in members(tmp_path / "m.nprnn")
    for suffix in (".keras", ".nprnn"):
        loaded = keras.load_model(tmp_path / f"m{suffix}")
        for a, b in zip(model.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)
    # nprnn's native files that earlier releases wrote under a .keras name still load
    (tmp_path / "m.nprnn").rename(tmp_path / "old.keras")
    assert keras.load_model(tmp_path / "old.keras").get_config() == model.get_config()
    with pytest.raises(ValueError, match="holds a whole model"):
        model.save_weights(tmp_path / "w.keras")


def test_keras_json_is_keras_3s_to_json_and_loads_back(expected):
    model = nprnn_model("mixed", expected)
    text = interop.keras_json(model)
    document = json.loads(text)
    keras_document = json.loads(str(expected["mixed/json"]))
    assert document["module"] == keras_document["module"] == "keras"
    assert document["build_config"] == keras_document["build_config"]
    assert document["compile_config"]["loss"] == keras_document["compile_config"]["loss"] == (
        "categorical_crossentropy")
    assert [e["class_name"] for e in document["config"]["layers"]] == [
        e["class_name"] for e in keras_document["config"]["layers"]]
    rebuilt = keras.models.model_from_json(text)
    assert [type(a) for a in rebuilt.layers] == [type(b) for b in model.layers]
    rebuilt.set_weights(model.get_weights())
    x = inputs("mixed", expected)
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0))
    # Sequential.to_json stays nprnn's own, and still loads
    assert keras.models.model_from_json(model.to_json()).get_config() == model.get_config()


# --------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------
def edited_archive(tmp_path, source, edit, name="edited.keras"):
    contents = members(FIXTURES / source)
    config = json.loads(contents["config.json"])
    edit(config)
    contents["config.json"] = json.dumps(config)
    path = tmp_path / name
    write_zip(path, contents)
    return path


def layer_entry(config, class_name):
    return next(e for e in config["config"]["layers"] if e["class_name"] == class_name)


@pytest.mark.parametrize("source,class_name,edit,message", [
    ("lstm.keras", "LSTM", lambda c: c.update(recurrent_activation="hard_sigmoid"),
     "recurrent_activation='hard_sigmoid' is not supported"),
    ("lstm.keras", "LSTM", lambda c: c.update(kernel_constraint={"class_name": "NonNeg"}),
     "kernel_constraint"),
    ("gru.keras", "GRU", lambda c: c.update(time_major=True), "time_major=True"),
    ("gru.keras", "GRU", lambda c: c.update(activity_regularizer={"class_name": "L1"}),
     "activity_regularizer"),
    ("mixed.keras", "Bidirectional", lambda c: c.update(merge_mode="max"),
     "merge_mode='max' is not supported"),
    ("mixed.keras", "Bidirectional",
     lambda c: c["layer"].update(class_name="ConvLSTM1D"), "layer 'ConvLSTM1D' is not supported"),
    ("mixed.keras", "Bidirectional",
     lambda c: c["backward_layer"]["config"].update(return_sequences=False),
     "backward layer's return_sequences differs"),
    ("cells.keras", "RNN", lambda c: c["cell"].update(class_name="StackedRNNCells"),
     "cell 'StackedRNNCells' is not supported"),
    ("cells.keras", "RNN", lambda c: c["cell"]["config"].update(activation="selu"),
     "activation='selu' is not supported"),
    ("mixed.keras", "Dropout", lambda c: c.update(rate=2), "rate=2"),
])
def test_unsupported_options_of_the_new_layers_are_refused(tmp_path, source, class_name,
                                                          edit, message):
    path = edited_archive(tmp_path, source, lambda config: edit(
        layer_entry(config, class_name)["config"]))
    with pytest.raises(interop.KerasCompatibilityError) as caught:
        keras.load_model(path)
    text = str(caught.value)
    assert str(path) in text and f"({class_name})" in text and message in text, text


def test_bidirectional_with_the_directions_swapped_loads_as_given(tmp_path):
    """Keras accepts a forward ``layer`` reading backwards when the ``backward_layer`` reads
    forwards; nprnn builds the pair as given (its default copy always reads backwards)."""
    def swap(config):
        entry = layer_entry(config, "Bidirectional")["config"]
        entry["layer"]["config"]["go_backwards"] = True
        entry["backward_layer"]["config"]["go_backwards"] = False

    model = keras.load_model(edited_archive(tmp_path, "mixed.keras", swap))
    bidirectional = model.layers[1]
    assert bidirectional.forward_layer.go_backwards
    assert not bidirectional.backward_layer.go_backwards
    assert bidirectional.backward_layer.zero_output_for_mask  # forced, return_sequences


def test_unknown_layers_are_refused(tmp_path):
    def to_lambda(config):
        layer_entry(config, "Dropout")["class_name"] = "Lambda"

    path = edited_archive(tmp_path, "mixed.keras", to_lambda)
    with pytest.raises(interop.KerasCompatibilityError,
                       match=r"layer 'dropout_?\d*' \(Lambda\): layer type 'Lambda' is not"):
        keras.load_model(path)


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update({"evil.pkl": b"\x80\x04N."}), r"refusing member\(s\) \['evil.pkl'\]"),
    (lambda c: c.update({"../config.json": b"{}"}), r"refusing member"),
    (lambda c: c.pop("model.weights.h5"), "no model.weights.h5"),
    (lambda c: c.update({"config.json": b"{not json"}), "config.json is not valid JSON"),
    (lambda c: c.update({"model.weights.h5": b"not hdf5"}), "not readable HDF5"),
])
def test_hostile_archives_are_refused_clearly(tmp_path, change, message):
    contents = members(FIXTURES / "lstm.keras")
    change(contents)
    path = tmp_path / "hostile.keras"
    write_zip(path, contents)
    with pytest.raises(ValueError, match=message) as caught:
        keras.load_model(path)
    assert str(path) in str(caught.value)


def test_archive_members_are_size_checked_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.keras"
    contents = members(FIXTURES / "lstm.keras")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    monkeypatch.setitem(saving.KERAS_ARCHIVE_LIMITS, "config.json", 100)
    with pytest.raises(ValueError, match=r"config.json claims \d+ bytes, above the limit of "
                       "100"):
        keras.load_model(path)
    # Headers that understate the size: reading stops at the claimed size (zipfile then
    # finds the CRC wrong), so a member never decompresses past what was checked.
    monkeypatch.setitem(saving.KERAS_ARCHIVE_LIMITS, "config.json", 2**20)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        local = archive.getinfo("config.json").header_offset
    true_size = len(contents["config.json"]).to_bytes(4, "little")
    small = (10).to_bytes(4, "little")
    assert raw[local + 22:local + 26] == true_size  # the local header's size field
    raw[local + 22:local + 26] = small
    position = raw.find(b"PK\x01\x02")  # central directory records
    while position >= 0:
        name_length = int.from_bytes(raw[position + 28:position + 30], "little")
        if raw[position + 46:position + 46 + name_length] == b"config.json":
            assert raw[position + 24:position + 28] == true_size
            raw[position + 24:position + 28] = small
        position = raw.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="member config.json is damaged .*CRC"):
        keras.load_model(path)


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.Adam(learning_rate=3e-3),
    lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
    lambda: keras.optimizers.SGD(learning_rate=0.05),  # Keras' SGD has no slot then
])
def test_other_optimizers_go_through_the_keras_archive(optimizer, expected, tmp_path):
    """Keras 3 keeps each weight's slots in turn (Adam: momentum then velocity)."""
    model = keras.load_model(FIXTURES / "gru.keras", compile=False)
    model.compile(optimizer=optimizer(), loss="binary_crossentropy")
    x, y = inputs("gru", expected), targets("gru", expected)
    for _ in range(2):
        model.train_on_batch(x, y)
    path = tmp_path / "m.keras"
    model.save(path)
    strip_nprnn_config(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.load_model(path)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    state, loaded_state = model.optimizer.get_state(), loaded.optimizer.get_state()
    assert loaded_state["iterations"] == state["iterations"] == 2
    for slot in model.optimizer.slot_names:
        for a, b in zip(state[slot], loaded_state[slot], strict=True):
            np.testing.assert_array_equal(a, b)
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_optimizer_state_that_does_not_fit_warns_and_trains_afresh(tmp_path, expected):
    contents = members(FIXTURES / "lstm.keras")
    buffer = io.BytesIO(contents["model.weights.h5"])
    with h5py.File(buffer, "r+") as handle:
        del handle["optimizer/vars/3"]
    contents["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / "short.keras"
    write_zip(path, contents)
    with pytest.warns(UserWarning, match="optimizer state was not restored .*members are not"):
        model = keras.load_model(path)
    assert model.compiled and model.optimizer.iterations == 0
    for got, want in zip(model.get_weights(), weights_of("lstm", expected)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("loss", [
    lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    lambda: keras.losses.CategoricalCrossentropy(),
    lambda: keras.losses.BinaryCrossentropy(from_logits=True),
])
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_losses_go_through_keras_compile_settings(loss, suffix, tmp_path):
    model = keras.Sequential([keras.layers.Embedding(20, 3, input_length=5),
                              keras.layers.GRU(4), keras.layers.Dense(3)])
    model.compile(optimizer="rmsprop", loss=loss(), metrics=["accuracy"])
    path = tmp_path / f"m{suffix}"
    model.save(path)
    strip_nprnn_config(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.load_model(path)
    assert type(loaded.loss) is type(model.loss)
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.metric_names == ["accuracy"]


def test_keras_loss_options_nprnn_lacks_are_refused(tmp_path):
    contents = members(FIXTURES / "mixed.keras")
    config = json.loads(contents["config.json"])
    config["compile_config"]["loss"] = {"module": "keras.losses",
                                        "class_name": "CategoricalCrossentropy",
                                        "config": {"label_smoothing": 0.1}}
    contents["config.json"] = json.dumps(config)
    path = tmp_path / "smooth.keras"
    write_zip(path, contents)
    with pytest.warns(UserWarning, match="label_smoothing=0.1.*uncompiled"):
        model = keras.load_model(path)
    assert not model.compiled


def test_stateful_layers_give_keras_the_static_batch_size_they_hold_states_for(tmp_path):
    """Keras builds a stateful RNN only for a fixed batch size; nprnn's states tell it."""
    model = keras.Sequential([keras.layers.Embedding(20, 3, input_length=6),
                              keras.layers.LSTM(2, stateful=True), keras.layers.Dense(1)])
    config = interop.keras_model_config(model, keras3=True)
    assert config["config"]["layers"][0]["config"]["batch_shape"] == [None, 6]
    model.predict(np.arange(24).reshape(4, 6) % 20, batch_size=4, verbose=0)
    config = interop.keras_model_config(model, keras3=True)
    assert config["config"]["layers"][0]["config"]["batch_shape"] == [4, 6]
    assert config["build_config"] == {"input_shape": [4, 6]}
    assert [e.get("build_config") for e in config["config"]["layers"][1:]] == [
        {"input_shape": [4, 6]}, {"input_shape": [4, 6, 3]}, {"input_shape": [4, 2]}]
    model.save(tmp_path / "s.keras")
    loaded = keras.load_model(tmp_path / "s.keras")
    assert loaded.layers[1].stateful and loaded.input_shape == (None, 6)


def test_archive_architecture_too_large_is_refused_before_building(tmp_path, monkeypatch):
    monkeypatch.setenv("NPRNN_MAX_WEIGHT_BYTES", str(10**6))

    def huge(config):
        layer_entry(config, "Bidirectional")["config"]["layer"]["config"]["units"] = 10**4

    path = edited_archive(tmp_path, "mixed.keras", huge)
    with pytest.raises(ValueError, match="bytes of weights, above the limit"):
        keras.load_model(path)


def test_archive_weights_with_an_external_link_are_refused(tmp_path):
    contents = members(FIXTURES / "lstm.keras")
    buffer = io.BytesIO(contents["model.weights.h5"])
    with h5py.File(buffer, "r+") as handle:
        del handle["layers/dense/vars/0"]
        handle["layers/dense/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")
    contents["model.weights.h5"] = buffer.getvalue()
    path = tmp_path / "link.keras"
    write_zip(path, contents)
    for load in (keras.load_model,
                 lambda p: keras.load_model(FIXTURES / "lstm.keras").load_weights(p)):
        with pytest.raises(ValueError, match="link") as caught:
            load(path)
        assert str(path) in str(caught.value)
