#!/usr/bin/env bash
# Run nox (noxfile.py) from a venv of its own: ci/nox.sh [nox arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DRBFAST_NOX_VENV:-.venv-nox}
if [ ! -x "$VENV/bin/nox" ]; then
    "${PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet "nox>=2025.5.1"
fi
exec "$VENV/bin/nox" --no-color "$@"
