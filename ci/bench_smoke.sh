#!/usr/bin/env bash
# Smoke run of the end-to-end benchmark (CI does not judge the figures): the C server and
# client compile, and every client completes every mode against them.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DRBFAST_VENV:-.venv-ci}
# shellcheck disable=SC1091
[ -f "$VENV/bin/activate" ] && . "$VENV/bin/activate"
python -m pip install --quiet -e ".[bench]"
drbfast bench --quick
