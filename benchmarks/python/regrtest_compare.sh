#!/usr/bin/env bash
# Runs CPython's own regression tests (Debian's libpython3.11-testsuite) plain and under
# `pycroscope profile` in each mode, and compares pass/fail/skip per test case: the profiler
# must never change what the program does.
#
#   regrtest_compare.sh PYCROSCOPE [--subset] [MODULE...]
#
# Exit 0: every case has the same result in every mode (one summary line per module and mode).
# Exit 1: a difference (printed). A case whose result also differs between two plain runs is
# reported as FLAKY and does not fail the run. Environment: OUT (log directory, default
# a new /tmp/regrtest_compare.XXXXXX), MODES (default "default minimal sample line"),
# TIMEOUT (seconds per run, default 1800).
set -u

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
PYCROSCOPE=$(readlink -f "$1"); shift
[ -x "$PYCROSCOPE" ] || { echo "error: $PYCROSCOPE is not executable" >&2; exit 2; }
PYTHON=/usr/bin/python3.11   # Debian's, not a pyenv shim: the libpython pycroscope links
HELPER_PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
HELPER="$HERE/regrtest_compare.py"

# Fastest first (plain, unloaded: the last four take from half a minute to minutes).
FULL="test_sys_setprofile test_scope test_string test_generators test_class test_list test_dict test_collections
      test_dataclasses test_functools test_with test_raise test_re test_enum test_coroutines test_doctest test_set
      test_gc test_json test_pickle test_threading test_sys_settrace test_contextlib test_exceptions test_itertools"
# About 10 minutes for all modes on an unloaded 2-core machine.
SUBSET="test_sys_setprofile test_generators test_gc test_json test_scope test_functools test_collections
        test_dataclasses test_enum test_re test_string test_list test_dict test_class test_with
        test_raise test_coroutines test_doctest"
MODULES=""
if [ "${1:-}" = --subset ]; then MODULES=$SUBSET; shift; fi
[ $# -gt 0 ] && MODULES="$*"
[ -n "$MODULES" ] || MODULES=$FULL
MODES=${MODES:-"default minimal sample line"}
TIMEOUT=${TIMEOUT:-1800}

OUT=${OUT:-$(mktemp -d /tmp/regrtest_compare.XXXXXX)}
mkdir -p "$OUT"
WRAPPER="$OUT/regrtest_wrapper.py"
printf 'from test.libregrtest import main\nmain()\n' > "$WRAPPER"
echo "logs in $OUT"

flag_of() { case $1 in default) echo "";; *) echo "--$1";; esac; }

declare -A WALL
status=0
for module in $MODULES; do
    args=(-v --timeout="$TIMEOUT" "$module")
    start=$(date +%s.%N)
    timeout $((TIMEOUT + 120)) "$PYTHON" "$WRAPPER" "${args[@]}" > "$OUT/$module.plain.log" 2>&1
    rc=$?
    WALL[plain]=$(echo "${WALL[plain]:-0} + $(date +%s.%N) - $start" | bc)
    echo "$module plain: exit $rc, $("$HELPER_PY" "$HELPER" parse "$OUT/$module.plain.log" | cut -f2 | sort | uniq -c | xargs)"
    for mode in $MODES; do
        flag=$(flag_of "$mode")
        log="$OUT/$module.$mode.log"
        start=$(date +%s.%N)
        # shellcheck disable=SC2086
        timeout $((TIMEOUT + 120)) "$PYCROSCOPE" profile --output-dir "$OUT/profile.$module.$mode" --top 0 $flag \
            "$WRAPPER" "${args[@]}" > "$log" 2>&1
        rc=$?
        WALL[$mode]=$(echo "${WALL[$mode]:-0} + $(date +%s.%N) - $start" | bc)
        result=$("$HELPER_PY" "$HELPER" compare "$OUT/$module.plain.log" "$log")
        if [ $? -ne 0 ]; then
            # Is it the profiler or a flaky test? Run plain once more and compare again.
            again="$OUT/$module.plain2.log"
            [ -f "$again" ] || timeout $((TIMEOUT + 120)) "$PYTHON" "$WRAPPER" "${args[@]}" > "$again" 2>&1
            result=$("$HELPER_PY" "$HELPER" compare "$OUT/$module.plain.log" "$log" "$again")
            [ $? -ne 0 ] && status=1
        fi
        compared=$(echo "$result" | sed -n 's/^compared //p')
        diffs=$(echo "$result" | grep -c '^DIFF')
        flaky=$(echo "$result" | grep -c '^FLAKY')
        printf '%-22s %-8s exit %-3s %4s cases compared, %s differences, %s flaky\n' \
            "$module" "$mode" "$rc" "$compared" "$diffs" "$flaky"
        echo "$result" | grep -E '^(DIFF|FLAKY)' | sed "s|^|    |;s|\$| (log: $log)|"
    done
    rm -rf "$OUT"/profile.*   # the profiles are large; the logs are what we compare
done

echo "wall time (s) per mode, all modules:"
for mode in plain $MODES; do printf '  %-8s %8.1f\n' "$mode" "${WALL[$mode]:-0}"; done
if [ $status -eq 0 ]; then echo "RESULT: same result for every test case in every mode"; else echo "RESULT: DIFFERENCES (see above)"; fi
exit $status
