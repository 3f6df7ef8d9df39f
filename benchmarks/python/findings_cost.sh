#!/usr/bin/env bash
# Cost of the answers (findings, recommendations, health score) on the
# workloads: for each script, one `pycroscope profile` run (every collector,
# as a user gets it, --sinks json), then session.json's pattern_analysis
# says how long the source pass and the whole analysis took, against the
# profiled run's wall time (duration_ns). Prints a markdown table.
#
#   benchmarks/python/findings_cost.sh BUILD_DIR [SCRIPT...]
#   MODE=--line benchmarks/python/findings_cost.sh build    # extra profile flags
set -euo pipefail
build=${1:?usage: findings_cost.sh BUILD_DIR [SCRIPT...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
    scripts=("$here"/workloads/*.py)
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| workload | run wall s | source pass ms | analysis ms | share of the run | files | findings |"
echo "|---|---|---|---|---|---|---|"
for script in "${scripts[@]}"; do
    name=$(basename "$script" .py)
    # shellcheck disable=SC2086
    "$build/pycroscope" profile ${MODE:-} --sinks json --top 0 --output-dir "$tmp/$name" "$script" >/dev/null 2>&1
    /usr/bin/python3 - "$tmp/$name/session.json" "$name" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
run = doc["duration_ns"] / 1e9
pa = doc["pattern_analysis"]
print("| %s | %.3f | %.1f | %.1f | %.2f%% | %d | %d |" % (
    sys.argv[2], run, pa["source_seconds"] * 1e3, pa["seconds"] * 1e3, 100 * pa["seconds"] / run,
    pa["files_analysed"], len(doc["findings"])))
PY
done
