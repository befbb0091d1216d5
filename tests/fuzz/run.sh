#!/usr/bin/env bash
# Runs every fuzz target for a while: tests/fuzz/run.sh <build-dir> <seconds-per-target> [<jobs>]
# (<jobs> targets at a time; default 1).
#
# Each target starts from a copy of its committed corpus (tests/fuzz/corpus/<name>/) and replays
# its crash reproducers (tests/fuzz/regressions/<name>/) first; the repository is never written.
# Prints one line per target and exits 1 if any target crashed, leaked, timed out or ran out of
# memory. Logs and crashing inputs are kept in <build-dir>/fuzz-results/.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 || ! $2 =~ ^[0-9]+$ || ! ${3:-1} =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 <build-dir> <seconds-per-target> [<jobs>]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=$2
jobs=${3:-1}
fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$build_dir/fuzz-results"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$results"
mkdir -p "$results"

# Stack traces for UBSan reports too; ASan's defaults (leak detection on) are what we want.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

targets=(token_reply jwt vcap http_headers redact error_body discovery)
for name in "${targets[@]}"; do
  if [[ ! -x $build_dir/tests/fuzz/fuzz_$name ]]; then
    echo "fuzz_$name: not built ($build_dir/tests/fuzz/fuzz_$name); configure with --preset asan-ubsan or --preset fuzz" >&2
    exit 2
  fi
done

# One target: fuzzes it, prints its line (and what went wrong), exits non-zero when it failed.
fuzz_one() {
  local name=$1 binary="$build_dir/tests/fuzz/fuzz_$1"
  local corpus="$work/$name"
  mkdir -p "$corpus" "$results/$name"
  cp -R "$fuzz_dir/corpus/$name/." "$corpus/"
  dirs=("$corpus")  # libFuzzer writes new inputs only into the first directory
  [[ -d $fuzz_dir/regressions/$name ]] && dirs+=("$fuzz_dir/regressions/$name")

  log="$results/$name/fuzz.log"
  status=0
  "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$results/$name/" "${dirs[@]}" >"$log" 2>&1 || status=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1 | tr -d ':' || true)
  if [[ $status -eq 0 ]]; then
    result=ok
  else
    artifact=$(find "$results/$name" -maxdepth 1 -type f ! -name fuzz.log | head -n1)
    result="FAILED (exit $status${artifact:+, input $artifact}; log $log)"
  fi
  {  # one write, so that the lines of targets running side by side do not interleave
    printf '%-18s runs %-10s exec/s %-7s %-18s %s\n' "fuzz_$name" "${runs:-?}" "${execs:-?}" "${cov:-cov ?}" "$result"
    if [[ $status -ne 0 ]]; then  # what went wrong, and the first frames of its stack
      grep -E -A12 '^==[0-9]+== ?ERROR|runtime error:|invariant broken:|terminate called|^ALARM' "$log" | head -n25 || true
    fi
  } >"$results/$name/summary"
  cat "$results/$name/summary"
  return "$status"
}

failed=0
running=0
for name in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || failed=1
    running=$((running - 1))
  fi
  fuzz_one "$name" &
  running=$((running + 1))
done
while ((running > 0)); do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
