"""Chapter 9-3, the GRU model: Embedding(500, 16), GRU(8), Dense(1, sigmoid).

    python examples/07_gru.py [--quick] [--output-dir DIR] [--data-dir DIR] [--seed N]
                              [--epochs N]

As the book: ``GRU(8)`` after ``Embedding(500, 16, input_length=100)``, 8,000 + 624 + 9 =
8,633 parameters (3 gates x (16 + 8 + 2) x 8: Keras' default ``reset_after=True`` keeps
two bias vectors, one for the input and one for the recurrent part), trained with the
book's settings (RMSprop(1e-4), batch 64, up to 100 epochs, ModelCheckpoint with
save_best_only, EarlyStopping(patience=3, restore_best_weights=True)); the reloaded
checkpoint is evaluated on the 25,000 padded test reviews.

Writes, in the output folder: ``best-gru-model.h5``, ``gru-loss.png`` and
``gru_results.json`` (read by run_chapter.py).
"""

import time

import _common


def main():
    arguments = _common.parser(__doc__)
    _common.add_epochs_argument(arguments)
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    started = time.perf_counter()
    data = _common.load_chapter_data(quick=args.quick)
    _common.run_9_3_model("gru", data, output_dir, _common.max_epochs(args), args)
    print(f"\npeak memory of this process: {_common.gib(_common.peak_memory_bytes())}; "
          f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
