"""Every example runs with --quick and writes its pictures.

Each script runs in a child process, as a user would run it, with a temporary output
folder. The data: the real IMDB files when ``NPRNN_DATA_DIR`` names them; otherwise a
small fake IMDB written here in Keras' format (an ``.npz`` of object arrays of int lists,
and a word-index JSON), which nprnn accepts with an UnverifiedFileWarning because the
folder is named explicitly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

GRADIENT_FLOW = ["gradient_norms.png", "gradient_norms_relative.png", "hidden_states.png",
                 "embedding_pca.png"]
SWEEP = ["seed_sweep_onehot.png", "seed_sweep_embedding.png"]
MODELS_9_3 = ["lstm", "dropout", "2rnn", "gru"]
LOSS_9_3 = [f"{name}-loss.png" for name in MODELS_9_3]
SWEEP_9_3 = [f"seed_sweep_9_3_{name}.png" for name in MODELS_9_3]
# summary()'s totals in the book's 9-3 notebook
BOOK_PARAMETERS_9_3 = {"lstm": 8809, "dropout": 8809, "2rnn": 9353, "gru": 8633}
CASES = {
    "01_explore_data.py": ([], ["length_histogram.png"]),
    "02_simplernn_onehot.py": ([], ["simplernn-onehot-loss.png"]),
    "02_simplernn_onehot.py --sparse": (["--sparse"], ["simplernn-onehot-loss.png"]),
    "03_embedding.py": ([], ["embedding-loss.png"]),
    "04_gradient_flow.py": ([], GRADIENT_FLOW),
    "05_seed_sweep.py": ([], SWEEP),
    "06_lstm.py": ([], LOSS_9_3[:3]),
    "07_gru.py": ([], LOSS_9_3[3:]),
    "08_seed_sweep_9_3.py": (["--seeds", "1"], SWEEP_9_3),
    "grid_search.py": ([], ["grid_search.png"]),
    "book_code.py": ([], ["book_length_histogram.png", "book_simplernn_loss.png",
                          "book_embedding_loss.png"]),
    "book_code_9_3.py": ([], [f"book_{name}_loss.png" for name in MODELS_9_3]),
    "run_chapter.py": ([], ["length_histogram.png", "simplernn-onehot-loss.png",
                            "embedding-loss.png", *GRADIENT_FLOW, *SWEEP,
                            "chapter_val_accuracy.png", "chapter_val_loss.png", *LOSS_9_3,
                            "chapter_9_3_val_accuracy.png", "chapter_9_3_val_loss.png"]),
}


def write_fake_imdb(folder, n_train=2500, n_test=1000, vocabulary=800, seed=0):
    """A small IMDB in Keras' format, with a sentiment signal a model can pick up.

    Stored ids are word ranks (1 = most frequent); load_data adds index_from=3. Positive
    reviews use more of ranks 10-39, negative ones more of ranks 40-69.
    """
    rng = np.random.default_rng(seed)

    def reviews(count):
        labels = rng.integers(0, 2, size=count)
        texts = np.empty(count, dtype=object)
        for position, label in enumerate(labels):
            length = int(rng.integers(20, 400))
            words = rng.zipf(1.3, size=length) % vocabulary + 1
            marked = rng.random(length) < 0.1
            words[marked] = rng.integers(10, 40, marked.sum()) + (0 if label else 30)
            texts[position] = [int(word) for word in words]
        return texts, labels.astype(np.int64)

    x_train, y_train = reviews(n_train)
    x_test, y_test = reviews(n_test)
    np.savez(folder / "imdb.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=y_test)
    names = ["the", "and", "a", "of", "to", "is", "br", "in", "it"]
    names += [f"good{rank}" for rank in range(10, 40)] + [f"bad{rank}" for rank in range(40, 70)]
    index = {name: rank for rank, name in enumerate(names, start=1)}
    index.update({f"word{rank}": rank for rank in range(len(names) + 1, vocabulary + 1)})
    (folder / "imdb_word_index.json").write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1",
               NPRNN_CACHE_DIR=str(tmp_path_factory.mktemp("cache")))
    if not env.get("NPRNN_DATA_DIR"):
        env["NPRNN_DATA_DIR"] = str(write_fake_imdb(tmp_path_factory.mktemp("fake_imdb")))
    return env


def run(script, arguments, env, cwd, timeout=300):
    completed = subprocess.run([sys.executable, str(EXAMPLES / script), *arguments],
                               env=env, cwd=cwd, capture_output=True, text=True,
                               timeout=timeout)
    assert completed.returncode == 0, (
        f"{script} {' '.join(arguments)} exited with {completed.returncode}\n"
        f"--- stdout ---\n{completed.stdout[-4000:]}\n--- stderr ---\n"
        f"{completed.stderr[-4000:]}")
    return completed


def assert_png(path):
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), f"{path.name} is not a PNG"
    assert len(data) > 2000, f"{path.name} is suspiciously small ({len(data)} bytes)"


@pytest.mark.parametrize("case", list(CASES))
def test_example_runs_quick_and_writes_its_pngs(case, environment, tmp_path):
    script = case.split()[0]
    extra, pngs = CASES[case]
    output = tmp_path / "out"
    completed = run(script, ["--quick", "--output-dir", str(output), *extra], environment,
                    cwd=tmp_path)
    for name in pngs:
        assert_png(output / name)
    assert "Traceback" not in completed.stderr
    if script in ("02_simplernn_onehot.py", "03_embedding.py"):
        name = "onehot" if script.startswith("02") else "embedding"
        results = json.loads((output / f"{name}_results.json").read_text())
        assert results["epochs_run"] == 2 and results["quick"]
        assert 0 <= results["test_accuracy"] <= 1
        assert (output / results["checkpoint"]).is_file()
        assert "Epoch 2/2" in completed.stdout  # Keras-style per-epoch progress
    if script in ("06_lstm.py", "07_gru.py"):
        for name in (MODELS_9_3[:3] if script.startswith("06") else MODELS_9_3[3:]):
            results = json.loads((output / f"{name}_results.json").read_text())
            assert results["epochs_run"] == 2 and results["quick"]
            assert results["parameters"] == BOOK_PARAMETERS_9_3[name]
            assert 0 <= results["test_accuracy"] <= 1
            assert (output / results["checkpoint"]).is_file()
            assert results["checkpoint"].startswith(f"best-{name}-model.")
            assert f"{results['checkpoint']} reloaded, test:" in completed.stdout
        assert "Epoch 2/2" in completed.stdout
    if script == "08_seed_sweep_9_3.py":
        document = json.loads((output / "seed_sweep_9_3.json").read_text())
        assert list(document["runs"]) == MODELS_9_3
        for entry in document["runs"].values():
            assert [run["seed"] for run in entry["runs"]] == [1]
            assert entry["median_val_accuracy"] == entry["runs"][0]["val_accuracy"]
        assert "| LSTM(8) | 0.4273 | 0.8056 |" in document["table"]
        assert not list(output.glob("seed-sweep-9-3-*"))  # its checkpoints are removed
    if script == "run_chapter.py":
        document = json.loads((output / "chapter_results.json").read_text())
        assert set(document["nprnn"]) == {"onehot", "embedding"}
        assert set(document["chapter_9_3"]["nprnn"]) == set(MODELS_9_3)
        assert {"lstm", "gru"} <= set(document["processes"])
        assert all(p["exit_code"] == 0 and p["peak_rss_bytes"] > 0
                   for p in document["processes"].values())
        report = (output / "chapter_results.md").read_text()
        assert "book (TF 2.3)" in report and "0.7916" in report
        assert "## Chapter 9-3" in report and "| 0.8056 |" in report and "0.8019" in report
        assert report.count("| nprnn, seed 42") == 2 + len(MODELS_9_3)
        assert "Whole main job" in report
    if script == "book_code.py":
        assert (output / "best-simplernn-model.h5").is_file()
        assert (output / "best-embedding-model.h5").is_file()
    if script == "book_code_9_3.py":
        for name in ("lstm", "dropout", "2rnn", "gru"):  # the book's checkpoint names
            assert (output / f"best-{name}-model.h5").is_file()
        assert "Total params: 9,353" in completed.stdout  # model3.summary()
        assert "Total params: 8,633" in completed.stdout  # model4.summary()
        # the last cell: print(rnn_model.evaluate(test_seq, test_target))
        last = completed.stdout.strip().splitlines()[-1]
        loss, accuracy = (float(v) for v in last.strip("[]").split(","))
        assert loss > 0 and 0 <= accuracy <= 1
    # nothing is written outside the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_data_dir_argument_replaces_the_environment(environment, tmp_path):
    env = dict(environment)
    data_dir = env.pop("NPRNN_DATA_DIR")
    completed = run("01_explore_data.py", ["--quick", "--output-dir", str(tmp_path),
                                           "--data-dir", data_dir], env, cwd=tmp_path)
    assert "train_seq.shape" in completed.stdout
    assert_png(tmp_path / "length_histogram.png")


def test_every_example_is_covered():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    covered = {case.split()[0] for case in CASES}
    assert scripts == covered
