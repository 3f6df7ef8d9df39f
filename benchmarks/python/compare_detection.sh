#!/bin/sh
# False-alarm and detection rates of `pycroscope compare` (docs/compare.md).
#
#   benchmarks/python/compare_detection.sh BUILD_DIR [TRIALS] [RUNS]
#
# For each of TRIALS trials (default 20) it runs `pycroscope compare --runs RUNS --versus` on
# benchmarks/python/workloads/three_stages.py (RUNS a side, default 10, interleaved):
#   null case:      base and candidate both without --slower; `compare` exiting 1 is a false alarm;
#   regression:     the candidate with --slower (stage_transform does 10% more work); `compare`
#                   exiting 1 with stage_transform first among the regressions is a detection.
# Slow: about TRIALS x 4 x RUNS runs of ~0.1 s plus start-up.
# SCALE (default 1) scales the workload; EXTRA adds `pycroscope profile` options.
set -eu

build=${1:?usage: compare_detection.sh BUILD_DIR [TRIALS] [RUNS]}
trials=${2:-20}
runs=${3:-10}
scale=${SCALE:-1}
extra=${EXTRA:-}
here=$(cd "$(dirname "$0")" && pwd)
cli=$(cd "$build" && pwd)/pycroscope
workload=$here/workloads/three_stages.py
work=$(mktemp -d "${TMPDIR:-/tmp}/pycroscope_compare_detection.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One `compare --versus` (both sides profiled, runs interleaved); its exit status.
pair() { # name, extra candidate arguments...
    name=$1
    shift
    status=0
    # shellcheck disable=SC2086
    "$cli" compare --runs "$runs" --json --output-dir "$work/$name" --no-system --sinks json $extra \
        "$workload" --scale "$scale" --versus "$workload" --scale "$scale" "$@" >"$work/$name.json" 2>/dev/null ||
        status=$?
    return "$status"
}

false_alarms=0
detections=0
first_named=0
t=1
while [ "$t" -le "$trials" ]; do
    rm -rf "${work:?}"/*
    null_status=0
    pair null || null_status=$?
    [ "$null_status" -eq 1 ] && false_alarms=$((false_alarms + 1))
    status=0
    pair slow --slower || status=$?
    first=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["regressions"]; print(r[0]["function"] if r else "-")' "$work/slow.json")
    # What a false alarm was: the null case's significant regressions.
    alarm=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["regressions"]; print(" ".join("%s:%s:%+.1f%%" % (c["function"] or "(run)", c["metric"], 100 * c["change"]) for c in r if c["significant"]) or "-")' "$work/null.json")
    if [ "$status" -eq 1 ]; then
        detections=$((detections + 1))
        [ "$first" = "stage_transform" ] && first_named=$((first_named + 1))
    fi
    echo "trial $t: null case exit $null_status (significant: $alarm); regression case exit $status, first regression: $first"
    t=$((t + 1))
done
echo "runs a side: $runs, trials: $trials, workload scale: $scale"
echo "false alarms: $false_alarms / $trials"
echo "detections:   $detections / $trials (stage_transform named first: $first_named)"
