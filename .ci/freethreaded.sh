#!/usr/bin/env bash
# Free-threaded CPython 3.14t: pymigjob builds there as a cp314t
# wheel (no limited API: setup.py), installs, and passes the whole suite with
# the GIL off.
#
#   bash .ci/freethreaded.sh [tarball]
#
# The interpreter is the one in shared/tools (its README): by default
# ../shared/tools/cpython-3.14.7t-linux-x86_64.tar.xz beside the work tree,
# else $FT_TARBALL or the argument.  This script unpacks it into a temporary
# directory, makes a venv with it, builds the wheel there (pip, isolated
# build) from a copy of the tracked files, checks its tag is cp314t and that
# its core is not abi3, installs it with its [test] extra and runs the suite
# from a copy of tests/ against the installed package with PYTHON_GIL=0
# (tests/concurrency/test_free_threading.py checks, in a child without PYTHON_GIL, that
# importing and using pymigjob does not turn the GIL back on).
#
# Then, all with PYTHON_GIL=0 (issue 11), each step timed:
#   races    tests/concurrency/test_ft_races.py (one test per shared Python
#            structure) FT_RACE_RUNS times (default 3) at MJ_RACE_SCALE=2,
#            then the 128-thread stress checker (test_stress.py) and the
#            races file against the pure twin (PYMIGJOB_IMPL=pure): the suite
#            above ran both once, against the C core only;
#   tsan     the concurrency tests against a ThreadSanitizer build of the
#            core (.ci/sanitize.sh thread with this interpreter; TSan's
#            runtime preloaded, the interpreter not instrumented, see
#            .ci/tsan-ft.supp);
#   bench    the benchmarks' ratio gates (.ci/bench.sh with this interpreter);
#   scaling  benchmarks/scaling.py --gate: 2 threads vs 1, GIL on and off
#            (and $PYTHON, .ci/run's venv, beside them), a gate judged only
#            on rounds where two cores were idle.
# FT_STEPS (default "races tsan bench scaling") picks among them.  Cost on the
# shared 2-core machine, busy: races 35 s, tsan 52 s, bench 82 s, scaling 67 s
# (FT_SCALING_BUDGET=20 s per child, three children: a busy machine uses it all).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/.ci/lib.sh"
TARBALL="${1:-${FT_TARBALL:-$ROOT/../shared/tools/cpython-3.14.7t-linux-x86_64.tar.xz}}"
if [ ! -f "$TARBALL" ]; then
    echo "freethreaded: the free-threaded interpreter is missing: $TARBALL" >&2
    echo "freethreaded: expected shared/ beside the work tree (../shared/tools/, see its README)," >&2
    echo "freethreaded: or FT_TARBALL=/path/to/cpython-3.14.7t-linux-x86_64.tar.xz" >&2
    exit 1
fi
command -v xz >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xz-utils >/dev/null
}

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pymigjob-ft.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
lap() { echo "== freethreaded: $1 ($((SECONDS - t0)) s so far)"; }

tar -xJf "$TARBALL" -C "$tmp"
FTPY="$tmp/cpython-3.14t/bin/python3.14t"
[ -x "$FTPY" ] || { echo "freethreaded: no bin/python3.14t in $TARBALL" >&2; exit 1; }
"$FTPY" -m venv "$tmp/ft"
VPY="$tmp/ft/bin/python"
unset PYTHON_GIL
"$VPY" -c '
import sys, sysconfig
assert sysconfig.get_config_var("Py_GIL_DISABLED"), "not a free-threaded build"
assert not sys._is_gil_enabled(), "GIL enabled at start-up"
print("interpreter:", sys.version.replace("\n", " "))'
lap "unpacked, venv made"

mkdir "$tmp/src"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$tmp/src")
"$VPY" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src"
wheel=("$tmp"/dist/pymigjob-*.whl)
"$VPY" - "${wheel[0]}" <<'EOF'
import sys, zipfile
whl = sys.argv[1]
name, version, python, abi, platform = whl.rsplit("/", 1)[-1][:-len(".whl")].split("-")
cores = [n for n in zipfile.ZipFile(whl).namelist()
         if n.startswith("pymigjob/_c/_core") and n.endswith(".so")]
if abi != "cp314t" or python != "cp314":
    sys.exit(f"freethreaded: wheel tag is {python}-{abi}, expected cp314-cp314t: {whl}")
if len(cores) != 1 or "abi3" in cores[0] or "314t" not in cores[0]:
    sys.exit(f"freethreaded: wheel's C core is {cores}, expected one cpython-314t module")
print(f"wheel {whl.rsplit('/', 1)[-1]} (tag {python}-{abi}-{platform}), core {cores[0]}")
EOF
lap "built the cp314t wheel"

"$VPY" -m pip install -q "${wheel[0]}[test]"
lap "installed it with [test]; the suite with PYTHON_GIL=0"
suite_from_install "$tmp/suite" env PYTHON_GIL=0 "$VPY" </dev/null
lap "the suite passed on 3.14t with the GIL off"

# ---- issue 11: without the GIL ---------------------------------------------------
STEPS="${FT_STEPS-races tsan bench scaling}"
declare -a FT_TIMES=()
ft_step() {  # ft_step NAME COMMAND...: run it, time it
    local name="$1" s0=$SECONDS
    shift
    echo "== freethreaded: $name"
    "$@"
    FT_TIMES+=("$(printf '%5d s  %s' $((SECONDS - s0)) "$name")")
    lap "$name done"
}
races() {
    local i
    for ((i = 1; i <= ${FT_RACE_RUNS:-3}; i++)); do
        (cd "$tmp/suite" && PYMIGJOB_EXPECT_INSTALLED=1 MJ_RACE_SCALE=2 PYTHON_GIL=0 \
            "$VPY" -m pytest -p no:cacheprovider -q tests/concurrency/test_ft_races.py)
    done
    (cd "$tmp/suite" && PYMIGJOB_EXPECT_INSTALLED=1 PYMIGJOB_IMPL=pure PYTHON_GIL=0 \
        "$VPY" -m pytest -p no:cacheprovider -q tests/concurrency/test_stress.py \
        tests/concurrency/test_ft_races.py)
}
tsan() {
    # the interpreter is not instrumented: ignore_noninstrumented_modules
    # keeps TSan from checking the accesses its own code makes through the
    # intercepted functions (malloc, memcpy); tsan-ft.supp says what else
    PYTHON="$VPY" PYTHON_GIL=0 \
        SANITIZE_TSAN_OPTIONS="ignore_noninstrumented_modules=1" SANITIZE_TSAN_SUPP="$ROOT/.ci/tsan-ft.supp" \
        SANITIZE_THREADED_FILES="${FT_TSAN_FILES-test_threads.py test_lifetime.py test_notifier.py test_cancel.py test_abort.py test_ft_races.py}" \
        SANITIZE_LOG_DIR="${FT_SANITIZE_LOG_DIR:-$ROOT/.ci/logs/sanitize-314t}" \
        bash "$ROOT/.ci/sanitize.sh" thread
}
bench() {
    # from a copy without pymigjob/: `python -m pytest` puts the current
    # directory first on sys.path, and the benchmarks must measure the
    # installed cp314t wheel, not the work tree (whose core, if any, is
    # another interpreter's).  The copy is a clone sharing the work tree's
    # objects, with nothing checked out but the files below: the comparison
    # with 0.1 builds 0.1 from this history (benchmarks/release_0_1.py).
    git clone -q --shared --no-checkout "$ROOT" "$tmp/bench"
    (cd "$ROOT" && git ls-files -z benchmarks .ci pyproject.toml | xargs -0 cp --parents -t "$tmp/bench")
    PYTHON="$VPY" PYTHON_GIL=0 bash "$tmp/bench/.ci/bench.sh"
}
scaling() {
    local others=()
    # .ci/run's venv beside 3.14t, when there is one
    if [ -n "${PYTHON:-}" ] && [ -x "$PYTHON" ]; then
        others=(--python "ci=$PYTHON")
    fi
    # from $tmp: the children import the installed wheel, not the work tree
    (cd "$tmp" && PYTHON_GIL=0 "$VPY" "$ROOT/benchmarks/scaling.py" "${others[@]}" \
        --python "3.14t=$VPY" --rounds 3 --round-time 0.15 \
        --budget "${FT_SCALING_BUDGET:-20}" --gate --json "${FT_SCALING_JSON:-$tmp/scaling.json}")
}
for s in $STEPS; do
    case "$s" in
        races) ft_step "races: test_ft_races x${FT_RACE_RUNS:-3}, pure twin stress" races ;;
        tsan) ft_step "concurrency tests against a TSan core" tsan ;;
        bench) ft_step "benchmark ratio gates (.ci/bench.sh)" bench ;;
        scaling) ft_step "scaling: 2 threads vs 1 (benchmarks/scaling.py --gate)" scaling ;;
        *) echo "freethreaded: unknown FT_STEPS entry: $s" >&2; exit 2 ;;
    esac
done
if [ ${#FT_TIMES[@]} -gt 0 ]; then
    echo "== freethreaded: step times"
    printf '  %s\n' "${FT_TIMES[@]}"
fi
lap "all done"
