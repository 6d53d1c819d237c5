"""The cost of durable job status records.

One v3 source migration as the helpers run it -- start, BEGIN3, continue,
start PERFORM3, PERFORM3_DONE, continue, start CONFIRM3, finish -- makes six
tracked changes (async begin, four phases, async end), so six record writes.
The same sequence runs on four drivers:

* ``none``: no store (the floor);
* ``memory``: a MemoryStore (the tracking layer alone: the per-domain lock,
  reading the state, skipping equal records);
* ``tmpfs``: a DirectoryStore on /dev/shm when there is one (the file work --
  temporary file, rename -- with fsync costing nothing);
* ``durable``: a DirectoryStore in the temporary directory, on disk here (temp file, fsync,
  rename, fsync of the directory): what ``Driver(state_dir=…)`` costs.

pytest-benchmark times ``durable``; the others run in the untimed setup before
each round, interleaved.  ``extra_info`` holds the per-change cost of each
variant over the floor (µs) and the ratios against ``none``.  A second test
shows that a store does not slow down sync jobs other than DESTROY.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List

import pytest

import pymigjob as mj
from pymigjob.store import MemoryStore

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
CHANGES_PER_MIGRATION = 6


def migrate(dom: mj.Domain) -> None:
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.BEGIN3)
    dom.migration_job_continue()
    dom.migration_job_start_phase(P.PERFORM3, api="perform3")
    dom.migration_job_set_phase(P.PERFORM3_DONE)
    dom.migration_job_continue()
    dom.migration_job_start_phase(P.CONFIRM3, api="confirm3")
    dom.migration_job_finish()


def _timer(dom: mj.Domain, n: int, body: Callable[[mj.Domain], None]) -> Callable[[], float]:
    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            body(dom)
        return (time.perf_counter() - t0) / n
    return run


@pytest.fixture
def drivers():
    dirs = []
    made: Dict[str, mj.Driver] = {"none": mj.Driver(), "memory": mj.Driver(store=MemoryStore())}
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        dirs.append(tempfile.TemporaryDirectory(dir="/dev/shm"))
        made["tmpfs"] = mj.Driver(state_dir=dirs[-1].name)
    dirs.append(tempfile.TemporaryDirectory(prefix="pymigjob-bench-"))  # a disk, not tmpfs
    made["durable"] = mj.Driver(state_dir=dirs[-1].name)
    yield made
    for d in made.values():
        d.close()
    for t in dirs:
        t.cleanup()


def test_durable_write_per_phase_change(benchmark, settings, drivers):
    benchmark.group = "persistence"
    quick = settings.quick
    rounds = 5 if quick else 15
    fast_n = 200 if quick else 1000   # migrations per round without fsync
    slow_n = 10 if quick else 40      # with fsync
    per: Dict[str, List[float]] = {name: [] for name in drivers}
    runs = {}
    for name, drv in drivers.items():
        dom = drv.add_domain("vm1")
        runs[name] = _timer(dom, slow_n if name == "durable" else fast_n, migrate)
        runs[name]()  # warm-up

    def baselines() -> None:
        for name, run in runs.items():
            if name != "durable":
                per[name].append(run())

    def subject() -> None:
        per["durable"].append(runs["durable"]())

    benchmark.pedantic(subject, setup=baselines, rounds=rounds, iterations=1,
                       warmup_rounds=0)
    med = {name: statistics.median(v) for name, v in per.items()}
    floor = med["none"]
    info = {
        "changes_per_migration": CHANGES_PER_MIGRATION,
        "migration_us": {k: round(v * 1e6, 2) for k, v in med.items()},
        "per_change_over_floor_us": {
            k: round((v - floor) / CHANGES_PER_MIGRATION * 1e6, 2)
            for k, v in med.items() if k != "none"},
        "ratio_vs_none": {k: round(v / floor, 1) for k, v in med.items() if k != "none"},
    }
    benchmark.extra_info.update(info)
    print(f"\npersistence: {info}")
    # correctness only: every variant ends idle with its record idle
    for name, drv in drivers.items():
        dom = drv.lookup("vm1")
        assert dom.job_status().idle and dom.refs == 1
        if drv.store is not None:
            assert drv.store.load_all() == {"vm1": mj.JobStatus()}


def test_untracked_sync_jobs_cost_the_same(benchmark, settings, drivers):
    """begin_job(QUERY) + end_job with and without a store: the store only
    adds one attribute check on begin and one state read on end."""
    benchmark.group = "persistence"
    n = 2000 if settings.quick else 20000
    rounds = 5 if settings.quick else 15

    def query(dom: mj.Domain) -> None:
        dom.begin_job(J.QUERY)
        dom.end_job()

    plain = _timer(drivers["none"].add_domain("q"), n, query)
    stored = _timer(drivers["durable"].add_domain("q"), n, query)
    base: List[float] = []
    subj: List[float] = []
    plain()
    stored()

    def setup() -> None:  # both, in the opposite order of the timed part
        base.append(plain())
        subj.append(stored())

    def timed() -> None:
        subj.append(stored())
        base.append(plain())

    benchmark.pedantic(timed, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    b, s = statistics.median(base), statistics.median(subj)
    info = {"query_job_ns": {"none": round(b * 1e9), "durable": round(s * 1e9)},
            "ratio_vs_none": round(s / b, 2)}
    benchmark.extra_info.update(info)
    print(f"\nsync QUERY job: {info}")
    assert drivers["durable"].store.load_all() == {}  # nothing written
