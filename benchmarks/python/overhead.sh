#!/usr/bin/env bash
# Overhead of profiling whole processes, all on the same libpython:
#
#   plain     python3 SCRIPT                              (the baseline)
#   cProfile  python3 -m cProfile -o /dev/null SCRIPT
#   minimal   BUILD/pycroscope profile --minimal --no-memory ... --output-dir TMP SCRIPT
#   complete  BUILD/pycroscope profile --no-memory ... --output-dir TMP SCRIPT   (C calls too)
#   sample    BUILD/pycroscope profile --sample --no-memory --output-dir TMP SCRIPT
#             (the sampler at its default 100 Hz, no tracing, no allocation hooks)
#   default   BUILD/pycroscope profile --output-dir TMP SCRIPT   (not run unless
#             asked for in MODES: every collector on, as a user gets it: C calls,
#             exceptions (a trace function), memory, GC, imports, I/O, system)
#   minimal_profile, complete_profile   (not run unless asked for in MODES)
#             minimal and complete with --backend profile: on 3.12+, where both
#             otherwise run the sys.monitoring backend, the legacy hook beside it
#   noop_eval, clock_eval, noop_profile   (not run unless asked for in MODES)
#             the floors under the two backends, from floor_launcher.c: a PEP 523
#             function that does nothing, the same reading the clock twice per
#             frame, and a C profile function that does nothing
#
# MODES="plain sample" (for example) runs a subset; plain must be first.
#
# "python3" is python_launcher.c (Py_BytesMain) built against the shared
# libpython from pkg-config python3-embed, the library the pycroscope CLI
# links. Debian's /usr/bin/python3.11 links libpython statically and is
# faster; it is shown too ("static"), for reference, not as the baseline.
#
# for every script in workloads/ (or the scripts given after BUILD_DIR). Each
# configuration runs N times (default 5), interleaved round-robin so drift
# hits all of them alike; the median wall time is compared with the plain
# run's. Prints markdown tables of slowdowns (wall time, and CPU time of all
# threads) and the geometric mean per mode, then the same from each
# configuration's fastest run: on a shared VM interference only ever adds
# time, so the fastest run is the least disturbed one (as timeit reports).
#
#   benchmarks/python/overhead.sh BUILD_DIR [SCRIPT...]
#   N=9 SINKS=json benchmarks/python/overhead.sh /tmp/bpy
#
# The pycroscope runs include writing all outputs (session.json,
# stacks.folded, trace.json) into a fresh directory, removed afterwards;
# SINKS=json,folded (a --sinks list) limits them. --top 0: no report.
# Build the CLI with:
#   cmake -S . -B /tmp/bpy -G Ninja -DCMAKE_BUILD_TYPE=Release \
#         -DPYCROSCOPE_BUILD_EXAMPLES=ON -DPYCROSCOPE_BUILD_TESTS=OFF
#   cmake --build /tmp/bpy --target pycroscope
# Against another CPython (a pyenv shared build, 3.12 for example), point
# pkg-config at it for both the configure and this script (the launcher,
# which also needs its libpython on LD_LIBRARY_PATH):
#   P=$(pyenv root)/versions/3.12.1; export PKG_CONFIG_PATH=$P/lib/pkgconfig LD_LIBRARY_PATH=$P/lib
#   MODES="plain cprofile minimal minimal_profile complete complete_profile" \
#     STATIC_PYTHON=$P/bin/python3.12 benchmarks/python/overhead.sh /tmp/bpy312

set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 BUILD_DIR [SCRIPT...]" >&2
    exit 2
fi
build_dir=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
static_python=${STATIC_PYTHON:-/usr/bin/python3.11}
reps=${N:-5}
cli=${PYCROSCOPE:-$build_dir/pycroscope}

if [[ ! -x $cli ]]; then
    echo "error: no pycroscope CLI at $cli (build it first, or set PYCROSCOPE=path)" >&2
    exit 2
fi
timer=/usr/bin/time
if [[ ! -x $timer ]]; then
    echo "error: needs GNU time at $timer (apt-get install time)" >&2
    exit 2
fi
# SINKS=json (for example) limits the outputs the pycroscope runs write.
sinks=()
if [[ -n ${SINKS:-} ]]; then
    sinks=(--sinks "$SINKS")
fi
if [[ ! -x $static_python ]]; then
    echo "error: no interpreter at $static_python (set STATIC_PYTHON=...)" >&2
    exit 2
fi
if [[ $# -gt 0 ]]; then
    scripts=("$@")
else
    scripts=("$here"/workloads/*.py)
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/pycroscope_overhead.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# python3 on the shared libpython.
python="$scratch/python3"
# shellcheck disable=SC2046
if ! ${CC:-cc} -O2 -o "$python" "$here/python_launcher.c" $(pkg-config --cflags --libs python3-embed); then
    echo "error: could not build the launcher (needs a C compiler and pkg-config python3-embed)" >&2
    exit 2
fi

read -r -a modes <<<"${MODES:-plain static cprofile minimal complete sample}"
floor_python="$scratch/floor_python3"
if [[ " ${modes[*]} " == *" noop_"* || " ${modes[*]} " == *" clock_eval "* ]]; then
    # shellcheck disable=SC2046
    if ! ${CC:-cc} -O2 -o "$floor_python" "$here/floor_launcher.c" $(pkg-config --cflags --libs python3-embed); then
        echo "error: could not build floor_launcher.c" >&2
        exit 2
    fi
fi
# minimal and complete measure the tracer: the resource collectors (memory,
# GC, imports, I/O, exceptions, system) are measured by memory_overhead.sh.
tracing_only=(--no-memory --no-gc --no-imports --no-io --no-exceptions --no-system)
if [[ ${modes[0]} != plain ]]; then
    echo "error: MODES must start with plain (the baseline)" >&2
    exit 2
fi
declare -A label=([plain]="python3" [static]="python3.11 (static)" [cprofile]="cProfile"
                  [minimal]="pycroscope --minimal" [complete]="pycroscope (complete)"
                  [sample]="pycroscope --sample" [default]="pycroscope (default: everything)"
                  [minimal_profile]="--minimal --backend profile" [complete_profile]="complete --backend profile"
                  [noop_eval]="no-op PEP 523 function" [clock_eval]="PEP 523 + 2 clock reads"
                  [noop_profile]="no-op C profile function")

# run_once MODE SCRIPT -> prints "WALL CPU" in seconds (CPU = user + system,
# all threads: less sensitive than wall time to other load on the machine).
run_once() {
    local mode=$1 script=$2 out="$scratch/out" status=0
    rm -rf "$out"
    local -a cmd
    case $mode in
    plain) cmd=("$python" "$script") ;;
    static) cmd=("$static_python" "$script") ;;
    cprofile) cmd=("$python" -m cProfile -o /dev/null "$script") ;;
    minimal) cmd=("$cli" profile --minimal "${tracing_only[@]}" "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    complete) cmd=("$cli" profile "${tracing_only[@]}" "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    minimal_profile) cmd=("$cli" profile --minimal --backend profile "${tracing_only[@]}" "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    complete_profile) cmd=("$cli" profile --backend profile "${tracing_only[@]}" "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    sample) cmd=("$cli" profile --sample --no-memory "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    default) cmd=("$cli" profile "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    noop_eval | clock_eval | noop_profile) cmd=(env PYCROSCOPE_FLOOR="$mode" "$floor_python" "$script") ;;
    *) echo "error: unknown mode '$mode' (plain static cprofile minimal complete minimal_profile complete_profile sample default noop_eval clock_eval noop_profile)" >&2; exit 2 ;;
    esac
    "$timer" -f '%e %U %S' -o "$scratch/time" "${cmd[@]}" >"$scratch/stdout" 2>"$scratch/stderr" || status=$?
    if [[ $status -ne 0 ]]; then
        echo "error: '${cmd[*]}' exited with $status:" >&2
        tail -n 20 "$scratch/stderr" >&2
        exit 1
    fi
    if [[ $mode == minimal* || $mode == complete* || $mode == sample || $mode == default ]] && [[ ! -s $out/session.json ]]; then
        echo "error: '${cmd[*]}' wrote no session.json" >&2
        exit 1
    fi
    awk 'END { printf "%.4f %.4f\n", $1, $2 + $3 }' "$scratch/time"
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fastest() {
    printf '%s\n' "$@" | sort -g | head -n 1
}

echo "libpython:   $("$python" -c 'import sys, sysconfig; print(sys.version.split()[0], sysconfig.get_config_var("INSTSONAME"))')" >&2
echo "pycroscope:  $cli" >&2
echo "repetitions: $reps (median), $(nproc) CPUs" >&2

declare -A wall cpu best
for script in "${scripts[@]}"; do
    name=$(basename "$script" .py)
    declare -A walls=() cpus=()
    for ((r = 0; r < reps; r++)); do
        for mode in "${modes[@]}"; do
            read -r w c < <(run_once "$mode" "$script")
            walls[$mode]+="$w "
            cpus[$mode]+="$c "
        done
    done
    for mode in "${modes[@]}"; do
        # shellcheck disable=SC2086
        wall[$name,$mode]=$(median ${walls[$mode]})
        # shellcheck disable=SC2086
        cpu[$name,$mode]=$(median ${cpus[$mode]})
        # shellcheck disable=SC2086
        best[$name,$mode]=$(fastest ${walls[$mode]})
    done
    line="  $name (wall):"
    for mode in "${modes[@]}"; do line+=" $mode ${wall[$name,$mode]}s"; done
    echo "$line" >&2
    unset walls cpus
done

# table TITLE ARRAY-NAME: slowdowns against the plain run, per script and geomean.
table() {
    local title=$1
    local -n times=$2
    printf '\n%s\n\n| script | python3 (s) |' "$title"
    for mode in "${modes[@]:1}"; do printf ' %s |' "${label[$mode]}"; done
    printf '\n|---|---:|'
    for mode in "${modes[@]:1}"; do printf -- '---:|'; done
    printf '\n'
    local -A logsum
    for mode in "${modes[@]:1}"; do logsum[$mode]=0; done
    local count=0 name base ratio
    for script in "${scripts[@]}"; do
        name=$(basename "$script" .py)
        base=${times[$name,plain]}
        printf '| %s | %.3f |' "$name" "$base"
        for mode in "${modes[@]:1}"; do
            ratio=$(awk -v t="${times[$name,$mode]}" -v b="$base" 'BEGIN { printf "%.3f", t / b }')
            logsum[$mode]=$(awk -v s="${logsum[$mode]}" -v r="$ratio" 'BEGIN { printf "%.6f", s + log(r) }')
            printf ' %.2fx |' "$ratio"
        done
        printf '\n'
        count=$((count + 1))
    done
    printf '| **geometric mean** | |'
    for mode in "${modes[@]:1}"; do
        printf ' **%sx** |' "$(awk -v s="${logsum[$mode]}" -v n="$count" 'BEGIN { printf "%.2f", exp(s / n) }')"
    done
    printf '\n'
}

table "Wall time, median of $reps (slowdown against python3)" wall
table "CPU time (user + system, all threads), median of $reps" cpu
table "Wall time, fastest of $reps (slowdown against python3's fastest)" best
