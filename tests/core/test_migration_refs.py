"""The reference-count walk-throughs of the seed's migration flows, step by
step, and the migration context managers (api.md item 10)."""

from __future__ import annotations

import threading

import pytest

import pymigjob as mj
from _mjhelpers import error_records, snapshot, started

A = mj.AsyncJob
P = mj.Phase
J = mj.Job
MIGRATION_OUT_MASK = 0x77  # DEFAULT | SUSPEND | MIGRATION_OP | MODIFY_MIGRATION_SAFE
MIGRATION_IN_MASK = 0x42  # DESTROY | MODIFY_MIGRATION_SAFE



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
    assert dst.mask == MIGRATION_IN_MASK
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
