"""2. Contention: 1, 8, 64 and 256 threads on one domain, each holding the
job for 0.5 ms with the GIL released (a sleep, as during a monitor call).

Throughput, p50/p99/max acquisition wait and per-thread fairness, for
pymigjob, the pure twin, a threading.Lock and a plain condition-variable job
lock; the baseline is one thread sleeping 0.5 ms back to back with no lock.
At 64 threads the issue's target is checked (reported, not asserted): the
longest wait at most 1.5 x 64 x 0.5 ms and throughput at least 90 % of the
baseline."""

from __future__ import annotations

import pytest

from pymigjob.cli import bench


@pytest.mark.parametrize("nthreads", [1, 8, 64, 256])
def test_contention(benchmark, record, settings, nthreads):
    benchmark.group = "contention"
    cb = bench.ContentionBench(nthreads, settings.hold, settings.contention_duration)
    try:
        benchmark.pedantic(cb.subject_round, setup=cb.baseline_round,
                           rounds=settings.contention_rounds, iterations=1,
                           warmup_rounds=0)
        res = cb.result()
    finally:
        cb.close()
    record("contention", res)
    mj = res["variants"]["pymigjob"]
    assert mj["ops"] > 0
    # every thread got the job at least once (no starvation): correctness, not speed
    assert mj["per_thread_min"] >= 1
