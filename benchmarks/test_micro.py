"""1. Uncontended cost: begin_job+end_job, ``with dom.job(...)``, the v3
migration helper sequence, phase/label conversions -- pymigjob against the
pure twin, two no-op cffi calls and a threading.Lock acquire+release."""

from __future__ import annotations

import pytest

from pymigjob.cli import bench


@pytest.mark.parametrize("case", list(bench.MICRO_CASES))
def test_micro(benchmark, record, settings, case):
    benchmark.group = "micro"
    mb = bench.MicroBench(case, settings.round_time)
    # one untimed warm-up round of everything
    mb.baseline_round()
    mb.subject_round()
    for v in mb.variants.values():
        v.reset()
    # pymigjob is the timed target; every baseline runs one round in the
    # untimed setup before each of its rounds (interleaved, same conditions)
    benchmark.pedantic(mb.subject_round, setup=mb.baseline_round,
                       rounds=settings.micro_rounds, iterations=1, warmup_rounds=0)
    res = mb.result()
    record("micro", res)
    assert res["rounds"] == settings.micro_rounds
