#!/bin/sh
# Achieved sampling rate of `pycroscope profile --sample` against busy Python
# code and against a thread blocked in a C call, for each clock and rate.
#   benchmarks/python/sampler_rate.sh [path/to/pycroscope]
# cpu clock: samples per CPU second of the sampled threads (a thread blocked
# in C burns none and is not sampled: "-"); wall clock: ticks per second.
set -eu
cli=${1:-build/pycroscope}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/busy.py" <<'PY'
import time
end = time.perf_counter() + 2.0
x = 0
while time.perf_counter() < end:
    x += 1
PY
cat > "$dir/blocked.py" <<'PY'
import time
time.sleep(2.0)
PY
printf '| workload | clock | asked | achieved | samples |\n|---|---|---|---|---|\n'
for workload in busy blocked; do
  for clock in cpu wall; do
    for rate in 100 1000; do
      out=$("$cli" profile --sample --clock "$clock" --rate "$rate" --sinks json --output-dir "$dir/out" "$dir/$workload.py" 2>&1)
      achieved=$(printf '%s\n' "$out" | sed -n 's/.*(achieved \([0-9.]*\) Hz).*/\1/p' | head -1)
      samples=$(printf '%s\n' "$out" | sed -n 's/^pycroscope: \([0-9]*\) samples.*/\1/p' | head -1)
      printf '| %s | %s | %s Hz | %s Hz | %s |\n' "$workload" "$clock" "$rate" "${achieved:--}" "${samples:-0}"
    done
  done
done
