#!/usr/bin/env bash
# Set up, lint, and run the test suite (plus the benchmark and example smoke runs it contains).
# Real-data tests run when NPRNN_DATA_DIR names a folder holding imdb.npz; otherwise they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
