#!/usr/bin/env bash
# Overhead of profiling whole processes, one table per run, all against the
# same Python:
#
#   plain     python3 SCRIPT: the distribution's own interpreter (Debian's
#             /usr/bin/python3.11 links libpython statically), the baseline
#   shared    the same on the shared libpython (python_launcher.c), for reference
#   cprofile  python3 -m cProfile -o /dev/null SCRIPT
#   off       the command with every collector off: --sample at 0.1 Hz (no
#             tracer, no sample taken), --no-gc --no-imports --no-io --no-system
#   minimal   pycroscope profile --minimal SCRIPT
#   default   pycroscope profile SCRIPT   (the mode a user gets without flags)
#   full      pycroscope profile --full SCRIPT
#   sample    pycroscope profile --sample SCRIPT   (100 Hz, CPU clock)
#   minimal_profile   --minimal --backend profile: on 3.12+, where --minimal
#             otherwise runs the sys.monitoring backend, the legacy hook beside it
#   noop_eval, clock_eval, noop_profile   the floors under the backends, from
#             floor_launcher.c: a PEP 523 function that does nothing, the same
#             reading the clock twice per frame, a C profile function that does nothing
#   noop_monitoring, clock_monitoring   (3.12+) the same for sys.monitoring: a
#             tool with the --minimal events whose C callbacks do nothing (or
#             read the clock)
#
# The launchers (plain's stand-ins for shared and the floors) link the static
# libpython when the installation ships one, as the command does
# (PYCROSCOPE_CLI_STATIC_PYTHON), so the floors compare like with like.
#
# MODES="plain sample" (for example) runs a subset; plain must be first.
# Every script in workloads/ (or the scripts given after BUILD_DIR). Each
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
# The pycroscope runs write their outputs (session.json, stacks.folded,
# capture.pycro, reports) into a fresh directory, removed afterwards;
# SINKS=json,folded (a --sinks list) limits them. --top 0: no summary.
# Build the command with:
#   cmake -S . -B /tmp/bpy -G Ninja -DCMAKE_BUILD_TYPE=Release \
#         -DPYCROSCOPE_BUILD_EXAMPLES=ON -DPYCROSCOPE_BUILD_TESTS=OFF
#   cmake --build /tmp/bpy --target pycroscope
# Against another CPython (a pyenv shared build, 3.12 for example), point
# pkg-config at it for both the configure and this script (the launchers,
# which also need its libpython on LD_LIBRARY_PATH):
#   P=$(pyenv root)/versions/3.12.1; export PKG_CONFIG_PATH=$P/lib/pkgconfig LD_LIBRARY_PATH=$P/lib
#   MODES="plain cprofile minimal minimal_profile default full" \
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
shared_python="$scratch/python3_shared"
# shellcheck disable=SC2046
if ! ${CC:-cc} -O2 -o "$shared_python" "$here/python_launcher.c" $(pkg-config --cflags --libs python3-embed); then
    echo "error: could not build the launcher (needs a C compiler and pkg-config python3-embed)" >&2
    exit 2
fi
# The static archive and what it needs, as the command links them.
static_link=()
read -r -a static_vars < <("$static_python" -c "import sysconfig as s; print(*(s.get_config_var(k) or '-' for k in ('LIBPL', 'LIBRARY')))")
if [[ ${static_vars[1]:-} == libpython*.a && -f ${static_vars[0]}/${static_vars[1]} ]]; then
    read -r -a extra < <("$static_python" -c "import sysconfig as s; print(' '.join(s.get_config_var(k) or '' for k in ('LIBS', 'SYSLIBS', 'MODLIBS')))")
    static_link=(-no-pie "${static_vars[0]}/${static_vars[1]}" -Xlinker --export-dynamic "${extra[@]}" -lpthread)
fi

read -r -a modes <<<"${MODES:-plain shared cprofile off noop_eval minimal default full sample}"
floor_python="$scratch/floor_python3"
if [[ " ${modes[*]} " == *" noop_"* || " ${modes[*]} " == *" clock_"* ]]; then
    # shellcheck disable=SC2046
    floor_link=("${static_link[@]}")
    if [[ ${#floor_link[@]} -eq 0 ]]; then
        read -r -a floor_link < <(pkg-config --libs python3-embed)
    fi
    # shellcheck disable=SC2046
    if ! ${CC:-cc} -O2 -o "$floor_python" "$here/floor_launcher.c" $(pkg-config --cflags python3-embed) "${floor_link[@]}"; then
        echo "error: could not build floor_launcher.c" >&2
        exit 2
    fi
fi
collectors_off=(--sample --rate 0.1 --no-gc --no-imports --no-io --no-system)
if [[ ${modes[0]} != plain ]]; then
    echo "error: MODES must start with plain (the baseline)" >&2
    exit 2
fi
declare -A label=([plain]="python3" [shared]="python3 on libpython.so" [cprofile]="cProfile"
                  [off]="collectors off" [minimal]="--minimal" [default]="default" [full]="--full"
                  [sample]="--sample" [minimal_profile]="--minimal --backend profile"
                  [noop_eval]="no-op PEP 523 function" [clock_eval]="PEP 523 + 2 clock reads"
                  [noop_profile]="no-op C profile function" [noop_monitoring]="no-op sys.monitoring tool"
                  [clock_monitoring]="sys.monitoring tool + clock read")

# run_once MODE SCRIPT -> prints "WALL CPU" in seconds (CPU = user + system,
# all threads: less sensitive than wall time to other load on the machine).
run_once() {
    local mode=$1 script=$2 out="$scratch/out" status=0
    rm -rf "$out"
    local -a cmd
    case $mode in
    plain) cmd=("$static_python" "$script") ;;
    shared) cmd=("$shared_python" "$script") ;;
    cprofile) cmd=("$static_python" -m cProfile -o /dev/null "$script") ;;
    off) cmd=("$cli" profile "${collectors_off[@]}" "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    minimal) cmd=("$cli" profile --minimal "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    default) cmd=("$cli" profile "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    full) cmd=("$cli" profile --full "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    sample) cmd=("$cli" profile --sample "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    minimal_profile) cmd=("$cli" profile --minimal --backend profile "${sinks[@]}" --top 0 --output-dir "$out" "$script") ;;
    noop_eval | clock_eval | noop_profile | noop_monitoring | clock_monitoring) cmd=(env PYCROSCOPE_FLOOR="$mode" "$floor_python" "$script") ;;
    *) echo "error: unknown mode '$mode' (plain shared cprofile off minimal default full sample minimal_profile noop_eval clock_eval noop_profile noop_monitoring clock_monitoring)" >&2; exit 2 ;;
    esac
    "$timer" -f '%e %U %S' -o "$scratch/time" "${cmd[@]}" >"$scratch/stdout" 2>"$scratch/stderr" || status=$?
    if [[ $status -ne 0 ]]; then
        echo "error: '${cmd[*]}' exited with $status:" >&2
        tail -n 20 "$scratch/stderr" >&2
        exit 1
    fi
    if [[ $mode == off || $mode == minimal* || $mode == default || $mode == full || $mode == sample ]] && [[ ! -s $out/session.json ]]; then
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

echo "python3:     $static_python ($("$static_python" -c 'import sys; print(sys.version.split()[0])'))" >&2
echo "launchers:   ${static_link[1]:-shared libpython (no static archive found)}" >&2
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
