#!/usr/bin/env bash
# Instruction counts of a trace replay on each backend, under valgrind's callgrind: the figure
# that holds on a noisy machine, where times do not.
#
#   scripts/callgrind-replay.sh [TRACE] [BACKEND...]
#
# TRACE defaults to tests/fixtures/objects.lmemtrace; BACKENDs to every compiled one. Counts only
# the replay loop (`lmem::trace::replay::replay`, toggled on at its entry), so reading the trace
# file is not in the figure; the whole-process total is printed too. Builds `lmem` (release) into
# $CARGO_TARGET_DIR (default target/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
trace="${1:-tests/fixtures/objects.lmemtrace}"
shift || true
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 2; }
cargo build --release -q -p lmem-tool --bin lmem
lmem="${CARGO_TARGET_DIR:-$root/target}/release/lmem"
if [ "$#" -gt 0 ]; then
    backends=("$@")
else
    mapfile -t backends < <("$lmem" backends | awk '/^compiled backends:/{on=1; next} /^[^ ]/{on=0} on{print $1}')
fi
"$lmem" trace info "$trace" | sed -n '1,6p'
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
printf '%-10s %16s %16s %12s\n' backend "replay Ir" "process Ir" "Ir/op"
events="$("$lmem" trace info "$trace" | awk '/^events/{print $2}')"
for b in "${backends[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$b.out" \
        --toggle-collect='lmem::trace::replay::replay*' \
        "$lmem" trace replay "$trace" --backend "$b" --runs 1 >/dev/null 2>"$out/$b.log"
    replay_ir="$(awk '/^summary:|^totals:/{print $2; exit}' "$out/$b.out")"
    # With --toggle-collect the file's totals are the replay's; the process total is from a run
    # without it.
    valgrind --tool=callgrind --callgrind-out-file="$out/$b.all" \
        "$lmem" trace replay "$trace" --backend "$b" --runs 1 >/dev/null 2>"$out/$b.alllog"
    total_ir="$(awk '/^summary:|^totals:/{print $2; exit}' "$out/$b.all")"
    per_op="$(awk -v ir="$replay_ir" -v n="$events" 'BEGIN{ if (n > 0) printf "%.1f", ir / n; else print "-" }')"
    printf '%-10s %16s %16s %12s\n' "$b" "$replay_ir" "$total_ir" "$per_op"
done
