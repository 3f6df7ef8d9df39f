#!/usr/bin/env bash
# Whole-process cost of allocation tracking on allocation-heavy scripts, all
# on the same shared libpython (see python_launcher.c):
#
#   plain        python3 SCRIPT                     (the baseline)
#   passthrough  hooks installed on RAW, MEM, OBJ, nothing recorded
#   clock        hooks that only read the clock once per allocation and free:
#                the floor under full tracking's timestamps
#   full         every allocation and free recorded, attributed to its line,
#                drained into the memory model, session.json + memory.folded
#   sampled      sampling mode, one record per about SAMPLE bytes (default 524288)
#   tracemalloc  python3 -X tracemalloc=1 SCRIPT
#
# The hook modes run memory/memory_launcher.cpp (PYCROSCOPE_MEMORY_MODE), so
# the tracer's cost does not blur the memory figures. Each configuration runs
# N times (default 5), round-robin; the median wall time, and the fastest,
# are compared with plain's. Default script: workloads/alloc_heavy.py.
#
#   benchmarks/python/memory_overhead.sh [SCRIPT...]
#   N=9 SAMPLE=1048576 benchmarks/python/memory_overhead.sh

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
reps=${N:-5}
sample=${SAMPLE:-524288}
if [[ $# -gt 0 ]]; then
    scripts=("$@")
else
    scripts=("$here/workloads/alloc_heavy.py")
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pycroscope_memory_overhead.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

flags=$(pkg-config --cflags --libs python3-embed)
# shellcheck disable=SC2086
${CC:-cc} -O2 -o "$scratch/python3" "$here/python_launcher.c" $flags
# shellcheck disable=SC2086
${CXX:-c++} -std=c++17 -O2 -DNDEBUG -I "$root/include" -o "$scratch/memory_python3" \
    "$here/memory/memory_launcher.cpp" $flags -pthread

modes=(plain passthrough clock full sampled tracemalloc)

run_mode() { # mode script
    local mode=$1 script=$2
    case $mode in
    plain) "$scratch/python3" "$script" ;;
    tracemalloc) "$scratch/python3" -X tracemalloc=1 "$script" ;;
    passthrough) PYCROSCOPE_MEMORY_MODE=passthrough "$scratch/memory_python3" "$script" ;;
    clock) PYCROSCOPE_MEMORY_MODE=clock "$scratch/memory_python3" "$script" ;;
    full) PYCROSCOPE_MEMORY_MODE=full PYCROSCOPE_MEMORY_OUT="$scratch/out" "$scratch/memory_python3" "$script" ;;
    sampled) PYCROSCOPE_MEMORY_MODE="sampled:$sample" PYCROSCOPE_MEMORY_OUT="$scratch/out" \
        "$scratch/memory_python3" "$script" ;;
    esac
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# The least disturbed run: interference on a shared VM only adds time.
fastest() { sort -g | head -n 1; }

echo "| script | $(printf '%s | ' "${modes[@]}")"
echo "|---|$(printf -- '---|%.0s' "${modes[@]}")"
for script in "${scripts[@]}"; do
    declare -A times=()
    for ((rep = 0; rep < reps; ++rep)); do
        for mode in "${modes[@]}"; do
            start=$(date +%s.%N)
            run_mode "$mode" "$script" > /dev/null 2> "$scratch/err" || {
                echo "error: $mode failed on $script:" >&2
                cat "$scratch/err" >&2
                exit 1
            }
            end=$(date +%s.%N)
            times[$mode]+="$(echo "$end - $start" | bc) "
        done
    done
    for stat in median fastest; do
        base=$(echo "${times[plain]}" | tr ' ' '\n' | grep . | $stat)
        row="| $(basename "$script") ($stat of $reps) |"
        for mode in "${modes[@]}"; do
            m=$(echo "${times[$mode]}" | tr ' ' '\n' | grep . | $stat)
            if [[ $mode == plain ]]; then
                row+=" ${m}s |"
            else
                row+=" $(echo "scale=3; $m / $base" | bc)x |"
            fi
        done
        echo "$row"
    done
    unset times
done
