"""The book's code for chapter 9-2, cell after cell, with only its imports changed.

    python examples/book_code.py [--quick] [--output-dir DIR] [--data-dir DIR] [--seed N]

Below the set-up block, every line is the book's (the companion notebook 9-2.ipynb of
「혼자 공부하는 머신러닝+딥러닝」, as the study notes copy it), except three imports::

    from tensorflow.keras.datasets import imdb
        -> from nprnn.datasets import imdb
    from tensorflow.keras.preprocessing.sequence import pad_sequences
        -> from nprnn.preprocessing.sequence import pad_sequences
    from tensorflow import keras
        -> import nprnn as keras

The set-up block (not in the book) only arranges the surroundings:

* Matplotlib's Agg backend, so that no window is needed; ``plt.show()`` is replaced by a
  function that saves the current figure as a PNG in the output folder and closes it (in a
  notebook each cell starts a new figure; in a script, without this, the second plot would
  be drawn over the first). The figures are ``book_length_histogram.png``,
  ``book_simplernn_loss.png`` and ``book_embedding_loss.png``.
* The working directory becomes the output folder, so the book's checkpoint files
  ``best-simplernn-model.h5`` and ``best-embedding-model.h5`` land there.
* ``--quick`` (a smoke test): load_data returns 2,500 training and 1,000 test reviews and
  every ``fit`` stops after 2 epochs; the book's cells are not touched.
* ``--seed`` seeds nprnn (the book does not seed; by default neither does this script).

Two places where the study notes differ from the book, the book is followed: the notes fit
the embedding model with ``batch_size=52`` (the book: 64), and they name its checkpoint
callback ``chechpoint_cb`` but pass ``checkpoint_cb``, the one-hot model's, to ``fit``, which
would overwrite best-simplernn-model.h5.

Memory: like the book, this builds the dense one-hot arrays, about 5 GB of RAM (7 GB at the
peak); 02_simplernn_onehot.py --sparse does the same with 8 MB.
"""

# ---- nprnn set-up (not in the book) ---------------------------------------------------
import _common  # noqa: E402 (examples/_common.py, beside this script)

_args = _common.book_setup(__doc__, ["book_length_histogram.png", "book_simplernn_loss.png",
                                     "book_embedding_loss.png"])
# ---- end of the set-up: the book's code follows -------------------------------------

from nprnn.datasets import imdb  # noqa: E402

(train_input, train_target), (test_input, test_target) = imdb.load_data(
    num_words=500)

print(train_input.shape, test_input.shape)

print(len(train_input[0]))

print(len(train_input[1]))

print(train_input[0])

print(train_target[:20])

from sklearn.model_selection import train_test_split  # noqa: E402

train_input, val_input, train_target, val_target = train_test_split(
    train_input, train_target, test_size=0.2, random_state=42)

import numpy as np  # noqa: E402

lengths = np.array([len(x) for x in train_input])

print(np.mean(lengths), np.median(lengths))

import matplotlib.pyplot as plt  # noqa: E402

plt.hist(lengths)
plt.xlabel('length')
plt.ylabel('frequency')
plt.show()

from nprnn.preprocessing.sequence import pad_sequences  # noqa: E402

train_seq = pad_sequences(train_input, maxlen=100)

print(train_seq.shape)

print(train_seq[0])

print(train_input[0][-10:])

print(train_seq[5])

val_seq = pad_sequences(val_input, maxlen=100)

import nprnn as keras  # noqa: E402

model = keras.Sequential()

model.add(keras.layers.SimpleRNN(8, input_shape=(100, 500)))
model.add(keras.layers.Dense(1, activation='sigmoid'))

train_oh = keras.utils.to_categorical(train_seq)

print(train_oh.shape)

print(train_oh[0][0][:12])

print(np.sum(train_oh[0][0]))

val_oh = keras.utils.to_categorical(val_seq)

model.summary()

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model.compile(optimizer=rmsprop, loss='binary_crossentropy',
              metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-simplernn-model.h5',
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                  restore_best_weights=True)

history = model.fit(train_oh, train_target, epochs=100, batch_size=64,
                    validation_data=(val_oh, val_target),
                    callbacks=[checkpoint_cb, early_stopping_cb])

plt.plot(history.history['loss'])
plt.plot(history.history['val_loss'])
plt.xlabel('epoch')
plt.ylabel('loss')
plt.legend(['train', 'val'])
plt.show()

print(train_seq.nbytes, train_oh.nbytes)

model2 = keras.Sequential()

model2.add(keras.layers.Embedding(500, 16, input_length=100))
model2.add(keras.layers.SimpleRNN(8))
model2.add(keras.layers.Dense(1, activation='sigmoid'))

model2.summary()

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model2.compile(optimizer=rmsprop, loss='binary_crossentropy',
               metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-embedding-model.h5',
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                  restore_best_weights=True)

history = model2.fit(train_seq, train_target, epochs=100, batch_size=64,
                     validation_data=(val_seq, val_target),
                     callbacks=[checkpoint_cb, early_stopping_cb])

plt.plot(history.history['loss'])
plt.plot(history.history['val_loss'])
plt.xlabel('epoch')
plt.ylabel('loss')
plt.legend(['train', 'val'])
plt.show()
