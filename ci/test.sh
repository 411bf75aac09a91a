#!/usr/bin/env bash
# The README's test command, run the way a new user runs it: a fresh virtualenv, the
# package built from scratch (no prebuilt extension), then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${DRBFAST_VENV:-.venv-ci}
rm -rf "$VENV" build drbfast/*.so drbfast/_book.c drbfast/_classify.c drbfast/_listener.c
"$PY" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip

# README: pip install -e ".[test]" && python -m pytest
python -m pip install --quiet -e ".[test]"

# Fail loudly if the hot path did not compile: drbfast refuses to import without it.
python - <<'PY'
import drbfast, drbfast._book, drbfast._classify, drbfast._listener
print("compiled hot path:", drbfast._book.__file__, drbfast._classify.__file__, drbfast._listener.__file__)
PY

python -m pytest -q
