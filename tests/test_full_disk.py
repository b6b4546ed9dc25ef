"""Writers under a file-size limit (``ulimit -f``; what a full disk or a quota looks like to
a writer): every save raises OSError naming its file, keeps the previous file whole and
leaves no temporary file; a ModelCheckpoint warns and training goes on; two processes
saving to one path leave a file that loads whole.

Each scenario runs in a child process that sets ``RLIMIT_FSIZE`` (soft limit only, so it
can lift it again) with ``SIGXFSZ`` ignored, so that a write past the limit fails with
EFBIG instead of killing the process. Before nprnn built HDF5 files in memory, ``model.save
('x.h5')`` died there with a segmentation fault inside HDF5 and left its temporary file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nprnn as keras

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent('''
    import errno, json, os, resource, signal, sys, warnings
    from pathlib import Path
    import numpy as np
    import nprnn as keras

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    folder = Path(sys.argv[1])
    sys.path.insert(0, sys.argv[2])

    def model(units):
        m = keras.Sequential([keras.layers.Embedding(300, 16, input_length=5),
                              keras.layers.SimpleRNN(units),
                              keras.layers.Dense(1, activation="sigmoid")])
        m.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
        m.build((None, 5))
        return m

    def limited(limit, write):
        """Run write() with files limited to ``limit`` bytes; the error it raised, or None."""
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            write()
        except OSError as error:
            return error
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        return None

    def png(path):
        from nprnn import plotting
        plotting.plot_history({"loss": list(np.linspace(1, 0, 50))}, path)

    def example_json(path):
        import examples._common as common
        common.write_json(path, {"x": list(range(20000))})

    def benchmark_json(path):
        import benchmarks._common as common
        common.write_json(path.name, {"x": list(range(20000))}, out_dir=path.parent)

    old, new = model(4), model(64)
    writers = {
        "save.h5": lambda m, p: m.save(p),
        "save.npz": lambda m, p: m.save(p),
        "save_weights.h5": lambda m, p: m.save_weights(p),
        "save_weights.weights.h5": lambda m, p: m.save_weights(p),
        "save_weights.npz": lambda m, p: m.save_weights(p),
        "plot.png": lambda m, p: png(p),
        "example.json": lambda m, p: example_json(p),
        "benchmark.json": lambda m, p: benchmark_json(p),
    }
    report = {}
    for name, write in writers.items():
        path = folder / name
        write(old, path)
        before = path.read_bytes()
        error = limited(len(before) // 2, lambda: write(new, path))
        report[name] = {
            "error": None if error is None else [type(error).__name__, error.errno,
                                                 error.filename, str(error)],
            "kept": path.read_bytes() == before,
            "files": sorted(p.name for p in folder.iterdir()),
        }
        assert limited(10**9, lambda: write(new, path)) is None  # the limit lifted: it works
        path.unlink()

    # A checkpoint during fit: every save fails; training runs all its epochs.
    path = folder / "best.h5"
    new.save(path)
    before = path.read_bytes()
    x = np.random.default_rng(0).integers(0, 300, size=(64, 5))
    y = np.arange(64) % 2
    # Compile the kernels first: Numba's on-disk cache write fails under the limit too (an
    # OSError out of the first fit), which is not what this test is about.
    model(64).fit(x, y, epochs=1, batch_size=16, verbose=0)
    checkpoint = keras.callbacks.ModelCheckpoint(str(path), save_best_only=True,
                                                 monitor="loss")
    fitted = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        error = limited(len(before) // 2, lambda: fitted.update(history=new.fit(
            x, y, epochs=3, batch_size=16, verbose=0, callbacks=[checkpoint])))
    report["checkpoint"] = {
        "error": None if error is None else str(error),
        "epochs": len(fitted["history"].history["loss"]) if fitted else None,
        "warnings": [str(w.message) for w in caught if "ModelCheckpoint" in str(w.message)],
        "kept": path.read_bytes() == before, "best": checkpoint.best,
        "files": sorted(p.name for p in folder.iterdir()),
    }
    # ... and the caller who wants a failed checkpoint to stop training can.
    def stop():
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="ModelCheckpoint")
            new.fit(x, y, epochs=3, batch_size=16, verbose=0,
                    callbacks=[keras.callbacks.ModelCheckpoint(str(path))])
    try:
        limited(len(before) // 2, stop)
        report["stop"] = None
    except UserWarning as warning:
        report["stop"] = str(warning)
    print(json.dumps(report))
''')


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    result = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(ROOT)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    return folder, json.loads(result.stdout.splitlines()[-1])


WRITERS = ["save.h5", "save.npz", "save_weights.h5", "save_weights.weights.h5",
           "save_weights.npz", "plot.png", "example.json", "benchmark.json"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_write_past_the_limit_raises_oserror_naming_the_file(report, name):
    folder, results = report
    entry = results[name]
    assert entry["error"] is not None, f"{name}: the write did not fail"
    kind, code, filename, message = entry["error"]
    assert kind == "OSError" and code == 27, entry  # EFBIG
    assert filename == str(folder / name) and str(folder / name) in message
    assert entry["kept"], f"{name}: the previous file changed"
    assert entry["files"] == [name], f"{name}: left {entry['files']}"


def test_a_checkpoint_that_cannot_save_warns_and_training_goes_on(report):
    folder, results = report
    entry = results["checkpoint"]
    assert entry["error"] is None and entry["epochs"] == 3
    assert len(entry["warnings"]) >= 1
    assert all(str(folder / "best.h5") in w and "File too large" in w
               for w in entry["warnings"])
    assert entry["kept"] and entry["files"] == ["best.h5"]
    assert entry["best"] is None  # no save succeeded, so the next improvement is saved
    assert "ModelCheckpoint: epoch 1 was not saved" in results["stop"]


# -- two writers, one path ------------------------------------------------------------------
WRITER = textwrap.dedent('''
    import sys
    import numpy as np
    import nprnn as keras
    path, value, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    model = keras.Sequential([keras.layers.Embedding(2000, 32, input_length=5),
                              keras.layers.SimpleRNN(16), keras.layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse")
    model.build((None, 5))
    model.set_weights([np.full_like(w, value) for w in model.get_weights()])
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(rounds):
        model.save(path)
''')


@pytest.mark.parametrize("suffix", [".h5", ".npz"])
def test_two_processes_saving_to_one_path_leave_a_whole_file(tmp_path, suffix):
    path = tmp_path / f"shared{suffix}"
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(value), "40"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for value in (1.0, 2.0)]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    for child in children:  # both start together
        child.stdin.write("go\n")
        child.stdin.flush()
    seen = set()
    while any(child.poll() is None for child in children):
        if path.exists():  # read while both write: always one whole version
            weights = keras.load_model(path).get_weights()
            values = {float(v) for w in weights for v in np.unique(w)}
            assert len(values) == 1 and values <= {1.0, 2.0}, values
            seen |= values
    for child in children:
        assert child.wait(timeout=120) == 0
    weights = keras.load_model(path).get_weights()
    assert len({float(v) for w in weights for v in np.unique(w)}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    print(f"\n{suffix}: versions seen while both wrote: {sorted(seen)}")
