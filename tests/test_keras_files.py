"""Keras' .h5 files in nprnn, and nprnn's .h5 files in Keras' layout (no TensorFlow needed).

Fixtures: ``keras_{simplernn,embedding}_model.h5`` saved by Keras 3.15.1 with
``model.save('x.h5')`` after three RMSprop steps (``make_keras_fixtures.py``), and
``tf_keras_tiny_model.h5`` saved by Keras 2 (tf_keras 2.21) after two steps
(``check_nprnn_h5_in_keras.py --make-keras2-fixture``); ``keras_optimizers/`` holds Keras
3.15.1's ``.h5`` files of a SimpleRNN and an LSTM model after two steps of RMSprop, Adam, SGD
with momentum and plain SGD (``make_keras_optimizer_fixtures.py``), against which nprnn's
``optimizer_weights`` layout is compared. That Keras itself loads the files nprnn writes is
checked by hand with ``tests/fixtures/check_nprnn_h5_in_keras.py``, and what Keras restores of
their optimizer state (only the iteration count and the learning rate in Keras 3, from its
own files too) with ``tests/fixtures/check_nprnn_h5_optimizer_in_keras.py``.
"""

import json
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import nprnn as keras
from nprnn import interop, saving

FIXTURES = Path(__file__).parent / "fixtures"
KERAS_ONEHOT = FIXTURES / "keras_simplernn_model.h5"
KERAS_EMB = FIXTURES / "keras_embedding_model.h5"
KERAS2_TINY = FIXTURES / "tf_keras_tiny_model.h5"
EMB_NAMES = ["embeddings", "rnn_kernel", "rnn_recurrent_kernel", "rnn_bias", "dense_kernel",
             "dense_bias"]
NAMES = {"oh_": EMB_NAMES[1:], "emb_": EMB_NAMES}


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURES / "keras_parity.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def book_models():
    model = keras.Sequential()
    model.add(keras.layers.SimpleRNN(8, input_shape=(100, 500)))
    model.add(keras.layers.Dense(1, activation="sigmoid"))
    model2 = keras.Sequential()
    model2.add(keras.layers.Embedding(500, 16, input_length=100))
    model2.add(keras.layers.SimpleRNN(8))
    model2.add(keras.layers.Dense(1, activation="sigmoid"))
    for m in (model, model2):
        m.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model, model2


def inputs(prefix, ref):
    return ref["x_ids"] if prefix == "emb_" else keras.utils.to_categorical(ref["x_ids"], 500)


def trained_book_model(prefix, ref, steps=3):
    model, model2 = book_models()
    model = model2 if prefix == "emb_" else model
    model.set_weights([ref[f"{prefix}init_{n}"] for n in NAMES[prefix]])
    for _ in range(steps):
        model.train_on_batch(inputs(prefix, ref), ref["y"])
    return model


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def keras_layer_keys(path):
    """Option names Keras 3.15 itself writes for each layer class (from its own files)."""
    with h5py.File(path, "r") as handle:
        config = json.loads(text(handle.attrs["model_config"]))
    return {entry["class_name"]: set(entry["config"]) for entry in config["config"]["layers"]}


# --------------------------------------------------------------------------------------
# Keras' files in nprnn
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix,path", [("oh_", KERAS_ONEHOT), ("emb_", KERAS_EMB)])
def test_load_model_of_a_keras_file_predicts_as_keras(prefix, path, ref, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete load: no "not compiled"/"not restored"
        model = keras.load_model(path)
    expected_layers = (["simple_rnn", "dense"] if prefix == "oh_"
                       else ["embedding", "simple_rnn_1", "dense_1"])
    assert [layer.name for layer in model.layers] == expected_layers
    assert model.input_shape == ((None, 100, 500) if prefix == "oh_" else (None, 100))
    assert model.count_params() == {"oh_": 4081, "emb_": 8209}[prefix]
    for name, w in zip(NAMES[prefix], model.get_weights()):
        np.testing.assert_array_equal(w, ref[f"{prefix}step3_{name}"])
    probs = model.predict(inputs(prefix, ref), verbose=0)
    assert np.max(np.abs(probs - ref[f"{prefix}h5_probs"])) <= 1e-6


@pytest.mark.parametrize("prefix,path", [("oh_", KERAS_ONEHOT), ("emb_", KERAS_EMB)])
def test_keras_file_compiles_and_restores_the_optimizer(prefix, path, ref):
    model = keras.models.load_model(path)
    assert model.compiled
    assert isinstance(model.optimizer, keras.optimizers.RMSprop)
    assert model.optimizer.learning_rate == pytest.approx(1e-4, rel=1e-6)
    assert model.optimizer.rho == 0.9 and model.optimizer.epsilon == 1e-7
    assert model.metric_names == ["accuracy"]
    assert isinstance(model.loss, keras.losses.BinaryCrossentropy)
    assert model.optimizer.iterations == 3
    # The file's velocities are those of nprnn after the same three dense steps (float32 on
    # both sides with their own tanh: entries far below the array's largest are compared to
    # that scale, as the kernel tests' relative error does).
    ours = trained_book_model(prefix, ref)
    for name, a, b in zip(NAMES[prefix], model.optimizer.get_state()["velocity"],
                          ours.optimizer.get_state()["velocity"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.max(np.abs(b)), err_msg=name)
    # ... so training resumes as it would have in nprnn.
    x = inputs(prefix, ref)
    model.train_on_batch(x, ref["y"])
    ours.train_on_batch(x, ref["y"])
    for name, a, b in zip(NAMES[prefix], model.get_weights(), ours.get_weights()):
        assert np.max(np.abs(a - b)) <= 1e-6, name
    loss, accuracy = keras.load_model(path).evaluate(x, ref["y"], verbose=0)
    p = ref[f"{prefix}h5_probs"].astype(np.float64).ravel()
    y = ref["y"]
    assert loss == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), abs=1e-6)
    assert accuracy == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))


@pytest.mark.parametrize("prefix,path", [("oh_", KERAS_ONEHOT), ("emb_", KERAS_EMB)])
def test_load_weights_of_a_keras_file(prefix, path, ref):
    model, model2 = book_models()
    model = model2 if prefix == "emb_" else model
    model.load_weights(path)
    for name, w in zip(NAMES[prefix], model.get_weights()):
        np.testing.assert_array_equal(w, ref[f"{prefix}step3_{name}"])
    probs = model.predict(inputs(prefix, ref), verbose=0)
    assert np.max(np.abs(probs - ref[f"{prefix}h5_probs"])) <= 1e-6


def test_compile_false_returns_an_uncompiled_model():
    model = saving.load_model(KERAS_EMB, compile=False)
    assert not model.compiled and model.built


def test_keras2_file_loads_with_optimizer_state():
    expected = np.load(FIXTURES / "tf_keras_tiny_expected.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = keras.load_model(KERAS2_TINY)
    assert model.input_shape == (None, 7)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "SimpleRNN",
                                                                 "Dense"]
    for position, w in enumerate(model.get_weights()):
        np.testing.assert_array_equal(w, expected[f"weight_{position}"])
    assert np.max(np.abs(model.predict(expected["x"], verbose=0) - expected["probs"])) <= 1e-6
    assert model.optimizer.iterations == int(expected["iterations"])
    assert model.optimizer.learning_rate == pytest.approx(1e-3, rel=1e-6)
    for position, v in enumerate(model.optimizer.get_state()["velocity"]):
        np.testing.assert_array_equal(v, expected[f"velocity_{position}"])
    np.testing.assert_allclose(model.evaluate(expected["x"], expected["y"], verbose=0),
                               expected["evaluate"], atol=1e-6)


# --------------------------------------------------------------------------------------
# Refusing what nprnn cannot compute
# --------------------------------------------------------------------------------------
def edited_copy(tmp_path, source, edit, name="edited.h5"):
    """A copy of a Keras file whose model_config went through ``edit(config)``."""
    path = tmp_path / name
    shutil.copy(source, path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(text(handle.attrs["model_config"]))
        edit(config)
        handle.attrs["model_config"] = json.dumps(config)
    return path


def layer_config(config, class_name):
    return next(e["config"] for e in config["config"]["layers"] if e["class_name"] == class_name)


@pytest.mark.parametrize("class_name,key,value,message", [
    ("Embedding", "sparse", True, "sparse=True"),
    ("Embedding", "embeddings_constraint", {"class_name": "NonNeg", "config": {}},
     "embeddings_constraint"),
    ("SimpleRNN", "time_major", True, "time_major=True"),
    ("SimpleRNN", "activation", "elu", "activation='elu'"),
    ("SimpleRNN", "recurrent_regularizer", {"class_name": "L2", "config": {"l2": 0.01}},
     "recurrent_regularizer"),
    ("SimpleRNN", "dropout", 1.5, "dropout=1.5"),
    ("Dense", "activation", "gelu", "activation='gelu'"),
    ("Dense", "kernel_regularizer", {"class_name": "L2", "config": {"l2": 0.01}},
     "kernel_regularizer"),
    ("Embedding", "some_future_option", 3, "some_future_option=3"),
])
def test_unsupported_options_are_refused_naming_file_and_layer(tmp_path, class_name, key,
                                                               value, message):
    def edit(config):
        layer_config(config, class_name)[key] = value

    path = edited_copy(tmp_path, KERAS_EMB, edit)
    layer_name = {"Embedding": "embedding", "SimpleRNN": "simple_rnn_1",
                  "Dense": "dense_1"}[class_name]
    with pytest.raises(interop.KerasCompatibilityError) as caught:
        keras.load_model(path)
    text_ = str(caught.value)
    assert str(path) in text_ and f"'{layer_name}' ({class_name})" in text_ and message in text_


@pytest.mark.parametrize("class_name,key,value", [
    ("Embedding", "mask_zero", True),
    ("SimpleRNN", "stateful", True),
    ("SimpleRNN", "go_backwards", True),
    ("SimpleRNN", "dropout", 0.2),
    ("SimpleRNN", "recurrent_dropout", 0.1),
    ("SimpleRNN", "activation", "relu"),
])
def test_options_nprnn_now_computes_are_read(tmp_path, ref, class_name, key, value):
    """Options once refused load into the layer (the weights fit them unchanged)."""
    def edit(config):
        layer_config(config, class_name)[key] = value

    model = keras.load_model(edited_copy(tmp_path, KERAS_EMB, edit))
    layer = next(layer for layer in model.layers if type(layer).__name__ == class_name)
    assert getattr(layer, key) == value
    for name, w in zip(NAMES["emb_"], model.get_weights()):
        np.testing.assert_array_equal(w, ref[f"emb_step3_{name}"])


def test_unsupported_layer_and_model_types_are_refused(tmp_path):
    def to_conv(config):
        config["config"]["layers"][2]["class_name"] = "Conv1D"

    path = edited_copy(tmp_path, KERAS_EMB, to_conv, "conv.h5")
    with pytest.raises(interop.KerasCompatibilityError, match=r"conv\.h5: layer 'simple_rnn_1' "
                       r"\(Conv1D\): layer type 'Conv1D' is not supported"):
        keras.load_model(path)

    def to_functional(config):
        config["config"]["class_name"] = "Functional"
        config["class_name"] = "Functional"

    path = edited_copy(tmp_path, KERAS_EMB, to_functional, "functional.h5")
    with pytest.raises(interop.KerasCompatibilityError, match="Sequential models only"):
        keras.load_model(path)


def test_neutral_options_and_unroll_are_accepted(tmp_path, ref):
    def edit(config):
        rnn = layer_config(config, "SimpleRNN")
        rnn["unroll"] = True  # the same maths, computed differently
        rnn["time_major"] = False  # Keras 2's key, at its neutral value
        layer_config(config, "Embedding")["lora_rank"] = None

    model = keras.load_model(edited_copy(tmp_path, KERAS_EMB, edit))
    probs = model.predict(ref["x_ids"], verbose=0)
    assert np.max(np.abs(probs - ref["emb_h5_probs"])) <= 1e-6


def test_unsupported_training_config_warns_and_loads_uncompiled(tmp_path, ref):
    path = tmp_path / "adagrad.h5"
    shutil.copy(KERAS_EMB, path)
    with h5py.File(path, "r+") as handle:
        training = json.loads(text(handle.attrs["training_config"]))
        training["optimizer_config"]["class_name"] = "Adagrad"
        handle.attrs["training_config"] = json.dumps(training)
    with pytest.warns(UserWarning, match="optimizer 'Adagrad' is not supported.*uncompiled"):
        model = keras.load_model(path)
    assert not model.compiled
    assert np.max(np.abs(model.predict(ref["x_ids"], verbose=0) - ref["emb_h5_probs"])) <= 1e-6


def test_weights_that_do_not_fit_name_file_and_layer(tmp_path):
    model = keras.Sequential([keras.layers.Embedding(500, 16, input_length=100),
                              keras.layers.SimpleRNN(4), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match=r"keras_embedding_model\.h5: weight "
                       r"'sequential_1/simple_rnn_1/simple_rnn_cell/kernel' of layer "
                       r"'simple_rnn_1' has shape \(16, 8\); simple_rnn/kernel needs \(16, 4\)"):
        model.load_weights(KERAS_EMB)
    short = keras.Sequential([keras.layers.SimpleRNN(8, input_shape=(100, 500))])
    with pytest.raises(ValueError, match="holds weights for 2 layers"):
        short.load_weights(KERAS_ONEHOT)


def test_keras1_files_and_weights_only_files_are_refused_clearly(tmp_path):
    path = tmp_path / "old.h5"
    shutil.copy(KERAS_EMB, path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["keras_version"] = "1.2.2"
    with pytest.raises(interop.KerasCompatibilityError, match="Keras 1.2.2"):
        keras.load_model(path)
    model, _ = book_models()
    model.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="load_weights"):
        keras.load_model(tmp_path / "w.h5")


def test_keras2_style_configs_parse():
    """Keras <= 2.2 lists the layers directly; the first layer carries batch_input_shape."""
    config = {"class_name": "Sequential", "config": [
        {"class_name": "SimpleRNN", "config": {"name": "rnn", "units": 8, "activation": "tanh",
                                               "batch_input_shape": [None, 100, 500],
                                               "dtype": "float32", "time_major": False}},
        {"class_name": "Dense", "config": {"name": "out", "units": 1,
                                           "activation": {"class_name": "function",
                                                          "config": "sigmoid"}}}]}
    model = interop.model_from_keras_config(config)
    assert model.input_shape == (None, 100, 500)
    assert model.layers[1].activation == "sigmoid" and model.count_params() == 4081
    emb = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Embedding", "config": {"input_dim": 500, "output_dim": 16,
                                               "input_length": 100}},
        {"class_name": "SimpleRNN", "config": {"units": 8}},
        {"class_name": "Dense", "config": {"units": 1, "activation": "sigmoid"}}]}}
    assert interop.model_from_keras_config(emb).input_shape == (None, 100)


def test_optimizer_weight_names_of_each_keras_generation():
    assert interop._slot_of("rm_sprop/sequential_dense_kernel_velocity", "RMSprop") == (
        "slot", "velocity")
    assert interop._slot_of("RMSprop/velocity/dense/kernel:0", "RMSprop") == ("slot",
                                                                              "velocity")
    assert interop._slot_of("RMSprop/dense/kernel/rms:0", "RMSprop") == ("slot", "velocity")
    assert interop._slot_of("Adam/dense/kernel/m:0", "Adam") == ("slot", "momentum")
    assert interop._slot_of("adam/sequential_dense_kernel_momentum", "Adam") == (
        "slot", "momentum")
    assert interop._slot_of("iteration:0", "RMSprop") == ("iterations", None)
    assert interop._slot_of("rm_sprop/learning_rate", "RMSprop") == ("learning_rate", None)


# --------------------------------------------------------------------------------------
# nprnn's files in Keras' layout
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("prefix,name", [("oh_", "best-simplernn-model.h5"),
                                         ("emb_", "best-embedding-model.h5")])
def test_written_layout_is_keras_legacy_hdf5(prefix, name, ref, tmp_path):
    model = trained_book_model(prefix, ref)
    path = tmp_path / name
    model.save(path)
    keras_path = KERAS_ONEHOT if prefix == "oh_" else KERAS_EMB
    with h5py.File(path, "r") as ours, h5py.File(keras_path, "r") as theirs:
        assert set(theirs.attrs) <= set(ours.attrs)  # + nprnn_config, nprnn_format_version
        assert text(ours.attrs["keras_version"]).startswith("3.")
        assert text(ours.attrs["backend"]) == "tensorflow"
        config = json.loads(text(ours.attrs["model_config"]))
        training = json.loads(text(ours.attrs["training_config"]))
        group = ours["model_weights"]
        layer_names = [text(n) for n in group.attrs["layer_names"]]
        assert layer_names == [layer.name for layer in model.layers]
        for layer, weight in zip(model.layers, interop.keras_weight_paths(model)):
            names = [text(n) for n in group[layer.name].attrs["weight_names"]]
            assert names == weight
            for n, array in zip(names, layer.weights):
                assert group[layer.name][n].dtype == np.float32
                np.testing.assert_array_equal(group[layer.name][n][()], array)
        # Same names as Keras gives the book's models (built in the book's order), datasets
        # named as Keras 3 names them (model/layer[/cell]/weight).
        keras_names = [text(n) for layer_name in theirs["model_weights"].attrs["layer_names"]
                       for n in theirs["model_weights"][text(layer_name)].attrs["weight_names"]]
        assert [n for paths in interop.keras_weight_paths(model) for n in paths] == keras_names
        assert layer_names == [text(n) for n in theirs["model_weights"].attrs["layer_names"]]
        optimizer_names = [text(n) for n in ours["optimizer_weights"].attrs["weight_names"]]
        keras_optimizer = [text(n) for n in theirs["optimizer_weights"].attrs["weight_names"]]
        assert [n.split("/", 1)[1] for n in optimizer_names] == [
            n.split("/", 1)[1] for n in keras_optimizer]
        assert optimizer_names[0].endswith("/iteration") and int(
            ours["optimizer_weights"][optimizer_names[0]][()]) == 3
        assert optimizer_names[1].endswith("/learning_rate")
        assert all(n.endswith("_velocity") for n in optimizer_names[2:])
        for n, k in zip(optimizer_names, keras_optimizer):
            assert ours["optimizer_weights"][n].shape == theirs["optimizer_weights"][k].shape
            assert ours["optimizer_weights"][n].dtype == theirs["optimizer_weights"][k].dtype

    # model_config: what Keras needs, only option names Keras 3 itself writes for the class.
    assert config["class_name"] == "Sequential" and config["config"]["name"] == model.name
    entries = config["config"]["layers"]
    assert entries[0]["class_name"] == "InputLayer"
    assert entries[0]["config"]["batch_input_shape"] == list(model.input_shape)
    known = keras_layer_keys(KERAS_EMB)
    for entry in entries[1:]:
        assert set(entry["config"]) <= known[entry["class_name"]], entry["class_name"]
    assert set(entries[0]["config"]) - {"batch_input_shape"} <= known["InputLayer"]
    parsed = interop.parse_keras_model_config(config)
    assert parsed["batch_shape"] == model.input_shape
    assert [c for c, _ in parsed["layers"]] == [type(layer).__name__ for layer in model.layers]
    rebuilt = interop.model_from_keras_config(config)
    assert rebuilt.get_config()["layers"] == model.get_config()["layers"]
    # training_config: what Keras' compile_args_from_training_config reads.
    assert training["loss"] == "binary_crossentropy" and training["metrics"] == ["accuracy"]
    assert "loss_weights" in training and training["loss_weights"] is None
    assert training["optimizer_config"]["class_name"] == "RMSprop"
    optimizer = training["optimizer_config"]["config"]
    assert optimizer["learning_rate"] == 1e-4 and optimizer["rho"] == 0.9
    assert optimizer["epsilon"] == 1e-7 and optimizer["momentum"] == 0.0
    assert not optimizer["centered"]


@pytest.mark.parametrize("prefix", ["oh_", "emb_"])
def test_round_trip_nprnn_h5_nprnn(prefix, ref, tmp_path):
    model = trained_book_model(prefix, ref)
    path = tmp_path / "model.h5"
    model.save(path)
    loaded = keras.load_model(path)
    assert loaded.get_config() == model.get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.get_state()["velocity"],
                    loaded.optimizer.get_state()["velocity"]):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.iterations == 3
    x = inputs(prefix, ref)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    model.train_on_batch(x, ref["y"])
    loaded.train_on_batch(x, ref["y"])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_nprnn_file_read_as_a_keras_file_gives_the_same_model(ref, tmp_path):
    """Without nprnn's own configuration the Keras reader rebuilds the same thing."""
    model = trained_book_model("emb_", ref)
    path = tmp_path / "model.h5"
    model.save(path)
    with h5py.File(path, "r+") as handle:
        del handle.attrs["nprnn_config"]
        del handle.attrs["nprnn_format_version"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.get_state()["velocity"],
                    loaded.optimizer.get_state()["velocity"]):
        np.testing.assert_array_equal(a, b)
    assert loaded.optimizer.iterations == 3 and loaded.metric_names == ["accuracy"]


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.Adam(learning_rate=3e-4),
    lambda: keras.optimizers.SGD(learning_rate=0.01, momentum=0.9, nesterov=True),
    lambda: keras.optimizers.SGD(learning_rate=0.01),
    lambda: keras.optimizers.RMSprop(learning_rate=1e-3, clipnorm=1.0),
])
def test_round_trip_of_other_optimizers_through_the_keras_reader(optimizer, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(16, 10))
    y = (x[:, -1] < 25).astype(np.float32)
    model = keras.Sequential([keras.layers.Embedding(50, 4, input_length=10),
                              keras.layers.SimpleRNN(5, return_sequences=True),
                              keras.layers.SimpleRNN(3), keras.layers.Dense(1, "sigmoid")])
    model.compile(optimizer=optimizer(), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    path = tmp_path / "m.h5"
    model.save(path)
    with h5py.File(path, "r+") as handle:
        del handle.attrs["nprnn_config"]
    loaded = keras.load_model(path)
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["weights.h5", "model.weights.h5"])
def test_save_weights_layouts_and_round_trip(name, ref, tmp_path):
    model = trained_book_model("emb_", ref)
    path = tmp_path / name
    model.save_weights(path)
    with h5py.File(path, "r") as handle:
        if name == "model.weights.h5":  # Keras 3's layout, keyed by layer class
            assert interop.is_keras3_weights_file(handle)
            assert handle["layers/embedding/vars/0"].shape == (500, 16)
            assert handle["layers/simple_rnn/cell/vars/1"].shape == (8, 8)
            assert handle["layers/dense/vars/1"].shape == (1,)
        else:  # Keras' legacy save_weights layout: layer groups at the root
            assert "model_config" not in handle.attrs
            assert [text(n) for n in handle.attrs["layer_names"]] == [
                layer.name for layer in model.layers]
    _, fresh = book_models()
    fresh.load_weights(path)
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_format_1_nprnn_h5_files_still_load(ref, tmp_path):
    """nprnn's first .h5 layout kept optimizer slots as optimizer_weights/<slot>/NNNN."""
    model = trained_book_model("emb_", ref)
    path = tmp_path / "old.h5"
    model.save(path)
    with h5py.File(path, "r+") as handle:
        document = json.loads(text(handle.attrs["nprnn_config"]))
        del document["optimizer_state"]["h5_datasets"]
        handle.attrs["nprnn_config"] = json.dumps(document)
        del handle["optimizer_weights"]
        group = handle.create_group("optimizer_weights")
        for position, value in enumerate(model.optimizer.get_state()["velocity"]):
            group.create_dataset(f"velocity/{position:04d}", data=value)
    loaded = keras.load_model(path)
    for a, b in zip(model.optimizer.get_state()["velocity"],
                    loaded.optimizer.get_state()["velocity"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.RMSprop(learning_rate=1e-3),
    lambda: keras.optimizers.SGD(learning_rate=0.01),  # a slot Keras' SGD does not have
    lambda: keras.optimizers.Adam(),
])
def test_h5_optimizer_state_round_trips(optimizer, tmp_path):
    """Keras' slot names for RMSprop and Adam; nprnn's own names for a slot Keras lacks."""
    model = keras.Sequential([keras.layers.Embedding(20, 3, input_length=6),
                              keras.layers.SimpleRNN(4), keras.layers.Dense(1, "sigmoid")])
    model.compile(optimizer=optimizer(), loss="binary_crossentropy")
    x = np.arange(24).reshape(4, 6) % 20
    model.train_on_batch(x, np.array([0, 1, 1, 0]))
    path = tmp_path / "m.h5"
    model.save(path)
    state = model.optimizer.get_state()
    with h5py.File(path, "r") as handle:  # no second copy (format 1's hard links) any more
        assert "iterations" not in handle["optimizer_weights"]
    loaded = keras.load_model(path)
    assert loaded.optimizer.iterations == 1
    for slot in model.optimizer.slot_names:
        for a, b in zip(state[slot], loaded.optimizer.get_state()[slot], strict=True):
            np.testing.assert_array_equal(a, b)


def test_checkpoint_with_the_books_callbacks_writes_a_keras_file(ref, tmp_path):
    _, model2 = book_models()
    model2.set_weights([ref[f"emb_init_{n}"] for n in EMB_NAMES])
    path = tmp_path / "best-embedding-model.h5"
    checkpoint = keras.callbacks.ModelCheckpoint(str(path), save_best_only=True)
    stopper = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    model2.fit(ref["x_ids"], ref["y"], epochs=3, batch_size=4,
               validation_data=(ref["x_ids"], ref["y"]), callbacks=[checkpoint, stopper],
               verbose=0)
    with h5py.File(path, "r") as handle:
        assert "training_config" in handle.attrs
        assert interop.parse_keras_model_config(text(handle.attrs["model_config"]))["batch_shape"] \
            == (None, 100)
        assert "optimizer_weights" in handle
    loaded = keras.load_model(path)
    np.testing.assert_array_equal(loaded.predict(ref["x_ids"], verbose=0),
                                  model2.predict(ref["x_ids"], verbose=0))


# --------------------------------------------------------------------------------------
# optimizer_weights: nprnn's layout against Keras' own files, per optimizer
# --------------------------------------------------------------------------------------
KERAS_OPTIMIZERS = FIXTURES / "keras_optimizers"
OPTIMIZER_CASES = {  # the optimizers make_keras_optimizer_fixtures.py trains with
    "rmsprop": lambda: keras.optimizers.RMSprop(learning_rate=1e-2),
    "adam": lambda: keras.optimizers.Adam(learning_rate=1e-2),
    "sgd_momentum": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    "sgd": lambda: keras.optimizers.SGD(learning_rate=0.1),
}
OPTIMIZER_TAGS = [f"{model}_{optimizer}" for model in ("simplernn", "lstm")
                  for optimizer in OPTIMIZER_CASES]


@pytest.fixture(scope="module")
def optimizer_expected():
    with np.load(KERAS_OPTIMIZERS / "expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def optimizer_layout(path):
    """``optimizer_weights`` as Keras' legacy loader sees it: the names in ``weight_names``
    order, each dataset's shape and dtype, and the optimizer name in ``training_config``."""
    with h5py.File(path, "r") as handle:
        group = handle["optimizer_weights"]
        names = [text(n) for n in group.attrs["weight_names"]]
        items = [(name, group[name].shape, group[name].dtype) for name in names]
        values = [group[name][()] for name in names[:2]]
        training = json.loads(text(handle.attrs["training_config"]))
    return items, values, training["optimizer_config"]["config"]["name"]


@pytest.mark.parametrize("tag", OPTIMIZER_TAGS)
def test_written_optimizer_weights_have_the_layout_keras_writes(tag, optimizer_expected,
                                                                tmp_path):
    """Keras 3's loader assigns the ``optimizer_weights`` datasets, taken in ``weight_names``
    order, to the optimizer's variables by position (iteration, learning_rate, then each
    trainable weight's slots in turn), checking only shapes: nprnn's file must list the same
    entries in the same order, with the same shapes and dtypes, as Keras' own file of the
    same model and optimizer (only the optimizer's name, the prefix, may differ)."""
    model_tag, optimizer_tag = tag.split("_", 1)
    recurrent = (keras.layers.SimpleRNN(3, name="simple_rnn") if model_tag == "simplernn"
                 else keras.layers.LSTM(3, name="lstm"))
    model = keras.Sequential([keras.layers.Embedding(30, 4, name="embedding"), recurrent,
                              keras.layers.Dense(1, activation="sigmoid", name="dense")],
                             name="sequential")
    model.compile(optimizer=OPTIMIZER_CASES[optimizer_tag](), loss="binary_crossentropy",
                  metrics=["accuracy"])
    for _ in range(2):
        model.train_on_batch(optimizer_expected["ids"], optimizer_expected["y"])
    path = tmp_path / "model.h5"
    model.save(path)
    ours, our_values, our_name = optimizer_layout(path)
    theirs, their_values, their_name = optimizer_layout(KERAS_OPTIMIZERS / f"{tag}.h5")
    assert len(ours) == len(theirs)
    for (name, shape, dtype), (keras_name, keras_shape, keras_dtype) in zip(ours, theirs):
        # Keras names each variable '<optimizer name>/<path>'; the path must be Keras'.
        assert name.split("/", 1) == [our_name, keras_name.split("/", 1)[1]]
        assert keras_name.startswith(f"{their_name}/")
        assert (shape, dtype) == (keras_shape, keras_dtype), name
    assert int(our_values[0]) == int(their_values[0]) == 2  # the iteration count
    assert our_values[1] == their_values[1]  # the float32 learning rate


@pytest.mark.parametrize("tag", OPTIMIZER_TAGS)
def test_keras_optimizer_state_is_read_into_the_right_slots(tag, optimizer_expected):
    """Keras' variables in ``optimizer.variables`` order (saved by the fixture script, by
    position, not by name) are what nprnn restores: Adam's momentum and velocity not swapped,
    SGD's momentum read, and zeros for the slot Keras' plain SGD lacks."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.load_model(KERAS_OPTIMIZERS / f"{tag}.h5")
    keras_values = [optimizer_expected[f"{tag}/var{i}"] for i in range(sum(
        key.startswith(f"{tag}/var") for key in optimizer_expected))]
    state = loaded.optimizer.get_state()
    assert state["iterations"] == int(keras_values[0]) == 2
    assert loaded.optimizer.learning_rate == pytest.approx(float(keras_values[1]), rel=1e-7)
    weights = loaded.trainable_weights
    slots = list(loaded.optimizer.slot_names)
    if tag.endswith("_sgd"):
        assert len(keras_values) == 2
        for value, weight in zip(state["momentum"], weights, strict=True):
            np.testing.assert_array_equal(value, np.zeros_like(weight))
        return
    assert len(keras_values) == 2 + len(slots) * len(weights)
    for index in range(len(weights)):
        for offset, slot in enumerate(slots):
            np.testing.assert_array_equal(state[slot][index],
                                          keras_values[2 + index * len(slots) + offset])
