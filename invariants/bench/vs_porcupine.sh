#!/usr/bin/env bash
# Our checker against porcupine on the four hardest porcupine histories (issue 14): jepsen
# etcd_002 and etcd_007, kv c50-ok and c50-bad. Prints one row per file: our whole-process
# time (the median of RUNS runs of examples/check_file, which does what `dst check` does: read,
# parse, check within 100M steps), wall and CPU (user + system; on a machine other jobs load,
# the CPU time is the fairer figure), porcupine's time, and the ratios porcupine / ours.
#
# Porcupine's time: with `go` on the PATH, its own test suite is run on this machine
# (`go test -bench` for the Jepsen logs; its kv checks are tests, timed by `go test -v`).
# Without Go, the reference timings recorded in ../shared/data/porcupine/README.md are used
# (the lower end of each recorded range, so the ratio is not flattered). That README records
# none for kv c50-bad: its row then prints n/a unless PORCUPINE_C50_BAD_MS gives one.
#
# Usage (from the repository root): invariants/bench/vs_porcupine.sh [RUNS]   (default 21)
# Environment: PORCUPINE_VERSION (module version for `go mod download`, default latest).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-21}
DATA=../shared/data/porcupine
cargo build --release -p faultline-invariants --example check_file >/dev/null 2>&1
CHECK=target/sim/release/examples/check_file
FILES=(jepsen/etcd_002.log jepsen/etcd_007.log kv/c50-ok.txt kv/c50-bad.txt)

# Median of numbers, one a line.
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Our whole-process times in ms, "wall cpu" (medians of RUNS), and the verdict (in a file).
ours() {
  local file=$1 fmt=jepsen t
  [[ $file == kv/* ]] && fmt=porcupine-kv
  { "$CHECK" "$fmt" "$DATA/$file" || true; } | sed -n 's/.*: \([a-z-]*\) (.*/\1/p' >"$TMP/verdict"
  : >"$TMP/times"
  for _ in $(seq "$RUNS"); do
    t=$({ TIMEFORMAT='%3R %3U %3S'; time "$CHECK" "$fmt" "$DATA/$file" >/dev/null || true; } 2>&1)
    echo "$t" >>"$TMP/times"
  done
  echo "$(awk '{print $1 * 1000}' "$TMP/times" | median) $(awk '{print ($2 + $3) * 1000}' "$TMP/times" | median)"
}

# Porcupine's time in ms on this machine (Go present), one line per file in FILES' order.
porcupine_measured() {
  local dir
  dir=$(go mod download -json "github.com/anishathalye/porcupine@${PORCUPINE_VERSION:-latest}" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp -r "$dir" "$TMP/porcupine" && chmod -R u+w "$TMP/porcupine"
  (
    cd "$TMP/porcupine"
    go test -run '^$' -bench '^BenchmarkEtcdJepsen00[27]$' -benchtime 20x . |
      awk '/^BenchmarkEtcdJepsen002/ {a=$3/1e6} /^BenchmarkEtcdJepsen007/ {b=$3/1e6} END {print a; print b}'
    for t in TestKv50ClientsOk TestKv50ClientsBad; do
      go test -run "^$t\$" -count "$RUNS" -v . |
        sed -n "s/^--- PASS: $t (\([0-9.]*\)s)/\1/p" | awk '{print $1 * 1000}' | median
    done
  )
}

# The reference timings of ../shared/data/porcupine/README.md (no Go here).
porcupine_recorded() {
  echo 180                                 # jepsen/etcd_002: "about 0.18-0.20 s"
  echo 120                                 # jepsen/etcd_007: "about 0.12-0.14 s"
  echo 200                                 # kv/c50-ok: "about 0.2 s"
  echo "${PORCUPINE_C50_BAD_MS:-n/a}"      # kv/c50-bad: not recorded
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if command -v go >/dev/null; then
  source="porcupine measured on this machine (go test)"
  porcupine_measured >"$TMP/porcupine.txt"
else
  source="porcupine: reference timings of $DATA/README.md (no Go on this machine)"
  porcupine_recorded >"$TMP/porcupine.txt"
fi
mapfile -t theirs <"$TMP/porcupine.txt"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $source; ours: median of $RUNS processes"
printf '%-20s %-17s %8s %8s %13s %11s %10s\n' file verdict "wall ms" "cpu ms" "porcupine ms" "ratio wall" "ratio cpu"
ratio() { if [[ $1 == n/a ]]; then echo n/a; else printf '%.1fx' "$(echo "$1 / $2" | bc -l)"; fi; }
for i in "${!FILES[@]}"; do
  f=${FILES[$i]}
  read -r wall cpu < <(ours "$f")
  p=${theirs[$i]}
  printf '%-20s %-17s %8.1f %8.1f %13s %11s %10s\n' "$f" "$(cat "$TMP/verdict")" "$wall" "$cpu" \
    "$p" "$(ratio "$p" "$wall")" "$(ratio "$p" "$cpu")"
done
