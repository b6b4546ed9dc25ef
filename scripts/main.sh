#!/usr/bin/env bash
# Set up, then re-run chapters 9-2 and 9-3 end to end: all six models on the full IMDB data,
# tables beside the book's results, plots in outputs/. Needs the data: NPRNN_DATA_DIR=folder
# with imdb.npz, a cached copy, or internet access for the download.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/run_chapter.py "$@"
