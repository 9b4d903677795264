#!/usr/bin/env bash
# Runs the whole test suite from a fresh clone: makes .venv (if missing), installs
# tests/requirements.txt into it, then runs pytest. Extra arguments go to pytest,
# e.g. `./tests/run.sh -k level1` or `./tests/run.sh -n 0` to run serially.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# pip brings in uv (pinned in the requirements), and uv the rest: 9 s instead of pip's 27 s.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "$(grep '^uv==' tests/requirements.txt)"
.venv/bin/uv pip install --quiet --python .venv/bin/python -r tests/requirements.txt
# The Debian packages the levels' projects use (the registry's `apt`, e.g. TeX for level
# 6's paper): installed with apt-get where this runs as root, so those steps run for real;
# elsewhere the steps that need them report a skip.
packages=$(.venv/bin/python tests/levels.py apt)
missing=""
for package in $packages; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } \
            >/dev/null || echo "Could not install$missing: the steps that need them will skip."
    else
        echo "Not root or no apt-get:$missing not installed; the steps that need them will skip."
    fi
fi
# Tools the tests call (uv, ruff, copier, actionlint, zizmor, mkdocs) are found on PATH.
export PATH="$PWD/.venv/bin:$PATH"
# Python caches the modules it compiles, as on a user's machine. Some machines set
# PYTHONDONTWRITEBYTECODE, and then every process of every test compiles what it imports
# again: about 2 s more for each process that imports torch.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest -n 2 --dist worksteal --durations=15 "$@"
