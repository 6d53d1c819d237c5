"""Sync, async and nested jobs: begin/end, masks, max_queued, owners, timeouts
and bad input (api.md items 3-8, 12; DECISIONS.md)."""

from __future__ import annotations

import math
import threading
import time

import pytest

import pymigjob as mj
from _mjhelpers import DEADLINE, Holder, snapshot, started, wait_queued

J = mj.Job
A = mj.AsyncJob
SYNC_JOBS = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP]
ASYNC_KINDS = [A.MIGRATION_OUT, A.MIGRATION_IN, A.SAVE, A.DUMP]
LOCK = "cannot acquire state change lock"


def idle(dom):
    """The state of a fresh domain (the mask is left out: see test_fresh_domain)."""
    assert dom.refs == 1
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    assert dom.phase == 0
    assert dom.jobs_queued == 0
    assert dom.owner_api is None
    assert dom.async_owner_api is None
    assert dom.owner_thread == 0
    assert dom.async_owner_thread == 0
    assert dom.abort_requested is False
    assert dom.job_info.type == mj.JobType.NONE
    assert dom.job_info.elapsed == 0.0


def test_fresh_domain(dom):
    idle(dom)
    assert dom.name == "vm1"
    assert dom.alive is True
    assert isinstance(dom.active_job, mj.Job)
    assert isinstance(dom.async_job, mj.AsyncJob)
    assert isinstance(dom.job_info.type, mj.JobType)


# ---- sync jobs --------------------------------------------------------------------

@pytest.mark.parametrize("job", SYNC_JOBS)
def test_begin_end_sync_job(dom, job):
    assert dom.begin_job(job, api="someApi") is None
    assert dom.active_job == job
    assert dom.refs == 2
    assert dom.jobs_queued == 1
    assert dom.owner_api == "someApi"
    assert dom.owner_thread == threading.get_ident()
    assert dom.async_job == A.NONE
    assert dom.end_job() == 1
    idle(dom)


def test_sync_job_accepts_plain_int(dom):
    dom.begin_job(4)
    assert dom.active_job is J.MODIFY
    assert dom.end_job() == 1


def test_end_job_without_job(dom):
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        dom.end_job()
    assert ei.value.message == "no job is active on the domain"
    assert snapshot(dom) == before


def test_end_async_job_without_async_job(dom):
    dom.begin_job(J.QUERY)
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        dom.end_async_job()
    assert ei.value.message == "no job is active on the domain"
    assert snapshot(dom) == before
    dom.end_job()


def test_end_nested_job_without_nested_job(dom):
    dom.begin_async_job(A.SAVE)
    dom.begin_job(J.QUERY)  # a plain sync job is not a nested one
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        dom.end_nested_job()
    assert ei.value.message == "no nested job is active on the domain"
    assert snapshot(dom) == before
    assert dom.end_job() == 2
    assert dom.end_async_job() == 1


def test_second_sync_job_waits_then_times_out(dom):
    dom.begin_job(J.QUERY, api="stats")
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY, timeout=0.05)
    assert snapshot(dom) == before
    dom.end_job()
    idle(dom)


# ---- async jobs ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_begin_end_async_job(dom, kind):
    assert dom.begin_async_job(kind, api="asyncApi") is None
    assert dom.async_job == kind
    assert dom.active_job == J.NONE  # an async job never sits in the sync slot
    assert dom.refs == 2
    assert dom.jobs_queued == 1
    assert dom.mask == mj.DEFAULT_JOB_MASK
    assert dom.phase == 0
    assert dom.async_owner_api == "asyncApi"
    assert dom.async_owner_thread == threading.get_ident()
    assert dom.owner_api is None
    # DECISIONS: begin_async_job leaves job info NONE (the caller sets it)
    assert dom.job_info.type == mj.JobType.NONE
    assert dom.end_async_job() == 1
    idle(dom)
    assert dom.mask == mj.DEFAULT_JOB_MASK


def test_async_job_elapsed_grows(dom):
    dom.begin_async_job(A.DUMP)
    first = dom.job_info.elapsed
    assert first >= 0.0
    time.sleep(0.05)
    second = dom.job_info.elapsed
    assert second >= first + 0.04
    assert second < 60
    dom.end_async_job()
    assert dom.job_info.elapsed == 0.0


def test_second_async_job_waits_and_names_first(dom):
    dom.begin_async_job(A.SAVE, api="save")
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_async_job(A.DUMP, api="dump", timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=save)"
    assert snapshot(dom) == before
    assert dom.end_async_job() == 1


def test_async_job_needs_free_sync_slot(dom):
    dom.begin_job(J.QUERY, api="stats")
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_async_job(A.SAVE, timeout=0.05)
    assert ei.value.message == f"{LOCK} (held by monitor=stats)"
    assert snapshot(dom) == before
    dom.end_job()


# ---- masks -------------------------------------------------------------------------

def test_default_mask_allows_query_destroy_abort_only(dom):
    dom.begin_async_job(A.SAVE, api="save")
    for job in (J.QUERY, J.DESTROY, J.ABORT):
        dom.begin_job(job, timeout=1.0)
        assert dom.active_job == job
        assert dom.end_job() == 2
    for job in (J.SUSPEND, J.MODIFY, J.MIGRATION_OP):
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(job, timeout=0.02)
        assert ei.value.message == f"{LOCK} (held by monitor=save)"
    assert dom.refs == 2 and dom.jobs_queued == 1
    dom.end_async_job()


@pytest.mark.parametrize("mask, expected", [
    (0, 0x02),
    (0x01, 0x03),
    (0x02, 0x02),
    (0x08, 0x0A),
    (mj.DEFAULT_JOB_MASK, 0x13),
    (0xFF, 0xFF),
    (2**64 - 1, 2**64 - 1),
    (2**63, 2**63 | 0x02),
])
def test_set_async_job_mask_always_adds_destroy(dom, mask, expected):
    dom.begin_async_job(A.DUMP)
    assert dom.set_async_job_mask(mask) is None
    assert dom.mask == expected
    dom.end_async_job()
    assert dom.mask == mj.DEFAULT_JOB_MASK  # reset when the async job ends


def test_set_async_job_mask_without_async_job_is_noop(dom):
    before = snapshot(dom)
    dom.set_async_job_mask(0)
    dom.set_async_job_mask(0xFF)
    assert snapshot(dom) == before


def test_set_async_job_mask_with_only_sync_job_is_noop(dom):
    dom.begin_job(J.MODIFY)
    before = snapshot(dom)
    dom.set_async_job_mask(0)
    assert snapshot(dom) == before
    dom.end_job()


def test_destroy_cannot_be_masked_out(dom):
    dom.begin_async_job(A.SAVE, api="save")
    dom.set_async_job_mask(0)
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.QUERY, timeout=0.02)
    dom.begin_job(J.DESTROY, timeout=1.0)
    assert dom.active_job == J.DESTROY
    dom.end_job()
    dom.end_async_job()


def test_widened_mask_lets_modify_in(dom):
    dom.begin_async_job(A.DUMP)
    dom.set_async_job_mask(mj.job_mask(J.MODIFY))
    dom.begin_job(J.MODIFY, timeout=1.0)
    assert dom.active_job == J.MODIFY
    dom.end_job()
    with pytest.raises(mj.JobTimeout):  # QUERY is no longer in the mask
        dom.begin_job(J.QUERY, timeout=0.02)
    dom.end_async_job()


def test_mask_forbids_even_with_free_sync_slot_then_allows_after_end(dom):
    dom.begin_async_job(A.SAVE)
    w = started(dom.begin_job, J.MODIFY, timeout=DEADLINE)
    wait_queued(dom, 2)
    assert dom.active_job == J.NONE  # the waiter is held back by the mask alone
    dom.end_async_job()
    w.join_ok()
    assert dom.active_job == J.MODIFY
    assert dom.end_job() == 1


# ---- nested jobs ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_nested_job(dom, kind):
    dom.begin_async_job(kind, api="outer")
    dom.set_async_job_mask(0)  # nested jobs skip the mask entirely
    assert dom.begin_nested_job(kind, api="monitor") is None
    assert dom.active_job == J.ASYNC_NESTED
    assert dom.refs == 3
    assert dom.jobs_queued == 2
    assert dom.owner_api == "monitor"
    assert dom.owner_thread == threading.get_ident()
    assert dom.async_owner_api == "outer"
    assert dom.end_nested_job() == 2
    assert dom.active_job == J.NONE
    assert dom.owner_api is None
    assert dom.jobs_queued == 1
    assert dom.end_async_job() == 1
    idle(dom)


def test_end_job_also_ends_nested_job(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    dom.begin_nested_job(A.MIGRATION_OUT)
    assert dom.end_job() == 2
    assert dom.active_job == J.NONE
    assert dom.jobs_queued == 1
    dom.end_async_job()
    idle(dom)


def test_end_nested_job_does_not_end_plain_job(dom):
    dom.begin_job(J.MODIFY)
    with pytest.raises(mj.OperationInvalid):
        dom.end_nested_job()
    assert dom.active_job == J.MODIFY
    dom.end_job()


@pytest.mark.parametrize("active, requested", [
    (A.MIGRATION_OUT, A.SAVE),
    (A.MIGRATION_OUT, A.MIGRATION_IN),
    (A.SAVE, A.DUMP),
    (A.NONE, A.MIGRATION_OUT),
])
def test_nested_job_for_wrong_async_job(dom, active, requested):
    if active != A.NONE:
        dom.begin_async_job(active)
    before = snapshot(dom)
    with pytest.raises(mj.InternalError) as ei:
        dom.begin_nested_job(requested, timeout=0.05)
    assert ei.value.message == \
        f"unexpected async job {int(requested)} type expected {int(active)}"
    assert snapshot(dom) == before


def test_nested_job_waits_for_sync_slot_and_names_sync_owner(dom):
    dom.begin_async_job(A.SAVE, api="save")
    h = Holder(dom, J.QUERY, api="stats").start()
    dom.set_async_job_mask(0)  # even a mask that now forbids the holder's kind
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_nested_job(A.SAVE, timeout=0.05)
    # item 5: always the sync owner API for nested jobs
    assert ei.value.message == f"{LOCK} (held by monitor=stats)"
    assert snapshot(dom) == before
    assert h.release() == 2
    dom.end_async_job()


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
    # a blocked job names it (the pain point of libvirt-jobs.md §9.1)
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
    idle(dom)


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
    idle(dom)


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


# ---- bad input (items 4 and 12): errors and no state change ------------------------------

INVALID_JOB = "Attempt to start invalid job"

BAD_CALLS = [
    # sync kinds that are not sync jobs
    ("begin_job NONE", lambda d: d.begin_job(J.NONE), mj.InternalError),
    ("begin_job 0", lambda d: d.begin_job(0), mj.InternalError),
    ("begin_job ASYNC", lambda d: d.begin_job(J.ASYNC), mj.InternalError),
    ("begin_job ASYNC_NESTED", lambda d: d.begin_job(J.ASYNC_NESTED), mj.InternalError),
    ("begin_async_job NONE", lambda d: d.begin_async_job(A.NONE), mj.InternalError),
    ("migration_job_start NONE", lambda d: d.migration_job_start(A.NONE), mj.InternalError),
    # out of range
    *[(f"begin_job {v}", (lambda v: lambda d: d.begin_job(v))(v), ValueError)
      for v in (9, 99, -1, 2**64, -(2**64), 2**31)],
    *[(f"begin_async_job {v}", (lambda v: lambda d: d.begin_async_job(v))(v), ValueError)
      for v in (5, 99, -1, 2**64)],
    *[(f"begin_nested_job {v}", (lambda v: lambda d: d.begin_nested_job(v))(v), ValueError)
      for v in (5, 99, -1, 2**64)],
    *[(f"migration_job_start {v}", (lambda v: lambda d: d.migration_job_start(v))(v),
       ValueError) for v in (5, 99, -1, 2**64)],
    *[(f"set_phase {v}", (lambda v: lambda d: d.migration_job_set_phase(v))(v), ValueError)
      for v in (10, 99, -1, 2**64)],
    *[(f"start_phase {v}", (lambda v: lambda d: d.migration_job_start_phase(v))(v),
       ValueError) for v in (10, 99, -1, 2**64)],
    *[(f"check_migration_job {v}", (lambda v: lambda d: d.check_migration_job(v))(v),
       ValueError) for v in (5, 99, -1, 2**64)],
    *[(f"set_async_job_mask {v}", (lambda v: lambda d: d.set_async_job_mask(v))(v),
       ValueError) for v in (-1, 2**64, 2**65)],
    ("migration_job_start mask -1",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=-1), ValueError),
    ("migration_job_start mask 2**64",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=2**64), ValueError),
    # wrong types
    *[(f"begin_job {v!r}", (lambda v: lambda d: d.begin_job(v))(v), TypeError)
      for v in ("query", "1", 1.0, None, [1], b"\x01")],
    *[(f"begin_async_job {v!r}", (lambda v: lambda d: d.begin_async_job(v))(v), TypeError)
      for v in ("save", 3.0, None)],
    *[(f"begin_nested_job {v!r}", (lambda v: lambda d: d.begin_nested_job(v))(v), TypeError)
      for v in ("migration out", 1.0, None)],
    *[(f"migration_job_start {v!r}", (lambda v: lambda d: d.migration_job_start(v))(v),
       TypeError) for v in ("migration out", None)],
    ("migration_job_start mask str",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask="0x13"), TypeError),
    ("migration_job_start mask float",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, mask=1.5), TypeError),
    *[(f"set_phase {v!r}", (lambda v: lambda d: d.migration_job_set_phase(v))(v), TypeError)
      for v in ("perform3", None, 3.0)],
    *[(f"start_phase {v!r}", (lambda v: lambda d: d.migration_job_start_phase(v))(v),
       TypeError) for v in ("perform3", None, 3.0)],
    *[(f"set_async_job_mask {v!r}", (lambda v: lambda d: d.set_async_job_mask(v))(v),
       TypeError) for v in ("0x13", None, 1.0)],
    *[(f"check_migration_job {v!r}", (lambda v: lambda d: d.check_migration_job(v))(v),
       TypeError) for v in ("migration out", None)],
    # timeouts (item 12)
    *[(f"begin_job timeout={v!r}", (lambda v: lambda d: d.begin_job(J.QUERY, timeout=v))(v),
       ValueError) for v in (-1, -0.001, -math.inf, math.nan)],
    *[(f"begin_job timeout={v!r}", (lambda v: lambda d: d.begin_job(J.QUERY, timeout=v))(v),
       TypeError) for v in ("1", b"1", [1.0])],
    ("begin_async_job timeout=-1", lambda d: d.begin_async_job(A.SAVE, timeout=-1), ValueError),
    ("begin_async_job timeout='1'", lambda d: d.begin_async_job(A.SAVE, timeout="1"),
     TypeError),
    ("begin_nested_job timeout=-1",
     lambda d: d.begin_nested_job(A.MIGRATION_OUT, timeout=-1), ValueError),
    ("migration_job_start timeout=-1",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, timeout=-1), ValueError),
    ("migration_job_start timeout='x'",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, timeout="x"), TypeError),
    ("abort_job timeout=-1", lambda d: d.abort_job(timeout=-1), ValueError),
    ("abort_job timeout='x'", lambda d: d.abort_job(timeout="x"), TypeError),
    # api names
    ("begin_job api=123", lambda d: d.begin_job(J.QUERY, api=123), TypeError),
    ("begin_async_job api=1.0", lambda d: d.begin_async_job(A.SAVE, api=1.0), TypeError),
    ("migration_job_start api=[]",
     lambda d: d.migration_job_start(A.MIGRATION_OUT, api=[]), TypeError),
    ("begin_job api too long", lambda d: d.begin_job(J.QUERY, api="x" * 5000), ValueError),
    ("abort_job api=5", lambda d: d.abort_job(api=5), TypeError),
]


@pytest.fixture(params=["idle", "sync_held", "async_active", "parked"])
def state(request, drv):
    """A domain in one of several states; bad input must not change any."""
    dom = drv.add_domain("vm1")
    if request.param == "sync_held":
        dom.begin_job(J.QUERY, api="stats")
    elif request.param == "async_active":
        dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
        dom.migration_job_set_phase(mj.Phase.BEGIN3)
    elif request.param == "parked":
        dom.migration_job_start(A.MIGRATION_IN, api="prepare3")
        dom.migration_job_set_phase(mj.Phase.PREPARE)
        dom.migration_job_continue()
    return dom


@pytest.mark.parametrize("label, call, exc", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_changes_nothing(state, label, call, exc):
    before = snapshot(state)
    t0 = time.monotonic()
    with pytest.raises((exc, ValueError) if exc is mj.InternalError else exc) as ei:
        call(state)
    # the driver's default wait is 5 s: a call that waited for the lock first
    # would take that long (and time out instead)
    assert time.monotonic() - t0 < 4.0, "validation must not wait for the lock"
    if isinstance(ei.value, mj.InternalError):
        assert ei.value.message == INVALID_JOB
    assert str(ei.value)  # a clear message
    assert snapshot(state) == before


def test_bad_input_leaves_domain_usable(dom):
    for _label, call, exc in BAD_CALLS:
        with pytest.raises(Exception):
            call(dom)
    idle(dom)
    dom.begin_job(J.MODIFY, timeout=1.0)
    assert dom.end_job() == 1
    dom.migration_job_start(A.MIGRATION_OUT, timeout=1.0)
    assert dom.mask == 0x37
    assert dom.migration_job_finish() == 1


@pytest.mark.parametrize("kwargs, exc", [
    ({"job_wait_timeout": -1}, ValueError),
    ({"job_wait_timeout": math.nan}, ValueError),
    ({"job_wait_timeout": "30"}, TypeError),
    ({"max_queued": -1}, ValueError),
    ({"max_queued": 2**64}, ValueError),
    ({"max_queued": 1.5}, TypeError),
    ({"max_queued": "1"}, TypeError),
])
def test_driver_bad_arguments(kwargs, exc):
    with pytest.raises(exc):
        mj.Driver(**kwargs)


@pytest.mark.parametrize("name, exc", [
    (123, TypeError), (None, TypeError), (b"vm1", TypeError), ("x" * 5000, ValueError),
])
def test_add_domain_bad_names(drv, name, exc):
    with pytest.raises(exc):
        drv.add_domain(name)
    assert drv.domains() == []


def test_domains_lists_names(drv):
    assert drv.domains() == []
    drv.add_domain("a")
    drv.add_domain("b")
    assert sorted(drv.domains()) == ["a", "b"]
    drv.remove_domain("a")
    assert drv.domains() == ["b"]


def test_api_names_every_time(dom):
    """API names are cached once checked: a refused name is refused on every
    call, and the owner API is the one passed, also after more distinct names
    than any cache holds."""
    for _ in range(3):
        with pytest.raises(ValueError, match="api must not contain NUL"):
            dom.begin_job(J.MODIFY, api="set\0Memory")
        with pytest.raises(ValueError, match="api is longer than"):
            dom.begin_job(J.MODIFY, api="x" * 10_000)
        with pytest.raises(TypeError, match="api must be a str, not bytes"):
            dom.begin_job(J.MODIFY, api=b"setMemory")
    assert dom.active_job == J.NONE and dom.refs == 1

    class Name(str):
        pass

    for i in range(3000):
        name = f"api{i % 1500}" if i % 3 else Name(f"sub{i}")
        dom.begin_job(J.MODIFY, api=name)
        assert dom.owner_api == name
        dom.end_job()
