"""Bad input gives ValueError or TypeError naming the argument, what was expected, what came.

``CASES`` is the table: (id, call, exception, pattern the message must match). Run this file
as a script to print it with the messages the library gives now::

    .venv/bin/python tests/test_errors.py
"""

from __future__ import annotations

import numpy as np
import pytest

import nprnn as keras
import nprnn.kernels.compiled
from nprnn import config
from nprnn.callbacks import EarlyStopping, ModelCheckpoint
from nprnn.layers import Dense, Embedding, SimpleRNN
from nprnn.optimizers import SGD, Adam, RMSprop
from nprnn.utils import SparseOneHot, pad_sequences, set_random_seed, to_categorical

IDS = np.random.default_rng(0).integers(0, 50, size=(10, 7))
Y = np.arange(10) % 2
ONE_HOT = to_categorical(IDS, 50)


def embedding_model(compiled=True):
    model = keras.Sequential([Embedding(50, 4, input_length=7), SimpleRNN(3),
                              Dense(1, activation="sigmoid")])
    if compiled:
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def one_hot_model(compiled=True):
    model = keras.Sequential([SimpleRNN(3, input_shape=(7, 50)), Dense(1, activation="sigmoid")])
    if compiled:
        model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def unbuilt_model():
    model = keras.Sequential([SimpleRNN(3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy")
    return model


def fit(model=None, x=IDS, y=Y, **kwargs):
    kwargs.setdefault("verbose", 0)
    return (model or embedding_model()).fit(x, y, **kwargs)


def predict(x, model=None):
    return (model or embedding_model()).predict(x, verbose=0)


def mutated_sparse():
    sparse = to_categorical(IDS, 50, sparse=True)
    sparse.indices[0, 0] = -1
    return sparse


def fit_with_checkpoint(tmp_name):
    return fit(callbacks=[ModelCheckpoint(f"/tmp/{tmp_name}-{{val_los:.2f}}.npz")],
               validation_split=0.2)


def weights_with(position, value):
    weights = embedding_model().get_weights()
    weights[position] = value
    return weights


V, T = ValueError, TypeError
CASES = [
    # -- token ids into an Embedding --------------------------------------------------------
    ("ids >= input_dim", lambda: predict(IDS + 45), V, r"x: expected token ids in \[0, 50\)"),
    ("negative id", lambda: predict(IDS - 3), V, r"x: expected token ids >= 0, found -3"),
    ("fractional float ids", lambda: predict(IDS + 0.5), V,
     r"x: expected integer token ids, found fractional values such as \d+\.5"),
    ("NaN float ids", lambda: predict(np.where(IDS > 40, np.nan, IDS)), V, r"x: .*NaN"),
    ("ragged list of ids", lambda: predict([[1, 2, 3], [4, 5]]), V,
     r"x: .*ragged list .*pad_sequences"),
    ("deeply ragged ids", lambda: predict([[1, 2], [3, [4, 5]]]), V, r"x: .*ragged"),
    ("boolean ids", lambda: predict(IDS > 3), T, r"x: expected integer token ids, got dtype bool"),
    ("string ids", lambda: predict(np.array([["a"] * 7])), T, r"x: .*dtype <U1"),
    ("1-D ids", lambda: predict(IDS[0]), V, r"x: an Embedding expects ids of shape \(samples, "),
    ("3-D ids", lambda: predict(IDS[..., None]), V, r"x: an Embedding expects ids of shape"),
    ("scalar id", lambda: predict(3), V, r"x: an Embedding expects ids of shape"),
    ("x None", lambda: predict(None), V, r"x: expected an array, got None"),
    ("no samples", lambda: predict(IDS[:0]), V, r"x: expected at least one sample"),
    ("zero-length sequences", lambda: predict(np.zeros((4, 0), int),
                                              keras.Sequential([Embedding(5, 2), SimpleRNN(2)])),
     V, r"x: expected sequences of at least one step"),
    ("sequences of another length", lambda: predict(IDS[:, :5]), V,
     r"x: the model expects samples of shape \(7,\), got \(5,\)"),
    ("one-hot into an Embedding", lambda: predict(to_categorical(IDS, 50, sparse=True)), T,
     r"x: an Embedding takes token ids"),
    ("uint64 id beyond int64", lambda: predict(np.full((2, 7), 2**64 - 1, np.uint64)), V,
     r"x: expected token ids in \[0, 50\)"),
    ("Embedding layer called on a bad id", lambda: embedding_model().layers[0](IDS + 50),
     V, r"inputs: expected token ids in \[0, 50\)"),
    ("compiled gather, id out of range",
     lambda: keras.kernels.compiled.gather_rows(np.zeros((5, 2), np.float32), np.array([[7]])),
     V, r"ids: every id must lie in \[0, 5\)"),
    # -- arrays into a SimpleRNN without an Embedding -------------------------------------
    ("2-D integer ids into SimpleRNN", lambda: predict(IDS, one_hot_model()), V,
     r"x: got integer ids of shape \(10, 7\).*Embedding or one-hot encode"),
    ("2-D floats into SimpleRNN", lambda: predict(IDS * 1.0, one_hot_model()), V,
     r"x: SimpleRNN expects 3-D inputs"),
    ("2-D floats into an unbuilt SimpleRNN", lambda: predict(IDS * 1.0, unbuilt_model()), V,
     r"x: SimpleRNN expects 3-D inputs"),
    ("one-hot of depth 60 for input size 50", lambda: predict(to_categorical(IDS, 60),
                                                             one_hot_model()), V,
     r"x: the model expects samples of shape \(7, 50\), got \(7, 60\)"),
    ("SparseOneHot of depth 60", lambda: predict(to_categorical(IDS, 60, sparse=True),
                                                 one_hot_model()), V,
     r"x: the model expects samples of shape \(7, 50\), got \(7, 60\)"),
    ("SparseOneHot changed after creation", lambda: predict(mutated_sparse(), one_hot_model()),
     V, r"x: a SparseOneHot holds ids outside \[0, 50\)"),
    ("NaN input", lambda: predict(np.where(ONE_HOT > 0, np.nan, 0), one_hot_model()), V,
     r"x: expected finite values, found NaN or infinity"),
    ("infinite input", lambda: predict(np.where(ONE_HOT > 0, np.inf, 0), one_hot_model()), V,
     r"x: expected finite values"),
    ("float64 input overflowing float32",
     lambda: predict(ONE_HOT.astype(float) * 1e300, one_hot_model()), V,
     r"x: values up to 1e\+300 overflow float32"),
    ("complex input", lambda: predict(ONE_HOT + 0j, one_hot_model()), T,
     r"x: expected a numeric array, got dtype complex"),
    ("ragged float input", lambda: predict([np.zeros((7, 50)), np.zeros((6, 50))],
                                           one_hot_model()), V, r"x: .*ragged"),
    # -- targets ----------------------------------------------------------------------------
    ("x and y of different lengths", lambda: fit(y=Y[:8]), V,
     r"y: expected 10 targets \(one per sample of x\), got 8"),
    ("fit without y", lambda: fit(y=None), V, r"x, y: fit needs both"),
    ("evaluate without y", lambda: embedding_model().evaluate(IDS, None, verbose=0), V,
     r"y: expected 10 targets .*got None"),
    ("evaluate without x", lambda: embedding_model().evaluate(None, Y, verbose=0), V,
     r"x: evaluate needs inputs, got None"),
    ("label 2 for binary cross-entropy", lambda: fit(y=Y * 2), V,
     r"y: binary_crossentropy expects targets in \[0, 1\]"),
    ("label -0.5", lambda: fit(y=Y - 0.5), V,
     r"y: binary_crossentropy expects targets in \[0, 1\]"),
    ("NaN label", lambda: fit(y=np.where(Y > 0, np.nan, 0)), V, r"y: expected finite targets"),
    ("string labels", lambda: fit(y=["a"] * 10), T, r"y: expected numeric targets, got dtype <U1"),
    ("labels of shape (10, 2)", lambda: fit(y=np.zeros((10, 2))), V,
     r"y: expected shape \(10,\) or \(10, 1\), got \(10, 2\)"),
    ("scalar label", lambda: fit(y=1), V, r"y: expected 10 targets .*got a scalar"),
    ("ragged labels", lambda: fit(y=[[0], [1, 0]] + [[0]] * 8), V, r"y: .*ragged"),
    ("validation_data of the wrong shape", lambda: fit(validation_data=(IDS[:, :5], Y)), V,
     r"validation_data\[0\]: the model expects samples of shape \(7,\), got \(5,\)"),
    ("validation_data with short y", lambda: fit(validation_data=(IDS, Y[:3])), V,
     r"validation_data\[1\]: expected 10 targets"),
    ("validation_data (x, None)", lambda: fit(validation_data=(IDS, None)), V,
     r"validation_data\[1\]: .*got None"),
    ("validation_data not a pair", lambda: fit(validation_data=IDS), V,
     r"validation_data: expected a tuple \(x_val, y_val\)"),
    ("validation_split 1.0", lambda: fit(validation_split=1.0), V,
     r"validation_split: expected a number in \[0.0, 1.0\)"),
    ("validation_split leaving nothing", lambda: fit(validation_split=0.99), V,
     r"validation_split: 0.99 leaves an empty training or validation set"),
    # -- hyper-parameters -------------------------------------------------------------------
    ("SimpleRNN units 0", lambda: SimpleRNN(0), V, r"units: expected a positive int, got 0"),
    ("SimpleRNN units 2.5", lambda: SimpleRNN(2.5), T,
     r"units: expected a positive int, got float"),
    ("Dense units 1.0", lambda: Dense(1.0), T, r"units: expected a positive int, got float 1.0"),
    ("Embedding input_dim 0", lambda: Embedding(0, 4), V, r"input_dim: expected a positive int"),
    ("Embedding output_dim -1", lambda: Embedding(5, -1), V, r"output_dim: expected a positive"),
    ("Embedding input_length 0", lambda: Embedding(5, 2, input_length=0), V, r"input_length: "),
    ("input_shape with a zero", lambda: SimpleRNN(3, input_shape=(0, 5)), V,
     r"input_shape entries: expected a positive int, got 0"),
    ("input_shape an int", lambda: SimpleRNN(3, input_shape=5), T,
     r"input_shape: expected a tuple of ints, got 5"),
    ("input_shape a string", lambda: SimpleRNN(3, input_shape="ab"), T, r"input_shape: "),
    ("batch_input_shape an int", lambda: SimpleRNN(3, batch_input_shape=5), T,
     r"batch_input_shape: expected a tuple of ints"),
    ("unknown Dense activation", lambda: Dense(1, activation="swish"), V,
     r"activation: expected one of .*'softmax'.*, got 'swish'"),
    ("unknown SimpleRNN activation", lambda: SimpleRNN(2, activation="softmax"), V,
     r"activation: expected one of .*'relu'.*, got 'softmax'"),
    ("layer dtype int32", lambda: Dense(1, dtype="int32"), V,
     r"dtype: expected 'float32' or 'float64', got 'int32'"),
    ("layer dtype nonsense", lambda: Dense(1, dtype="foo"), T, r"dtype: expected 'float32'"),
    ("trainable 'no'", lambda: Dense(1, trainable="no"), T, r"trainable: expected True or False"),
    ("return_sequences 'yes'", lambda: SimpleRNN(2, return_sequences="yes"), T,
     r"return_sequences: expected True or False"),
    ("unknown initializer", lambda: Dense(1, kernel_initializer="he_normalish"), V,
     r"initializer: expected one of \['constant', 'glorot_normal'"),
    ("unknown layer keyword", lambda: Dense(1, units2=3), T, r"unexpected keyword arguments"),
    ("negative learning rate", lambda: RMSprop(learning_rate=-1e-4), V,
     r"learning_rate: expected a number in \[0.0, inf\], got -0.0001"),
    ("NaN learning rate", lambda: SGD(learning_rate=float("nan")), V, r"learning_rate: .*finite"),
    ("learning rate a string", lambda: Adam("fast"), T, r"learning_rate: expected a number"),
    ("rho 1", lambda: RMSprop(rho=1.0), V, r"rho: expected a number in \[0.0, 1.0\), got 1.0"),
    ("rho -0.1", lambda: RMSprop(rho=-0.1), V, r"rho: expected a number in \[0.0, 1.0\)"),
    ("epsilon 0", lambda: RMSprop(epsilon=0), V, r"epsilon: expected a number in \(0.0, inf\]"),
    ("beta_1 1", lambda: Adam(beta_1=1), V, r"beta_1: expected a number in \[0.0, 1.0\)"),
    ("momentum 1.5", lambda: SGD(momentum=1.5), V, r"momentum: expected a number in \[0.0, 1.0\]"),
    ("nesterov 'yes'", lambda: SGD(nesterov="yes"), T, r"nesterov: expected True or False"),
    ("clipnorm 0", lambda: SGD(clipnorm=0), V, r"clipnorm: expected a number in \(0.0, inf\]"),
    ("clipnorm with global_clipnorm", lambda: SGD(clipnorm=1, global_clipnorm=1), V,
     r"clipnorm, global_clipnorm: expected at most one"),
    ("optimizer name 3", lambda: SGD(name=3), T, r"name: expected a str"),
    ("unknown optimizer name", lambda: embedding_model(False).compile(optimizer="adamw",
                                                                      loss="mse"), V,
     r"optimizer: expected one of \['adam', 'rmsprop', 'sgd'\] or an Optimizer, got 'adamw'"),
    ("optimizer class instead of instance",
     lambda: embedding_model(False).compile(optimizer=RMSprop, loss="mse"), T,
     r"optimizer: got the class RMSprop; pass an instance"),
    ("unknown loss", lambda: embedding_model(False).compile(loss="bce"), V,
     r"loss: expected one of \['binary_crossentropy', 'categorical_crossentropy', "
     r"'mean_squared_error', 'mse', 'sparse_categorical_crossentropy'\]"),
    ("no loss", lambda: embedding_model(False).compile(), V, r"loss: expected one of .*got None"),
    ("unknown metric", lambda: embedding_model(False).compile(loss="mse", metrics=["auc"]), V,
     r"metrics: expected names from \['acc', 'accuracy', 'binary_accuracy', "
     r"'categorical_accuracy', 'sparse_categorical_accuracy'\]"),
    ("metrics a string", lambda: embedding_model(False).compile(loss="mse", metrics="accuracy"),
     T, r"metrics: expected a list such as \['accuracy'\]"),
    ("batch_size 0", lambda: fit(batch_size=0), V, r"batch_size: expected a positive int, got 0"),
    ("batch_size 1.5", lambda: fit(batch_size=1.5), T, r"batch_size: expected a positive int"),
    ("epochs -1", lambda: fit(epochs=-1), V, r"epochs: expected a non-negative int, got -1"),
    ("initial_epoch -1", lambda: fit(initial_epoch=-1), V, r"initial_epoch: "),
    ("verbose 5", lambda: fit(verbose=5), V, r"verbose: expected 0, 1, 2 or 'auto', got 5"),
    ("shuffle 'no'", lambda: fit(shuffle="no"), T, r"shuffle: expected True or False"),
    ("predict batch_size -2", lambda: embedding_model().predict(IDS, batch_size=-2), V,
     r"batch_size: expected a positive int, got -2"),
    ("maxlen 0", lambda: pad_sequences([[1, 2]], maxlen=0), V,
     r"maxlen: expected a positive int or None, got 0"),
    ("maxlen 2.5", lambda: pad_sequences([[1, 2]], maxlen=2.5), T, r"maxlen: expected"),
    ("maxlen too large to allocate", lambda: pad_sequences([[1]], maxlen=10**13), V,
     r"maxlen: an array of shape \(1, 10000000000000\) .*cannot be allocated"),
    ("unknown padding", lambda: pad_sequences([[1, 2]], padding="both"), V,
     r"padding: expected one of \('pre', 'post'\), got 'both'"),
    ("unknown truncating", lambda: pad_sequences([[1, 2]], truncating="middle"), V,
     r"truncating: expected one of \('pre', 'post'\)"),
    ("pad_sequences on an int", lambda: pad_sequences(5), T, r"sequences: expected a list"),
    ("pad_sequences item an int", lambda: pad_sequences([[1], 2]), V,
     r"sequences: expected every item to be a sequence, item 1 is int"),
    ("pad value 'x' for int32", lambda: pad_sequences([[1]], maxlen=3, value="x"), V,
     r"value: 'x' cannot be stored in dtype int32"),
    ("pad value 0.5 for int32", lambda: pad_sequences([[1]], maxlen=3, value=0.5), V,
     r"value: 0.5 is not an integer"),
    ("fractional items for int32", lambda: pad_sequences([[1.5, 2]]), V,
     r"sequences: item 0 holds non-integral values"),
    ("string items for int32", lambda: pad_sequences([["a", "b"]]), V,
     r"sequences: item 0 holds values of dtype <U1"),
    ("ragged item", lambda: pad_sequences([[[1], [2, 3]]]), V, r"sequences: item 0 is ragged"),
    ("negative class id", lambda: to_categorical([1, -1]), V, r"x: expected class ids >= 0"),
    ("class id >= num_classes", lambda: to_categorical([3], num_classes=3), V,
     r"x: expected class ids < num_classes=3, found 3"),
    ("num_classes 0", lambda: to_categorical([0], num_classes=0), V, r"num_classes: expected"),
    ("num_classes 2.5", lambda: to_categorical([0], num_classes=2.5), T, r"num_classes: "),
    ("fractional class id", lambda: to_categorical([0.5]), V, r"x: .*fractional"),
    ("one-hot too large to allocate", lambda: to_categorical([2**40]), V,
     r"x: a dense one-hot array .* pass sparse=True"),
    ("SparseOneHot depth 0", lambda: SparseOneHot([[1]], 0), V, r"num_classes: expected"),
    ("seed -1", lambda: set_random_seed(-1), V, r"seed: expected a non-negative int"),
    ("seed 1.5", lambda: set_random_seed(1.5), T, r"seed: expected an int"),
    ("floatx float16", lambda: config.set_floatx("float16"), V, r"floatx: expected one of"),
    ("backend cuda", lambda: config.set_backend("cuda"), V, r"backend: expected one of"),
    ("deterministic 'yes'", lambda: config.set_deterministic("yes"), T, r"deterministic: "),
    # -- callbacks --------------------------------------------------------------------------
    ("a callback not in a list", lambda: fit(callbacks=EarlyStopping()), T,
     r"callbacks: expected a list of callbacks, got a single Callback"),
    ("a callback that is a string", lambda: fit(callbacks=["early"]), T,
     r"callbacks: item 0 is str, expected an nprnn.callbacks.Callback"),
    ("a callback class", lambda: fit(callbacks=[EarlyStopping]), T,
     r"callbacks: item 0 is the class EarlyStopping, expected an instance"),
    ("EarlyStopping patience -1", lambda: EarlyStopping(patience=-1), V,
     r"patience: expected a non-negative int, got -1"),
    ("EarlyStopping min_delta 'a'", lambda: EarlyStopping(min_delta="a"), T,
     r"min_delta: expected a number"),
    ("EarlyStopping mode 'up'", lambda: EarlyStopping(mode="up"), V,
     r"mode: expected one of \['auto', 'max', 'min'\], got 'up'"),
    ("EarlyStopping monitor 3", lambda: EarlyStopping(monitor=3), T, r"monitor: expected a str"),
    ("EarlyStopping auto mode on an unknown name", lambda: EarlyStopping(monitor="val_f1"), V,
     r"mode: EarlyStopping cannot tell whether monitor='val_f1' should go down or up"),
    ("EarlyStopping baseline 'a'", lambda: EarlyStopping(baseline="a"), T,
     r"baseline: expected a number"),
    ("EarlyStopping restore 'yes'", lambda: EarlyStopping(restore_best_weights="yes"), T,
     r"restore_best_weights: expected True or False"),
    ("ModelCheckpoint filepath ''", lambda: ModelCheckpoint(""), V,
     r"filepath: expected a file path, got an empty string"),
    ("ModelCheckpoint filepath a folder", lambda: ModelCheckpoint("/tmp"), V,
     r"filepath: '/tmp' is a folder"),
    ("ModelCheckpoint filepath None", lambda: ModelCheckpoint(None), T,
     r"filepath: expected a path, got NoneType"),
    ("ModelCheckpoint '{epoch' (bad format)", lambda: ModelCheckpoint("m-{epoch.h5"), V,
     r"filepath: 'm-\{epoch.h5' is not a valid format string"),
    ("ModelCheckpoint positional field", lambda: ModelCheckpoint("m-{}.h5"), V,
     r"filepath: 'm-\{\}.h5' has a positional field"),
    ("ModelCheckpoint field fit never logs", lambda: fit_with_checkpoint("nprnn-errors"), V,
     r"filepath: .* names \['val_los'\], which fit will not log"),
    ("ModelCheckpoint initial_value_threshold 'a'",
     lambda: ModelCheckpoint("m.h5", initial_value_threshold="a"), T,
     r"initial_value_threshold: expected a number"),
    # -- order of calls, weights, files -----------------------------------------------------
    ("fit before compile", lambda: fit(embedding_model(False)), V,
     r"fit: the model must be compiled first"),
    ("evaluate before compile", lambda: embedding_model(False).evaluate(IDS, Y), V,
     r"evaluate: the model must be compiled first"),
    ("train_on_batch before compile", lambda: embedding_model(False).train_on_batch(IDS, Y), V,
     r"train_on_batch: the model must be compiled first"),
    ("predict on a model without layers", lambda: keras.Sequential().predict(IDS), V,
     r"build: the model has no layers"),
    ("get_weights before build", lambda: unbuilt_model().get_weights(), V,
     r"get_weights: the model is not built yet"),
    ("add a non-layer", lambda: keras.Sequential().add("dense"), T,
     r"layer: expected an nprnn Layer, got str"),
    ("build with a zero in input_shape", lambda: unbuilt_model().build((None, 0, 5)), V,
     r"input_shape entries: expected a positive int, got 0"),
    ("set_weights with one array missing", lambda: embedding_model().set_weights(
        embedding_model().get_weights()[:-1]), V,
     r"weights: expected 6 arrays \(embedding.*/embeddings, .*/bias\), got 5"),
    ("set_weights with a wrong shape", lambda: embedding_model().set_weights(
        weights_with(2, np.zeros((4, 3)))), V,
     r"weights: simple_rnn.*/recurrent_kernel expects shape \(3, 3\), got \(4, 3\)"),
    ("set_weights with NaN", lambda: embedding_model().set_weights(
        weights_with(5, np.array([np.nan]))), V, r"weights: dense.*/bias must be finite"),
    ("set_weights with strings", lambda: embedding_model().set_weights(
        weights_with(5, np.array(["a"]))), T, r"weights: dense.*/bias expects real numbers"),
    ("set_weights None", lambda: embedding_model().set_weights(None), T,
     r"weights: expected a list of arrays"),
    ("load_model of a missing file", lambda: keras.load_model("/nonexistent/m.npz"),
     FileNotFoundError, r"filepath: no such file '/nonexistent/m.npz'"),
    ("load_model of a folder", lambda: keras.load_model("/tmp"), V, r"filepath: '/tmp' is a "),
    ("load_model(None)", lambda: keras.load_model(None), T, r"filepath: expected a file path"),
    ("save to ''", lambda: embedding_model().save(""), V, r"filepath: expected a file path"),
    ("save to a folder", lambda: embedding_model().save("/tmp"), V, r"filepath: '/tmp' is a "),
    ("save before build", lambda: unbuilt_model().save("/tmp/nprnn-unbuilt.npz"), V,
     r"save: the model is not built yet"),
    ("optimizer.apply with a missing gradient",
     lambda: SGD().apply([np.zeros(2), np.zeros(3)], [np.zeros(2)]), V,
     r"grads: expected one gradient per weight \(2\), got 1"),
    ("Bidirectional of a layer reading backwards", lambda: keras.layers.Bidirectional(
        keras.layers.LSTM(2, go_backwards=True)), V,
     r"layer: Bidirectional's backward copy reads backwards .*got go_backwards=True"),
    ("Bidirectional with a backward_layer reading forwards", lambda: keras.layers.Bidirectional(
        keras.layers.LSTM(2), backward_layer=keras.layers.LSTM(2)), V,
     r"backward_layer: .* different directions, both have go_backwards=False"),
    ("Bidirectional with a backward_layer returning sequences", lambda: (
        keras.layers.Bidirectional(keras.layers.GRU(2), backward_layer=keras.layers.GRU(
            2, go_backwards=True, return_sequences=True))), V,
     r"backward_layer: return_sequences must be the same as the forward layer's, got True"),
    ("Bidirectional with a stateful backward_layer", lambda: keras.layers.Bidirectional(
        keras.layers.GRU(2), backward_layer=keras.layers.GRU(2, go_backwards=True,
                                                             stateful=True)), V,
     r"backward_layer: stateful must be the same"),
    ("stateful layer called with another batch size", lambda: call_stateful_with_batches(3, 4),
     V, r"inputs: gru.* is stateful and keeps states for batches of 3 sequences, got 4"),
    ("stateful layer, another batch size after reset_states",
     lambda: call_stateful_with_batches(3, None, 2), V,
     r"inputs: gru.* keeps states for batches of 3 sequences, got 2"),
    ("recurrent layer on zero time steps", lambda: keras.layers.LSTM(2)(np.zeros((2, 0, 3))), V,
     r"inputs: lstm.* needs at least one time step, got shape \(2, 0, 3\)"),
    ("loss on arrays of different sizes",
     lambda: keras.losses.BinaryCrossentropy()(np.zeros(3), np.zeros(4)), V,
     r"y_true, y_pred: expected the same number of values"),
]


def call_stateful_with_batches(*sizes):
    """A stateful GRU called on batches of these sizes; None stands for reset_states()."""
    layer = keras.layers.GRU(2, stateful=True)
    for size in sizes:
        if size is None:
            layer.reset_states()
        else:
            layer(np.zeros((size, 4, 3)))


@pytest.fixture(autouse=True)
def _restore_config():
    floatx, backend, deterministic = config.floatx(), config.backend(), config.deterministic()
    yield
    config.set_floatx(floatx)
    config.set_backend(backend)
    config.set_deterministic(deterministic)


@pytest.mark.parametrize("call, error, pattern",
                         [pytest.param(c, e, p, id=i) for i, c, e, p in CASES])
def test_bad_input_raises_a_clear_error(call, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        call()
    assert type(info.value) in (ValueError, TypeError, FileNotFoundError)


def test_soft_labels_in_0_1_are_still_accepted():
    history = fit(y=np.linspace(0, 1, 10))
    assert np.isfinite(history.history["loss"]).all()


def test_a_failed_set_weights_changes_nothing():
    model = embedding_model()
    before = model.get_weights()
    bad = [w + 1 for w in before]
    bad[-1] = np.array([np.inf], np.float32)  # the last array is bad: nothing may be set
    with pytest.raises(ValueError):
        model.set_weights(bad)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    layer = model.layers[1]
    with pytest.raises(ValueError):
        layer.set_weights([w + 1 for w in layer.get_weights()[:2]] + [np.zeros(7)])
    for a, b in zip(before[1:4], layer.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_failed_build_leaves_the_model_unbuilt_and_usable():
    model = keras.Sequential([Dense(4), SimpleRNN(3), Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy")
    with pytest.raises(ValueError, match=r"x: cannot build the model .*SimpleRNN expects 3-D"):
        model.predict(np.zeros((2, 5), np.float32), verbose=0)  # Dense builds, SimpleRNN fails
    assert not model.built and not any(layer.built for layer in model.layers)
    assert model.layers[0].weights == []
    out = model.predict(np.zeros((2, 6, 5), np.float32), verbose=0)
    assert out.shape == (2, 1) and model.layers[0].weights[0].shape == (5, 4)


def test_a_layer_that_cannot_be_built_is_not_added():
    model = keras.Sequential([Embedding(10, 4, input_length=3)])
    with pytest.raises(ValueError, match="initializer: embedding_1/embeddings needs"):
        model.add(Embedding(10, 4, embeddings_initializer=lambda shape, dtype: np.zeros(3)))
    assert len(model.layers) == 1
    model.add(SimpleRNN(2))
    assert model.output_shape == (None, 2)


def test_unbuilt_model_builds_from_data_in_predict():
    model = keras.Sequential([Embedding(50, 4), SimpleRNN(3), Dense(1, activation="sigmoid")])
    out = model.predict(IDS, verbose=0)  # no compile needed, as in Keras
    assert out.shape == (10, 1) and np.isfinite(out).all()


def test_dense_first_model_takes_integer_features():
    model = keras.Sequential([Dense(1, input_shape=(3,))])
    assert model.predict(np.array([[1, 2, 3]]), verbose=0).shape == (1, 1)


def test_messages_name_the_file(tmp_path):
    path = tmp_path / "not-a-model.npz"
    path.write_bytes(b"hello")
    with pytest.raises(ValueError, match=str(path)):
        keras.load_model(path)
    with pytest.raises(ValueError, match=str(path)):
        embedding_model().load_weights(path)


if __name__ == "__main__":
    print("| bad input | raises | message |")
    print("| --- | --- | --- |")
    for case_id, call, _, _ in CASES:
        try:
            call()
            outcome, message = "no error", ""
        except Exception as error:  # noqa: BLE001 - printing what each case gives
            outcome, message = type(error).__name__, str(error)
        message = message.replace("|", "\\|").replace("\n", " ")
        print(f"| {case_id} | {outcome} | {message} |")
