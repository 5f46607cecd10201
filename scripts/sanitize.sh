#!/usr/bin/env bash
# Runs the test suites under sanitizers and valgrind; exits non-zero on any finding.
#
#   scripts/sanitize.sh          all parts (about 10-15 minutes on a 2-core machine, cold)
#   scripts/sanitize.sh quick    the quick parts only, for .ci/run (under ~5 minutes, cold)
#
# Parts (one summary line each at the end, PASS / FAIL / SKIP):
#   asan-quick  AddressSanitizer (+ LeakSanitizer): lmem (lib + every integration test, with the
#               bump and slab backends compiled in so the fuzz_* tests cover them), lmem-bump,
#               lmem-slab; PROPTEST_CASES=16 for the proptests that read it.
#   asan        (all) the same plus lmem-system and lmem-backend, default case counts.
#   tsan        (all) ThreadSanitizer on the multi-thread tests of bump and slab
#               (`--test threads --test pool`), suppressions in scripts/tsan.supp.
#   valgrind    (all) memcheck on `lmem-lua --backend system` running each lua/tests/*.lua
#               (limit.lua with --limit 8M); skipped when lmem-lua does not build.
#               Suppressions (third-party C only) in scripts/valgrind.supp.
#
# Nothing is excluded from the ASan runs: every test of these crates works under ASan. The
# timing tests (`tests/speed.rs` of bump) are `#[ignore]` already and stay ignored: a timing
# under a sanitizer means nothing. Doc tests are not run (`--lib --tests`): rustdoc would need
# the sanitizer runtime linked into every doctest binary, and they are plain examples.
#
# Environment: LMEM_ASAN_DIR, LMEM_TSAN_DIR (target dirs, default target/asan, target/tsan);
# CARGO_TARGET_DIR for the plain `lmem-lua` build (default target); LMEM_SANITIZE_LOGS (default
# target/sanitize-logs). Needs a stable or nightly toolchain (RUSTC_BOOTSTRAP=1 unlocks -Z) and
# valgrind for the last part.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=${1:-all}
case "$mode" in
quick | all) ;;
*)
    echo "usage: $0 [quick|all]" >&2
    exit 2
    ;;
esac

triple=x86_64-unknown-linux-gnu
asan_dir=${LMEM_ASAN_DIR:-target/asan}
tsan_dir=${LMEM_TSAN_DIR:-target/tsan}
plain_dir=${CARGO_TARGET_DIR:-target}
logs=${LMEM_SANITIZE_LOGS:-target/sanitize-logs}
mkdir -p "$logs"
export CARGO_TERM_COLOR=never RUSTC_BOOTSTRAP=1

summary=()
failed=0

# record NAME STATUS SECONDS DETAIL
record() {
    summary+=("$(printf 'sanitize: %-10s %-4s %4ss  %s' "$1" "$2" "$3" "$4")")
    if [ "$2" = FAIL ]; then failed=1; fi
}

# Counts sanitizer reports in a log, for the summary line.
findings() {
    grep -cE '^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|SUMMARY: (Address|Leak|Thread)Sanitizer)' "$1" || true
}

# ASan options:
# - allocator_may_return_null=1: the backend contract (backends/api) is that an impossible request
#   answers NULL, and the tests ask malloc for sizes beyond ASan's 1 TiB cap on purpose; by
#   default ASan would report "allocation-size-too-big" instead of returning NULL.
# - detect_leaks=1: LeakSanitizer at exit of every test binary (a leak is a finding).
# - detect_stack_use_after_return=1: catches blocks handed out from a dead stack frame.
asan_options="allocator_may_return_null=1:detect_leaks=1:detect_stack_use_after_return=1:halt_on_error=1"

run_asan() { # NAME CASES PACKAGE-ARGS...
    local name=$1 cases=$2
    shift 2
    local log=$logs/$name.log start=$SECONDS
    echo "== $name: cargo test under AddressSanitizer ($*), log $log"
    # An empty case count keeps each proptest's own default.
    local cases_env=(env -u PROPTEST_CASES)
    if [ -n "$cases" ]; then cases_env=(env PROPTEST_CASES="$cases"); fi
    if "${cases_env[@]}" ASAN_OPTIONS=$asan_options \
        RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        CARGO_TARGET_DIR=$asan_dir \
        cargo test --target $triple --lib --tests --no-fail-fast "$@" >"$log" 2>&1; then
        record "$name" PASS $((SECONDS - start)) "$(grep -c '^test result: ok' "$log") test binaries clean"
    else
        record "$name" FAIL $((SECONDS - start)) "$(findings "$log") sanitizer reports; failing: $(grep -oE 'rerun pass `[^`]*`' "$log" | sed 's/rerun pass //' | tr -d '`' | paste -sd, -)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|Direct leak|Indirect leak|error: test failed)' "$log" | head -20
    fi
}

run_tsan() {
    local log=$logs/tsan.log start=$SECONDS
    echo "== tsan: bump and slab multi-thread tests under ThreadSanitizer, log $log"
    # -Cunsafe-allow-abi-mismatch=sanitizer: the prebuilt std is not instrumented and this
    # toolchain has no rust-src for -Zbuild-std; rustc refuses to mix the two without it. The
    # cost is that races inside std are invisible (and std's channels need the suppressions).
    if TSAN_OPTIONS="suppressions=$root/scripts/tsan.supp halt_on_error=0 second_deadlock_stack=1" \
        RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
        CARGO_TARGET_DIR=$tsan_dir \
        cargo test --target $triple --no-fail-fast -p lmem-bump -p lmem-slab \
        --test threads --test pool >"$log" 2>&1; then
        record tsan PASS $((SECONDS - start)) "$(grep -c '^test result: ok' "$log") test binaries, no race"
    else
        record tsan FAIL $((SECONDS - start)) "$(findings "$log") sanitizer reports"
        grep -E '^(WARNING: ThreadSanitizer|SUMMARY|error: test failed)' "$log" | head -20
    fi
}

run_valgrind() {
    local log=$logs/valgrind.log start=$SECONDS
    local lua=$plain_dir/debug/lmem-lua
    : >"$log"
    echo "== valgrind: lmem-lua --backend system on lua/tests/*.lua under memcheck, log $log"
    if ! command -v valgrind >/dev/null 2>&1; then
        record valgrind SKIP 0 "valgrind is not installed"
        return
    fi
    if ! cargo build -p lmem-lua >>"$log" 2>&1; then
        record valgrind SKIP $((SECONDS - start)) "lmem-lua does not build yet (cargo build -p lmem-lua failed, see $log)"
        return
    fi
    case $lua in /*) ;; *) lua=$root/$lua ;; esac
    if [ ! -x "$lua" ]; then
        record valgrind SKIP $((SECONDS - start)) "$lua is missing after the build"
        return
    fi
    local bad=() n=0 script args status
    for script in lua/tests/*.lua; do
        args=(--backend system)
        case "$(basename "$script")" in
        limit.lua) args+=(--limit 8M) ;;
        esac
        n=$((n + 1))
        echo "--- $script ${args[*]}" >>"$log"
        # A clean environment: no LMEM_* setting of the caller changes what runs.
        (cd "$(dirname "$script")" &&
            env -u LMEM_BACKEND -u LMEM_LIMIT -u LMEM_SWAP -u LMEM_FAIL_AT -u LMEM_CHECK \
                -u LMEM_STATS -u LMEM_TRACE -u LMEM_STATS_JSON -u LUA_INIT \
                valgrind -q --error-exitcode=99 --leak-check=full \
                --suppressions="$root/scripts/valgrind.supp" \
                --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                "$lua" "${args[@]}" "$(basename "$script")") >>"$log" 2>&1
        status=$?
        echo "--- exit $status" >>"$log"
        case $status in
        0) ;;
        99) bad+=("$(basename "$script") (memcheck errors)") ;;
        *) bad+=("$(basename "$script") (exit $status)") ;;
        esac
    done
    if [ ${#bad[@]} -eq 0 ]; then
        record valgrind PASS $((SECONDS - start)) "$n scripts, no memcheck error, no definite leak"
    else
        record valgrind FAIL $((SECONDS - start)) "$(IFS=,; echo "${bad[*]}")"
    fi
}

total=$SECONDS
if [ "$mode" = quick ]; then
    # The 100 000-operation random runs of the conformance kit are the slowest tests under
    # ASan (about a minute on this machine); the full run keeps them.
    run_asan asan-quick 16 -p lmem -p lmem-bump -p lmem-slab --features lmem/bump,lmem/slab \
        -- --skip random_run_100k_ops
else
    run_asan asan "" -p lmem -p lmem-bump -p lmem-slab -p lmem-system -p lmem-backend \
        --features lmem/bump,lmem/slab
    run_tsan
    run_valgrind
fi

echo
printf '%s\n' "${summary[@]}"
echo "sanitize: $mode done in $((SECONDS - total))s: $([ $failed = 0 ] && echo clean || echo FINDINGS)"
exit $failed
