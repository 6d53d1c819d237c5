"""libvirt 11's async job calls under threads, both backends: one migration
at a time among racing starts, discard and restore racing with queued
waiters, post-copy marks and job data reads from other threads; refs and
jobs_queued back to their start every time."""

from __future__ import annotations

import threading
import time

import pytest

import pymigjob
import pymigjob.pure

pytestmark = pytest.mark.concurrency

IMPLS = {"c": pymigjob, "pure": pymigjob.pure}


@pytest.fixture(params=sorted(IMPLS))
def mj(request):
    return IMPLS[request.param]


def run_threads(target, n):
    errors = []

    def body(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:3]


def test_racing_migration_starts_one_at_a_time(mj):
    dom = mj.Driver(job_wait_timeout=5).add_domain("vm1")
    holders = []
    lock = threading.Lock()
    counts = {"held": 0, "refused": 0, "timeout": 0}

    def worker(i):
        kind = (mj.AsyncJob.MIGRATION_OUT, mj.AsyncJob.MIGRATION_IN, mj.AsyncJob.SAVE)[i % 3]
        for _ in range(40):
            try:
                dom.migration_job_start(kind, api=f"w{i}", timeout=0.05, flags=i)
            except mj.OperationInvalid as e:
                assert "another migration job is already running" in e.message
                with lock:
                    counts["refused"] += 1
                continue
            except mj.JobTimeout:
                with lock:
                    counts["timeout"] += 1
                continue
            with lock:
                holders.append(i)
                assert len(holders) == 1, holders
            assert dom.api_flags == i
            dom.set_job_state(mj.JobState.MIGRATING)
            data = dom.job_stats() if kind != mj.AsyncJob.MIGRATION_IN else None
            assert data is None or data.state == mj.JobState.MIGRATING
            time.sleep(0.001)                # let the others collide
            with lock:
                holders.remove(i)
            if i % 2:
                dom.migration_job_finish(error=None if i % 4 == 1 else "failed")
            else:
                dom.discard_async_job()
            with lock:
                counts["held"] += 1

    run_threads(worker, 9)
    assert counts["held"] > 0 and counts["refused"] > 0
    assert (dom.refs, dom.jobs_queued, dom.async_job) == (1, 0, mj.AsyncJob.NONE)


def test_discard_and_restore_race_with_waiters(mj):
    dom = mj.Driver(job_wait_timeout=5).add_domain("vm1")
    stop = threading.Event()

    def restorer(i):
        n = 0
        while not stop.is_set() and n < 200:
            try:
                dom.restore_async_job(mj.AsyncJob.BACKUP, 0, api=f"r{i}")
            except mj.OperationInvalid:
                time.sleep(0.0005)
                continue
            n += 1
            dom.discard_async_job()

    def beginner(i):
        kinds = (mj.Job.QUERY, mj.Job.MODIFY, mj.Job.SUSPEND, mj.Job.DESTROY)
        for k in range(200):
            try:
                dom.begin_job(kinds[(i + k) % 4], api=f"b{i}", timeout=2)
            except mj.JobTimeout:
                continue
            dom.end_job()

    def reader(i):
        while not stop.is_set():
            dom.job_stats(completed=True, keep_completed=True)
            assert dom.jobs_queued >= 0 and dom.refs >= 1
            dom.postcopy, dom.async_paused, dom.api_flags  # noqa: B018
            time.sleep(0.0002)

    threads = [threading.Thread(target=reader, args=(0,))]
    threads[0].start()
    try:
        run_threads(lambda i: restorer(i) if i < 2 else beginner(i), 6)
    finally:
        stop.set()
        threads[0].join(10)
    assert (dom.refs, dom.jobs_queued, dom.async_job, dom.active_job) == (
        1, 0, mj.AsyncJob.NONE, mj.Job.NONE)


def test_postcopy_marks_from_an_event_thread(mj):
    dom = mj.Driver(job_wait_timeout=5).add_domain("vm1")
    with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.PERFORM3, api="perform3"):
        pass
    done = threading.Event()

    def events(i):
        for _ in range(300):
            dom.mark_postcopy_failed()
            dom.clear_postcopy_failed()
        done.set()

    def resumer(i):
        while not done.is_set():
            try:
                dom.migration_can_resume(mj.AsyncJob.MIGRATION_OUT, mj.Phase.FINISH_RESUME)
            except mj.OperationInvalid as e:
                assert "monitored by another thread" in e.message or \
                    "has not failed" in e.message, e.message
            if dom.migration_job_claim_parked(mj.AsyncJob.MIGRATION_OUT,
                                              mj.Phase.POSTCOPY_FAILED,
                                              mj.Phase.BEGIN_RESUME):
                dom.migration_job_continue()

    run_threads(lambda i: events(i) if i == 0 else resumer(i), 3)
    assert dom.refs == 1 and dom.postcopy
    dom.migration_job_start_phase(mj.Phase.CONFIRM_RESUME)
    dom.migration_job_finish()
    assert (dom.refs, dom.jobs_queued) == (1, 0)
