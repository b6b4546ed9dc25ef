"""nprnn's chapter 9-3 layers compute what Keras 3 computes: LSTM, GRU, SimpleRNN options,
go_backwards, masks, initial and returned states, stateful layers, Bidirectional, softmax heads.

The reference numbers come from Keras 3.15.1 on TensorFlow 2.21.0 in float64
(``tests/fixtures/keras93_parity.npz``, written by ``tests/fixtures/make_keras93_fixtures.py``,
whose docstring lists every key; TensorFlow is not needed here). The models are built from
``tests/fixtures/keras93_cases.py`` by the same lines that built them in Keras, with
``k = nprnn``, then given Keras' initial weights. The semantics are in
``docs/keras_recurrent_semantics.md``.

Tolerances (float64 on both sides): outputs and losses 1e-6, gradients 1e-5, weights after
RMSprop(1e-2) steps 1e-6 (Keras' steps use dense gradients, as nprnn does).
"""

import importlib.util
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
NPZ = FIXTURES / "keras93_parity.npz"
_spec = importlib.util.spec_from_file_location("keras93_cases", FIXTURES / "keras93_cases.py")
cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

OUTPUT_TOL = 1e-6
GRAD_TOL = 1e-5
STEP_TOL = 1e-6
TRAINED = [name for name, case in cases.SEQUENTIAL.items() if case["train"]]
DROPOUT = [name for name, case in cases.SEQUENTIAL.items() if case["dropout"]]


@pytest.fixture(scope="module")
def ref():
    with np.load(NPZ, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def unpack(flat, shapes):
    """Split a packed vector (see the fixture script) into arrays of the given shapes."""
    arrays, start = [], 0
    for text in shapes:
        shape = tuple(int(d) for d in str(text).split("x") if d)
        size = int(np.prod(shape))
        arrays.append(flat[start:start + size].reshape(shape))
        start += size
    assert start == flat.size
    return arrays


def max_error(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)),
                        initial=0.0))


def assert_arrays_close(got, expected, tol, what):
    assert len(got) == len(expected), f"{what}: {len(got)} arrays, Keras has {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert np.shape(g) == e.shape, f"{what}[{i}]: shape {np.shape(g)}, Keras {e.shape}"
        err = max_error(g, e)
        assert err <= tol, f"{what}[{i}]: max |nprnn - Keras| = {err:.3e} > {tol}"


def as_list(result):
    return list(result) if isinstance(result, (list, tuple)) else [result]


def first(result):
    """The loss of train_on_batch / evaluate, which return [loss, accuracy]."""
    return float(np.ravel(np.asarray(result, dtype=np.float64))[0])


def keras_model(name, ref, drop=None):
    """The case's model built by nprnn, compiled, holding Keras' initial weights."""
    import nprnn

    case = cases.SEQUENTIAL[name]
    build = case["build"]
    model = build(nprnn) if drop is None else build(nprnn, drop=drop)
    cases.compile_case(nprnn, model, case)
    model.set_weights(unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]))
    return model


# --------------------------------------------------------------------------------------
# Sequential models: outputs, loss, gradients, RMSprop steps
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(cases.SEQUENTIAL))
def test_outputs(name, ref, float64, backend):
    model = keras_model(name, ref)
    expected_shapes = [tuple(w.shape) for w in unpack(ref[f"{name}/init"],
                                                      ref[f"{name}/shapes"])]
    assert [tuple(np.shape(w)) for w in model.get_weights()] == expected_shapes
    x = ref[cases.SEQUENTIAL[name]["x"]]
    assert_arrays_close([model.predict(x, verbose=0)], [ref[f"{name}/out"]], OUTPUT_TOL,
                        f"{name} predict")


@pytest.mark.parametrize("name", TRAINED)
def test_loss_and_gradients(name, ref, float64, backend):
    """Dropout cases: the loss and gradients of the same model with dropout 0."""
    case = cases.SEQUENTIAL[name]
    model = keras_model(name, ref, drop=0.0 if case["dropout"] else None)
    x, y = ref[case["x"]], ref[case["y"]]
    loss = first(model.evaluate(x, y, batch_size=len(x), verbose=0))
    assert abs(loss - float(ref[f"{name}/loss"])) <= OUTPUT_TOL
    grads = model.compute_gradients(x, y)
    expected = unpack(ref[f"{name}/grad"], ref[f"{name}/shapes"])
    assert_arrays_close(grads, expected, GRAD_TOL, f"{name} gradients")
    # The weights did not move.
    assert_arrays_close(model.get_weights(), unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]),
                        0.0, f"{name} weights after compute_gradients")


@pytest.mark.parametrize("name", TRAINED)
def test_rmsprop_steps(name, ref, float64, backend):
    """3 train_on_batch steps: the loss before each, the weights after steps 1 (and 3)."""
    case = cases.SEQUENTIAL[name]
    model = keras_model(name, ref, drop=0.0 if case["dropout"] else None)
    x, y = ref[case["x"]], ref[case["y"]]
    shapes = ref[f"{name}/shapes"]
    for step in range(3):
        loss = first(model.train_on_batch(x, y))
        assert abs(loss - float(ref[f"{name}/step_losses"][step])) <= OUTPUT_TOL, step
        if step == 0:
            assert_arrays_close(model.get_weights(), unpack(ref[f"{name}/step1"], shapes),
                                STEP_TOL, f"{name} weights after 1 step")
    if f"{name}/step3" in ref:
        assert_arrays_close(model.get_weights(), unpack(ref[f"{name}/step3"], shapes),
                            STEP_TOL, f"{name} weights after 3 steps")


@pytest.mark.parametrize("name", DROPOUT)
def test_dropout_changes_nothing_at_inference(name, ref, float64):
    """predict() of LSTM(dropout=0.3) equals predict() of the same weights without dropout."""
    x = ref[cases.SEQUENTIAL[name]["x"]]
    with_dropout = keras_model(name, ref).predict(x, verbose=0)
    without = keras_model(name, ref, drop=0.0).predict(x, verbose=0)
    np.testing.assert_array_equal(with_dropout, without)
    assert max_error(with_dropout, ref[f"{name}/out"]) <= OUTPUT_TOL


def test_lstm_dropout_training_pass_with_keras_mask(ref, float64, backend):
    """Keras' training pass of LSTM(4, dropout=0.3) equals a dropout-free LSTM fed
    embedding * M, with M the (batch, features) mask Keras drew: one mask for the whole
    sequence and all four gates, values 0 or 1/(1-p). Checked on the LSTM and Dense weights."""
    import nprnn

    name = "lstm_dropout"
    weights = unpack(ref[f"{name}/init"], ref[f"{name}/shapes"])
    mask = ref[f"{name}/dropout_mask/0"]
    assert mask.shape == (cases.B, cases.E)
    np.testing.assert_allclose(np.unique(mask), [0.0, 1 / 0.7])
    x = weights[0][ref["x_ids"]] * mask[:, None, :]
    model = nprnn.Sequential([nprnn.Input((cases.T, cases.E)), nprnn.layers.LSTM(cases.H),
                              nprnn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=nprnn.optimizers.RMSprop(learning_rate=cases.LR),
                  loss="binary_crossentropy")
    model.set_weights(weights[1:])
    grads = model.compute_gradients(x, ref["y"])
    expected = unpack(ref[f"{name}/train_grad"], ref[f"{name}/shapes"])[1:]
    assert_arrays_close(grads, expected, GRAD_TOL, "LSTM/Dense gradients under Keras' mask")
    loss = first(model.evaluate(x, ref["y"], batch_size=cases.B, verbose=0))
    assert abs(loss - float(ref[f"{name}/train_loss"])) <= OUTPUT_TOL


@pytest.mark.parametrize("name", list(cases.SEQUENTIAL))
def test_model_from_keras_json(name, ref, float64):
    """nprnn reads Keras 3's model.to_json() and builds a model that predicts as Keras."""
    import nprnn

    model = nprnn.models.model_from_json(str(ref[f"{name}/config"]))
    model.set_weights(unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]))
    x = ref[cases.SEQUENTIAL[name]["x"]]
    assert max_error(model.predict(x, verbose=0), ref[f"{name}/out"]) <= OUTPUT_TOL


# --------------------------------------------------------------------------------------
# Eager layer calls: states, initial_state, masks, go_backwards, Bidirectional
# --------------------------------------------------------------------------------------
def eager_call(layer, ref, case):
    kwargs = {"mask": None if case["mask"] is None else ref[case["mask"]], "training": False}
    if case["state"]:
        kwargs["initial_state"] = [ref[s] for s in case["state"]]
    return as_list(layer(ref[case["x"]], **kwargs))


@pytest.mark.parametrize("name", list(cases.EAGER))
def test_eager_call(name, ref, float64, backend):
    """layer(x, initial_state=..., mask=..., training=False) returns Keras' arrays:
    [output] or [output, *states] with return_state."""
    import nprnn

    case = cases.EAGER[name]
    layer = case["layer"](nprnn)
    eager_call(layer, ref, case)  # builds the layer
    layer.set_weights(unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]))
    got = eager_call(layer, ref, case)
    expected = unpack(ref[f"{name}/out"], ref[f"{name}/out_shapes"])
    assert_arrays_close(got, expected, OUTPUT_TOL, name)


def probe(shape, i):
    """The fixture's fixed weights R_i of L = sum_i sum(out_i * R_i) (a cosine ramp)."""
    n = int(np.prod(shape))
    return np.cos(1.0 + 0.7 * np.arange(n) + i).reshape(shape)


WITH_STATES = [name for name, case in cases.EAGER.items() if case["state"]]


@pytest.mark.parametrize("name", WITH_STATES)
def test_eager_gradients(name, ref, float64, backend):
    """dL/dweights and dL/d(initial states) of L = sum_i sum(out_i * R_i) after an eager
    call with initial_state (and a mask), from nprnn's backward, equal Keras' GradientTape's."""
    import nprnn

    case = cases.EAGER[name]
    layer = case["layer"](nprnn)
    eager_call(layer, ref, case)  # builds the layer
    layer.set_weights(unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]))
    out = eager_call(layer, ref, case)
    probes = [probe(np.shape(o), i) for i, o in enumerate(out)]
    layer.backward(probes if len(probes) > 1 else probes[0], need_input_gradient=True)
    if isinstance(layer, nprnn.layers.Bidirectional):
        dstates = [*layer.forward_layer.initial_state_gradients,
                   *layer.backward_layer.initial_state_gradients]
    else:
        dstates = list(layer.initial_state_gradients)
    assert_arrays_close(layer.grads, unpack(ref[f"{name}/grad"], ref[f"{name}/shapes"]),
                        GRAD_TOL, f"{name} weight gradients")
    state_shapes = ["x".join(str(d) for d in ref[key].shape) for key in case["state"]]
    assert_arrays_close(dstates, unpack(ref[f"{name}/grad_state"], state_shapes), GRAD_TOL,
                        f"{name} initial-state gradients")


@pytest.mark.parametrize("name", list(cases.STATEFUL))
def test_stateful_layer(name, ref, float64, backend):
    """stateful=True: call 2 starts from call 1's final states; reset_states() zeroes them."""
    import nprnn

    layer = cases.STATEFUL[name](nprnn)
    x, cut = ref["x_float"], cases.STATEFUL_SPLIT
    layer(x[:, :cut])  # builds the layer
    layer.set_weights(unpack(ref[f"{name}/init"], ref[f"{name}/shapes"]))
    layer.reset_states()
    calls = {"call1": layer(x[:, :cut]), "call2": layer(x[:, cut:])}
    layer.reset_states()
    calls["call3"] = layer(x[:, :cut])
    for key, result in calls.items():
        expected = unpack(ref[f"{name}/{key}"], ref[f"{name}/{key}_shapes"])
        assert_arrays_close(as_list(result), expected, OUTPUT_TOL, f"{name} {key}")


def test_masks_of_masking_and_embedding(ref, float64):
    """Masking(0.): a step is masked when ALL its features equal mask_value, and masked steps
    are set to 0; Embedding(mask_zero=True): the mask is ids != 0."""
    import nprnn

    masking = nprnn.layers.Masking(mask_value=0.0)
    xm = ref["x_float_masked"]
    np.testing.assert_array_equal(np.asarray(masking.compute_mask(xm)),
                                  ref["masking/compute_mask"])
    assert max_error(masking(xm), ref["masking/out"]) == 0.0
    embedding = nprnn.layers.Embedding(cases.V, cases.E, mask_zero=True)
    np.testing.assert_array_equal(np.asarray(embedding.compute_mask(ref["x_pre"])),
                                  ref["embedding/compute_mask"])


def test_fixture_records_keras_masked_step_semantics(ref):
    """What the fixture holds about masks (Keras 3, TensorFlow backend), asserted on Keras'
    own numbers so the nprnn tests above are read with the right expectations:
    a masked step repeats the previous OUTPUT, which is 0 before the first unmasked step even
    when an initial_state is given, while the STATES carry the initial state forward."""
    mask = ref["mask_pre"]
    out, h, c = unpack(ref["lstm_init_mask_pre/out"], ref["lstm_init_mask_pre/out_shapes"])
    leading = ~np.logical_or.accumulate(mask, axis=1)
    assert leading.any()
    assert np.all(out[leading] == 0.0)
    empty = ~mask.any(axis=1)  # a row with no unmasked step
    np.testing.assert_array_equal(h[empty], ref["h0"][empty])
    np.testing.assert_array_equal(c[empty], ref["c0"][empty])
    last, h_last, _ = unpack(ref["lstm_init_mask_last/out"],
                             ref["lstm_init_mask_last/out_shapes"])
    assert np.all(last[empty] == 0.0) and not np.allclose(h_last[empty], 0.0)
    # zero_output_for_mask=True: masked steps output 0 everywhere.
    (zeroed,) = unpack(ref["lstm_mask_zero_output/out"], ref["lstm_mask_zero_output/out_shapes"])
    assert np.all(zeroed[~ref["mask_mid"]] == 0.0)
    # go_backwards: the last returned step is the final state (processing order).
    seq, h_back, _ = unpack(ref["lstm_back_seq_state/out"], ref["lstm_back_seq_state/out_shapes"])
    np.testing.assert_array_equal(seq[:, -1], h_back)


# --------------------------------------------------------------------------------------
# Keras 3 .keras archives, both ways
# --------------------------------------------------------------------------------------
def archive_listing(path):
    """Zip members, config layer classes, and the HDF5 datasets of model.weights.h5."""
    import io

    import h5py

    with zipfile.ZipFile(path) as archive:
        members = sorted(archive.namelist())
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as handle:
            datasets = {}
            handle.visititems(lambda n, o: datasets.__setitem__(n, o.shape)
                              if isinstance(o, h5py.Dataset) else None)
    classes = [layer["class_name"] for layer in config["config"]["layers"]]
    return members, config, metadata, datasets, classes


@pytest.mark.parametrize("name", list(cases.ARCHIVES))
def test_keras3_archive_loads_in_nprnn(name, ref):
    import nprnn

    model = nprnn.models.load_model(FIXTURES / f"{name}.keras")
    shapes = ref[f"{name}/shapes"]
    assert_arrays_close(model.get_weights(), unpack(ref[f"{name}/weights"], shapes), 0.0,
                        f"{name} weights")
    assert max_error(model.predict(ref["x_ids"], verbose=0), ref[f"{name}/probs"]) <= 1e-6
    assert model.optimizer.iterations == int(ref[f"{name}/iterations"])
    assert_arrays_close(model.optimizer.get_state()["velocity"],
                        unpack(ref[f"{name}/velocity"], shapes), 0.0, f"{name} velocities")


@pytest.mark.parametrize("name", list(cases.ARCHIVES))
def test_nprnn_writes_keras3_archive_layout(name, ref, tmp_path):
    """nprnn's .keras holds the members, layer classes and HDF5 paths/shapes of Keras' own."""
    import nprnn

    model = cases.ARCHIVES[name](nprnn)
    model.compile(optimizer=nprnn.optimizers.RMSprop(learning_rate=cases.LR),
                  loss="binary_crossentropy", metrics=["accuracy"])
    model.set_weights(unpack(ref[f"{name}/weights"], ref[f"{name}/shapes"]))
    model.train_on_batch(ref["x_ids"], ref["y"])
    model.train_on_batch(ref["x_ids"], ref["y"])
    path = tmp_path / f"{name}.keras"
    model.save(path)
    members, _, metadata, datasets, classes = archive_listing(path)
    k_members, _, k_metadata, k_datasets, k_classes = archive_listing(FIXTURES / f"{name}.keras")
    assert members == k_members
    assert set(k_metadata) <= set(metadata)
    assert classes == k_classes
    assert datasets == k_datasets


def test_fixture_archives_have_keras3_layout(ref):
    """The layout nprnn must read and write (Keras 3.15, Sequential, RMSprop)."""
    members, config, metadata, datasets, classes = archive_listing(FIXTURES / "keras3_lstm.keras")
    assert members == ["config.json", "metadata.json", "model.weights.h5"]
    assert metadata["keras_version"].startswith("3.")
    assert config["class_name"] == "Sequential"
    assert classes == ["InputLayer", "Embedding", "LSTM", "Dense"]
    h, e, v = cases.H, cases.E, cases.V
    assert datasets == {
        "layers/embedding/vars/0": (v, e),
        "layers/lstm/cell/vars/0": (e, 4 * h), "layers/lstm/cell/vars/1": (h, 4 * h),
        "layers/lstm/cell/vars/2": (4 * h,),
        "layers/dense/vars/0": (h, 1), "layers/dense/vars/1": (1,),
        "optimizer/vars/0": (), "optimizer/vars/1": (),  # iteration, learning_rate
        "optimizer/vars/2": (v, e), "optimizer/vars/3": (e, 4 * h),
        "optimizer/vars/4": (h, 4 * h), "optimizer/vars/5": (4 * h,),
        "optimizer/vars/6": (h, 1), "optimizer/vars/7": (1,),
    }
    _, _, _, gru, _ = archive_listing(FIXTURES / "keras3_gru.keras")
    assert gru["layers/gru/cell/vars/2"] == (2, 3 * h)  # reset_after=True: (2, 3H) bias
