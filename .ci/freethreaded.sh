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
