#!/usr/bin/env bash
# Instructions per call of the allocation function that `lmem-lua` gives Lua, per backend, split
# into "layer" and "backend" by source file: the layer's own cost, measured where it runs.
#
#   scripts/callgrind-path.sh [--workload NAME] [--scale S] [--lua BIN] [BACKEND...]
#
# For each backend (default: every compiled one) it runs `lmem-lua --backend B` on a bundled
# workload (default binary_trees at scale 0.05) three times under valgrind's callgrind: on the
# default path, with `--stats` (detailed accounting), and routed (`--swap B@1000`: after 1000
# allocations the state swaps to a fresh B and every later free is routed through the swap
# chain, whose first backend keeps the state's first blocks to the end). Collection is toggled on the allocation
# function Lua calls (`lmem::lua_alloc::lua_alloc`, one monomorphic function per backend and
# accounting), so the figures are that function and everything it calls, per call.
#
# Each instruction is attributed by the inline chain of its address (scripts/callgrind_split.py,
# with addr2line): "backend" when any frame of the chain is a backend's (backends/<name>/ other
# than backends/api, the C sources of jemalloc or mimalloc, a backend crate's function), or when
# it lies outside the binary (libc's malloc, free, memcpy); everything else is "layer": src/,
# the trait's forwarding, and standard-library code inlined into the layer. The function's
# prologue and epilogue, and the tail call to the slow path, count as layer.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
workload=binary_trees
scale=0.05
lua=""
backends=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --workload) workload="$2"; shift 2 ;;
        --scale) scale="$2"; shift 2 ;;
        --lua) lua="$2"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) backends+=("$1"); shift ;;
    esac
done
command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install -y valgrind" >&2; exit 2; }
if [ -z "$lua" ]; then
    cargo build --release -q -p lmem-lua --bin lmem-lua
    lua="${CARGO_TARGET_DIR:-$root/target}/release/lmem-lua"
fi
if [ "${#backends[@]}" -eq 0 ]; then
    for b in system jemalloc mimalloc mimalloc-shared bump slab; do
        "$lua" --backend "$b" -e '' 2>/dev/null && backends+=("$b")
    done
fi
script="lua/bench/$workload.lua"
[ -f "$script" ] || { echo "no workload $script" >&2; exit 2; }
out="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$out"' EXIT; [ -n "${KEEP:-}" ] && echo "outputs in $out"

echo "lmem-lua on $script $scale: instructions per call of the allocation function"
printf '%-10s %-8s %10s %10s %10s %10s\n' backend path calls "Ir/call" layer backend
for b in "${backends[@]}"; do
    for mode in default stats routed; do
        extra=()
        [ "$mode" = stats ] && extra=(--stats)
        [ "$mode" = routed ] && extra=(--swap "$b@1000")
        f="$out/$b-$mode.out"
        valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$f" \
            --toggle-collect='lmem::lua_alloc::lua_alloc*' \
            "$lua" --backend "$b" "${extra[@]}" "$script" "$scale" >/dev/null 2>"$out/$b-$mode.log"
        read -r calls per layer backend < <(python3 "$root/scripts/callgrind_split.py" "$f" 'lmem::lua_alloc::lua_alloc' "$lua")
        printf '%-10s %-8s %10s %10s %10s %10s\n' "$b" "$mode" "$calls" "$per" "$layer" "$backend"
    done
done

# The baseline: stock Lua's own `l_alloc` (`lmem-lua --stock`, a state from `luaL_newstate`),
# split the same way: `l_alloc` itself is the "layer", glibc's realloc/free the "backend".
f="$out/stock.out"
valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$f" --toggle-collect='l_alloc' \
    "$lua" --stock "$script" "$scale" >/dev/null 2>"$out/stock.log"
read -r calls per layer backend < <(python3 "$root/scripts/callgrind_split.py" "$f" 'l_alloc' "$lua")
printf '%-10s %-8s %10s %10s %10s %10s\n' stock l_alloc "$calls" "$per" "$layer" "$backend"
