"""Chapter 9-3, the LSTM models: LSTM(8), LSTM(8) with dropout, and two stacked LSTMs.

    python examples/06_lstm.py [--quick] [--output-dir DIR] [--data-dir DIR] [--seed N]
                               [--epochs N] [--models lstm,dropout,2rnn]

As the book, on the data of 9-2 (``load_data(num_words=500)``, a 20,000 / 5,000 split with
``random_state=42``, ``pad_sequences(maxlen=100)``), each model starts with
``Embedding(500, 16, input_length=100)`` and ends with ``Dense(1, activation='sigmoid')``:

* ``lstm``: ``LSTM(8)``, 8,000 + 800 + 9 = 8,809 parameters (4 gates x (16 + 8 + 1) x 8);
* ``dropout``: ``LSTM(8, dropout=0.3)``, the same 8,809: dropout drops 30% of the inputs
  the LSTM reads at every step while training (one mask per sequence, as Keras);
* ``2rnn``: ``LSTM(8, dropout=0.3, return_sequences=True)`` feeding
  ``LSTM(8, dropout=0.3)``, 8,809 + 544 = 9,353 parameters.

Each is trained with RMSprop(learning_rate=1e-4), binary cross-entropy, batch 64, up to
100 epochs, ModelCheckpoint(save_best_only=True) and EarlyStopping(patience=3,
restore_best_weights=True); its checkpoint is then reloaded with
``keras.models.load_model`` and evaluated on the 25,000 padded test reviews (the book does
this for the 2xLSTM model only).

Writes, in the output folder, per model: ``best-<name>-model.h5`` (the book's names:
best-lstm-model.h5, best-dropout-model.h5, best-2rnn-model.h5), ``<name>-loss.png`` (train
and validation loss per epoch, the book's plot) and ``<name>_results.json`` (read by
run_chapter.py).
"""

import time

import _common


def main():
    arguments = _common.parser(__doc__)
    _common.add_epochs_argument(arguments)
    arguments.add_argument("--models", default="lstm,dropout,2rnn",
                           type=lambda text: _common.model_list(text, ("lstm", "dropout", "2rnn")),
                           help="comma-separated: lstm, dropout, 2rnn (default all three)")
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    started = time.perf_counter()
    data = _common.load_chapter_data(quick=args.quick)
    for name in args.models:
        _common.run_9_3_model(name, data, output_dir, _common.max_epochs(args), args)
    print(f"\npeak memory of this process: {_common.gib(_common.peak_memory_bytes())}; "
          f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
