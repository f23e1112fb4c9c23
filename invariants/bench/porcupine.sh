#!/usr/bin/env bash
# Benchmark: `dst check` over every file of ../shared/data/porcupine, one process per file.
# Prints per-file check time (inside the process, parse + check) and wall time per process,
# and the totals. Usage (from the repository root): invariants/bench/porcupine.sh [--example]
# With --example the checker is examples/check_file of faultline-invariants (what dst check
# does, without building the simulator); a verdict other than expected.tsv's is marked WRONG
# and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=../shared/data/porcupine
if [ "${1:-}" = --example ]; then
  cargo build --release -p faultline-invariants --example check_file >/dev/null 2>&1
  run() { # FORMAT FILE -> "verdict ms"
    target/sim/release/examples/check_file "$1" "$2" | sed -n 's/.*: \([a-z-]*\) (\([0-9.]*\) ms)/\1 \2/p'
  }
else
  cargo build --release -p faultline-sim --bin dst >/dev/null 2>&1
  run() {
    local out
    out=$(target/sim/release/dst check --json --format "$1" "$2" || true)
    printf '%s %s\n' "$(printf '%s' "$out" | sed -n 's/.*"verdict":"\([a-z-]*\)".*/\1/p')" \
      "$(printf '%s' "$out" | sed -n 's/.*"elapsed_ms":\([0-9.e-]*\).*/\1/p')"
  }
fi
start=$(date +%s.%N)
wrong=0
while IFS=$'\t' read -r file expected; do
  [ -z "$file" ] && continue
  case "$file" in jepsen/*) fmt=jepsen ;; *) fmt=porcupine-kv ;; esac
  if [ "$expected" = empty ]; then
    # A file without operations is refused as unreadable input (exit 3), never given a
    # verdict; only `dst check` is asked (the example has no exit codes of its own).
    mark=""
    if [ "${1:-}" != --example ]; then
      code=0
      target/sim/release/dst check --format "$fmt" "$DATA/$file" >/dev/null 2>&1 || code=$?
      if [ "$code" -ne 3 ]; then mark="  WRONG (exit $code, not 3)"; wrong=$((wrong + 1)); fi
    fi
    printf '%s\t%s\trefused%s\n' "$file" "$expected" "$mark"
    continue
  fi
  read -r verdict ms < <(run "$fmt" "$DATA/$file" || true)
  mark=""
  if [ "$verdict" != "$expected" ]; then mark="  WRONG"; wrong=$((wrong + 1)); fi
  printf '%s\t%s\t%s\t%.2f ms%s\n' "$file" "$expected" "$verdict" "${ms:-0}" "$mark"
done < <(tail -n +2 "$DATA/expected.tsv")
end=$(date +%s.%N)
echo "all files, wall time including one process start per file: $(echo "$end - $start" | bc) s; $wrong verdict(s) differ from expected.tsv"
[ "$wrong" -eq 0 ]
