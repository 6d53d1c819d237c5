#!/usr/bin/env bash
# Build the C core (csrc/*.c) with the C test program (csrc/tests/*.c: the
# test_*.c files by subject, helpers.c, and test_main.c with the table and
# main) and run it.
#
#   csrc/tests/run.sh [plain|thread|address] [test-name-filter]
#
# plain   : gcc -std=c11 -Wall -Wextra -Werror -O2 -pthread
# thread  : the same plus -fsanitize=thread
# address : the same plus -fsanitize=address,undefined -fno-sanitize-recover=all
# Any sanitizer report fails the run (halt_on_error, non-zero exitcode).
# Binaries go to csrc/tests/bin/ (gitignored).  Works from any cwd.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
csrc="$(dirname "$here")"
bindir="$here/bin"
mode="${1:-plain}"
shift || true

CC="${CC:-gcc}"
cflags=(-std=c11 -Wall -Wextra -Werror -O2 -pthread -I"$csrc" -I"$here")
case "$mode" in
    plain)
        out="$bindir/test_core"
        ;;
    thread)
        out="$bindir/test_core_tsan"
        cflags+=(-fsanitize=thread -g -fno-omit-frame-pointer)
        export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:report_signal_unsafe=0${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
        ;;
    address)
        out="$bindir/test_core_asan"
        cflags+=(-fsanitize=address,undefined -fno-sanitize-recover=all -g -fno-omit-frame-pointer)
        export ASAN_OPTIONS="halt_on_error=1:exitcode=67:detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=68${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
        ;;
    *)
        echo "usage: $0 [plain|thread|address] [test-name-filter]" >&2
        exit 2
        ;;
esac

shopt -s nullglob
sources=("$csrc"/*.c)
if [ "${#sources[@]}" -eq 0 ]; then
    echo "run.sh: no library sources in $csrc/*.c" >&2
    exit 2
fi

tests=("$here"/*.c)
if [ ! -f "$here/test_main.c" ]; then
    echo "run.sh: no test program in $here (test_main.c missing)" >&2
    exit 2
fi

mkdir -p "$bindir"
echo "build ($mode): $CC ${cflags[*]} $(cd "$csrc" && echo *.c)" \
     "$(cd "$here" && for t in *.c; do printf 'tests/%s ' "$t"; done)" >&2
"$CC" "${cflags[@]}" "${sources[@]}" "${tests[@]}" -o "$out"

echo "run: $out $*" >&2
start=$(date +%s.%N)
set +e
"$out" "$@"
rc=$?
set -e
end=$(date +%s.%N)
awk -v m="$mode" -v rc="$rc" -v s="$start" -v e="$end" \
    'BEGIN { printf "run.sh %s: exit %d, %.2fs\n", m, rc, e - s }' >&2
exit "$rc"
