"""Chapter 9-2, model 1: a SimpleRNN(8) reading one-hot encoded words.

    python examples/02_simplernn_onehot.py [--quick] [--sparse] [--output-dir DIR]
                                           [--data-dir DIR] [--seed N] [--epochs N]

As the book: each of the 100 steps of a review is a 500-long one-hot vector
(``keras.utils.to_categorical``), the model is ``SimpleRNN(8, input_shape=(100, 500))`` then
``Dense(1, activation='sigmoid')`` (4,072 + 9 = 4,081 parameters), trained with
RMSprop(learning_rate=1e-4) on binary cross-entropy, batch 64, up to 100 epochs, with
ModelCheckpoint('best-simplernn-model.h5', save_best_only=True) and
EarlyStopping(patience=3, restore_best_weights=True).

The dense one-hot training set is 20,000 x 100 x 500 float32 = 4,000,000,000 bytes (plus
1 GB for validation): about 5 GB of RAM, and 7 GB at the peak. ``--sparse`` uses
``to_categorical(..., sparse=True)`` instead, an index-backed array of the same shape and
meaning that holds 8,000,000 bytes and gives the same numbers.

Writes, in the output folder: ``best-simplernn-model.h5``, ``simplernn-onehot-loss.png``
and ``onehot_results.json`` (read by run_chapter.py).
"""

import time

import _common

import nprnn as keras
from nprnn import plotting


def main():
    arguments = _common.parser(__doc__)
    arguments.add_argument("--sparse", action="store_true",
                           help="index-backed one-hot (to_categorical(..., sparse=True)) "
                                "instead of the book's dense float32 array")
    _common.add_epochs_argument(arguments)
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    started = time.perf_counter()
    epochs = _common.max_epochs(args)
    data = _common.load_chapter_data(quick=args.quick)

    model = _common.build_onehot_model()
    model.summary()

    def encode(seq):
        return keras.utils.to_categorical(seq, num_classes=_common.NUM_WORDS,
                                          sparse=args.sparse)

    encoding = "sparse one-hot (to_categorical(..., sparse=True))" if args.sparse else \
        "dense one-hot (to_categorical, float32, as the book)"
    encode_started = time.perf_counter()
    train_oh = encode(data.train_seq)
    val_oh = encode(data.val_seq)
    print(f"\n{encoding}: train_oh.shape = {train_oh.shape}, took "
          f"{time.perf_counter() - encode_started:.1f} s")
    print(f"train_oh[0][0][:12] = {train_oh[0][0][:12]}  np.sum(train_oh[0][0]) = "
          f"{train_oh[0][0].sum()}")

    checkpoint = output_dir / "best-simplernn-model.h5"
    history, early_stopping, fit_seconds = _common.compile_and_fit(
        model, train_oh, data.train_target, (val_oh, data.val_target), checkpoint, epochs)
    results = _common.summarize_fit(history, early_stopping)
    print(f"\nbest epoch {results['best_epoch']} of {results['epochs_run']}: val_loss "
          f"{results['val_loss']:.4f}, val_accuracy {results['val_accuracy']:.4f} "
          f"(book: epoch 32 of 35, 0.4533, 0.7916); fit took {fit_seconds:.0f} s")

    kind = "sparse" if args.sparse else "dense"
    path = plotting.plot_history(history, output_dir / "simplernn-onehot-loss.png",
                                 best_epoch=results["best_epoch"],
                                 title=f"SimpleRNN on one-hot words ({kind} encoding)")
    print("wrote", path)

    restored = keras.load_model(checkpoint)
    _, checkpoint_accuracy = restored.evaluate(val_oh, data.val_target, verbose=0)
    print(f"{checkpoint.name} reloaded: val_accuracy {checkpoint_accuracy:.4f}")
    print("\n-- memory: the one-hot encoding makes the data 500 times larger --")
    print(f"print(train_seq.nbytes, train_oh.nbytes) -> {data.train_seq.nbytes} "
          f"{train_oh.nbytes}")
    dense_bytes = train_oh.dense_nbytes if args.sparse else train_oh.nbytes
    print(f"  train_seq (int32 ids):           {data.train_seq.nbytes:>15,} bytes")
    print(f"  dense one-hot (float32):         {dense_bytes:>15,} bytes  (book: 4,000,000,000)")
    sparse_bytes = train_oh.nbytes if args.sparse else \
        keras.utils.to_categorical(data.train_seq, sparse=True).nbytes
    print(f"  sparse one-hot (indices only):   {sparse_bytes:>15,} bytes")
    del train_oh, val_oh  # the test set is encoded 2,500 reviews at a time below
    test_loss, test_accuracy = _common.evaluate_in_chunks(model, encode, data.test_seq,
                                                          data.test_target, chunk=2500)
    print(f"test: loss {test_loss:.4f}, accuracy {test_accuracy:.4f} "
          f"({len(data.test_seq):,} reviews, the restored best weights)")

    peak = _common.peak_memory_bytes()
    print(f"peak memory of this process: {_common.gib(peak)}")

    results.update({
        "model": "onehot", "encoding": "sparse" if args.sparse else "dense",
        "quick": args.quick, "seed": args.seed, "max_epochs": epochs,
        "test_loss": test_loss, "test_accuracy": test_accuracy,
        "checkpoint": checkpoint.name, "checkpoint_val_accuracy": checkpoint_accuracy,
        "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - started,
        "peak_rss_bytes": peak, "train_seq_nbytes": int(data.train_seq.nbytes),
        "dense_onehot_nbytes": int(dense_bytes), "sparse_onehot_nbytes": int(sparse_bytes),
    })
    print("wrote", _common.write_json(output_dir / "onehot_results.json", results))


if __name__ == "__main__":
    main()
