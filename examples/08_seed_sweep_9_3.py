"""Rerun chapter 9-3's four models with several seeds: the median beside the book.

    python examples/08_seed_sweep_9_3.py [--seeds 1-5] [--models lstm,dropout,2rnn,gru]
                                         [--epochs N] [--quick] [--output-dir DIR]
                                         [--data-dir DIR]

The book prints one run per model (TensorFlow 2.3); its author's reruns of the same
notebook on later versions spread the best validation accuracy over about a point
(``_common.BOOK_9_3_RERUNS``: LSTM 0.793-0.806, LSTM with dropout 0.790-0.804, two LSTMs
0.784-0.806, GRU 0.790-0.799). This script trains each model once per seed with the book's
settings (RMSprop(1e-4), batch 64, up to 100 epochs, EarlyStopping(patience=3,
restore_best_weights=True)) and reports, per model, the median best-epoch val_accuracy and
val_loss over the seeds beside the book's run and its reruns' band.

Writes ``seed_sweep_9_3.json`` and ``seed_sweep_9_3_<model>.png`` (validation loss per
epoch of every seed). Seeds 1-10 took 27 min on 2 shared cores (per seed: LSTM about 14 s,
LSTM with dropout 20-45 s, two LSTMs 35-230 s, GRU 6-17 s; the machine was busy).
"""

import contextlib
import io
import time

import _common
import numpy as np

import nprnn as keras
from nprnn import plotting


def main():
    arguments = _common.parser(__doc__)
    _common.add_epochs_argument(arguments)
    arguments.add_argument("--seeds", type=_common.seed_list, default=None,
                           help="seeds to run, e.g. 1-5 or 1,4,9 (default 1-5; quick: 1-2)")
    arguments.add_argument("--models", type=_common.model_list,
                           default=list(_common.MODELS_9_3),
                           help="comma-separated: lstm, dropout, 2rnn, gru (default all four)")
    args = arguments.parse_args()
    output_dir = _common.setup(args)
    seeds = args.seeds or ([1, 2] if args.quick else list(range(1, 6)))
    epochs = _common.max_epochs(args)
    data = _common.load_chapter_data(quick=args.quick)
    document = {"seeds": seeds, "quick": args.quick, "max_epochs": epochs, "runs": {}}
    summary = []
    for name in args.models:
        book = _common.BOOK_9_3[name]
        low, high = _common.rerun_band_9_3(name)
        print(f"\n{_common.LABELS_9_3[name]}: {len(seeds)} seeds; book: epoch "
              f"{book['best_epoch']}, val_loss {book['val_loss']:.4f}, val_accuracy "
              f"{book['val_accuracy']:.4f}; the notebook's reruns {low:.4f}-{high:.4f}")
        print(f"{'seed':>6} {'best epoch':>10} {'of':>4} {'val_loss':>9} {'val_acc':>8} "
              f"{'max val_acc':>11} {'fit s':>6}")
        runs, histories = [], {}
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            model = _common.build_9_3_model(name)
            with contextlib.redirect_stdout(io.StringIO()):  # one line per run, not per epoch
                checkpoint = output_dir / f"seed-sweep-9-3-{name}.h5"
                history, early_stopping, seconds = _common.compile_and_fit(
                    model, data.train_seq, data.train_target, (data.val_seq, data.val_target),
                    checkpoint, epochs)
            checkpoint.unlink(missing_ok=True)
            result = _common.summarize_fit(history, early_stopping)
            result.update(seed=seed, fit_seconds=seconds)
            runs.append(result)
            histories[f"seed {seed}"] = history
            print(f"{seed:>6} {result['best_epoch']:>10} {result['epochs_run']:>4} "
                  f"{result['val_loss']:>9.4f} {result['val_accuracy']:>8.4f} "
                  f"{result['max_val_accuracy']:>11.4f} {seconds:>6.1f}", flush=True)
        accuracies = np.array([run["val_accuracy"] for run in runs])
        losses = np.array([run["val_loss"] for run in runs])
        inside = int(np.sum((accuracies >= low - 5e-5) & (accuracies <= high + 5e-5)))
        entry = {
            "runs": [{key: value for key, value in run.items() if key != "history"}
                     for run in runs],
            "median_val_accuracy": float(np.median(accuracies)),
            "median_val_loss": float(np.median(losses)),
            "median_best_epoch": float(np.median([run["best_epoch"] for run in runs])),
            "min_val_accuracy": float(accuracies.min()),
            "max_val_accuracy": float(accuracies.max()),
            "inside_rerun_band": inside, "rerun_band": [low, high], "book": book,
            "median_fit_seconds": float(np.median([run["fit_seconds"] for run in runs])),
        }
        document["runs"][name] = entry
        print(f"median over {len(runs)} seeds: val_accuracy {entry['median_val_accuracy']:.4f} "
              f"(range {accuracies.min():.4f}-{accuracies.max():.4f}, {inside}/{len(runs)} "
              f"inside the reruns' band), val_loss {entry['median_val_loss']:.4f}")
        summary.append(
            f"| {_common.LABELS_9_3[name]} | {book['val_loss']:.4f} | "
            f"{book['val_accuracy']:.4f} | {low:.4f}-{high:.4f} | {len(runs)} | "
            f"{entry['median_best_epoch']:g} | {entry['median_val_loss']:.4f} | "
            f"{entry['median_val_accuracy']:.4f} | "
            f"{accuracies.min():.4f}-{accuracies.max():.4f} | {inside}/{len(runs)} |")
        path = plotting.plot_history_comparison(
            histories, output_dir / f"seed_sweep_9_3_{name}.png", metric="val_loss",
            title=f"{_common.LABELS_9_3[name]}: validation loss, {len(seeds)} seeds")
        print("wrote", path)
    header = ("| model | book val_loss | book val_acc | notebook reruns val_acc | seeds | "
              "median best epoch | median val_loss | median val_acc | nprnn val_acc range | "
              "inside reruns' band |\n|" + " --- |" * 10)
    document["table"] = "\n".join([header, *summary])
    print("\n" + document["table"])
    print("wrote", _common.write_json(output_dir / "seed_sweep_9_3.json", document))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"done in {time.perf_counter() - started:.0f} s")
