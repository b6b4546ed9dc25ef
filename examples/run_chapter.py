"""Chapters 9-2 and 9-3 end to end: all six models on the full IMDB data, beside the book.

    python examples/run_chapter.py [--quick] [--sparse] [--output-dir DIR] [--data-dir DIR]
                                   [--seed N] [--sweep-seeds 1-10 | --sweep-seeds none]
                                   [--chapters 9-2,9-3] [--sweep-9-3-seeds none | 1-5]

Runs the chapter's examples one after the other, each in its own process (so that the peak
memory of each model is its own, read with ``os.wait4``'s ``ru_maxrss``):

1. ``01_explore_data.py``: the data, the length histogram, padding;
2. ``02_simplernn_onehot.py``: the one-hot SimpleRNN with the book's settings, on the dense
   float32 one-hot array as the book (about 5 GB of RAM; ``--sparse`` for the index-backed
   one, same maths, 8 MB);
3. ``03_embedding.py``: the Embedding + SimpleRNN model with the book's settings;
4. ``04_gradient_flow.py``: gradient norms over time, the hidden state, the embedding PCA;
5. ``05_seed_sweep.py``: both models again with seeds 1-10, for the run-to-run spread;

then chapter 9-3 (``--chapters`` picks either part):

6. ``06_lstm.py``: LSTM(8), LSTM(8, dropout=0.3) and two stacked LSTM(8, dropout=0.3) on
   Embedding(500, 16), with the book's settings; each checkpoint is reloaded and evaluated
   on the test set (the book does so for the stacked model, ``best-2rnn-model.h5``);
7. ``07_gru.py``: GRU(8) on Embedding(500, 16), the same way;
8. ``08_seed_sweep_9_3.py``, only with ``--sweep-9-3-seeds`` (about 3.5 min a seed).

Then prints tables beside the book's results (TensorFlow 2.3) and writes, in the output
folder, every example's plots and checkpoints, ``chapter_val_accuracy.png``,
``chapter_val_loss.png``, ``chapter_9_3_val_accuracy.png``, ``chapter_9_3_val_loss.png``,
``chapter_results.json`` and ``chapter_results.md``.

``--quick``: a smoke run for CI (2,000 training reviews, 2 epochs, 2 sweep seeds).
"""

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import _common
import numpy as np

from nprnn import config, plotting

HERE = Path(__file__).resolve().parent


def run_step(script, arguments, env):
    """Run one example in a child process, its output going straight to ours.

    Returns (exit code, wall seconds, peak resident bytes of the child or None).
    """
    command = [sys.executable, str(HERE / script), *arguments]
    print(f"\n{'=' * 100}\n$ {' '.join(command)}\n{'=' * 100}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = code = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    else:  # pragma: no cover - not Unix
        code, peak = process.wait(), None
    return code, time.perf_counter() - started, peak


def fmt(value, spec="", missing="n/a"):
    return missing if value is None else format(value, spec)


def table(rows):
    """A Markdown table from a list of dicts sharing their keys."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "|".join(" --- " for _ in keys) + "|"]
    lines += ["| " + " | ".join(str(row[key]) for key in keys) + " |" for row in rows]
    return "\n".join(lines)


def chapter_9_3_report(args, processes, output_dir):
    """Chapter 9-3's table (Markdown) beside the book's run, from the results files of
    06_lstm.py and 07_gru.py (and 08_seed_sweep_9_3.py). Returns (results, sweep, text)."""
    if "9-3" not in args.chapters:
        return {}, None, ""
    results = {}
    for name in _common.MODELS_9_3:
        step = "gru" if name == "gru" else "lstm"
        path = output_dir / f"{name}_results.json"
        if processes.get(step, {}).get("exit_code") == 0 and path.exists():
            results[name] = json.loads(path.read_text())
    sweep = None
    if processes.get("seed sweep 9-3", {}).get("exit_code") == 0:
        sweep = json.loads((output_dir / "seed_sweep_9_3.json").read_text())
    rows = []
    for name in _common.MODELS_9_3:
        book, label = _common.BOOK_9_3[name], _common.LABELS_9_3[name]
        book_test = (f"{book['test_accuracy']:.4f} (last epoch's checkpoint)"
                     if "test_accuracy" in book else "n/a")
        rows.append({"model": label, "run": "book (TF 2.3)", "best epoch": book["best_epoch"],
                     "val_loss": f"{book['val_loss']:.4f}",
                     "val_accuracy": f"{book['val_accuracy']:.4f}",
                     "epochs run": book["epochs_run"], "time": "n/a",
                     "test accuracy": book_test})
        if name in results:
            mine = results[name]
            rows.append({
                "model": label, "run": f"nprnn, seed {mine['seed']}",
                "best epoch": mine["best_epoch"], "val_loss": f"{mine['val_loss']:.4f}",
                "val_accuracy": f"{mine['val_accuracy']:.4f}",
                "epochs run": mine["epochs_run"],
                "time": f"{mine['wall_seconds']:.0f} s (fit {mine['fit_seconds']:.0f} s, "
                        f"{mine['seconds_per_epoch']:.1f} s/epoch)",
                "test accuracy": f"{mine['test_accuracy']:.4f} ({mine['checkpoint']} "
                                 f"reloaded)",
            })
    notes = []
    for name in _common.MODELS_9_3:
        low, high = _common.rerun_band_9_3(name)
        line = (f"- {_common.LABELS_9_3[name]}: the notebook's {len(_common.BOOK_9_3_RERUNS)} "
                f"runs (TF 2.3-Keras 3.4) give best val_accuracy {low:.4f}-{high:.4f}")
        if name in results:
            accuracy = results[name]["val_accuracy"]
            inside = low - 5e-5 <= accuracy <= high + 5e-5
            line += (f"; nprnn {accuracy:.4f}: {'inside' if inside else 'OUTSIDE'} that band "
                     f"({results[name]['parameters']:,} parameters)")
        if sweep and name in sweep["runs"]:
            runs = sweep["runs"][name]
            count = len(runs["runs"])
            line += (f". Seed sweep ({count} seeds): median val_accuracy "
                     f"{runs['median_val_accuracy']:.4f}, median val_loss "
                     f"{runs['median_val_loss']:.4f}, range {runs['min_val_accuracy']:.4f}-"
                     f"{runs['max_val_accuracy']:.4f}, {runs['inside_rerun_band']}/{count} "
                     "inside the band")
        notes.append(line + ".")
    low, high = _common.rerun_band_9_3("test")
    notes.append(f"- Test accuracy: every nprnn model's checkpoint (save_best_only=True, the "
                 f"best epoch) reloaded with keras.models.load_model and evaluated on the "
                 f"{'1,000 quick' if args.quick else '25,000'} padded test reviews, as the "
                 f"book's last cell does for best-2rnn-model.h5. The book's TF 2.3 run saved "
                 f"a checkpoint every epoch (no save_best_only), so its 0.8019 is the last "
                 f"epoch's model; the notebook's later runs, with save_best_only, give "
                 f"{low:.4f}-{high:.4f}.")
    notes.append("- time: the model's part of its process (training, checkpoints, reloading, "
                 "test evaluation); fit: model.fit alone.")
    if args.quick:
        notes.insert(0, "- **--quick run: a smoke test on a subset, not a result.**")
    text = ("## Chapter 9-3 with nprnn, beside the book\n\n" + table(rows) + "\n\n"
            + "\n".join(notes) + "\n")
    if sweep:
        seeds = ", ".join(str(seed) for seed in sweep["seeds"])
        text += f"\n### Seed sweep, seeds {seeds}\n\n" + sweep["table"] + "\n"
    return results, sweep, text


def main():
    arguments = _common.parser(__doc__)
    arguments.add_argument("--sparse", action="store_true",
                           help="train the one-hot model on to_categorical(..., sparse=True) "
                                "instead of the book's dense array")
    arguments.add_argument("--sweep-seeds", default=None,
                           help="seeds for 05_seed_sweep.py (default 1-10; quick: 1-2; "
                                "'none' skips it)")
    arguments.add_argument("--chapters", default="9-2,9-3",
                           type=lambda text: _common.model_list(text, ("9-2", "9-3")),
                           help="which parts to run: 9-2, 9-3 or both (default)")
    arguments.add_argument("--sweep-9-3-seeds", default="none",
                           help="seeds for 08_seed_sweep_9_3.py, e.g. 1-5 (default 'none': "
                                "skipped, it takes about 3.5 min a seed)")
    args = arguments.parse_args()
    output_dir = _common.setup(args).resolve()
    started = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    common = ["--output-dir", str(output_dir), "--seed", str(args.seed)]
    if args.quick:
        common.append("--quick")
    sweep_seeds = args.sweep_seeds or ("1-2" if args.quick else "1-10")
    steps = []
    if "9-2" in args.chapters:
        steps += [
            ("data", "01_explore_data.py", []),
            ("onehot", "02_simplernn_onehot.py", ["--sparse"] if args.sparse else []),
            ("embedding", "03_embedding.py", []),
            ("gradient flow", "04_gradient_flow.py",
             ["--model", str(output_dir / "best-embedding-model.h5")]),
        ]
        if sweep_seeds.lower() != "none":
            steps.append(("seed sweep", "05_seed_sweep.py", ["--seeds", sweep_seeds]))
    if "9-3" in args.chapters:
        steps += [("lstm", "06_lstm.py", []), ("gru", "07_gru.py", [])]
        if args.sweep_9_3_seeds.lower() != "none":
            steps.append(("seed sweep 9-3", "08_seed_sweep_9_3.py",
                          ["--seeds", args.sweep_9_3_seeds]))

    processes, failed, skip_9_2 = {}, [], False
    for name, script, extra in steps:
        if skip_9_2 and script < "06":
            continue
        code, seconds, peak = run_step(script, [*common, *extra], env)
        processes[name] = {"script": script, "exit_code": code, "wall_seconds": seconds,
                           "peak_rss_bytes": peak}
        if code != 0:
            failed.append(script)
            print(f"\n{script} FAILED with exit code {code}", file=sys.stderr, flush=True)
            if name in ("onehot", "embedding"):
                skip_9_2 = True  # 9-2's next steps need its checkpoint and results

    results = {}
    for name in ("onehot", "embedding"):
        path = output_dir / f"{name}_results.json"
        if processes.get(name, {}).get("exit_code") == 0 and path.exists():
            results[name] = json.loads(path.read_text())
    sweep = None
    if processes.get("seed sweep", {}).get("exit_code") == 0:
        sweep = json.loads((output_dir / "seed_sweep.json").read_text())

    # ---- the table ------------------------------------------------------------------
    labels = {"onehot": "one-hot SimpleRNN(8)", "embedding": "Embedding(500,16)+SimpleRNN(8)"}
    rows = []
    for name in ("onehot", "embedding") if "9-2" in args.chapters else ():
        book = _common.BOOK[name]
        rows.append({"model": labels[name], "run": "book (TF 2.3)",
                     "best epoch": book["best_epoch"], "val_loss": f"{book['val_loss']:.4f}",
                     "val_accuracy": f"{book['val_accuracy']:.4f}", "max val_accuracy": "n/a",
                     "test accuracy": "n/a", "epochs run": book["epochs_run"],
                     "wall time": "n/a", "peak memory": "n/a"})
        if name in results:
            mine, process = results[name], processes[name]
            encoding = {"dense": "dense one-hot", "sparse": "sparse one-hot"}.get(
                mine["encoding"], "token ids")
            rows.append({
                "model": labels[name], "run": f"nprnn, seed {mine['seed']} ({encoding})",
                "best epoch": mine["best_epoch"], "val_loss": f"{mine['val_loss']:.4f}",
                "val_accuracy": f"{mine['val_accuracy']:.4f}",
                "max val_accuracy": f"{mine['max_val_accuracy']:.4f}",
                "test accuracy": f"{mine['test_accuracy']:.4f}",
                "epochs run": mine["epochs_run"],
                "wall time": f"{process['wall_seconds']:.0f} s (fit {mine['fit_seconds']:.0f} s)",
                "peak memory": _common.gib(process["peak_rss_bytes"] or mine["peak_rss_bytes"]),
            })
    text = table(rows) if rows else "(chapter 9-2 not run)"
    notes = []
    for name in ("onehot", "embedding") if "9-2" in args.chapters else ():
        low, high = _common.BOOK[name]["rerun_band"]
        line = f"- {labels[name]}: the book's reruns give best val_accuracy {low}-{high}"
        if name in results:
            accuracy = results[name]["val_accuracy"]
            inside = low - 5e-5 <= accuracy <= high + 5e-5
            line += (f"; nprnn (seed {results[name]['seed']}) {accuracy:.4f}: "
                     f"{'inside' if inside else 'OUTSIDE'} the band, "
                     f"{'>=' if accuracy >= _common.TARGET_VAL_ACCURACY else 'BELOW'} "
                     f"{_common.TARGET_VAL_ACCURACY} (highest val_accuracy of any epoch: "
                     f"{results[name]['max_val_accuracy']:.4f})")
        if sweep and name in sweep["runs"]:
            runs = sweep["runs"][name]
            count = len(runs["runs"])
            line += (f". Seed sweep ({count} seeds): median {runs['median_val_accuracy']:.4f}, "
                     f"range {runs['min_val_accuracy']:.4f}-{runs['max_val_accuracy']:.4f}, "
                     f"{runs['inside_book_band']}/{count} inside the band, "
                     f"{runs['at_least_0.78']}/{count} >= 0.78, "
                     f"{runs['stopped_on_plateau']}/{count} stopped on the initial plateau")
        notes.append(line + ".")
    if "onehot" in results:
        mine = results["onehot"]
        notes.append(f"- Memory: train_seq.nbytes {mine['train_seq_nbytes']:,} vs the dense "
                     f"one-hot's {mine['dense_onehot_nbytes']:,} (book: 8,000,000 vs "
                     f"4,000,000,000); the sparse one-hot holds "
                     f"{mine['sparse_onehot_nbytes']:,}.")
    notes.append(f"- val_accuracy is at the best epoch (lowest val_loss, the weights "
                 f"EarlyStopping restores), as the book reports it; test accuracy on the "
                 f"{'1,000 quick' if args.quick else '25,000'} test reviews with those weights; "
                 "wall time is the whole process (loading, encoding, training, evaluation); "
                 "peak memory is the process's ru_maxrss.")
    machine = (f"{platform.machine()}, {os.cpu_count()} logical CPUs, Python "
               f"{platform.python_version()}, NumPy {np.__version__}, nprnn backend "
               f"{config.backend()}")
    if args.quick:
        notes.insert(0, "- **--quick run: a smoke test on a subset, not a result.**")
    results_9_3, sweep_9_3, report_9_3 = chapter_9_3_report(args, processes, output_dir)
    total = time.perf_counter() - started
    report = ""
    if "9-2" in args.chapters:
        report = ("## Chapter 9-2 with nprnn, beside the book\n\n" + text + "\n\n"
                  + "\n".join(notes) + "\n\n")
    report += report_9_3 + (f"\nMachine: {machine}. Whole main job (all steps of "
                            f"{' and '.join(args.chapters)}): {total / 60:.1f} min.\n")
    print("\n" + "=" * 100 + "\n" + report)

    # ---- plots and files ------------------------------------------------------------
    if results:
        histories = {f"{labels[name]} (nprnn)": results[name]["history"] for name in results}
        for metric in ("val_accuracy", "val_loss"):
            band = ((0.779, 0.794, "book's reruns, best epoch (0.779-0.794)")
                    if metric == "val_accuracy" else None)
            path = plotting.plot_history_comparison(
                histories, output_dir / f"chapter_{metric}.png", metric=metric, band=band,
                title=f"nprnn, seed {args.seed}: {metric} per epoch")
            print("wrote", path)
    if results_9_3:
        histories = {f"{_common.LABELS_9_3[name]} (nprnn)": results_9_3[name]["history"]
                     for name in results_9_3}
        for metric in ("val_accuracy", "val_loss"):
            path = plotting.plot_history_comparison(
                histories, output_dir / f"chapter_9_3_{metric}.png", metric=metric,
                title=f"chapter 9-3, nprnn, seed {args.seed}: {metric} per epoch")
            print("wrote", path)
    document = {"book": _common.BOOK, "target_val_accuracy": _common.TARGET_VAL_ACCURACY,
                "nprnn": results, "seed_sweep": sweep, "processes": processes,
                "chapter_9_3": {"book": _common.BOOK_9_3,
                                "book_reruns": _common.BOOK_9_3_RERUNS,
                                "nprnn": results_9_3, "seed_sweep": sweep_9_3},
                "chapters": args.chapters,
                "quick": args.quick, "machine": machine, "total_seconds": total}
    print("wrote", _common.write_json(output_dir / "chapter_results.json", document))
    (output_dir / "chapter_results.md").write_text(report)
    print("wrote", output_dir / "chapter_results.md")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
