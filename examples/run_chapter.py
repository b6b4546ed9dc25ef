"""Chapter 9-2 end to end: both models on the full IMDB data, beside the book's own run.

    python examples/run_chapter.py [--quick] [--sparse] [--output-dir DIR] [--data-dir DIR]
                                   [--seed N] [--sweep-seeds 1-10 | --sweep-seeds none]

Runs the chapter's examples one after the other, each in its own process (so that the peak
memory of each model is its own, read with ``os.wait4``'s ``ru_maxrss``):

1. ``01_explore_data.py``: the data, the length histogram, padding;
2. ``02_simplernn_onehot.py``: the one-hot SimpleRNN with the book's settings, on the dense
   float32 one-hot array as the book (about 5 GB of RAM; ``--sparse`` for the index-backed
   one, same maths, 8 MB);
3. ``03_embedding.py``: the Embedding + SimpleRNN model with the book's settings;
4. ``04_gradient_flow.py``: gradient norms over time, the hidden state, the embedding PCA;
5. ``05_seed_sweep.py``: both models again with seeds 1-10, for the run-to-run spread.

Then prints a table beside the book's results (TensorFlow 2.3) and writes, in the output
folder, every example's plots and checkpoints, ``chapter_val_accuracy.png``,
``chapter_val_loss.png``, ``chapter_results.json`` and ``chapter_results.md``.

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


def main():
    arguments = _common.parser(__doc__)
    arguments.add_argument("--sparse", action="store_true",
                           help="train the one-hot model on to_categorical(..., sparse=True) "
                                "instead of the book's dense array")
    arguments.add_argument("--sweep-seeds", default=None,
                           help="seeds for 05_seed_sweep.py (default 1-10; quick: 1-2; "
                                "'none' skips it)")
    args = arguments.parse_args()
    output_dir = _common.setup(args).resolve()
    started = time.perf_counter()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    common = ["--output-dir", str(output_dir), "--seed", str(args.seed)]
    if args.quick:
        common.append("--quick")
    sweep_seeds = args.sweep_seeds or ("1-2" if args.quick else "1-10")
    steps = [
        ("data", "01_explore_data.py", []),
        ("onehot", "02_simplernn_onehot.py", ["--sparse"] if args.sparse else []),
        ("embedding", "03_embedding.py", []),
        ("gradient flow", "04_gradient_flow.py",
         ["--model", str(output_dir / "best-embedding-model.h5")]),
    ]
    if sweep_seeds.lower() != "none":
        steps.append(("seed sweep", "05_seed_sweep.py", ["--seeds", sweep_seeds]))

    processes, failed = {}, []
    for name, script, extra in steps:
        code, seconds, peak = run_step(script, [*common, *extra], env)
        processes[name] = {"script": script, "exit_code": code, "wall_seconds": seconds,
                           "peak_rss_bytes": peak}
        if code != 0:
            failed.append(script)
            print(f"\n{script} FAILED with exit code {code}", file=sys.stderr, flush=True)
            if name in ("onehot", "embedding"):
                break  # the next steps need its checkpoint and results

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
    for name in ("onehot", "embedding"):
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
    text = table(rows)
    notes = []
    for name in ("onehot", "embedding"):
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
    notes.append(f"- Machine: {machine}.")
    if args.quick:
        notes.insert(0, "- **--quick run: a smoke test on a subset, not a result.**")
    total = time.perf_counter() - started
    notes.append(f"- Whole chapter (all steps): {total / 60:.1f} min.")
    report = ("## Chapter 9-2 with nprnn, beside the book\n\n" + text + "\n\n"
              + "\n".join(notes) + "\n")
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
    document = {"book": _common.BOOK, "target_val_accuracy": _common.TARGET_VAL_ACCURACY,
                "nprnn": results, "seed_sweep": sweep, "processes": processes,
                "quick": args.quick, "machine": machine, "total_seconds": total}
    print("wrote", _common.write_json(output_dir / "chapter_results.json", document))
    (output_dir / "chapter_results.md").write_text(report)
    print("wrote", output_dir / "chapter_results.md")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
