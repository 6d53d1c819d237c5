#!/usr/bin/env bash
# CI, issue 12: pymigjob on real QEMU.  Installs qemu-system-x86 with apt-get
# where qemu-system-x86_64 is missing (~11 s), the qemu extra into the CI
# venv, then runs tests/qemu and tests/daemon: processes and monitor entry,
# the v3 steps, recovery on real QEMU, the daemon's routes, hostile
# requests, a connection cut mid-Perform, metrics, the demo and its crash
# and measure modes, and a kill at every phase -- PYMIGJOB_KILLS SIGKILLs
# (default 304: 16 passes over the 15 step boundaries and 4 random instants
# inside Perform; ~0.7 s each here).  Where QEMU can run, a skipped QEMU
# test is an error (PYMIGJOB_REQUIRE_QEMU=1).  Budget: about 5 minutes on
# the 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. .ci/lib.sh   # PY: .ci/run's venv python, or yours

if ! command -v qemu-system-x86_64 >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "== apt-get install qemu-system-x86"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >/dev/null
    else
        echo "== qemu-system-x86_64 is missing and cannot be installed here (no apt-get as root):"
        echo "   the QEMU tests will skip, each saying why"
    fi
fi
if command -v qemu-system-x86_64 >/dev/null; then
    export PYMIGJOB_REQUIRE_QEMU=1
    qemu-system-x86_64 --version | head -1
fi

echo "== pip install -e '.[qemu,test]'"
"$PY" -m pip install -q -e '.[qemu,test]'

export PYMIGJOB_KILLS="${PYMIGJOB_KILLS:-304}"
echo "== QEMU tests ($PYMIGJOB_KILLS kills)"
"$PY" -m pytest -p no:cacheprovider -q -ra -s tests/qemu tests/daemon
