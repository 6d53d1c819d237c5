#!/usr/bin/env bash
# Run the Python concurrency tests against sanitizer builds of pymigjob._c._core.
#
#   bash .ci/sanitize.sh [thread|address|all] [extra pytest args...]
#
# For each kind (default: all = thread, then address) this
#   1. copies the sources (build_ffi.py, setup.py, pyproject.toml, README.md,
#      csrc/, pymigjob/, tests/) into a throwaway directory: the editable
#      install in the work tree and its _core*.so are never touched;
#   2. builds the core there with PYMIGJOB_SANITIZE=<kind> (build_ffi.py adds
#      -fsanitize=thread, or address+undefined);
#   3. runs pytest from the copy with PYTHONPATH pointing at it, the sanitizer
#      runtime in LD_PRELOAD, and the sanitizer's reports going to a log file
#      (pytest's capture would hide them otherwise);
#   4. fails if pytest fails OR any report was written.
#
# Which tests: -m "concurrency" over tests/: the stress, lifetime and signal
# suites and every other test marked @pytest.mark.concurrency, plus every
# test of the threaded suites named in SANITIZE_THREADED_FILES (default:
# test_wakeups.py test_fairness.py test_threads.py test_lifetime.py, the agent,
# hand-off and uuid tests (test_agent.py test_handoff.py test_uuid.py) and
# tests/aio/test_*.py, test_abort.py; .ci/pytest_threaded_files.py marks them).
# SANITIZE_MARK overrides the marker expression (empty: no filter) and
# SANITIZE_TESTS the paths, e.g. SANITIZE_MARK= SANITIZE_TESTS=tests/concurrency/test_threads.py.
# The memory-growth test skips itself under ASan (its quarantine grows RSS).
# SANITIZE_TSAN_OPTIONS is appended to TSAN_OPTIONS and SANITIZE_TSAN_SUPP (a
# file) to .ci/tsan.supp's suppressions (.ci/freethreaded.sh uses both).
# SANITIZE_KEEP=1 keeps the throwaway directory; reports are copied to
# $SANITIZE_LOG_DIR (default .ci/logs/sanitize in the work tree) either way.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WHICH="${1:-all}"
[ $# -gt 0 ] && shift
case "$WHICH" in
    thread) KINDS=(thread) ;;
    address) KINDS=(address) ;;
    all) KINDS=(thread address) ;;
    *) echo "usage: $0 [thread|address|all] [pytest args...]" >&2; exit 2 ;;
esac
MARK="${SANITIZE_MARK-concurrency}"   # set but empty: no marker filter
TESTS="${SANITIZE_TESTS:-tests}"        # what to collect
export SANITIZE_THREADED_FILES="${SANITIZE_THREADED_FILES-test_wakeups.py test_fairness.py test_threads.py test_lifetime.py test_notifier.py test_cancel.py test_queue.py test_basics.py test_abort.py test_agent.py test_handoff.py test_uuid.py}"
LOG_DIR="${SANITIZE_LOG_DIR:-$ROOT/.ci/logs/sanitize}"

# ---- tools -----------------------------------------------------------------
need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
for lib in libtsan.so libasan.so libubsan.so; do
    case "$(gcc -print-file-name=$lib 2>/dev/null || echo $lib)" in
        /*) ;;
        *) need_apt+=(libtsan2 libasan8 libubsan1) ;;
    esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# the real interpreter, not a shell shim (pyenv): the runtime must be
# preloaded into python itself, and a preloaded TSan in bash crashes.
# .ci/lib.sh gives .ci/run's venv python (or yours, run by hand).
. "$ROOT/.ci/lib.sh"
PY="$("$PY" -c 'import sys; print(sys.executable)')"
# build_ffi.py runs setuptools outside pip's isolated build environment, so
# the build requirements (pyproject's setuptools>=77) must be here too
echo "== installing the build and test requirements"
"$PY" -m pip install -q 'setuptools>=77' 'cffi>=2.0' 'pytest>=8' 'pytest-timeout>=2.2' \
    'hypothesis>=6.100'


WORK="$(mktemp -d "${TMPDIR:-/tmp}/pymigjob-sanitize.XXXXXX")"
cleanup() { [ "${SANITIZE_KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
rm -rf "$LOG_DIR"
cat "$ROOT/.ci/tsan.supp" ${SANITIZE_TSAN_SUPP:+"$SANITIZE_TSAN_SUPP"} >"$WORK/tsan.supp"
mkdir -p "$LOG_DIR"

status=0
for kind in "${KINDS[@]}"; do
    start=$(date +%s)
    dir="$WORK/$kind"
    logs="$WORK/$kind-logs"
    mkdir -p "$dir" "$logs"
    echo "== sanitize: $kind build (in $dir)"
    tar -C "$ROOT" --exclude='*.so' --exclude='__pycache__' --exclude='.hypothesis' \
        --exclude='.pytest_cache' --exclude='.benchmarks' --exclude='csrc/tests/bin' \
        -cf - build_ffi.py setup.py pyproject.toml README.md csrc pymigjob tests |
        tar -C "$dir" -xf -
    rm -f "$dir/pymigjob/_c/_core.c"
    if ! (cd "$dir" && PYMIGJOB_SANITIZE=$kind "$PY" build_ffi.py >"$logs/build.log" 2>&1); then
        cat "$logs/build.log" >&2
        echo "sanitize: $kind build FAILED" >&2
        exit 1
    fi
    so="$(ls "$dir"/pymigjob/_c/_core*.so)"
    case "$kind" in
        thread) runtime="$(gcc -print-file-name=libtsan.so)"; want=libtsan ;;
        address) runtime="$(gcc -print-file-name=libasan.so)"; want=libasan ;;
    esac
    # (no `ldd | grep -q`: with pipefail, grep's early exit fails the pipe)
    case "$(ldd "$so")" in
        *"$want"*) ;;
        *) echo "sanitize: $so is not linked with $want" >&2; exit 1 ;;
    esac

    # the copy must be what gets imported, not the editable install
    got="$(cd "$dir" && LD_PRELOAD="$runtime" ASAN_OPTIONS=detect_leaks=0 PYTHONPATH="$dir" \
           "$PY" -c 'import pymigjob._c._core as c; print(c.__file__)')"
    [ "$got" = "$so" ] || { echo "sanitize: imported $got instead of $so" >&2; exit 1; }

    echo "== sanitize: $kind pytest -m '$MARK' $*"
    rc=0
    (
        cd "$dir"
        export PYTHONPATH="$dir:$ROOT/.ci" LD_PRELOAD="$runtime" PYTHONFAULTHANDLER=1
        # halt_on_error=0 for TSan: collect every race of the run in the log
        export TSAN_OPTIONS="log_path=$logs/tsan halt_on_error=0 second_deadlock_stack=1 history_size=4 suppressions=$WORK/tsan.supp${SANITIZE_TSAN_OPTIONS:+ $SANITIZE_TSAN_OPTIONS}"
        export ASAN_OPTIONS="log_path=$logs/asan detect_leaks=0 abort_on_error=1 detect_stack_use_after_return=0 strict_init_order=1"
        export UBSAN_OPTIONS="log_path=$logs/ubsan print_stacktrace=1 halt_on_error=1"
        export MJ_SANITIZER="$kind"
        mark=()
        [ -n "$MARK" ] && mark=(-m "$MARK")
        # shellcheck disable=SC2086 # TESTS is a list of paths
        exec "$PY" -m pytest -p no:cacheprovider -p pytest_threaded_files -q \
            "${mark[@]}" $TESTS "$@"
    ) || rc=$?
    reports=$(find "$logs" -name 'tsan.*' -o -name 'asan.*' -o -name 'ubsan.*' | sort)
    cp -r "$logs" "$LOG_DIR/$kind"
    if [ -n "$reports" ]; then
        echo "sanitize: $kind wrote reports:" >&2
        for f in $reports; do
            echo "---- $f" >&2
            head -c 20000 "$f" >&2
        done
        status=1
    fi
    if [ $rc -ne 0 ]; then
        echo "sanitize: $kind pytest exited $rc" >&2
        status=1
    fi
    echo "== sanitize: $kind done in $(( $(date +%s) - start )) s (pytest rc=$rc, reports: $(echo -n "$reports" | grep -c . || true))"
done
exit $status
