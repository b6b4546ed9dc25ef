"""nprnn.sklearn: RNNClassifier and PadSequences follow scikit-learn's conventions."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import nprnn
from nprnn.sklearn import PadSequences, RNNClassifier

SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])

# A fast configuration for scikit-learn's checks (the defaults are the book's: 100 epochs
# at learning_rate 1e-4 with early stopping, minutes on IMDB and too slow for ~60 checks).
FAST = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-2, "random_state": 0}

EXPECTED_FAILED = {
    "check_decision_proba_consistency":
        "feeds make_blobs' real-valued features without applying the estimator's tags; "
        "RNNClassifier takes integer token ids (integral floats are accepted) and refuses "
        "fractional values rather than silently truncating them",
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED if isinstance(estimator, RNNClassifier) else {}


if SKLEARN_VERSION >= (1, 6):
    @parametrize_with_checks([RNNClassifier(**FAST), PadSequences()],
                             expected_failed_checks=_expected_failed_checks)
    def test_sklearn_estimator_checks(estimator, check):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            check(estimator)


def last_token_data(n=240, timesteps=12, vocabulary=20, seed=0):
    """Label = whether the last token is small: a SimpleRNN learns it in a few epochs."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, vocabulary, size=(n, timesteps))
    y = np.where(X[:, -1] < vocabulary // 2, "pos", "neg")
    return X, y


def ragged_data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        length = int(rng.integers(3, 30))
        seq = [1] + rng.integers(2, 40, size=length - 1).tolist()
        X.append(seq)
        y.append(int(seq[-1] < 20))
    return X, np.asarray(y)


def test_defaults_are_the_books_model():
    params = RNNClassifier().get_params()
    assert params == {"input_dim": None, "embedding_dim": 16, "units": 8,
                      "optimizer": "rmsprop", "learning_rate": 1e-4, "epochs": 100,
                      "batch_size": 64, "validation_fraction": 0.2, "patience": 3,
                      "random_state": None, "verbose": 0}
    X = np.random.default_rng(0).integers(0, 500, size=(40, 100))
    X[0, 0] = 499
    y = np.arange(40) % 2
    clf = RNNClassifier(input_dim=500, epochs=1, random_state=0).fit(X, y)
    model = clf.model_
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "SimpleRNN",
                                                                "Dense"]
    assert model.count_params() == 8209  # the book's 8,000 + 200 + 9
    assert model.layers[-1].activation == "sigmoid"
    assert isinstance(model.optimizer, nprnn.optimizers.RMSprop)
    assert model.optimizer.learning_rate == 1e-4
    assert clf.input_dim_ == 500 and clf.n_features_in_ == 100


def test_no_logic_in_init_and_clone_round_trips():
    clf = RNNClassifier(units=-3, optimizer="nope")  # accepted here, refused by fit
    assert clf.units == -3
    twin = clone(RNNClassifier(units=4, embedding_dim=3, random_state=7))
    assert twin.get_params() == RNNClassifier(units=4, embedding_dim=3,
                                              random_state=7).get_params()
    twin.set_params(units=5)
    assert twin.units == 5
    with pytest.raises(ValueError, match="units"):
        clf.fit(np.ones((4, 3), int), [0, 1, 0, 1])


@pytest.mark.parametrize("params,match", [
    ({"units": 0}, "units"), ({"embedding_dim": 1.5}, "embedding_dim"),
    ({"optimizer": "adagrad"}, "optimizer"), ({"learning_rate": 0}, "learning_rate"),
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"patience": -1}, "patience"),
    ({"batch_size": 0}, "batch_size"), ({"epochs": 0}, "epochs"), ({"input_dim": 0},
                                                                   "input_dim"),
])
def test_bad_hyperparameters_fail_in_fit(params, match):
    X, y = last_token_data(20)
    with pytest.raises((TypeError, ValueError), match=match):
        RNNClassifier(**params).fit(X, y)


def test_optimizer_is_looked_up_by_name_in_nprnn_optimizers():
    X, y = last_token_data(20)
    for name, kind in (("adam", nprnn.optimizers.Adam), ("SGD", nprnn.optimizers.SGD)):
        clf = RNNClassifier(optimizer=name, learning_rate=0.03, epochs=1, random_state=0)
        optimizer = clf.fit(X, y).model_.optimizer
        assert isinstance(optimizer, kind) and optimizer.learning_rate == 0.03
    # an instance would be shared by every clone of the estimator (and fit twice)
    with pytest.raises(ValueError, match="optimizer: expected a name"):
        RNNClassifier(optimizer=nprnn.optimizers.RMSprop(), epochs=1).fit(X, y)


def test_fit_predict_with_string_labels():
    X, y = last_token_data()
    clf = RNNClassifier(epochs=15, batch_size=16, learning_rate=1e-2, random_state=0)
    assert clf.fit(X, y) is clf
    np.testing.assert_array_equal(clf.classes_, ["neg", "pos"])
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    predictions = clf.predict(X)
    assert set(predictions) <= {"neg", "pos"}
    np.testing.assert_array_equal(predictions, clf.classes_[(proba[:, 1] > 0.5).astype(int)])
    decision = clf.decision_function(X)
    assert decision.shape == (len(X),)
    np.testing.assert_array_equal(decision > 0, proba[:, 1] > 0.5)
    # predict_proba is the model's own sigmoid output (Keras' model.predict), in float64.
    np.testing.assert_allclose(proba[:, 1], clf.model_.predict(X, verbose=0).ravel(),
                               atol=1e-6)
    assert clf.score(X, y) > 0.85
    assert "val_loss" in clf.history_ and clf.n_iter_ <= 15


def test_fixed_random_state_gives_identical_fits_and_leaves_global_rngs_alone():
    X, y = last_token_data(120)
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 - the global state itself
    nprnn_state = nprnn._random.generator().bit_generator.state
    first = RNNClassifier(epochs=3, batch_size=16, learning_rate=1e-2, random_state=3).fit(X, y)
    second = RNNClassifier(epochs=3, batch_size=16, learning_rate=1e-2, random_state=3).fit(X, y)
    for a, b in zip(first.model_.get_weights(), second.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.history_ == second.history_
    other = RNNClassifier(epochs=3, batch_size=16, learning_rate=1e-2, random_state=4).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    assert nprnn._random.generator().bit_generator.state == nprnn_state


def test_early_stopping_restores_the_best_epoch():
    X, y = last_token_data(120)
    clf = RNNClassifier(epochs=40, batch_size=16, learning_rate=5e-2, patience=2,
                        random_state=0).fit(X, y)
    val_loss = clf.history_["val_loss"]
    assert clf.n_iter_ == len(val_loss) <= 40
    assert clf.best_epoch_ == int(np.argmin(val_loss))
    no_validation = RNNClassifier(epochs=3, batch_size=16, validation_fraction=0.0,
                                  random_state=0).fit(X, y)
    assert no_validation.n_iter_ == 3 and "val_loss" not in no_validation.history_
    assert no_validation.best_epoch_ is None


def test_integral_floats_and_lists_are_token_ids():
    X, y = last_token_data(80)
    clf = RNNClassifier(epochs=2, batch_size=16, random_state=0).fit(X, y)
    ints = clf.predict_proba(X)
    np.testing.assert_array_equal(clf.predict_proba(X.astype(np.float64)), ints)
    np.testing.assert_array_equal(clf.predict_proba(X.tolist()), ints)
    with pytest.raises(ValueError, match="fractional"):
        clf.predict_proba(X + 0.5)
    with pytest.raises(ValueError, match="Negative values"):
        clf.predict_proba(-X)
    with pytest.raises(ValueError, match="outside the vocabulary.*input_dim"):
        clf.predict_proba(X + 100)
    with pytest.raises(ValueError, match="12 features"):
        clf.predict(X[:, :5])


def test_classes_must_be_two():
    X, _ = last_token_data(30)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        RNNClassifier(epochs=1).fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        RNNClassifier(epochs=1).fit(X, np.zeros(30))
    with pytest.raises(ValueError, match=r"ids must be < input_dim=5"):
        RNNClassifier(epochs=1, input_dim=5).fit(X, np.arange(30) % 2)


def test_pad_sequences_transformer_on_ragged_lists():
    X, _ = ragged_data(10)
    pad = PadSequences(maxlen=8)
    out = pad.fit_transform(X)
    assert out.shape == (10, 8) and out.dtype == np.int32
    np.testing.assert_array_equal(out, nprnn.utils.pad_sequences(X, maxlen=8))
    assert list(out[0][-min(8, len(X[0])):]) == X[0][-8:]  # keeps the end, as the book
    longest = PadSequences(maxlen=None).fit(X)
    assert longest.maxlen_ == max(len(s) for s in X)
    assert PadSequences(maxlen=None).fit_transform(X).shape == (10, longest.maxlen_)
    objects = np.empty(3, dtype=object)
    objects[:] = [[1, 2], [3], [4, 5, 6]]  # what imdb.load_data returns
    np.testing.assert_array_equal(PadSequences(maxlen=2).fit_transform(objects),
                                  [[1, 2], [0, 3], [5, 6]])


def test_pipeline_cross_val_score_and_grid_search_on_ragged_sequences():
    X, y = ragged_data(150)
    pipe = make_pipeline(PadSequences(maxlen=20),
                         RNNClassifier(input_dim=40, epochs=8, batch_size=16,
                                       learning_rate=2e-2, random_state=0))
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    search = GridSearchCV(pipe, {"rnnclassifier__units": [2, 6],
                                 "rnnclassifier__embedding_dim": [2, 4]}, cv=cv)
    search.fit(X, y)
    assert set(search.best_params_) == {"rnnclassifier__units",
                                        "rnnclassifier__embedding_dim"}
    assert len(search.cv_results_["mean_test_score"]) == 4
    assert search.best_estimator_.score(X, y) > 0.7
    # Deterministic: the same search again gives the same scores.
    again = GridSearchCV(pipe, search.param_grid, cv=cv).fit(X, y)
    np.testing.assert_array_equal(again.cv_results_["mean_test_score"],
                                  search.cv_results_["mean_test_score"])


def test_fitted_model_saves_as_a_keras_file(tmp_path):
    X, y = last_token_data(60)
    clf = RNNClassifier(epochs=1, batch_size=16, random_state=0).fit(X, y)
    clf.model_.save(tmp_path / "best-embedding-model.h5")
    loaded = nprnn.load_model(tmp_path / "best-embedding-model.h5")
    np.testing.assert_array_equal(loaded.predict(X, verbose=0),
                                  clf.model_.predict(X, verbose=0))


def test_grid_search_example_quick(tmp_path):
    """examples/grid_search.py --quick runs (on a small fake IMDB unless NPRNN_DATA_DIR is
    set) and writes its PNG and JSON."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, MPLBACKEND="Agg", NPRNN_CACHE_DIR=str(tmp_path / "cache"))
    if not env.get("NPRNN_DATA_DIR"):
        rng = np.random.default_rng(0)
        data = {}
        for part, count in (("train", 2200), ("test", 1100)):
            labels = rng.integers(0, 2, size=count)
            texts = np.empty(count, dtype=object)
            for position, label in enumerate(labels):
                words = rng.integers(1, 600, size=int(rng.integers(20, 150)))
                words[rng.random(len(words)) < 0.2] = 10 + 30 * label
                texts[position] = [int(w) for w in words]
            data[f"x_{part}"], data[f"y_{part}"] = texts, labels
        (tmp_path / "data").mkdir()
        np.savez(tmp_path / "data" / "imdb.npz", **data)
        env["NPRNN_DATA_DIR"] = str(tmp_path / "data")
    script = Path(__file__).resolve().parents[1] / "examples" / "grid_search.py"
    output = tmp_path / "out"
    completed = subprocess.run([sys.executable, str(script), "--quick", "--output-dir",
                                str(output)], env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert (output / "grid_search.png").read_bytes().startswith(b"\x89PNG")
    document = json.loads((output / "grid_search.json").read_text())
    assert document["quick"] and len(document["rows"]) == 2
    assert 0 <= document["best"]["test_accuracy"] <= 1
