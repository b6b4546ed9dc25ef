"""nprnn computes what Keras computes: outputs, loss, gradients and RMSprop steps.

The reference numbers come from Keras 3.15.1 on TensorFlow 2.21.0
(``tests/fixtures/keras_parity.npz``, written by ``tests/fixtures/make_keras_fixtures.py``;
TensorFlow is not needed here). Both of the book's models start from Keras' own initial
weights, on one batch of 8 IMDB-like sequences padded to 100, and the checks run under both
kernel backends. Keras' steps were taken with dense gradients; see the RMSprop docstring for
what Keras 3's ``fit`` does differently with an Embedding's sparse gradient.

Tolerances are about twice the largest error measured over both models and both backends
(``pytest -s -k parity_report`` prints the table); the measured figure stands next to each.
The errors are float32 round-off: one or two units in the last place of the values.
"""

from pathlib import Path

import numpy as np
import pytest

import nprnn as keras

FIXTURE = Path(__file__).parent / "fixtures" / "keras_parity.npz"
EMB_NAMES = ["embeddings", "rnn_kernel", "rnn_recurrent_kernel", "rnn_bias", "dense_kernel",
             "dense_bias"]
NAMES = {"oh_": EMB_NAMES[1:], "emb_": EMB_NAMES}
OUTPUT_TOL = 2.4e-7  # measured 1.19e-7 (predict and __call__; dense and sparse one-hot)
LOSS_TOL = 1.2e-7  # measured 5.96e-8 on the NumPy backend (1 ulp of 0.69), 0 on Numba
GRAD_TOL = 5e-7  # measured 2.46e-7
STEP_TOL = 6e-8  # measured 2.98e-8 (weights after 1 and 3 steps, also through fit)
VELOCITY_TOL = 1.2e-8  # measured 5.82e-9 (RMSprop accumulator after step 1)


@pytest.fixture(scope="module")
def ref():
    with np.load(FIXTURE, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def book_model(prefix, ref):
    """The book's model (chapter 9-2), compiled as the book does, with Keras' initial weights."""
    if prefix == "oh_":
        model = keras.Sequential()
        model.add(keras.layers.SimpleRNN(8, input_shape=(100, 500)))
        model.add(keras.layers.Dense(1, activation="sigmoid"))
    else:
        model = keras.Sequential()
        model.add(keras.layers.Embedding(500, 16, input_length=100))
        model.add(keras.layers.SimpleRNN(8))
        model.add(keras.layers.Dense(1, activation="sigmoid"))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                  loss="binary_crossentropy", metrics=["accuracy"])
    model.set_weights([ref[f"{prefix}init_{n}"] for n in NAMES[prefix]])
    return model


def inputs(prefix, ref, route="dense"):
    if prefix == "emb_":
        return ref["x_ids"]
    return keras.utils.to_categorical(ref["x_ids"], 500, sparse=route == "sparse")


def max_error(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def test_fixture_batch_is_padded_as_keras_pads(ref):
    """x_ids = keras.utils.pad_sequences(raw, maxlen=100): nprnn's padding gives the same."""
    raw = np.split(ref["raw_tokens"], np.cumsum(ref["raw_lengths"])[:-1])
    np.testing.assert_array_equal(keras.utils.pad_sequences(raw, maxlen=100), ref["x_ids"])


@pytest.mark.parametrize("prefix", ["oh_", "emb_"])
def test_weights_follow_keras_order_and_shapes(prefix, ref):
    model = book_model(prefix, ref)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [ref[f"{prefix}init_{n}"].shape for n in NAMES[prefix]]
    for name, w in zip(NAMES[prefix], weights):
        np.testing.assert_array_equal(w, ref[f"{prefix}init_{name}"])
    assert model.count_params() == {"oh_": 4081, "emb_": 8209}[prefix]


@pytest.mark.parametrize("prefix", ["oh_", "emb_"])
def test_outputs_and_loss(prefix, ref, backend):
    model = book_model(prefix, ref)
    x = inputs(prefix, ref)
    probs = model.predict(x, verbose=0)
    assert probs.shape == (8, 1) and probs.dtype == np.float32
    assert max_error(probs, ref[f"{prefix}probs"]) <= OUTPUT_TOL
    assert max_error(model(x), ref[f"{prefix}probs"]) <= OUTPUT_TOL
    loss, accuracy = model.evaluate(x, ref["y"], verbose=0)
    assert abs(loss - float(ref[f"{prefix}loss"])) <= LOSS_TOL
    keras_accuracy = np.mean((ref[f"{prefix}probs"].ravel() > 0.5) == (ref["y"] > 0.5))
    assert accuracy == pytest.approx(keras_accuracy)


def test_one_hot_routes_agree_with_keras(ref, backend):
    """The index-backed one-hot (to_categorical(..., sparse=True)) gives Keras' numbers too."""
    model = book_model("oh_", ref)
    x = inputs("oh_", ref, route="sparse")
    assert max_error(model.predict(x, verbose=0), ref["oh_probs"]) <= OUTPUT_TOL
    grads = model.compute_gradients(x, ref["y"])
    for name, g in zip(NAMES["oh_"], grads):
        assert max_error(g, ref[f"oh_grad_{name}"]) <= GRAD_TOL, name


@pytest.mark.parametrize("prefix", ["oh_", "emb_"])
def test_gradients(prefix, ref, backend):
    model = book_model(prefix, ref)
    grads = model.compute_gradients(inputs(prefix, ref), ref["y"])
    assert len(grads) == len(NAMES[prefix])
    for name, g in zip(NAMES[prefix], grads):
        expected = ref[f"{prefix}grad_{name}"]
        assert g.shape == expected.shape, name
        assert max_error(g, expected) <= GRAD_TOL, name
    # The weights did not move.
    for name, w in zip(NAMES[prefix], model.get_weights()):
        np.testing.assert_array_equal(w, ref[f"{prefix}init_{name}"])


@pytest.mark.parametrize("prefix", ["oh_", "emb_"])
def test_rmsprop_steps(prefix, ref, backend):
    """1 and 3 RMSprop(1e-4) steps on the batch: losses before each step, weights after,
    and the accumulator after step 1, as Keras with dense gradients."""
    model = book_model(prefix, ref)
    x, y = inputs(prefix, ref), ref["y"]
    for step in range(3):
        loss, _ = model.train_on_batch(x, y)
        assert abs(loss - float(ref[f"{prefix}step_losses"][step])) <= LOSS_TOL
        if step == 0:
            for name, w in zip(NAMES[prefix], model.get_weights()):
                assert max_error(w, ref[f"{prefix}step1_{name}"]) <= STEP_TOL, name
            for name, v in zip(NAMES[prefix], model.optimizer.get_state()["velocity"]):
                expected = ref[f"{prefix}step1_velocity_{name}"]
                assert max_error(v, expected) <= VELOCITY_TOL, name
    assert model.optimizer.iterations == 3
    for name, w in zip(NAMES[prefix], model.get_weights()):
        assert max_error(w, ref[f"{prefix}step3_{name}"]) <= STEP_TOL, name


def test_fit_one_batch_equals_keras_dense_step(ref, backend):
    """fit() on the whole batch (batch_size=8, no shuffle) takes the same step."""
    model = book_model("emb_", ref)
    model.fit(ref["x_ids"], ref["y"], batch_size=8, epochs=3, shuffle=False, verbose=0)
    for name, w in zip(EMB_NAMES, model.get_weights()):
        assert max_error(w, ref[f"emb_step3_{name}"]) <= STEP_TOL, name


def test_embedding_accumulator_is_the_dense_rule_not_keras3_sparse(ref):
    """nprnn squares each row's summed gradient; Keras 3 on TensorFlow sums the squares of
    the per-occurrence gradients (IndexedSlices). They differ exactly on repeated tokens."""
    model = book_model("emb_", ref)
    grad = model.compute_gradients(ref["x_ids"], ref["y"])[0].astype(np.float64)
    model.train_on_batch(ref["x_ids"], ref["y"])
    velocity = model.optimizer.get_state()["velocity"][0]
    # measured: relative 1.13e-7 (1 ulp of float32) where 0.1 g^2 > 1e-14
    np.testing.assert_allclose(velocity, 0.1 * grad * grad, rtol=2.4e-7, atol=1e-14)
    counts = np.bincount(ref["x_ids"].ravel(), minlength=500)
    sparse = ref["emb_sparse_step1_embeddings"]
    ours = model.get_weights()[0]
    once = counts == 1
    # same where a token occurs once (measured 5.59e-9)
    assert max_error(ours[once], sparse[once]) <= STEP_TOL
    repeated = counts > 1
    # the documented difference (measured 3.14e-4)
    assert max_error(ours[repeated], sparse[repeated]) > 1e-5
    assert max_error(ours[counts == 0], ref["emb_init_embeddings"][counts == 0]) == 0.0


def test_parity_report(ref):
    """The max errors, both models, both backends (``pytest -s`` prints the table)."""
    rows = []
    for backend_name in ("numpy", "numba"):
        previous = keras.config.backend()
        keras.config.set_backend(backend_name)
        try:
            for prefix in ("oh_", "emb_"):
                model = book_model(prefix, ref)
                x = inputs(prefix, ref)
                probs = max_error(model.predict(x, verbose=0), ref[f"{prefix}probs"])
                loss = abs(model.evaluate(x, ref["y"], verbose=0)[0] - float(ref[f"{prefix}loss"]))
                grads = max(max_error(g, ref[f"{prefix}grad_{n}"]) for n, g in
                            zip(NAMES[prefix], model.compute_gradients(x, ref["y"])))
                model.train_on_batch(x, ref["y"])
                step1 = max(max_error(w, ref[f"{prefix}step1_{n}"])
                            for n, w in zip(NAMES[prefix], model.get_weights()))
                model.train_on_batch(x, ref["y"])
                model.train_on_batch(x, ref["y"])
                step3 = max(max_error(w, ref[f"{prefix}step3_{n}"])
                            for n, w in zip(NAMES[prefix], model.get_weights()))
                rows.append((backend_name, prefix, probs, loss, grads, step1, step3))
        finally:
            keras.config.set_backend(previous)
    print("\nbackend model   outputs     loss        gradients   step 1      step 3")
    for backend_name, prefix, *errors in rows:
        print(f"{backend_name:7} {prefix[:-1]:7} " + " ".join(f"{e:.2e}   " for e in errors))
    for *_, probs, loss, grads, step1, step3 in rows:
        assert probs <= OUTPUT_TOL and loss <= LOSS_TOL and grads <= GRAD_TOL
        assert step1 <= STEP_TOL and step3 <= STEP_TOL
