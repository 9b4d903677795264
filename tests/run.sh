#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: makes .venv (if missing), installs
# tests/requirements.txt into it, then runs pytest. Extra arguments go to pytest,
# e.g. `./tests/run.sh -k level1` or `./tests/run.sh -n 0` to run serially.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
# Tools the tests call (uv, ruff, copier, actionlint, zizmor, mkdocs) are found on PATH.
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest -n 2 --durations=15 "$@"
