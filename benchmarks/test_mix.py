"""3. Daemon mix: 32 domains, 8 workers; migrations run through Begin3,
Perform3 (monitor calls in nested jobs, the abort checkpoint) and Confirm3
while queries, modifies, aborts and destroys arrive.  Every grant is checked
against the async job's mask at grant time: no disallowed job may ever be
granted, and every domain must end idle with refs == 1."""

from __future__ import annotations

from pymigjob.cli import bench


def test_daemon_mix(benchmark, record, settings):
    benchmark.group = "mix"
    mb = bench.MixBench(settings.mix_duration)
    benchmark.pedantic(mb.subject_round, setup=mb.baseline_round,
                       rounds=settings.mix_rounds, iterations=1, warmup_rounds=0)
    res = mb.result()
    record("mix", res)
    for name, run in res["runs"].items():
        if name == "nolock":
            continue
        assert run["violations"] == 0, f"{name}: a job the mask forbids was granted"
        assert run["leaks"] == [], f"{name}: domains not idle after the mix"
        assert run["counts"].get("migrations.completed", 0) > 0
        assert run["counts"].get("allowed_while_migrating", 0) > 0


class _BlindDomain:
    """Reads the mask as 0: every job granted during a migration must then
    count as a violation -- proves the grant-time check really checks."""

    def __init__(self, dom):
        self._dom = dom

    def __getattr__(self, name):
        return getattr(self._dom, name)

    mask = 0


def test_violation_check_fires():
    import types

    import pymigjob as mj

    class BlindDriver:
        def __init__(self, **kw):
            self._drv = mj.Driver(**kw)

        def add_domain(self, name):
            return _BlindDomain(self._drv.add_domain(name))

    fake = types.SimpleNamespace(**{k: getattr(mj, k) for k in dir(mj)
                                    if not k.startswith("_")})
    fake.Driver = BlindDriver
    res = bench.daemon_mix("pymigjob", impl=fake, duration=0.3, seed=3)
    assert res["counts"].get("query.granted_while_migrating", 0) > 0
    during = sum(v for k, v in res["counts"].items() if k.endswith(".granted_while_migrating"))
    assert res["violations"] == during
    assert res["leaks"] == []
