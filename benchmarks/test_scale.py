"""4. Scale: 100 000 domains.  Bytes per domain (C object + Python handle):
tracemalloc for what Python holds and the RSS delta for the total, each in a
fresh process, against the pure twin; and random-access throughput
(lookup + begin_job + end_job on random names) against 10 domains."""

from __future__ import annotations

from pymigjob.cli import bench


def test_scale(benchmark, record, settings):
    benchmark.group = "scale"
    out = {}

    def run():
        out["res"] = bench.scale_compare(settings.scale_n, settings.round_time)

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    res = out["res"]
    record("scale", res)
    mj = res["impls"]["pymigjob"]
    assert mj["rss_bytes_per_domain"] > 0 and mj["py_bytes_per_domain"] > 0
