"""The study notebooks in notebooks/: stored clean, and run top to bottom in quick mode.

Running them needs the ``notebooks`` extra (``pip install -e '.[notebooks]'``: nbclient,
nbformat, ipykernel), which CI installs; without it those tests skip. Quick mode
(``NPRNN_QUICK=1``) trains on small subsets for a few epochs. The 9-2 and 9-3 notebooks read
the real IMDB file, so they run only when ``NPRNN_DATA_DIR`` names a folder holding
``imdb.npz`` and ``imdb_word_index.json`` (as in CI).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NEEDS_IMDB = {"9-2_imdb_simplernn.ipynb", "9-3_lstm_gru.ipynb"}

DATA_DIR = os.environ.get("NPRNN_DATA_DIR")
HAS_REAL_DATA = bool(DATA_DIR) and all(
    (Path(DATA_DIR) / name).is_file() for name in ("imdb.npz", "imdb_word_index.json")
)


def test_one_notebook_per_section_in_the_book_order():
    names = [path.name for path in PATHS]
    assert names == [
        "9-1_sequential_data.ipynb", "9-2_imdb_simplernn.ipynb", "9-3_lstm_gru.ipynb"
    ], names


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_notebooks_are_stored_without_outputs(path):
    # Outputs belong to the reader's run (and to the docs build), not to the repository:
    # stored ones go stale and bloat every diff.
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{path.name}: cell {index} holds outputs"
            assert cell["execution_count"] is None, f"{path.name}: cell {index} was run"


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_notebooks_use_only_the_public_api(path):
    # The reader learns nprnn's public names: no private module or attribute.
    notebook = json.loads(path.read_text(encoding="utf-8"))
    source = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "nprnn._" not in source and "._" not in source.replace("__", ""), path.name


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[notebooks]'")
    nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[notebooks]'")
    if path.name in NEEDS_IMDB and not HAS_REAL_DATA:
        pytest.skip("set NPRNN_DATA_DIR to a folder holding imdb.npz and imdb_word_index.json")
    monkeypatch.setenv("NPRNN_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        # The notebook's working folder: the pictures it writes land in tmp_path.
        resources={"metadata": {"path": str(tmp_path)}},
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    elapsed = time.perf_counter() - started
    print(f"{path.name}: {elapsed:.1f} s in quick mode")
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") == "error"
    ]
    assert errors == []
