#!/usr/bin/env bash
# A non-editable install works: build the wheel the way pip would (isolated
# build environment), check that it holds every tracked module of the package
# plus py.typed and the C core, install it into a fresh venv and run the demo
# and the pure twin from outside the source tree.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
. "$ROOT/.ci/lib.sh"   # PY: .ci/run's venv python, or yours
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# from a copy of the tracked files: a build/ left in the work tree by an
# earlier build would otherwise slip stale modules into the wheel
mkdir "$tmp/src"
(cd "$ROOT" && git ls-files -z | xargs -0 cp --parents -t "$tmp/src")
"$PY" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src"
wheel=("$tmp"/dist/pymigjob-*.whl)
echo "built ${wheel[0]##*/}"

# what git tracks under pymigjob/ must all be in the wheel
(cd "$ROOT" && git ls-files 'pymigjob/*.py' 'pymigjob/py.typed') > "$tmp/tracked"
"$PY" - "${wheel[0]}" "$tmp/tracked" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in open(sys.argv[2]).read().split() if n not in names]
cores = [n for n in names if n.startswith("pymigjob/_core") and n.endswith(".so")]
if missing or len(cores) != 1:
    sys.exit(f"wheel lacks {missing or 'the C core'} (C cores: {cores})")
print(f"wheel holds every tracked module of pymigjob and py.typed, core {cores[0]}")
EOF

"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "${wheel[0]}"
cd "$tmp"   # nowhere near the sources: only the installed package can be imported
"$tmp/venv/bin/python" -c 'import pymigjob, sys; assert "site-packages" in pymigjob.__file__, pymigjob.__file__'
"$tmp/venv/bin/python" -m pymigjob demo > "$tmp/demo.out" || { cat "$tmp/demo.out"; exit 1; }
tail -n 1 "$tmp/demo.out"
PYMIGJOB_IMPL=pure "$tmp/venv/bin/python" -c '
import sys, pymigjob, pymigjob.pure
d = pymigjob.Driver().add_domain("vm1")
with d.job(pymigjob.Job.MODIFY):
    assert d.active_job == pymigjob.Job.MODIFY
assert "_cffi_backend" not in sys.modules
print("pure twin from the wheel: ok")'
