#!/usr/bin/env bash
# Benchmark: `dst check` over every file of ../shared/data/porcupine, one process per file.
# Prints per-file check time (inside the process, parse + check) and wall time per process,
# and the totals. Usage (from the repository root): invariants/bench/porcupine.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p faultline-sim --bin dst >/dev/null 2>&1
DST=target/sim/release/dst
DATA=../shared/data/porcupine
total_check=0
start=$(date +%s.%N)
tail -n +2 "$DATA/expected.tsv" | while IFS=$'\t' read -r file expected; do
  [ -z "$file" ] && continue
  case "$file" in jepsen/*) fmt=jepsen ;; *) fmt=porcupine-kv ;; esac
  out=$("$DST" check --json --format "$fmt" "$DATA/$file" || true)
  ms=$(printf '%s' "$out" | sed -n 's/.*"elapsed_ms":\([0-9.e-]*\).*/\1/p')
  verdict=$(printf '%s' "$out" | sed -n 's/.*"verdict":"\([a-z-]*\)".*/\1/p')
  printf '%s\t%s\t%s\t%.2f ms\n' "$file" "$expected" "$verdict" "$ms"
done
end=$(date +%s.%N)
echo "all files, wall time including one process start per file: $(echo "$end - $start" | bc) s"
