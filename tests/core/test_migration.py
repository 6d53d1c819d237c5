"""The seed's six migration helpers, phase ordering and logging, the §6.2
reference-count walk-throughs and the context managers (api.md items 9-14)."""

from __future__ import annotations

import logging

import pytest

import pymigjob as mj
from _mjhelpers import error_records, snapshot

A = mj.AsyncJob
P = mj.Phase
J = mj.Job
MIGRATION_OUT_MASK = 0x77  # DEFAULT | SUSPEND | MIGRATION_OP | MODIFY_MIGRATION_SAFE
MIGRATION_IN_MASK = 0x42  # DESTROY | MODIFY_MIGRATION_SAFE
DESTROY_ONLY = 0x02



# ---- migration_job_start ----------------------------------------------------------

@pytest.mark.parametrize("kind, mask", [
    (A.MIGRATION_OUT, MIGRATION_OUT_MASK),
    (A.MIGRATION_IN, MIGRATION_IN_MASK),
    (A.SAVE, MIGRATION_OUT_MASK),  # DECISIONS: the seed's "else" branch
    (A.DUMP, MIGRATION_OUT_MASK),
    (A.BACKUP, MIGRATION_OUT_MASK),
])
def test_migration_job_start(dom, kind, mask):
    assert dom.migration_job_start(kind, api="begin") is True
    assert dom.async_job == kind
    assert dom.mask == mask
    assert dom.phase == 0
    assert dom.refs == 2
    assert dom.jobs_queued == 1
    assert dom.job_info.type == mj.JobType.UNBOUNDED  # item 11
    assert dom.async_owner_api == "begin"
    assert dom.migration_job_finish() == 1
    assert dom.job_info.type == mj.JobType.NONE
    assert dom.mask == mj.DEFAULT_JOB_MASK
    assert dom.async_job == A.NONE


@pytest.mark.parametrize("mask, stored", [
    (0, DESTROY_ONLY),
    (mj.job_mask(J.QUERY), 0x03),
    (mj.DEFAULT_JOB_MASK, 0x13),
    (0xFF, 0xFF),
    (2**64 - 1, 2**64 - 1),
])
@pytest.mark.parametrize("kind", [A.MIGRATION_OUT, A.MIGRATION_IN])
def test_migration_job_start_mask_argument(dom, kind, mask, stored):
    dom.migration_job_start(kind, mask=mask)
    assert dom.mask == stored
    dom.migration_job_finish()


def test_migration_in_mask_blocks_queries(dom):
    dom.migration_job_start(A.MIGRATION_IN, api="prepare3")
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.QUERY, timeout=0.05)
    assert ei.value.message == "cannot acquire state change lock (held by monitor=prepare3)"
    dom.begin_job(J.DESTROY, timeout=1.0)  # DESTROY is always allowed
    dom.end_job()
    dom.migration_job_finish()


def test_migration_out_mask_lets_allowed_jobs_in(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    for job in (J.QUERY, J.DESTROY, J.SUSPEND, J.ABORT, J.MIGRATION_OP):
        dom.begin_job(job, timeout=1.0)
        assert dom.end_job() == 2
    with pytest.raises(mj.JobTimeout):
        dom.begin_job(J.MODIFY, timeout=0.02)
    dom.migration_job_finish()


def test_begin_async_job_then_set_mask_matches_migration_start(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    dom.set_async_job_mask(mj.job_mask(J.QUERY, J.SUSPEND, J.ABORT, J.MIGRATION_OP,
                                       J.MODIFY_MIGRATION_SAFE))
    assert dom.mask == MIGRATION_OUT_MASK
    dom.end_async_job()


# ---- set_phase: forward, equal, backwards -----------------------------------------------

def test_set_phase_forward_and_equal(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT)
    for phase in (P.BEGIN3, P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE, P.PERFORM3_DONE,
                  P.CONFIRM3):
        assert dom.migration_job_set_phase(phase) is True
        assert dom.phase == phase
    assert dom.refs == 2  # set_phase never touches refs
    assert error_records(logs) == []
    dom.migration_job_finish()


def test_set_phase_accepts_plain_ints(dom):
    dom.migration_job_start(A.MIGRATION_IN)
    assert dom.migration_job_set_phase(7) is True
    assert dom.phase == P.PREPARE
    dom.migration_job_finish()


@pytest.mark.parametrize("old, new, text", [
    (P.PERFORM3, P.BEGIN3, "perform3 => begin3"),
    (P.BEGIN3, P.PERFORM2, "begin3 => perform2"),
    # a cancel after a confirm is backwards
    (P.CONFIRM3, P.CONFIRM3_CANCELLED, "confirm3 => confirm3_cancelled"),
    (P.FINISH3, P.PREPARE, "finish3 => prepare"),
    (P.PREPARE, P.CONFIRM3, "prepare => confirm3"),  # plain integer order whatever the side
    (P.FINISH3, P.NONE, "finish3 => none"),
])
def test_set_phase_backwards_logs_once_and_refuses(dom, logs, old, new, text):
    kind = A.MIGRATION_IN if old >= P.PREPARE else A.MIGRATION_OUT
    dom.migration_job_start(kind, api="first")
    assert dom.migration_job_set_phase(old) is True
    before = snapshot(dom)
    logs.clear()
    assert dom.migration_job_set_phase(new) is False
    assert snapshot(dom) == before  # job goes on, phase unchanged
    records = error_records(logs)
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].name == "pymigjob"
    assert f"migration protocol going backwards {text}" in records[0].getMessage()
    # and the job still works afterwards
    assert dom.migration_job_set_phase(old) is True
    assert dom.migration_job_finish() == 1


def test_backwards_log_spells_perform2(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT)
    dom.migration_job_set_phase(P.BEGIN3)
    logs.clear()
    assert dom.migration_job_set_phase(P.PERFORM2) is False
    (record,) = error_records(logs)
    assert "begin3 => perform2" in record.getMessage()
    assert "preform2" not in record.getMessage()
    dom.migration_job_finish()


def test_refused_phase_changes_no_owner(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.PERFORM3, api="perform3")
    dom.migration_job_continue()  # parked: no owner thread
    before = snapshot(dom)
    assert dom.migration_job_set_phase(P.BEGIN3, api="intruder") is False
    assert len(error_records(logs)) == 1
    assert snapshot(dom) == before  # still names perform3, still parked


def test_refused_start_phase_changes_only_refs(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.PERFORM3, api="perform3")
    dom.migration_job_continue()
    before = snapshot(dom)
    assert dom.migration_job_start_phase(P.BEGIN3, api="intruder") is False
    after = snapshot(dom)
    assert after.pop("refs") == before.pop("refs") + 1
    assert after == before


def test_strict_refused_phase_changes_nothing():
    dom = mj.Driver(strict_phases=True).add_domain("vm1")
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.PERFORM3, api="perform3")
    dom.migration_job_continue()
    before = snapshot(dom)
    with pytest.raises(mj.InternalError):
        dom.migration_job_set_phase(P.BEGIN3, api="intruder")
    assert snapshot(dom) == before  # an error leaves no trace


def test_backwards_phase_keeps_the_job(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.PERFORM3, api="perform3")
    dom.migration_job_set_phase(P.BEGIN3)
    assert dom.phase == P.PERFORM3
    assert dom.async_job == A.MIGRATION_OUT
    assert dom.async_owner_api == "perform3"
    assert len(error_records(logs)) == 1
    dom.migration_job_finish()


def test_set_phase_without_async_job_is_silent_noop(dom, logs):
    before = snapshot(dom)
    for phase in P:
        assert dom.migration_job_set_phase(phase) is False
    assert dom.migration_job_set_phase(P.BEGIN3, api="x") is False
    assert snapshot(dom) == before
    assert error_records(logs) == []


def test_set_phase_with_only_a_sync_job_is_noop(dom, logs):
    dom.begin_job(J.MODIFY)
    before = snapshot(dom)
    assert dom.migration_job_set_phase(P.PERFORM3) is False
    assert snapshot(dom) == before
    assert error_records(logs) == []
    dom.end_job()


def test_set_phase_for_non_migration_async_job(dom):
    # the seed stores the phase whatever the async kind
    dom.begin_async_job(A.SAVE)
    assert dom.migration_job_set_phase(P.PERFORM3) is True
    assert dom.phase == P.PERFORM3
    dom.end_async_job()
    assert dom.phase == 0


# ---- strict_phases ---------------------------------------------------------------------

@pytest.fixture
def strict():
    return mj.Driver(strict_phases=True, job_wait_timeout=5.0).add_domain("vm1")


def test_strict_backwards_raises(strict):
    strict.migration_job_start(A.MIGRATION_OUT)
    assert strict.migration_job_set_phase(P.PERFORM3) is True
    before = snapshot(strict)
    with pytest.raises(mj.InternalError) as ei:
        strict.migration_job_set_phase(P.BEGIN3)
    assert ei.value.message == "migration protocol going backwards perform3 => begin3"
    assert str(ei.value) == \
        "internal error: migration protocol going backwards perform3 => begin3"
    assert snapshot(strict) == before
    assert strict.migration_job_set_phase(P.PERFORM3_DONE) is True
    assert strict.migration_job_finish() == 1


def test_strict_forward_and_equal_are_fine(strict, logs):
    strict.migration_job_start(A.MIGRATION_IN)
    assert strict.migration_job_set_phase(P.PREPARE) is True
    assert strict.migration_job_set_phase(P.PREPARE) is True
    assert strict.migration_job_set_phase(P.FINISH3) is True
    assert error_records(logs) == []
    strict.migration_job_finish()


def test_strict_without_async_job_is_still_silent(strict, logs):
    before = snapshot(strict)
    assert strict.migration_job_set_phase(P.BEGIN3) is False
    assert snapshot(strict) == before
    assert error_records(logs) == []


def test_strict_start_phase_backwards_raises(strict):
    strict.migration_job_start(A.MIGRATION_OUT)
    strict.migration_job_set_phase(P.CONFIRM3)
    strict.migration_job_continue()
    with pytest.raises(mj.InternalError) as ei:
        strict.migration_job_start_phase(P.PERFORM3)
    assert ei.value.message == "migration protocol going backwards confirm3 => perform3"
    assert strict.phase == P.CONFIRM3
    assert strict.async_job == A.MIGRATION_OUT
    # the seed refs before the check, strict or not: the caller gives it back
    assert strict.refs == 2
    assert strict.migration_job_continue() == 1


def test_strict_refused_phase_in_migration_phase_block(strict):
    with strict.migration(A.MIGRATION_OUT, P.CONFIRM3):
        pass
    before = snapshot(strict)
    with pytest.raises(mj.InternalError):
        with strict.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
            pytest.fail("block must not run")
    # nothing ran: the reference is given back and the job stays parked
    assert snapshot(strict) == before
    with strict.migration_phase(A.MIGRATION_OUT, P.CONFIRM3) as mig:
        mig.finish()
    assert strict.refs == 1


# ---- start_phase / continue / finish ----------------------------------------------------

def test_start_phase_refs_even_when_refused(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT)
    dom.migration_job_set_phase(P.PERFORM3)
    assert dom.migration_job_continue() == 1
    assert dom.migration_job_start_phase(P.BEGIN3) is False
    assert dom.refs == 2  # the seed refs before the check
    assert dom.phase == P.PERFORM3
    assert len(error_records(logs)) == 1
    assert dom.migration_job_continue() == 1
    assert dom.migration_job_start_phase(P.CONFIRM3) is True
    assert dom.migration_job_finish() == 1


def test_start_phase_without_async_job(dom, logs):
    # the seed: virDomainObjRef, then a SetPhase that does nothing
    assert dom.migration_job_start_phase(P.PERFORM3) is False
    assert dom.refs == 2
    assert dom.async_job == A.NONE and dom.phase == 0
    assert dom.async_owner_thread == 0 and dom.async_owner_api is None
    assert error_records(logs) == []
    assert dom.migration_job_start_phase(P.PERFORM3, api="perform3") is False
    assert dom.async_owner_thread == 0 and dom.async_owner_api is None
    assert dom.refs == 3
    assert dom.migration_job_continue() == 2
    assert dom.migration_job_continue() == 1


def test_continue_keeps_the_job(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.migration_job_set_phase(P.BEGIN3)
    assert dom.migration_job_continue() == 1
    assert dom.async_job == A.MIGRATION_OUT
    assert dom.phase == P.BEGIN3
    assert dom.mask == MIGRATION_OUT_MASK
    assert dom.jobs_queued == 1  # the async job counts for its whole life
    assert dom.job_info.type == mj.JobType.UNBOUNDED
    assert dom.async_owner_thread == 0


def test_finish_resets_everything(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3", mask=0)
    dom.migration_job_set_phase(P.CONFIRM3)
    assert dom.migration_job_finish() == 1
    assert dom.async_job == A.NONE
    assert dom.phase == 0
    assert dom.mask == mj.DEFAULT_JOB_MASK
    assert dom.jobs_queued == 0
    assert dom.async_owner_api is None
    assert dom.async_owner_thread == 0
    assert dom.job_info.type == mj.JobType.NONE
    assert dom.job_info.elapsed == 0.0


def test_finish_without_async_job(dom):
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid):
        dom.migration_job_finish()
    assert snapshot(dom) == before


# ---- is_active / check_migration_job (item 14) ------------------------------------------

@pytest.mark.parametrize("active", list(A))
@pytest.mark.parametrize("asked", list(A))
def test_is_active_compares_exactly(dom, active, asked):
    if active != A.NONE:
        dom.begin_async_job(active)
    before = snapshot(dom)
    assert dom.migration_job_is_active(asked) is (active == asked)
    if active == asked:
        assert dom.check_migration_job(asked) is None
    else:
        with pytest.raises(mj.OperationInvalid) as ei:
            dom.check_migration_job(asked)
        what = ("is not processing incoming migration" if asked == A.MIGRATION_IN
                else "is not being migrated")
        assert ei.value.message == f"domain 'vm1' {what}"
        assert ei.value.code == mj.ErrorCode.OPERATION_INVALID
    assert snapshot(dom) == before


@pytest.mark.parametrize("bad", [99, -1, 8, 2**64, "migration out", None, 1.0])
def test_is_active_never_raises(dom, bad):
    # api.md: "bool, never raises" -- a kind that cannot be active is not active
    before = snapshot(dom)
    assert dom.migration_job_is_active(bad) is False
    assert snapshot(dom) == before
