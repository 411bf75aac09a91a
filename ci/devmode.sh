#!/usr/bin/env bash
# The session and drop-in suites again under Python's development mode with
# ResourceWarning as an error: a leaked socket, a task destroyed while pending or an
# exception nobody retrieved fails the run (tests/conftest.py fails a test whose loop
# exception handler fired).
set -euo pipefail
cd "$(dirname "$0")/.."
# Run by the nox session "devmode" (noxfile.py), inside its venv.
PYTHONDEVMODE=1 python -W error::ResourceWarning -m pytest -q -p no:cacheprovider \
    tests/test_session_faults.py tests/test_client.py tests/test_session.py tests/test_orders.py tests/test_gateway.py \
    tests/test_websockets.py tests/test_websockets_dropin.py tests/test_websockets_programs.py tests/websockets_upstream
