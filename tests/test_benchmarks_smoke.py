"""Smoke runs of the benchmark scripts' --quick modes: they run and write their JSON.

Kept cheap: tiny sizes, nprnn only (no PyTorch / Keras peers, no real data), results in a
temporary folder. The full benchmarks are run by hand (benchmarks/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def run(script, *args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--out", str(tmp_path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_bench_kernels_quick(tmp_path):
    out = run("bench_kernels.py", tmp_path=tmp_path)
    data = json.loads((tmp_path / "kernels.json").read_text())
    assert data["quick"] is True
    names = {row["kernel"].split(" ")[0] for row in data["kernels"]}
    assert {
        "rnn_forward",
        "rnn_backward",
        "rnn_forward+backward",
        "lstm_forward+backward",
        "gru_forward+backward",
        "gru_reset_before_forward+backward",
        "gather_rows",
        "scatter_add_rows",
        "rmsprop_update",
    } <= names
    assert all(row["compiled_us"] > 0 and row["reference_us"] > 0 for row in data["kernels"])
    assert "speedup" in out


def test_bench_models_quick(tmp_path):
    out = run(
        "bench_models.py", "--peers", "nprnn-numba,nprnn-numpy", "--no-imdb", tmp_path=tmp_path
    )
    data = json.loads((tmp_path / "models.json").read_text())
    rows = data["results"]
    assert {row["model"] for row in rows} == {
        "embedding",
        "onehot_dense",
        "onehot_sparse",
        "lstm",
        "lstm2_dropout",
        "gru",
    }
    for row in rows:
        assert "error" not in row, row
        assert row["train_epoch_s"] > 0 and row["predict_s"] > 0 and row["peak_rss_mib"] > 0
        assert row["train_val_epoch_s"] >= row["train_epoch_s"]
    (loop,) = [row for row in rows if "fit_loop_overhead" in row]
    assert (loop["model"], loop["peer"]) == ("embedding", "nprnn-numba")
    assert loop["fit_loop_s"] > 0 and loop["fit_single_s"] > 0
    assert "train s/epoch" in out and "fit(epochs=1) x 5" in out


def test_bench_models_before_after_quick(tmp_path):
    # this checkout against itself: the interleaved comparison runs and reports both sides
    out = run(
        "bench_models.py",
        "--before",
        str(ROOT),
        "--models",
        "embedding",
        "--repeats",
        "1",
        tmp_path=tmp_path,
    )
    data = json.loads((tmp_path / "before_after.json").read_text())
    pair = data["models"]["embedding"]
    assert pair["before"]["train_epoch_s"] > 0 and pair["after"]["train_epoch_s"] > 0
    assert not pair["before"]["errors"] and not pair["after"]["errors"]
    assert "train before" in out


def test_bench_scaling_quick(tmp_path):
    pytest.importorskip("matplotlib")
    run("bench_scaling.py", "--no-torch", tmp_path=tmp_path)
    data = json.loads((tmp_path / "scaling.json").read_text())
    assert {p["axis"] for p in data["points"]} == {"steps", "batch", "units"}
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_bench_masked_quick(tmp_path):
    out = run("bench_masked.py", "--peers", "nprnn-fused,nprnn-layers", tmp_path=tmp_path)
    rows = json.loads((tmp_path / "masked.json").read_text())["rows"]
    assert {(row["model"], row["peer"]) for row in rows} == {
        (model, peer) for model in ("simple_rnn", "lstm", "gru")
        for peer in ("nprnn-fused", "nprnn-layers")}
    # each peer took the route it names: mask_zero models are fused unless switched off
    assert all(row["route"] == ("fused" if row["peer"] == "nprnn-fused" else "per-layer")
               for row in rows)
    assert all(row[key] > 0 for row in rows for key in ("train_s", "val_s", "predict_s"))
    assert "epoch+val vs torch" in out
