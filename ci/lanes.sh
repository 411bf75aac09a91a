#!/usr/bin/env bash
# Run the nox sessions given (default: every session nox selects) in two lanes at once,
# one per core: sessions alternate between the lanes, each lane runs its share in
# order. Lane 1 prints as it goes; lane 2's log follows when both are done. Exits
# non-zero if any session failed.   ci/lanes.sh [SESSION...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/nox.sh --version >/dev/null 2>&1   # install nox once, before the lanes start
NOX=${DRBFAST_NOX_VENV:-.venv-nox}/bin/nox
if [ "$#" -gt 0 ]; then
    sessions=("$@")
else
    mapfile -t sessions < <("$NOX" --list-sessions --json 2>/dev/null | python3 -c '
import json, sys
print("\n".join(s["session"] for s in json.load(sys.stdin)))')
fi
lane1=() lane2=()
for i in "${!sessions[@]}"; do
    if (( i % 2 == 0 )); then lane1+=("${sessions[$i]}"); else lane2+=("${sessions[$i]}"); fi
done
log=$(mktemp -t drbfast-lane2.XXXXXX)
echo "ci/lanes.sh: lane 1: ${lane1[*]}; lane 2 (log printed after): ${lane2[*]:-none}"
rc2=0
if [ "${#lane2[@]}" -gt 0 ]; then
    bash ci/nox.sh --sessions "${lane2[@]}" > "$log" 2>&1 &
    pid2=$!
fi
rc1=0
bash ci/nox.sh --sessions "${lane1[@]}" || rc1=$?
if [ "${#lane2[@]}" -gt 0 ]; then
    wait "$pid2" || rc2=$?
    echo "================ ci/lanes.sh: lane 2 (${lane2[*]}) ================"
    cat "$log"
fi
rm -f "$log"
echo "ci/lanes.sh: lane 1 exit $rc1, lane 2 exit $rc2"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
