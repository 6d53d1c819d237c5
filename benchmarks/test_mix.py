"""3. Daemon mix: 32 domains, 8 workers; migrations run through Begin3,
Perform3 (monitor calls in nested jobs, the abort checkpoint) and Confirm3
while queries, modifies, aborts and destroys arrive.  Every grant is checked
against the async job's mask at grant time: no disallowed job may ever be
granted, and every domain must end idle with refs == 1."""

from __future__ import annotations

from pymigjob import bench


def test_daemon_mix(benchmark, record, settings):
    benchmark.group = "mix"
    pure, _ = bench.load_pure()
    baselines = {}

    def setup():
        baselines["nolock"] = bench.daemon_mix("nolock", duration=settings.mix_duration)
        if pure is not None:
            baselines["pure"] = bench.daemon_mix("pure", duration=settings.mix_duration)

    runs = {}

    def subject():
        runs["pymigjob"] = bench.daemon_mix("pymigjob", duration=settings.mix_duration)

    benchmark.pedantic(subject, setup=setup, rounds=1, iterations=1, warmup_rounds=0)
    res = bench.mix_summary({**baselines, **runs})
    record("mix", res)
    for name, run in res["runs"].items():
        if name == "nolock":
            continue
        assert run["violations"] == 0, f"{name}: a job the mask forbids was granted"
        assert run["leaks"] == [], f"{name}: domains not idle after the mix"
        assert run["counts"].get("migrations.completed", 0) > 0
        assert run["counts"].get("allowed_while_migrating", 0) > 0
