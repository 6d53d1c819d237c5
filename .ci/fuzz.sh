#!/usr/bin/env bash
# Coverage-guided fuzzing of the C core with libFuzzer (clang), briefly.
#
#   bash .ci/fuzz.sh [seconds per run]           (default 8; FUZZ_SECONDS too)
#
# Targets (csrc/fuzz/): fuzz_parsers (every enum <-> string table and
# qemuDomainAsyncJobPhase{To,From}String) and fuzz_jobs (a job-call sequence
# interpreter over the whole C API with a reference-count model, kept in
# fuzz_jobs_model.c; run twice:
# as a disciplined caller, then with FUZZ_LAX=1, which also ends jobs handed
# to waiters it has not collected yet), both built
# with ASan + UBSan (+ LeakSanitizer) into a temporary directory.  Each first
# replays the seed corpus kept in csrc/fuzz/corpus/<target>/, then fuzzes for
# the given time, writing new inputs to a temporary corpus (the repository's
# stays small).  A crash, a failed model check, a sanitizer report, a leak or
# a timeout fails the run; the reproducer is left in .ci/logs/fuzz/ and
# printed in base64.  Reproduce with:  <binary> <file>   (FUZZ_TRACE=1 prints
# every operation of fuzz_jobs).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECS="${1:-${FUZZ_SECONDS:-8}}"
LOG_DIR="${FUZZ_LOG_DIR:-$ROOT/.ci/logs/fuzz}"
RUNS=(parsers jobs jobs:lax)

probe() {  # can clang build and link a libFuzzer target here?
    local dir
    dir="$(mktemp -d)"
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$dir/p.c"
    clang -fsanitize=fuzzer,address,undefined "$dir/p.c" -o "$dir/p" >/dev/null 2>&1
    local rc=$?
    rm -rf "$dir"
    return $rc
}
if ! command -v clang >/dev/null || ! probe; then
    echo "== installing clang and the libFuzzer runtime"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
    probe || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev" >/dev/null
    probe || { echo "fuzz: clang cannot build libFuzzer targets" >&2; exit 1; }
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pymigjob-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
rm -rf "$LOG_DIR"
mkdir -p "$LOG_DIR"

# the core's sources, whatever they are: every csrc/*.c
mapfile -t CORE < <(ls "$ROOT"/csrc/*.c)
CFLAGS=(-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I"$ROOT/csrc")
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

status=0
for run in "${RUNS[@]}"; do
    t="${run%%:*}"
    mode="${run#"$t"}"
    start=$(date +%s)
    if [ ! -x "$WORK/fuzz_$t" ]; then
        echo "== fuzz: building fuzz_$t"
        # the target and its own support files (fuzz_jobs_model.c: its model)
        shopt -s nullglob
        support=("$ROOT"/csrc/fuzz/fuzz_"$t"_*.c)
        shopt -u nullglob
        clang "${CFLAGS[@]}" "$ROOT/csrc/fuzz/fuzz_$t.c" "${support[@]}" "${CORE[@]}" -lm \
            -pthread -o "$WORK/fuzz_$t"
    fi
    env=()
    [ "$mode" = ":lax" ] && env=(FUZZ_LAX=1)
    seeds="$ROOT/csrc/fuzz/corpus/$t"
    dict=()
    [ -f "$ROOT/csrc/fuzz/$t.dict" ] && dict=(-dict="$ROOT/csrc/fuzz/$t.dict")
    mkdir -p "$WORK/corpus-$t"
    name="fuzz_$t${mode/:/-}"
    log="$LOG_DIR/$name.log"
    echo "== fuzz: $name for ${SECS}s (seeds: $(ls "$seeds" | wc -l))"
    rc=0
    env "${env[@]}" "$WORK/fuzz_$t" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=1024 -print_final_stats=1 -artifact_prefix="$LOG_DIR/$name-" \
        "${dict[@]}" "$WORK/corpus-$t" "$seeds" >"$log" 2>&1 || rc=$?
    grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    if [ $rc -ne 0 ]; then
        status=1
        echo "fuzz: $name FAILED (exit $rc); the end of its log:" >&2
        grep -v '^#[0-9]' "$log" | tail -60 >&2
        for a in "$LOG_DIR/$name"-*; do
            [ -f "$a" ] || continue
            echo "reproducer $a (base64): $(base64 -w0 "$a")" >&2
        done
    fi
    echo "== fuzz: $name done in $(( $(date +%s) - start )) s, corpus now $(ls "$WORK/corpus-$t" | wc -l) inputs"
done
exit $status
