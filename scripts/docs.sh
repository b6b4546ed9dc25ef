#!/usr/bin/env bash
# Build the documentation site into docs/_build/html (warnings are errors), then check its
# internal links. The notebooks are executed in quick mode; they read the IMDB data like the
# examples do (NPRNN_DATA_DIR, the cache, or a download).
# The docs tools go into a virtual environment: $NPRNN_DOCS_VENV, by default .venv (created
# by scripts/setup.sh), with nprnn's `docs` extra installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NPRNN_DOCS_VENV:-.venv}
if [ "$VENV" = ".venv" ]; then
  bash scripts/setup.sh
elif [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet -e '.[docs]'
"$VENV/bin/python" -m sphinx -E -W --keep-going -q -b html docs docs/_build/html
# Every internal link and #anchor of the built pages resolves (no network).
"$VENV/bin/python" docs/check_links.py docs/_build/html
echo "docs: open docs/_build/html/index.html"
