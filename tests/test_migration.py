"""The seed's six migration helpers, phase ordering and logging, the §6.2
reference-count walk-throughs and the context managers (api.md items 9-14)."""

from __future__ import annotations

import logging
import threading

import pytest

import pymigjob as mj
from _mjhelpers import snapshot, started

A = mj.AsyncJob
P = mj.Phase
J = mj.Job
MIGRATION_OUT_MASK = 0x37  # DEFAULT | SUSPEND | MIGRATION_OP
DESTROY_ONLY = 0x02


def error_records(caplog):
    return [r for r in caplog.records
            if r.name == "pymigjob" and r.levelno >= logging.ERROR]


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="pymigjob")
    return caplog


# ---- migration_job_start ----------------------------------------------------------

@pytest.mark.parametrize("kind, mask", [
    (A.MIGRATION_OUT, MIGRATION_OUT_MASK),
    (A.MIGRATION_IN, DESTROY_ONLY),
    (A.SAVE, MIGRATION_OUT_MASK),  # DECISIONS: the seed's "else" branch
    (A.DUMP, MIGRATION_OUT_MASK),
])
def test_migration_job_start(dom, kind, mask):
    assert dom.migration_job_start(kind, api="begin") is None
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
    dom.set_async_job_mask(mj.job_mask(J.QUERY, J.SUSPEND, J.ABORT, J.MIGRATION_OP))
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


@pytest.mark.parametrize("bad", [99, -1, 5, 2**64, "migration out", None, 1.0])
def test_is_active_never_raises(dom, bad):
    # api.md: "bool, never raises" -- a kind that cannot be active is not active
    before = snapshot(dom)
    assert dom.migration_job_is_active(bad) is False
    assert snapshot(dom) == before


# ---- §6.2 worked examples: refs at every step --------------------------------------------

def test_source_v3_with_change_protection(dom):
    assert dom.refs == 1
    # Begin3: Start; SetPhase; Continue
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    assert dom.refs == 2
    assert dom.migration_job_set_phase(P.BEGIN3)
    assert dom.refs == 2
    assert dom.migration_job_continue() == 1
    # Perform3: IsActive; StartPhase; nested jobs; SetPhase; Continue
    assert dom.migration_job_is_active(A.MIGRATION_OUT)
    assert dom.migration_job_start_phase(P.PERFORM3, api="perform3")
    assert dom.refs == 2
    for _ in range(3):
        dom.begin_nested_job(A.MIGRATION_OUT, api="monitor")
        assert dom.refs == 3
        assert dom.end_nested_job() == 2
    assert dom.migration_job_set_phase(P.PERFORM3_DONE)
    assert dom.refs == 2
    assert dom.migration_job_continue() == 1
    # Confirm3: IsActive; StartPhase; Finish
    dom.check_migration_job(A.MIGRATION_OUT)
    assert dom.migration_job_start_phase(P.CONFIRM3, api="confirm3")
    assert dom.refs == 2
    assert dom.migration_job_finish() == 1
    assert dom.async_job == A.NONE and dom.jobs_queued == 0


def test_destination_v3(drv):
    dst = drv.add_domain("incoming")
    assert dst.refs == 1
    # Prepare3
    dst.migration_job_start(A.MIGRATION_IN, api="prepare3")
    assert dst.refs == 2
    assert dst.migration_job_set_phase(P.PREPARE)
    assert dst.migration_job_continue() == 1
    assert dst.mask == DESTROY_ONLY
    # Finish3
    dst.check_migration_job(A.MIGRATION_IN)
    assert dst.migration_job_start_phase(P.FINISH3, api="finish3")
    assert dst.refs == 2
    assert dst.migration_job_finish() == 1


def test_v3_without_change_protection_leaks_one_ref(dom):
    # Begin3: a plain MODIFY job, no async job
    dom.begin_job(J.MODIFY, api="begin3")
    assert dom.refs == 2
    assert dom.end_job() == 1
    # Perform3: Start (+1) and StartPhase (+1) but only Continue (-1): 1 -> 3 -> 2
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    assert dom.refs == 2
    assert dom.migration_job_start_phase(P.PERFORM3)
    assert dom.refs == 3
    assert dom.migration_job_set_phase(P.PERFORM3_DONE)
    assert dom.migration_job_continue() == 2
    # Confirm3: 2 -> 3 -> 2
    assert dom.migration_job_start_phase(P.CONFIRM3)
    assert dom.refs == 3
    assert dom.migration_job_finish() == 2
    # the leak: no job left, yet one reference more than the list's
    assert dom.async_job == A.NONE and dom.active_job == J.NONE
    assert dom.jobs_queued == 0
    assert dom.refs == 2


def test_v2_perform(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="perform")
    assert dom.migration_job_set_phase(P.PERFORM2)
    assert dom.refs == 2
    assert dom.migration_job_finish() == 1


def test_v2_destination(dom):
    dom.migration_job_start(A.MIGRATION_IN, api="prepare2")
    dom.migration_job_set_phase(P.PREPARE)
    assert dom.migration_job_continue() == 1
    assert dom.migration_job_start_phase(P.FINISH2)
    assert dom.refs == 2
    assert dom.migration_job_finish() == 1


def test_peer_to_peer_in_one_call(dom, logs):
    dom.migration_job_start(A.MIGRATION_OUT, api="perform")
    for phase in (P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE, P.CONFIRM3):
        assert dom.migration_job_set_phase(phase)
        assert dom.refs == 2
    assert dom.migration_job_finish() == 1
    assert error_records(logs) == []


def test_continue_returning_zero_frees_domain(drv, dom):
    # a transient domain removed while an API works on it: that API's
    # Continue drops the last reference ("domain disappeared")
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    assert drv.remove_domain("vm1") == 1
    assert dom.migration_job_continue() == 0
    assert dom.alive is False
    assert dom.refs == 0
    with pytest.raises(mj.NoDomain):
        dom.begin_job(J.QUERY)


# ---- context managers ---------------------------------------------------------------------

def test_full_migration_with_context_managers(dom):
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3") as mig:
        assert mig.domain is dom
        assert dom.async_job == A.MIGRATION_OUT
        assert dom.phase == P.BEGIN3
        assert dom.refs == 2
        assert dom.async_owner_api == "begin3"
        assert dom.mask == MIGRATION_OUT_MASK
        assert dom.job_info.type == mj.JobType.UNBOUNDED
    assert dom.refs == 1
    assert dom.async_job == A.MIGRATION_OUT  # parked
    assert dom.async_owner_thread == 0

    with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3, api="perform3") as mig:
        assert dom.refs == 2
        assert dom.phase == P.PERFORM3
        assert dom.async_owner_api == "perform3"
        with dom.nested_job(A.MIGRATION_OUT, api="monitor") as d:
            assert d is dom
            assert dom.active_job == J.ASYNC_NESTED
            assert dom.refs == 3
        assert dom.active_job == J.NONE
        assert mig.set_phase(P.PERFORM3_DONE) is True
        assert dom.phase == P.PERFORM3_DONE
    assert dom.refs == 1
    assert dom.async_job == A.MIGRATION_OUT

    with dom.migration_phase(A.MIGRATION_OUT, P.CONFIRM3) as mig:
        assert dom.refs == 2
        assert mig.finish() == 1
        assert dom.async_job == A.NONE
    assert dom.refs == 1
    assert dom.async_job == A.NONE
    assert dom.jobs_queued == 0


def test_migration_context_mask_argument(dom):
    with dom.migration(A.MIGRATION_IN, P.PREPARE, mask=mj.DEFAULT_JOB_MASK):
        assert dom.mask == mj.DEFAULT_JOB_MASK
    assert dom.mask == mj.DEFAULT_JOB_MASK
    with dom.migration_phase(A.MIGRATION_IN, P.FINISH3) as mig:
        mig.finish()


def test_mig_set_phase_backwards_in_block(dom, logs):
    with dom.migration(A.MIGRATION_OUT, P.PERFORM3):
        pass
    with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3_DONE) as mig:
        assert mig.set_phase(P.BEGIN3) is False
        assert len(error_records(logs)) == 1
        assert mig.set_phase(P.CONFIRM3, api="confirm3") is True
        assert dom.async_owner_api == "confirm3"
        mig.finish()


def test_migration_phase_not_active_raises_before_anything(dom):
    before = snapshot(dom)
    entered = False
    with pytest.raises(mj.OperationInvalid) as ei:
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
            entered = True
    assert not entered
    assert ei.value.message == "domain 'vm1' is not being migrated"
    assert snapshot(dom) == before


def test_migration_phase_wrong_kind(dom):
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3):
        pass
    before = snapshot(dom)
    with pytest.raises(mj.OperationInvalid) as ei:
        with dom.migration_phase(A.MIGRATION_IN, P.FINISH3):
            pytest.fail("block must not run")
    assert ei.value.message == "domain 'vm1' is not processing incoming migration"
    assert snapshot(dom) == before


def test_migration_start_timeout_changes_nothing(dom):
    with dom.job(J.QUERY, api="stats"):
        before = snapshot(dom)
        with pytest.raises(mj.JobTimeout):
            with dom.migration(A.MIGRATION_OUT, P.BEGIN3, timeout=0.05):
                pytest.fail("block must not run")
        assert snapshot(dom) == before


class Boom(Exception):
    pass


class HardStop(BaseException):
    """Like KeyboardInterrupt: not an Exception."""


@pytest.mark.parametrize("exc_type", [Boom, HardStop, mj.OperationAborted])
def test_exception_in_migration_ends_async_job(dom, exc_type):
    error = exc_type("boom") if exc_type is not mj.OperationAborted else \
        mj.OperationAborted("x: canceled by client")
    with pytest.raises(exc_type) as ei:
        with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3"):
            assert dom.refs == 2
            raise error
    assert ei.value is error
    assert dom.async_job == A.NONE
    assert dom.refs == 1  # item 10: back to its value before the block
    assert dom.jobs_queued == 0
    assert dom.async_owner_api is None
    assert dom.mask == mj.DEFAULT_JOB_MASK


@pytest.mark.parametrize("exc_type", [Boom, HardStop])
def test_exception_in_migration_phase_ends_async_job(dom, exc_type):
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3):
        pass
    assert dom.refs == 1
    with pytest.raises(exc_type):
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
            assert dom.refs == 2
            raise exc_type("boom")
    assert dom.async_job == A.NONE
    assert dom.refs == 1
    assert dom.jobs_queued == 0


def test_exception_in_migration_phase_with_leaked_ref(dom):
    # without change protection refs is 2 before Confirm3; the error path
    # must bring it back to 2, not lower
    dom.migration_job_start(A.MIGRATION_OUT)
    dom.migration_job_start_phase(P.PERFORM3)
    dom.migration_job_continue()
    assert dom.refs == 2
    with pytest.raises(Boom):
        with dom.migration_phase(A.MIGRATION_OUT, P.CONFIRM3):
            assert dom.refs == 3
            raise Boom()
    assert dom.refs == 2
    assert dom.async_job == A.NONE


def test_exception_after_finish_does_not_end_twice(dom):
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3):
        pass
    with pytest.raises(Boom):
        with dom.migration_phase(A.MIGRATION_OUT, P.CONFIRM3) as mig:
            assert mig.finish() == 1
            raise Boom()
    assert dom.refs == 1
    assert dom.alive
    assert dom.async_job == A.NONE


def test_exception_with_a_nested_job_open(dom):
    with pytest.raises(Boom):
        with dom.migration(A.MIGRATION_OUT, P.PERFORM3):
            with dom.nested_job(A.MIGRATION_OUT):
                raise Boom()
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    assert dom.refs == 1
    assert dom.jobs_queued == 0


@pytest.mark.parametrize("exc_type", [Boom, HardStop])
def test_exception_in_job_block_ends_job(dom, exc_type):
    with pytest.raises(exc_type):
        with dom.job(J.MODIFY, api="setMemory") as d:
            assert d is dom
            assert dom.active_job == J.MODIFY
            assert dom.owner_api == "setMemory"
            raise exc_type()
    assert dom.active_job == J.NONE
    assert dom.refs == 1
    assert dom.owner_api is None


@pytest.mark.parametrize("exc_type", [Boom, HardStop])
def test_exception_in_nested_block_ends_only_nested_job(dom, exc_type):
    dom.begin_async_job(A.SAVE)
    with pytest.raises(exc_type):
        with dom.nested_job(A.SAVE):
            assert dom.active_job == J.ASYNC_NESTED
            raise exc_type()
    assert dom.active_job == J.NONE
    assert dom.async_job == A.SAVE  # the async job belongs to the caller
    assert dom.refs == 2
    dom.end_async_job()


def test_job_block_normal_exit(dom):
    with dom.job(J.QUERY) as d:
        assert d.refs == 2
    assert dom.refs == 1 and dom.active_job == J.NONE


def test_job_block_timeout_changes_nothing(dom):
    dom.begin_async_job(A.SAVE, api="save")
    before = snapshot(dom)
    with pytest.raises(mj.JobTimeout):
        with dom.job(J.MODIFY, timeout=0.05):
            pytest.fail("block must not run")
    assert snapshot(dom) == before
    dom.end_async_job()


def test_migration_from_another_thread_each_phase(dom):
    """Each migration API may run in a different thread (the async job is parked)."""
    def api(kind, phase, last):
        with dom.migration_phase(kind, phase, api=phase.name.lower()) as mig:
            assert dom.async_owner_thread == threading.get_ident()
            if last:
                mig.finish()
        return dom.refs

    with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3"):
        pass
    for phase, last in ((P.PERFORM3, False), (P.CONFIRM3, True)):
        assert started(api, A.MIGRATION_OUT, phase, last).join_ok() == 1
    assert dom.async_job == A.NONE
