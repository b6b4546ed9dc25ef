"""The book's code for chapter 9-3, cell after cell, with only its imports changed.

    python examples/book_code_9_3.py [--quick] [--output-dir DIR] [--data-dir DIR] [--seed N]

Below the set-up block, every line is the book's (the companion notebook 9-3.ipynb of
「혼자 공부하는 머신러닝+딥러닝」, rickiepark/hg-mldl, as its TensorFlow 2.4-2.14 versions
have it: ``Embedding(500, 16, input_length=100)`` and ``.h5`` checkpoints), except three
imports::

    from tensorflow.keras.datasets import imdb
        -> from nprnn.datasets import imdb
    from tensorflow.keras.preprocessing.sequence import pad_sequences
        -> from nprnn.preprocessing.sequence import pad_sequences
    from tensorflow import keras
        -> import nprnn as keras

and the last cell's ``rnn_model.evaluate(test_seq, test_target)``, whose value a notebook
displays, is printed. The notebook's first version, the TensorFlow 2.3 run whose numbers the
book prints, created its ModelCheckpoint callbacks without ``save_best_only=True`` (a file
every epoch, so its test accuracy is the last epoch's model); every later version, and this
script, pass it.

The set-up block (not in the book) only arranges the surroundings, as in book_code.py:

* Matplotlib's Agg backend; ``plt.show()`` saves the current figure as a PNG in the output
  folder and closes it: ``book_lstm_loss.png``, ``book_dropout_loss.png``,
  ``book_2rnn_loss.png``, ``book_gru_loss.png``.
* The working directory becomes the output folder, so the book's checkpoint files
  (``best-lstm-model.h5``, ``best-dropout-model.h5``, ``best-2rnn-model.h5``,
  ``best-gru-model.h5``) land there.
* ``--quick`` (a smoke test): load_data returns 2,500 training and 1,000 test reviews and
  every ``fit`` stops after 2 epochs; the book's cells are not touched.
* ``--seed`` seeds nprnn (the book's TF 2.3-2.9 versions do not seed; by default neither
  does this script).
"""

# ---- nprnn set-up (not in the book) ---------------------------------------------------
import _common  # noqa: E402 (examples/_common.py, beside this script)

_args = _common.book_setup(__doc__, ["book_lstm_loss.png", "book_dropout_loss.png",
                                     "book_2rnn_loss.png", "book_gru_loss.png"])
# ---- end of the set-up: the book's code follows -------------------------------------

from nprnn.datasets import imdb  # noqa: E402, I001 (the book's order)
from sklearn.model_selection import train_test_split  # noqa: E402

(train_input, train_target), (test_input, test_target) = imdb.load_data(
    num_words=500)

train_input, val_input, train_target, val_target = train_test_split(
    train_input, train_target, test_size=0.2, random_state=42)

from nprnn.preprocessing.sequence import pad_sequences  # noqa: E402

train_seq = pad_sequences(train_input, maxlen=100)
val_seq = pad_sequences(val_input, maxlen=100)

import nprnn as keras  # noqa: E402

model = keras.Sequential()

model.add(keras.layers.Embedding(500, 16, input_length=100))
model.add(keras.layers.LSTM(8))
model.add(keras.layers.Dense(1, activation='sigmoid'))

model.summary()

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model.compile(optimizer=rmsprop, loss='binary_crossentropy',
              metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-lstm-model.h5',
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                  restore_best_weights=True)

history = model.fit(train_seq, train_target, epochs=100, batch_size=64,
                    validation_data=(val_seq, val_target),
                    callbacks=[checkpoint_cb, early_stopping_cb])

import matplotlib.pyplot as plt  # noqa: E402

plt.plot(history.history['loss'])
plt.plot(history.history['val_loss'])
plt.xlabel('epoch')
plt.ylabel('loss')
plt.legend(['train', 'val'])
plt.show()

model2 = keras.Sequential()

model2.add(keras.layers.Embedding(500, 16, input_length=100))
model2.add(keras.layers.LSTM(8, dropout=0.3))
model2.add(keras.layers.Dense(1, activation='sigmoid'))

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model2.compile(optimizer=rmsprop, loss='binary_crossentropy',
               metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-dropout-model.h5',
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

model3 = keras.Sequential()

model3.add(keras.layers.Embedding(500, 16, input_length=100))
model3.add(keras.layers.LSTM(8, dropout=0.3, return_sequences=True))
model3.add(keras.layers.LSTM(8, dropout=0.3))
model3.add(keras.layers.Dense(1, activation='sigmoid'))

model3.summary()

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model3.compile(optimizer=rmsprop, loss='binary_crossentropy',
               metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-2rnn-model.h5',
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                  restore_best_weights=True)

history = model3.fit(train_seq, train_target, epochs=100, batch_size=64,
                     validation_data=(val_seq, val_target),
                     callbacks=[checkpoint_cb, early_stopping_cb])

plt.plot(history.history['loss'])
plt.plot(history.history['val_loss'])
plt.xlabel('epoch')
plt.ylabel('loss')
plt.legend(['train', 'val'])
plt.show()

model4 = keras.Sequential()

model4.add(keras.layers.Embedding(500, 16, input_length=100))
model4.add(keras.layers.GRU(8))
model4.add(keras.layers.Dense(1, activation='sigmoid'))

model4.summary()

rmsprop = keras.optimizers.RMSprop(learning_rate=1e-4)
model4.compile(optimizer=rmsprop, loss='binary_crossentropy',
               metrics=['accuracy'])

checkpoint_cb = keras.callbacks.ModelCheckpoint('best-gru-model.h5',
                                                save_best_only=True)
early_stopping_cb = keras.callbacks.EarlyStopping(patience=3,
                                                  restore_best_weights=True)

history = model4.fit(train_seq, train_target, epochs=100, batch_size=64,
                     validation_data=(val_seq, val_target),
                     callbacks=[checkpoint_cb, early_stopping_cb])

plt.plot(history.history['loss'])
plt.plot(history.history['val_loss'])
plt.xlabel('epoch')
plt.ylabel('loss')
plt.legend(['train', 'val'])
plt.show()

test_seq = pad_sequences(test_input, maxlen=100)

rnn_model = keras.models.load_model('best-2rnn-model.h5')

print(rnn_model.evaluate(test_seq, test_target))
