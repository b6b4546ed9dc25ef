"""Chapter 9-2, model 2: the same SimpleRNN(8) reading learned 16-d word embeddings.

    python examples/03_embedding.py [--quick] [--output-dir DIR] [--data-dir DIR]
                                    [--seed N] [--epochs N]

As the book: ``Embedding(500, 16, input_length=100)``, ``SimpleRNN(8)``,
``Dense(1, activation='sigmoid')`` (8,000 + 200 + 9 = 8,209 parameters), trained on the
padded word ids themselves with RMSprop(learning_rate=1e-4), binary cross-entropy, batch 64,
up to 100 epochs, ModelCheckpoint('best-embedding-model.h5', save_best_only=True) and
EarlyStopping(patience=3, restore_best_weights=True). (The study notes fit this model with
batch_size=52; the book uses 64.)

Writes, in the output folder: ``best-embedding-model.h5`` (used by 04_gradient_flow.py),
``embedding-loss.png`` and ``embedding_results.json`` (read by run_chapter.py).
"""

import time

import _common

import nprnn as keras
from nprnn import plotting


def main():
    arguments = _common.parser(__doc__)
    _common.add_epochs_argument(arguments)
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    started = time.perf_counter()
    epochs = _common.max_epochs(args)
    data = _common.load_chapter_data(quick=args.quick)

    model2 = _common.build_embedding_model()
    model2.summary()

    checkpoint = output_dir / "best-embedding-model.h5"
    history, early_stopping, fit_seconds = _common.compile_and_fit(
        model2, data.train_seq, data.train_target, (data.val_seq, data.val_target),
        checkpoint, epochs)
    results = _common.summarize_fit(history, early_stopping)
    print(f"\nbest epoch {results['best_epoch']} of {results['epochs_run']}: val_loss "
          f"{results['val_loss']:.4f}, val_accuracy {results['val_accuracy']:.4f} "
          f"(book: epoch 28 of 31, 0.4575, 0.7934); fit took {fit_seconds:.0f} s")

    path = plotting.plot_history(history, output_dir / "embedding-loss.png",
                                 best_epoch=results["best_epoch"],
                                 title="SimpleRNN on a 16-d word embedding")
    print("wrote", path)

    restored = keras.load_model(checkpoint)
    _, checkpoint_accuracy = restored.evaluate(data.val_seq, data.val_target, verbose=0)
    print(f"{checkpoint.name} reloaded: val_accuracy {checkpoint_accuracy:.4f}")
    test_loss, test_accuracy = model2.evaluate(data.test_seq, data.test_target, verbose=0)
    print(f"test: loss {test_loss:.4f}, accuracy {test_accuracy:.4f} "
          f"({len(data.test_seq):,} reviews, the restored best weights)")

    onehot_bytes = data.train_seq.size * _common.NUM_WORDS * 4
    embedding_bytes = model2.layers[0].get_weights()[0].nbytes
    print("\n-- memory: the embedding reads the ids themselves --")
    print(f"  train_seq (int32 ids), what this model trains on: {data.train_seq.nbytes:>15,} bytes")
    print(f"  the dense one-hot model 1 trains on:              {onehot_bytes:>15,} bytes")
    print(f"  the embedding table (500 x 16 float32):           {embedding_bytes:>15,} bytes")
    peak = _common.peak_memory_bytes()
    print(f"peak memory of this process: {_common.gib(peak)}")

    results.update({
        "model": "embedding", "encoding": "token ids", "quick": args.quick, "seed": args.seed,
        "max_epochs": epochs, "test_loss": test_loss, "test_accuracy": test_accuracy,
        "checkpoint": checkpoint.name, "checkpoint_val_accuracy": checkpoint_accuracy,
        "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - started,
        "peak_rss_bytes": peak, "train_seq_nbytes": int(data.train_seq.nbytes),
        "dense_onehot_nbytes": int(onehot_bytes),
    })
    print("wrote", _common.write_json(output_dir / "embedding_results.json", results))


if __name__ == "__main__":
    main()
