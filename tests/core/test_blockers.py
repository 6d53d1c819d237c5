"""Who holds the job, and who may still queue: timeouts naming the blocker,
owner threads and APIs, max_queued (api.md items 5, 6, 8)."""

from __future__ import annotations

import threading
import time

import pytest

import pymigjob as mj
from _mjhelpers import DEADLINE, LOCK, Holder, fresh, snapshot, started, wait_queued

J = mj.Job
A = mj.AsyncJob
SYNC_JOBS = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP]
ASYNC_KINDS = [A.MIGRATION_OUT, A.MIGRATION_IN, A.SAVE, A.DUMP]



# ---- timeouts name the blocker (item 5) ---------------------------------------------------

def test_timeout_names_sync_owner(dom):
    with Holder(dom, J.MODIFY, api="setMemory"):
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(J.QUERY, timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=setMemory)"


def test_timeout_bare_without_api(dom):
    with Holder(dom, J.MODIFY):
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(J.QUERY, timeout=0.05)
    assert ei.value.message == LOCK


def test_timeout_names_async_owner_when_mask_forbids(dom):
    dom.begin_async_job(A.SAVE, api="save")
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.MODIFY, timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=save)"
    dom.end_async_job()


def test_timeout_names_async_owner_when_mask_forbids_and_slot_busy(dom):
    dom.begin_async_job(A.SAVE, api="save")
    with Holder(dom, J.QUERY, api="stats"):
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(J.SUSPEND, timeout=0.05)
        assert ei.value.message == f"{LOCK} (held by monitor=save)"
        # an allowed job blocked by the sync slot names the sync owner instead
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(J.QUERY, timeout=0.05)
        assert ei.value.message == f"{LOCK} (held by monitor=stats)"
    dom.end_async_job()


def test_timeout_bare_when_async_job_has_no_api(dom):
    dom.begin_async_job(A.SAVE)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.MODIFY, timeout=0.05)
    assert ei.value.message == LOCK
    dom.end_async_job()


def test_default_timeout_comes_from_driver():
    dom = mj.Driver(job_wait_timeout=0.2).add_domain("vm1")
    dom.begin_job(J.MODIFY)
    t0 = time.monotonic()
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY)  # timeout=None: the driver's 0.2 s
    waited = time.monotonic() - t0
    assert 0.15 <= waited < DEADLINE
    t0 = time.monotonic()
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY, timeout=None)
    assert 0.15 <= time.monotonic() - t0 < DEADLINE
    dom.end_job()


def test_per_call_timeout_overrides_driver_default():
    dom = mj.Driver(job_wait_timeout=300.0).add_domain("vm1")
    dom.begin_job(J.MODIFY)
    t0 = time.monotonic()
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY, timeout=0.1)
    waited = time.monotonic() - t0
    assert 0.08 <= waited < DEADLINE
    dom.end_job()


def test_zero_timeout_fails_at_once_when_busy(dom):
    dom.begin_job(J.MODIFY)
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY, timeout=0)
    dom.end_job()
    dom.begin_job(J.QUERY, timeout=0)  # free: a zero budget still acquires
    dom.end_job()


# ---- owners (item 6) -----------------------------------------------------------------------

def test_owner_api_cleared_by_end_job(dom):
    dom.begin_job(J.QUERY, api="stats")
    assert dom.owner_api == "stats"
    dom.end_job()
    assert dom.owner_api is None
    assert dom.owner_thread == 0
    dom.begin_job(J.QUERY)
    assert dom.owner_api is None
    dom.end_job()


def test_owner_recorded_per_thread(dom):
    with Holder(dom, J.MODIFY, api="setMemory") as h:
        assert dom.owner_thread == h.ident != threading.get_ident()
        assert dom.owner_api == "setMemory"


def test_async_owner_api_cleared_when_async_job_ends(dom):
    dom.begin_async_job(A.DUMP, api="dump")
    assert dom.async_owner_api == "dump"
    dom.end_async_job()
    assert dom.async_owner_api is None
    assert dom.async_owner_thread == 0


def test_async_owner_survives_continue(dom):
    dom.migration_job_start(A.MIGRATION_IN, api="prepare3")
    dom.migration_job_set_phase(mj.Phase.PREPARE)
    assert dom.async_owner_thread == threading.get_ident()
    assert dom.migration_job_continue() == 1
    assert dom.async_owner_api == "prepare3"  # parked: still names the last API
    assert dom.async_owner_thread == 0
    # a blocked job names it ("cannot acquire state change lock" alone told
    # an administrator nothing)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.QUERY, timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=prepare3)"
    assert dom.migration_job_start_phase(mj.Phase.FINISH3, api="finish3") is True
    assert dom.async_owner_api == "finish3"
    assert dom.async_owner_thread == threading.get_ident()
    assert dom.migration_job_finish() == 1
    assert dom.async_owner_api is None


def test_start_phase_from_another_thread_takes_ownership(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(mj.Phase.BEGIN3)
    dom.migration_job_continue()

    def perform():
        assert dom.migration_job_start_phase(mj.Phase.PERFORM3, api="perform3")
        seen = (dom.async_owner_thread, dom.async_owner_api)
        dom.migration_job_continue()
        return threading.get_ident(), seen

    ident, (owner, api) = started(perform).join_ok()
    assert owner == ident
    assert api == "perform3"
    assert dom.async_owner_thread == 0
    assert dom.async_owner_api == "perform3"
    dom.migration_job_start_phase(mj.Phase.CONFIRM3)
    dom.migration_job_finish()


def test_set_phase_api_records_async_owner_api(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(mj.Phase.PERFORM3, api="perform3")
    assert dom.async_owner_api == "perform3"
    dom.migration_job_set_phase(mj.Phase.PERFORM3_DONE)  # no api: name kept
    assert dom.async_owner_api == "perform3"
    dom.migration_job_finish()


# ---- max_queued (item 8) ------------------------------------------------------------------

def queued_domain(limit):
    return mj.Driver(max_queued=limit, job_wait_timeout=5.0).add_domain("vm1")


def test_max_queued_one_allows_one_holder():
    dom = queued_domain(1)
    dom.begin_job(J.QUERY)
    assert dom.jobs_queued == 1
    before = snapshot(dom)
    t0 = time.monotonic()
    with pytest.raises(mj.QueueFull):
        dom.begin_job(J.MODIFY, timeout=30)
    assert time.monotonic() - t0 < DEADLINE / 2  # fails at once, no wait
    assert snapshot(dom) == before
    dom.end_job()
    dom.begin_job(J.MODIFY)  # the slot in the queue came back
    dom.end_job()
    fresh(dom)


def test_max_queued_async_job_blocks_its_own_nested_job():
    dom = queued_domain(1)
    dom.begin_async_job(A.MIGRATION_OUT, api="perform3")
    before = snapshot(dom)
    with pytest.raises(mj.QueueFull) as ei:
        dom.begin_nested_job(A.MIGRATION_OUT, timeout=30)
    # nested: the sync owner, of which there is none
    assert ei.value.message == f"{LOCK} due to max_queued limit"
    assert snapshot(dom) == before


def test_max_queued_allowed_sync_job_names_sync_owner():
    dom = queued_domain(1)
    dom.begin_async_job(A.SAVE, api="save")
    with pytest.raises(mj.QueueFull) as ei:
        dom.begin_job(J.QUERY)
    assert ei.value.message == f"{LOCK} due to max_queued limit"


def test_max_queued_forbidden_sync_job_names_async_owner():
    dom = queued_domain(1)
    dom.begin_async_job(A.SAVE, api="save")
    with pytest.raises(mj.QueueFull) as ei:
        dom.begin_job(J.MODIFY)
    assert ei.value.message == f"{LOCK} (held by monitor=save) due to max_queued limit"


def test_max_queued_destroy_is_exempt():
    dom = queued_domain(1)
    dom.begin_async_job(A.SAVE)
    dom.begin_job(J.DESTROY, timeout=1.0)
    assert dom.jobs_queued == 2
    assert dom.active_job == J.DESTROY
    assert dom.end_job() == 2
    assert dom.end_async_job() == 1


def test_max_queued_async_is_exempt_but_still_waits():
    dom = queued_domain(1)
    dom.begin_job(J.QUERY, api="stats")
    with pytest.raises(mj.JobTimeout) as ei:  # not QueueFull: it waited
        dom.begin_async_job(A.SAVE, timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=stats)"
    dom.end_job()
    dom.begin_async_job(A.SAVE)
    assert dom.jobs_queued == 1
    dom.end_async_job()


def test_max_queued_counts_waiters():
    dom = queued_domain(2)
    dom.begin_job(J.MODIFY, api="setMemory")
    waiter = started(dom.begin_job, J.QUERY, timeout=DEADLINE)
    wait_queued(dom, 2)
    assert dom.refs == 3  # DECISIONS: a waiter holds its reference
    before = snapshot(dom)
    with pytest.raises(mj.QueueFull) as ei:
        dom.begin_job(J.QUERY, timeout=30)
    assert ei.value.message == f"{LOCK} (held by monitor=setMemory) due to max_queued limit"
    assert snapshot(dom) == before
    dom.end_job()
    waiter.join_ok()
    assert dom.active_job == J.QUERY
    dom.end_job()
    fresh(dom)


def test_max_queued_zero_is_unlimited():
    dom = queued_domain(0)
    dom.begin_async_job(A.MIGRATION_OUT)
    dom.begin_nested_job(A.MIGRATION_OUT)

    def query():
        dom.begin_job(J.QUERY, timeout=DEADLINE)
        return dom.end_job()

    waiters = [started(query) for _ in range(5)]
    wait_queued(dom, 7)
    assert dom.refs == 8
    dom.end_nested_job()
    for w in waiters:
        w.join_ok()
    assert dom.jobs_queued == 1 and dom.refs == 2
    assert dom.end_async_job() == 1
