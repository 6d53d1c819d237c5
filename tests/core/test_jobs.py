"""Sync, async and nested jobs: begin/end, masks, max_queued, owners, timeouts
and bad input (api.md items 3-8, 12; DECISIONS.md)."""

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


def test_fresh_domain(dom):
    fresh(dom)
    assert dom.name == "vm1"
    assert dom.alive is True
    assert isinstance(dom.active_job, mj.Job)
    assert isinstance(dom.async_job, mj.AsyncJob)
    assert isinstance(dom.job_info.type, mj.JobType)


# ---- sync jobs --------------------------------------------------------------------

@pytest.mark.parametrize("job", SYNC_JOBS)
def test_begin_end_sync_job(dom, job):
    assert dom.begin_job(job, api="someApi") is True
    assert dom.active_job == job
    assert dom.refs == 2
    assert dom.jobs_queued == 1
    assert dom.owner_api == "someApi"
    assert dom.owner_thread == threading.get_ident()
    assert dom.async_job == A.NONE
    assert dom.end_job() == 1
    fresh(dom)


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
    fresh(dom)


# ---- async jobs ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_begin_end_async_job(dom, kind):
    assert dom.begin_async_job(kind, api="asyncApi") is True
    assert dom.async_job == kind
    assert dom.active_job == J.NONE  # an async job never sits in the sync slot
    assert dom.refs == 2
    assert dom.jobs_queued == 1
    assert dom.mask == mj.DEFAULT_JOB_MASK
    assert dom.phase == 0
    assert dom.async_owner_api == "asyncApi"
    assert dom.async_owner_thread == threading.get_ident()
    assert dom.owner_api is None
    # 0.2: job info follows the job data (ACTIVE: UNBOUNDED, libvirt 11's StatusToType)
    assert dom.job_info.type == mj.JobType.UNBOUNDED
    assert dom.end_async_job() == 1
    fresh(dom)
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
    assert dom.begin_nested_job(kind, api="monitor") is True
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
    fresh(dom)


def test_end_job_also_ends_nested_job(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    dom.begin_nested_job(A.MIGRATION_OUT)
    assert dom.end_job() == 2
    assert dom.active_job == J.NONE
    assert dom.jobs_queued == 1
    dom.end_async_job()
    fresh(dom)


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
