"""scikit-learn estimators: the book's recurrent classifier and a padding transformer.

``RNNClassifier`` wraps the book's embedding model (chapter 9-2)::

    Embedding(input_dim, 16) -> SimpleRNN(8) -> Dense(1, activation='sigmoid')
    RMSprop(learning_rate=1e-4), binary_crossentropy, batch_size=64,
    EarlyStopping(patience=3, restore_best_weights=True) on a held-out validation part

behind scikit-learn's estimator API, so it works with ``Pipeline``, ``cross_val_score`` and
``GridSearchCV``::

    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from nprnn.sklearn import PadSequences, RNNClassifier

    pipe = make_pipeline(PadSequences(maxlen=100), RNNClassifier(input_dim=500, epochs=20,
                                                                  random_state=0))
    search = GridSearchCV(pipe, {"rnnclassifier__units": [4, 8, 16]}, cv=3)
    search.fit(train_input, train_target)            # ragged token lists, as imdb.load_data

Inputs of ``RNNClassifier`` are padded token sequences: a 2-D array (samples, timesteps) of
non-negative integer ids (floats are accepted when every value is integral, e.g. ``3.0``).
Targets are any two class labels (numbers, strings, booleans); ``classes_`` holds them
sorted, and ``predict_proba`` gives ``P(classes_[1])`` in its second column.
"""

from __future__ import annotations

import contextlib

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from nprnn import _random, callbacks, kernels, layers, optimizers
from nprnn._validation import (
    as_token_ids,
    check_float,
    check_non_negative_int,
    check_positive_int,
    check_verbose,
)
from nprnn.models import Sequential
from nprnn.utils.sequence import pad_sequences

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    _sk_validate_data = None

__all__ = ["PadSequences", "RNNClassifier"]

def _validate_data(estimator, X, reset, **kwargs):
    if _sk_validate_data is not None:
        return _sk_validate_data(estimator, X, reset=reset, **kwargs)
    return estimator._validate_data(X, reset=reset, **kwargs)  # pragma: no cover


def _optional(check, value, name):
    """``check(value, name)``, or None when ``value`` is None."""
    return None if value is None else check(value, name)


@contextlib.contextmanager
def _seeded(seed):
    """Draw nprnn's random numbers (initial weights, shuffles) from a private generator.

    The estimator is then deterministic for a fixed ``random_state`` without reseeding the
    user's global generators (nprnn.utils.set_random_seed would reseed NumPy's and Python's).
    Not safe with threads fitting concurrently in one process (GridSearchCV's default
    process-based ``n_jobs`` is fine).
    """
    previous = _random._generator
    _random._generator = np.random.default_rng(seed)
    try:
        yield
    finally:
        _random._generator = previous


class RNNClassifier(ClassifierMixin, BaseEstimator):
    """The book's Embedding -> SimpleRNN -> Dense(sigmoid) classifier as a scikit-learn estimator.

    Parameters
    ----------
    input_dim : int or None, default None
        Vocabulary size: ids must lie in [0, input_dim). None infers it from the training
        data as ``max id + 1`` (``input_dim_``); pass the book's ``500`` (``num_words``) so
        that ids unseen in a training fold stay valid.
    embedding_dim : int, default 16
    units : int, default 8
        Size of the SimpleRNN's hidden state.
    optimizer : {'rmsprop', 'adam', 'sgd'}, default 'rmsprop'
    learning_rate : float, default 1e-4
    epochs : int, default 100
        Upper bound on the epochs; early stopping usually ends training sooner.
    batch_size : int, default 64
    validation_fraction : float in [0, 1), default 0.2
        Part of the training data held out (stratified, drawn with ``random_state``) to
        monitor ``val_loss``. 0 trains on everything for ``epochs`` epochs, without early
        stopping.
    patience : int or None, default 3
        Early stopping's patience; the best epoch's weights are restored
        (``restore_best_weights=True``). None disables early stopping.
    random_state : int, RandomState instance or None, default None
        Seeds the initial weights, the shuffles and the validation split; a fixed int gives
        identical fits (for one kernel backend).
    verbose : int, default 0
        Passed to the model's ``fit``.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
        Sequence length (timesteps) seen in ``fit``.
    input_dim_ : int
        The vocabulary size used.
    model_ : nprnn.Sequential
        The trained network (``model_.save('best-embedding-model.h5')`` writes a file Keras
        loads).
    history_ : dict
        ``loss``, ``accuracy`` (and ``val_loss``, ``val_accuracy``) per epoch.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int or None
        Epoch (from 0) whose weights were kept by early stopping, else None.
    """

    def __init__(self, input_dim=None, embedding_dim=16, units=8, optimizer="rmsprop",
                 learning_rate=1e-4, epochs=100, batch_size=64, validation_fraction=0.2,
                 patience=3, random_state=None, verbose=0):
        self.input_dim = input_dim
        self.embedding_dim = embedding_dim
        self.units = units
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn's tags ---------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True  # token ids: non-negative integer codes
        tags.input_tags.positive_only = True
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"binary_only": True, "X_types": ["2darray", "categorical"]}

    # -- validation -----------------------------------------------------------------------
    def _check_params(self):
        params = {
            "input_dim": _optional(check_positive_int, self.input_dim, "input_dim"),
            "embedding_dim": check_positive_int(self.embedding_dim, "embedding_dim"),
            "units": check_positive_int(self.units, "units"),
            "learning_rate": check_float(self.learning_rate, "learning_rate", low=0.0,
                                         low_open=True),
            "epochs": check_positive_int(self.epochs, "epochs"),
            "batch_size": check_positive_int(self.batch_size, "batch_size"),
            "validation_fraction": check_float(self.validation_fraction, "validation_fraction",
                                               low=0.0, high=1.0, high_open=True),
            "patience": _optional(check_non_negative_int, self.patience, "patience"),
            "verbose": check_verbose(self.verbose),
        }
        if not isinstance(self.optimizer, str):  # a name: an instance would be shared by clones
            raise ValueError(f"optimizer: expected a name such as 'rmsprop', got "
                             f"{self.optimizer!r}")
        optimizers.get(self.optimizer)  # refuses unknown names, listing the known ones
        params["optimizer"] = self.optimizer
        return params

    def _validate_ids(self, X, reset):
        X = _validate_data(self, X, reset=reset, dtype="numeric", accept_sparse=False,
                           ensure_min_features=1)
        if X.dtype.kind == "b":
            X = X.astype(np.intp)
        if X.size and X.min() < 0:  # scikit-learn's checks look for "Negative values"
            raise ValueError(f"X: Negative values in data passed to {type(self).__name__}: "
                             f"token ids must be >= 0, found {X.min()}")
        if X.dtype.kind == "f" and X.size and X.max() >= np.iinfo(np.int64).max:
            raise ValueError("X: token ids too large")
        return as_token_ids(X, "X").astype(np.int64, copy=False)

    # -- fitting --------------------------------------------------------------------------
    def _build(self, params, timesteps):
        model = Sequential(name="rnn_classifier")
        model.add(layers.Embedding(self.input_dim_, params["embedding_dim"],
                                   input_length=timesteps, name="embedding"))
        model.add(layers.SimpleRNN(params["units"], name="simple_rnn"))
        model.add(layers.Dense(1, activation="sigmoid", name="dense"))
        optimizer = optimizers.get(params["optimizer"])
        optimizer.learning_rate = params["learning_rate"]
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
        return model

    def fit(self, X, y):
        """Train the network on padded sequences ``X`` (n, timesteps) and labels ``y``."""
        params = self._check_params()
        if y is None:
            raise ValueError("RNNClassifier requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"y: Only binary classification is supported: RNNClassifier has "
                             f"one sigmoid output and needs exactly 2 classes; got "
                             f"{len(classes)} class(es) ({type_of_target(y)} targets)")
        X = self._validate_ids(X, reset=True)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y: expected {len(X)} labels (one per row of X), got shape "
                             f"{y.shape}")
        self.classes_ = classes
        targets = (y == self.classes_[1]).astype(np.float32)
        largest = int(X.max()) if X.size else 0
        if params["input_dim"] is None:
            self.input_dim_ = largest + 1
        else:
            if largest >= params["input_dim"]:
                raise ValueError(f"X: token id {largest} is outside the vocabulary: ids must "
                                 f"be < input_dim={params['input_dim']}")
            self.input_dim_ = params["input_dim"]

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        x_fit, y_fit, validation = X, targets, None
        use_validation = params["validation_fraction"] > 0
        if use_validation:
            n_val = int(np.ceil(params["validation_fraction"] * len(X)))
            if n_val < 1 or len(X) - n_val < 1:
                use_validation = False
        if use_validation:
            counts = np.bincount(targets.astype(np.intp), minlength=2)
            stratify = targets if counts.min() >= 2 and n_val >= 2 else None
            x_fit, x_val, y_fit, y_val = train_test_split(
                X, targets, test_size=n_val, random_state=seed % (2**32 - 1),
                stratify=stratify)
            validation = (x_val, y_val)

        with _seeded(seed):
            model = self._build(params, X.shape[1])
            fit_callbacks = []
            stopper = None
            if validation is not None and params["patience"] is not None:
                stopper = callbacks.EarlyStopping(monitor="val_loss",
                                                  patience=params["patience"],
                                                  restore_best_weights=True)
                fit_callbacks.append(stopper)
            history = model.fit(x_fit, y_fit, epochs=params["epochs"],
                                batch_size=params["batch_size"], validation_data=validation,
                                callbacks=fit_callbacks, verbose=params["verbose"])
        self.model_ = model
        self.history_ = {key: list(values) for key, values in history.history.items()}
        self.n_iter_ = len(history.epoch)
        self.best_epoch_ = (int(stopper.best_epoch) if stopper is not None
                            and stopper.best_weights is not None else None)
        return self

    # -- prediction -----------------------------------------------------------------------
    def _check_ids_in_vocabulary(self, X):
        if X.size and X.max() >= self.input_dim_:
            raise ValueError(
                f"X: token id {int(X.max())} is outside the vocabulary the model was trained "
                f"with (ids < {self.input_dim_}); pass input_dim explicitly (e.g. 500, the "
                "num_words of imdb.load_data) so that every fold shares one vocabulary")

    def decision_function(self, X):
        """The logit of ``P(classes_[1])``: the last layer's pre-activation, shape (n,)."""
        check_is_fitted(self)
        X = self._validate_ids(X, reset=False)
        self._check_ids_in_vocabulary(X)
        logits = np.empty(len(X), dtype=np.float64)
        chunk = 1024
        for start in range(0, len(X), chunk):
            part = X[start:start + chunk]
            # the per-layer forward pass (model(x)), which leaves the Dense layer's
            # pre-activation in place; predict may take the fused kernels, which do not
            self.model_(part)
            logits[start:start + len(part)] = self.model_.layers[-1].preactivation.ravel()
        return logits

    def predict_proba(self, X):
        """Probabilities of ``classes_[0]`` and ``classes_[1]``, shape (n, 2)."""
        logits = self.decision_function(X)
        positive = kernels.active().sigmoid(logits)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X):
        """``classes_[1]`` where its probability exceeds 0.5 (Keras' accuracy threshold)."""
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(np.intp)]


class PadSequences(TransformerMixin, BaseEstimator):
    """``pad_sequences`` as a scikit-learn transformer: ragged token lists -> (n, maxlen) ids.

    Parameters are those of :func:`nprnn.utils.sequence.pad_sequences` (Keras' semantics:
    padding and truncation at the front by default, so the book's ``maxlen=100`` keeps each
    review's last 100 tokens). ``maxlen=None`` pads to the longest sequence seen in ``fit``
    (``maxlen_``). Accepts a list of lists, an object array of sequences (``imdb.load_data``) or
    a 2-D array.
    """

    def __init__(self, maxlen=100, padding="pre", truncating="pre", value=0, dtype="int32"):
        self.maxlen = maxlen
        self.padding = padding
        self.truncating = truncating
        self.value = value
        self.dtype = dtype

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []  # the output dtype is the `dtype` parameter
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"X_types": ["2darray", "categorical"], "requires_fit": False,
                "stateless": True, "preserves_dtype": []}

    def _sequences(self, X, reset):
        """Check X: a list (or object array) of sequences of numbers, or a 2-D array."""
        if hasattr(X, "tocsr") or hasattr(X, "toarray"):
            raise TypeError("X: sparse matrices are not supported; give a list of token "
                            "sequences or a 2-D array")
        if hasattr(X, "to_numpy"):  # pandas
            X = X.to_numpy()
        elif hasattr(X, "__array__") and not hasattr(X, "__len__"):
            X = np.asarray(X)
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise TypeError(f"X: expected a list of token sequences, got {type(X).__name__}")
        if isinstance(X, np.ndarray) and X.dtype != object:
            if X.ndim != 2:
                raise ValueError(f"X: expected a list of sequences or a 2-D array, got a "
                                 f"{X.ndim}-D array of shape {X.shape}. Reshape your data "
                                 "(one row per sequence).")
            if X.shape[1] == 0:
                raise ValueError(f"X: 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                                 "required.")
            if reset:
                self.n_features_in_ = X.shape[1]
            sequences = X
        else:
            sequences = list(X)
        if len(sequences) == 0:
            raise ValueError("X: Found array with 0 sample(s) while a minimum of 1 is "
                             "required: give at least one sequence")
        for position, item in enumerate(sequences):
            if isinstance(item, (str, bytes)) or not hasattr(item, "__len__"):
                raise ValueError(f"X: expected every item to be a sequence of token ids, item "
                                 f"{position} is {type(item).__name__} {item!r}. Reshape your "
                                 "data (one row per sequence).")
            values = np.asarray(item)
            if values.dtype == object:
                try:
                    values = values.astype(np.float64)
                except (TypeError, ValueError) as error:
                    raise TypeError(f"X: sequence {position}: float() argument must be a "
                                    f"string or a real number ({error})") from None
            if values.dtype.kind == "c":
                raise ValueError(f"X: sequence {position}: Complex data not supported")
            if values.dtype.kind not in "biuf":
                raise TypeError(f"X: sequence {position}: expected numbers, got dtype "
                                f"{values.dtype}")
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                raise ValueError(f"X: sequence {position}: Input contains NaN or infinity")
        return sequences

    def fit(self, X, y=None):
        """Check X and record ``maxlen_`` (the longest sequence when ``maxlen`` is None)."""
        X = self._sequences(X, reset=True)
        if self.maxlen is None:
            self.maxlen_ = max((len(s) for s in X), default=0)
        else:
            self.maxlen_ = check_positive_int(self.maxlen, "maxlen")
        return self

    def transform(self, X):
        """Pad and truncate every sequence to ``maxlen_``: an array (n, ``maxlen_``)."""
        X = self._sequences(X, reset=False)
        maxlen = getattr(self, "maxlen_", None)
        if maxlen is None and self.maxlen is not None:
            maxlen = check_positive_int(self.maxlen, "maxlen")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and isinstance(X, np.ndarray) and X.shape[1] != expected:
            raise ValueError(f"X has {X.shape[1]} features, but PadSequences is expecting "
                             f"{expected} features as input.")
        return pad_sequences(X, maxlen=maxlen, dtype=self.dtype, padding=self.padding,
                             truncating=self.truncating, value=self.value)
