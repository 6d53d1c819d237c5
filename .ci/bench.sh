#!/usr/bin/env bash
# CI: run the benchmarks once, quick and non-gating on time, so they cannot
# rot; then gate only on ratios against baselines measured in the same run
# (two no-op cffi calls, the pure twin, one thread with no lock), each with
# >= 25 % margin (benchmarks/check_ratios.py, gates in pymigjob/cli/bench/common.py
# TARGETS).  No absolute time is asserted anywhere.  A failed ratio gate gets
# one re-run (a real regression fails twice; a noisy neighbour rarely does).
# Budget: about 1.5-2 minutes on the 2-core machine (3 with the re-run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. .ci/lib.sh   # PY: .ci/run's venv python, or yours

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run_benchmarks() {
    "$PY" -m pytest "$@" --bench-quick -p no:cacheprovider \
        --benchmark-json="$out/bench.json" --benchmark-columns=median,iqr,rounds
}

echo "== benchmarks (quick: pytest benchmarks --bench-quick)"
run_benchmarks benchmarks

echo "== benchmark ratios against the in-run baselines"
set +e
"$PY" benchmarks/check_ratios.py "$out/bench.json"
rc=$?
set -e
if [ "$rc" -eq 1 ]; then
    echo "== a ratio gate failed: running the gated benchmarks once more"
    run_benchmarks "benchmarks/test_micro.py::test_micro[begin_end]" \
        "benchmarks/test_micro.py::test_micro[with_job]" \
        benchmarks/test_vs_release.py \
        "benchmarks/test_contention.py::test_contention[64]" \
        benchmarks/test_scale.py
    "$PY" benchmarks/check_ratios.py "$out/bench.json"
elif [ "$rc" -ne 0 ]; then
    exit "$rc"
fi

echo "== python -m pymigjob bench (smoke: the person's table, shortened)"
"$PY" -m pymigjob bench --rounds 1 --duration 0.1 --threads 1,64 --mix-duration 0.3 \
    --domains 20000
