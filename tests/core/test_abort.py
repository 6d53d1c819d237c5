"""abort_job, abort_requested and check_abort (api.md item 15)."""

from __future__ import annotations

import pytest

import pymigjob as mj
from _mjhelpers import DEADLINE, Holder, snapshot, started, wait_queued

A = mj.AsyncJob
J = mj.Job
P = mj.Phase


def test_abort_without_async_job(dom):
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        dom.abort_job()
    assert ei.value.message == "no job is active on the domain"
    assert str(ei.value) == "Requested operation is not valid: no job is active on the domain"
    assert snapshot(dom) == before


def test_abort_with_only_a_sync_job_times_out_or_fails(dom):
    # the ABORT job needs the sync slot first; with it held it cannot even check
    with Holder(dom, J.MODIFY, api="setMemory"):
        before = snapshot(dom)
        with pytest.raises(mj.JobTimeout) as ei:
            dom.abort_job(timeout=0.05)
        assert ei.value.message == \
            "cannot acquire state change lock (held by monitor=setMemory)"
        assert snapshot(dom) == before


@pytest.mark.parametrize("kind, label", [
    (A.MIGRATION_OUT, "migration out"),
    (A.SAVE, "save"),
    (A.DUMP, "dump"),
])
def test_abort_sets_flag_and_checkpoint_raises(dom, kind, label):
    dom.begin_async_job(kind, api="job")
    assert dom.abort_requested is False
    assert dom.check_abort() is None
    refs, queued = dom.refs, dom.jobs_queued
    assert dom.abort_job(api="abortJob") is None
    assert dom.abort_requested is True
    # the ABORT job was taken and ended again
    assert dom.active_job == J.NONE
    assert dom.owner_api is None
    assert (dom.refs, dom.jobs_queued) == (refs, queued)
    assert dom.async_job == kind  # abort only flags; the owner ends the job
    for _ in range(2):  # the checkpoint keeps failing until the job ends
        with pytest.raises(mj.OperationAborted) as ei:
            dom.check_abort()
        assert ei.value.message == f"{label}: canceled by client"
        assert ei.value.code == mj.ErrorCode.OPERATION_ABORTED
        assert str(ei.value) == f"operation aborted: {label}: canceled by client"
    assert dom.end_async_job() == 1
    assert dom.abort_requested is False
    assert dom.check_abort() is None


def test_abort_twice_is_fine(dom):
    dom.begin_async_job(A.SAVE)
    dom.abort_job()
    dom.abort_job()
    assert dom.abort_requested is True
    dom.end_async_job()


def test_flag_does_not_leak_into_next_async_job(dom):
    dom.migration_job_start(A.MIGRATION_OUT)
    dom.abort_job()
    dom.migration_job_finish()
    assert dom.abort_requested is False
    dom.begin_async_job(A.DUMP)
    assert dom.abort_requested is False
    assert dom.check_abort() is None
    dom.end_async_job()


def test_check_abort_without_async_job(dom):
    before = snapshot(dom)
    assert dom.check_abort() is None
    assert snapshot(dom) == before


def test_abort_survives_continue_and_is_seen_by_next_phase(dom):
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3"):
        pass
    dom.abort_job()  # between two migration APIs: the job is parked
    assert dom.abort_requested is True
    with pytest.raises(mj.OperationAborted):
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
            dom.check_abort()
    # the escaping error ended the async job and cleared the flag
    assert dom.async_job == A.NONE
    assert dom.abort_requested is False
    assert dom.refs == 1


def test_abort_incoming_migration_blocked_by_mask(dom):
    dom.migration_job_start(A.MIGRATION_IN, api="prepare3")  # mask: DESTROY only
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.abort_job(timeout=0.05)
    assert ei.value.message == "cannot acquire state change lock (held by monitor=prepare3)"
    assert snapshot(dom) == before


def test_abort_incoming_migration_refused(dom):
    dom.migration_job_start(A.MIGRATION_IN, api="prepare3", mask=mj.DEFAULT_JOB_MASK)
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        dom.abort_job()
    assert ei.value.message == "cannot abort incoming migration; use virDomainDestroy instead"
    assert snapshot(dom) == before  # ABORT job ended, flag not raised
    assert dom.abort_requested is False
    dom.migration_job_finish()


def test_abort_respects_mask(dom):
    dom.begin_async_job(A.SAVE, api="save")
    dom.set_async_job_mask(0)
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout) as ei:
        dom.abort_job(timeout=0.05)
    assert ei.value.message == "cannot acquire state change lock (held by monitor=save)"
    assert snapshot(dom) == before
    assert dom.abort_requested is False
    dom.end_async_job()


def test_abort_uses_driver_default_timeout():
    dom = mj.Driver(job_wait_timeout=0.1).add_domain("vm1")
    dom.begin_async_job(A.SAVE)
    dom.set_async_job_mask(0)
    with pytest.raises(mj.JobTimeout):
        dom.abort_job()
    dom.end_async_job()


def test_abort_counts_against_max_queued():
    dom = mj.Driver(max_queued=1, job_wait_timeout=5.0).add_domain("vm1")
    dom.begin_async_job(A.SAVE, api="save")
    with pytest.raises(mj.QueueFull):
        dom.abort_job()
    assert dom.abort_requested is False
    assert dom.jobs_queued == 1


def test_abort_from_another_thread_waits_for_nested_job(dom):
    """During the owner's nested job, abort waits for the sync slot like any
    ABORT job, and lands as soon as the nested job ends."""
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    dom.begin_nested_job(A.MIGRATION_OUT, api="monitor")
    aborter = started(dom.abort_job, api="abortJob", timeout=DEADLINE)
    wait_queued(dom, 3)  # async job + nested job + the waiting ABORT
    assert dom.abort_requested is False  # not before the slot is free
    assert aborter.is_alive()
    dom.check_abort()  # nothing yet
    # 3 = list + async + the waiting ABORT's reference, unless the aborter
    # already took and ended its job in between
    assert dom.end_nested_job() in (2, 3)
    aborter.join_ok()
    assert dom.refs == 2
    assert dom.abort_requested is True
    with pytest.raises(mj.OperationAborted) as ei:
        dom.check_abort()
    assert ei.value.message == "migration out: canceled by client"
    assert dom.migration_job_finish() == 1
    assert dom.abort_requested is False
    assert dom.jobs_queued == 0


def test_abort_from_another_thread_while_parked(dom):
    with dom.migration(A.MIGRATION_OUT, P.PERFORM3):
        pass
    started(dom.abort_job, timeout=DEADLINE).join_ok()
    assert dom.abort_requested is True
    with dom.migration_phase(A.MIGRATION_OUT, P.CONFIRM3_CANCELLED) as mig:
        with pytest.raises(mj.OperationAborted):
            dom.check_abort()
        mig.finish()
    assert dom.abort_requested is False
