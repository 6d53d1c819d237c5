"""Misuse a newcomer makes (DECISIONS.md, "Misuse"): a member of the wrong enum, kinds
given as numbers in error texts, a guard whose exit fails after the block
raised, a Fraction timeout, bad arguments reported before state.  Every test
runs against whichever implementation ``import pymigjob`` gives (the suite
runs once per implementation)."""

from __future__ import annotations

import asyncio
import enum
import math
import signal
import sys
from fractions import Fraction

import pytest

import pymigjob as mj
from _mjhelpers import snapshot

J, A, P = mj.Job, mj.AsyncJob, mj.Phase
HAS_NOTES = sys.version_info >= (3, 11)


class Boom(Exception):
    pass


class Color(enum.IntEnum):
    RED = 1


class Perm(enum.IntFlag):
    R = 4


# ---- 1. a member of the wrong enum is a TypeError ----------------------------------

#: name -> (call, the member passed, the enum expected, what it is called)
def _calls():
    run = asyncio.run
    return {
        "begin_job": (lambda d, v: d.begin_job(v), J),
        "begin_job api": (lambda d, v: d.begin_job(v, api="x", timeout=1.0), J),
        "begin_async_job": (lambda d, v: d.begin_async_job(v), A),
        "begin_nested_job": (lambda d, v: d.begin_nested_job(v), A),
        "migration_job_start": (lambda d, v: d.migration_job_start(v), A),
        "check_migration_job": (lambda d, v: d.check_migration_job(v), A),
        "migration_job_set_phase": (lambda d, v: d.migration_job_set_phase(v), P),
        "migration_job_start_phase": (lambda d, v: d.migration_job_start_phase(v), P),
        "claim_parked async_job": (lambda d, v: d.migration_job_claim_parked(v, 0, 1), A),
        "claim_parked phase": (lambda d, v: d.migration_job_claim_parked(A.MIGRATION_OUT, v, 1),
                               P),
        "claim_parked new_phase": (
            lambda d, v: d.migration_job_claim_parked(A.MIGRATION_OUT, 0, v), P),
        "job()": (lambda d, v: d.job(v).__enter__(), J),
        "job() api": (lambda d, v: d.job(v, api="x").__enter__(), J),
        "nested_job()": (lambda d, v: d.nested_job(v).__enter__(), A),
        "migration() async_job": (lambda d, v: d.migration(v, P.BEGIN3).__enter__(), A),
        "migration() phase": (lambda d, v: d.migration(A.MIGRATION_OUT, v).__enter__(), P),
        "migration_phase() async_job": (
            lambda d, v: d.migration_phase(v, P.PERFORM3).__enter__(), A),
        "migration_phase() phase": (
            lambda d, v: d.migration_phase(A.MIGRATION_OUT, v).__enter__(), P),
        "begin_job_async": (lambda d, v: run(d.begin_job_async(v)), J),
        "begin_async_job_async": (lambda d, v: run(d.begin_async_job_async(v)), A),
        "job_async()": (lambda d, v: run(_enter_async(d.job_async(v))), J),
        "job_mask": (lambda d, v: mj.job_mask(v), J),
        "phase_to_string async_job": (lambda d, v: mj.phase_to_string(v, 1), A),
        "phase_to_string phase": (lambda d, v: mj.phase_to_string(A.MIGRATION_OUT, v), P),
        "phase_from_string": (lambda d, v: mj.phase_from_string(v, "none"), A),
        "JobStatus job": (lambda d, v: mj.JobStatus(job=v), J),
        "JobStatus async_job": (lambda d, v: mj.JobStatus(async_job=v), A),
        "JobStatus phase": (lambda d, v: mj.JobStatus(async_job=A.MIGRATION_OUT, phase=v), P),
    }


async def _enter_async(guard):
    async with guard:
        pass


CALLS = _calls()
#: for each expected enum, members of other enums with a value it has too
FOREIGN = {
    J: [A.MIGRATION_OUT, A.SAVE, A.NONE, P.BEGIN3, P.PERFORM3, mj.JobType.BOUNDED,
        mj.ErrorCode.INTERNAL_ERROR, Color.RED, Perm.R, signal.SIGINT],
    A: [J.MODIFY, J.QUERY, J.NONE, P.BEGIN3, mj.JobType.UNBOUNDED, Color.RED, Perm.R],
    P: [J.MODIFY, J.QUERY, A.MIGRATION_OUT, A.NONE, mj.JobType.BOUNDED, Color.RED, Perm.R],
}
CASES = [(name, member) for name, (_, cls) in CALLS.items() for member in FOREIGN[cls]]


@pytest.mark.parametrize("name, member", CASES, ids=[f"{n}-{m!r}" for n, m in CASES])
def test_a_member_of_another_enum_is_a_type_error(dom, name, member):
    call, cls = CALLS[name]
    before = snapshot(dom)
    with pytest.raises(TypeError) as info:
        call(dom, member)
    text = str(info.value)
    # both enums are named: the expected one and the member's own
    assert cls.__name__ in text, text
    assert f"{type(member).__name__}.{member.name}" in text, text
    assert snapshot(dom) == before


def test_the_newcomer_repro_is_refused(dom):
    """shared/repro/py_misuse_newcomer.py: begin_job(AsyncJob.MIGRATION_OUT)
    took a QUERY job, begin_async_job(Job.MODIFY) started a DUMP."""
    with pytest.raises(TypeError, match=r"^job must be a Job, not AsyncJob\.MIGRATION_OUT$"):
        dom.begin_job(A.MIGRATION_OUT)
    with pytest.raises(TypeError, match=r"^async_job must be an AsyncJob, not Job\.MODIFY$"):
        dom.begin_async_job(J.MODIFY)
    assert dom.active_job == J.NONE and dom.async_job == A.NONE and dom.refs == 1
    # the quick guard cache does not mix them up either
    with dom.job(J.SUSPEND):
        assert dom.active_job == J.SUSPEND
    with pytest.raises(TypeError):
        dom.job(A.SAVE).__enter__()   # SAVE == 3 == SUSPEND
    assert dom.active_job == J.NONE and dom.refs == 1


class IntSub(int):
    pass


def test_plain_ints_and_the_right_enum_still_work(dom):
    for kind in (2, J.QUERY, IntSub(4)):
        dom.begin_job(kind)
        dom.end_job()
        with dom.job(kind):
            pass
    dom.begin_async_job(3)
    assert dom.async_job == A.SAVE
    dom.begin_nested_job(IntSub(3))
    dom.end_nested_job()
    assert dom.migration_job_set_phase(0) is True
    dom.end_async_job()
    with dom.migration(1, 2, api="begin3"):
        pass
    with dom.migration_phase(IntSub(1), IntSub(3)) as mig:
        mig.finish()
    assert mj.job_mask(1, J.DESTROY) == 3
    assert mj.phase_to_string(1, 3) == "perform3"
    assert dom.refs == 1


def test_is_active_is_false_for_another_enum(dom):
    dom.begin_async_job(A.DUMP)
    assert dom.migration_job_is_active(A.DUMP) is True
    assert dom.migration_job_is_active(4) is True
    # Job.MODIFY == 4 == AsyncJob.DUMP: no match, and never an exception
    assert dom.migration_job_is_active(J.MODIFY) is False
    assert dom.migration_job_is_active(P.PERFORM3_DONE) is False
    dom.end_async_job()


# ---- 2. errors that give kinds as numbers also name them ----------------------------

def _notes(exc):
    return getattr(exc, "__notes__", [])


def test_unexpected_async_job_names_both_kinds(dom):
    with pytest.raises(mj.InternalError) as info:
        dom.begin_nested_job(A.MIGRATION_OUT)
    e = info.value
    assert e.message == "unexpected async job 1 type expected 0"       # libvirt's text
    assert str(e) == "internal error: unexpected async job 1 type expected 0"
    assert e.async_job is A.MIGRATION_OUT and e.expected_async_job is A.NONE
    assert dict(e.kinds) == {"async_job": A.MIGRATION_OUT, "expected_async_job": A.NONE}
    if HAS_NOTES:
        (note,) = _notes(e)
        assert "AsyncJob.MIGRATION_OUT" in note and "AsyncJob.NONE" in note
    else:
        assert _notes(e) == []


def test_unexpected_async_job_with_an_async_job(dom):
    dom.begin_async_job(A.SAVE)
    with pytest.raises(mj.InternalError) as info:
        dom.begin_nested_job(A.DUMP, timeout=0)
    e = info.value
    assert e.message == "unexpected async job 4 type expected 3"
    assert (e.async_job, e.expected_async_job) == (A.DUMP, A.SAVE)
    if HAS_NOTES:
        assert "AsyncJob.DUMP" in _notes(e)[0] and "AsyncJob.SAVE" in _notes(e)[0]
    dom.end_async_job()


@pytest.mark.parametrize("call, message, kinds", [
    (lambda d: d.begin_job(99), "invalid job 99", {"job": 99}),
    (lambda d: d.begin_async_job(12), "invalid async job 12", {"async_job": 12}),
    (lambda d: d.begin_nested_job(-1), "invalid async job -1", {"async_job": -1}),
    (lambda d: d.migration_job_start(8), "invalid async job 8", {"async_job": 8}),
    (lambda d: d.check_migration_job(9), "invalid async job 9", {"async_job": 9}),
    (lambda d: d.migration_job_set_phase(16), "invalid migration phase 16", {"phase": 16}),
    (lambda d: d.migration_job_start_phase(-2), "invalid migration phase -2", {"phase": -2}),
    (lambda d: d.migration_job_claim_parked(9, 3, 4),
     "invalid async job 9 or migration phase 3", {"async_job": 9, "phase": P.PERFORM3}),
    (lambda d: d.migration_job_claim_parked(1, 3, 16), "invalid migration phase 16",
     {"phase": 16}),
], ids=["job", "async", "nested", "mig_start", "check", "set_phase", "start_phase",
        "claim", "claim_new_phase"])
def test_invalid_kind_numbers_are_explained(dom, call, message, kinds):
    before = snapshot(dom)
    with pytest.raises(mj.InvalidArgument) as info:
        call(dom)
    e = info.value
    assert e.message == message
    assert dict(e.kinds) == kinds
    for attr, value in kinds.items():
        assert getattr(e, attr) == value and type(getattr(e, attr)) is type(value)
    if HAS_NOTES:
        (note,) = _notes(e)
        for value in kinds.values():
            if isinstance(value, enum.Enum):
                assert f"{type(value).__name__}.{value.name}" in note
            else:
                assert f"{value}, which is no" in note
    assert snapshot(dom) == before


def test_named_kinds_survive_pickling(dom):
    import pickle

    with pytest.raises(mj.InternalError) as info:
        dom.begin_nested_job(A.SAVE)
    e = pickle.loads(pickle.dumps(info.value))
    assert type(e) is mj.InternalError and e.message == info.value.message
    assert e.kinds == {"async_job": A.SAVE, "expected_async_job": A.NONE}
    assert _notes(e) == _notes(info.value)


def test_other_errors_name_no_kinds(dom):
    with pytest.raises(mj.OperationInvalid) as info:
        dom.end_job()
    assert dict(info.value.kinds) == {} and _notes(info.value) == []
    assert not hasattr(info.value, "async_job")


# ---- 3. a guard's failing exit does not replace the block's exception ---------------

def _exit_note(exc, call):
    if not HAS_NOTES:
        return True
    return any(call in n and "Requested operation is not valid" in n for n in _notes(exc))


@pytest.mark.parametrize("api", [None, "x"], ids=["quick", "api"])
def test_job_guard_exit_failure_keeps_the_block_exception(dom, api):
    with pytest.raises(Boom) as info:
        with dom.job(J.MODIFY, api=api):
            dom.end_job()           # the body ended the job itself
            raise Boom("the real problem")
    assert str(info.value) == "the real problem"
    assert _exit_note(info.value, "end_job()")
    assert dom.active_job == J.NONE and dom.refs == 1
    # without an exception from the block the exit's failure is raised
    with pytest.raises(mj.OperationInvalid):
        with dom.job(J.MODIFY, api=api):
            dom.end_job()


def test_nested_guard_exit_failure_keeps_the_block_exception(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    with pytest.raises(Boom) as info:
        with dom.nested_job(A.MIGRATION_OUT):
            dom.end_nested_job()
            raise Boom()
    assert _exit_note(info.value, "end_nested_job()")
    dom.end_async_job()
    assert dom.refs == 1


@pytest.mark.parametrize("first", [True, False], ids=["migration", "migration_phase"])
def test_migration_guard_exit_failure_keeps_the_block_exception(dom, first):
    if not first:
        with dom.migration(A.MIGRATION_OUT, P.BEGIN3):
            pass
    guard = (dom.migration(A.MIGRATION_OUT, P.BEGIN3) if first
             else dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3))
    with pytest.raises(Boom) as info:
        with guard:
            dom.migration_job_finish()   # finished behind the guard's back
            raise Boom()
    assert _exit_note(info.value, "migration_job_finish()")
    assert dom.async_job == A.NONE


def test_migration_guard_finish_then_raise(dom):
    with pytest.raises(Boom) as info:
        with dom.migration(A.MIGRATION_OUT, P.BEGIN3) as mig:
            mig.finish()
            raise Boom()
    assert _notes(info.value) == []
    assert dom.async_job == A.NONE and dom.refs == 1


def test_async_guard_exit_failure_keeps_the_block_exception(dom):
    async def main():
        async with dom.job_async(J.MODIFY):
            dom.end_job()
            raise Boom()

    with pytest.raises(Boom) as info:
        asyncio.run(main())
    assert _exit_note(info.value, "end_job()")
    assert dom.refs == 1


# ---- 4. any real number is a timeout -----------------------------------------------

@pytest.mark.parametrize("timeout", [Fraction(1, 2), Fraction(0), Fraction(10**20, 3)])
def test_fraction_timeouts_are_accepted(timeout):
    drv = mj.Driver(job_wait_timeout=Fraction(1, 4))
    assert drv.job_wait_timeout == 0.25
    dom = drv.add_domain("vm1")
    dom.begin_job(J.QUERY, timeout=timeout)
    dom.end_job()
    with dom.job(J.QUERY, timeout=timeout):
        pass
    dom.begin_async_job(A.MIGRATION_OUT, timeout=timeout)
    dom.begin_nested_job(A.MIGRATION_OUT, timeout=timeout)
    dom.end_nested_job()
    dom.abort_job(timeout=timeout)
    dom.end_async_job()
    dom.migration_job_start(A.MIGRATION_OUT, timeout=timeout)
    dom.migration_job_finish()
    asyncio.run(dom.begin_job_async(J.QUERY, timeout=timeout))
    dom.end_job()
    assert dom.refs == 1


def test_a_fraction_timeout_times_out():
    dom = mj.Driver().add_domain("vm1")
    dom.begin_job(J.MODIFY)
    import threading
    err = []

    def other():
        try:
            dom.begin_job(J.QUERY, timeout=Fraction(1, 20))
        except mj.JobTimeout as e:
            err.append(e)
    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    assert err and dom.jobs_queued == 1
    dom.end_job()


@pytest.mark.parametrize("timeout, exc", [
    (Fraction(-1, 2), ValueError), (Fraction(10**400), ValueError), (math.nan, ValueError),
    (-1, ValueError), (10**400, ValueError), (True, TypeError), ("1", TypeError),
    (1j, TypeError), (__import__("decimal").Decimal("0.5"), TypeError),
])
def test_bad_timeouts_are_still_refused(dom, timeout, exc):
    before = snapshot(dom)
    with pytest.raises(exc):
        dom.begin_job(J.QUERY, timeout=timeout)
    with pytest.raises(exc):
        asyncio.run(dom.begin_job_async(J.QUERY, timeout=timeout))
    assert snapshot(dom) == before


# ---- 5. arguments before state ------------------------------------------------------

@pytest.mark.parametrize("api, exc", [(5, TypeError), (b"x", TypeError), ("a\0b", ValueError),
                                      ("a" * 1025, ValueError)])
def test_migration_phase_bad_api_without_a_job_is_an_argument_error(dom, api, exc):
    before = snapshot(dom)
    with pytest.raises(exc, match="api"):
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3, api=api):
            pass
    with pytest.raises(exc, match="api"):
        dom.migration(A.MIGRATION_OUT, P.BEGIN3, api=api)
    assert snapshot(dom) == before


def test_migration_phase_bad_kind_type_without_a_job_is_a_type_error(dom):
    for bad in ("migration out", 1.0, None):
        with pytest.raises(TypeError, match="async_job"):
            dom.migration_phase(bad, P.PERFORM3)
        with pytest.raises(TypeError, match="async_job"):
            dom.migration(bad, P.BEGIN3)


def test_arguments_before_a_dead_domain(drv, dom):
    dom.unref()
    with pytest.raises(TypeError):
        dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3, api=5)
    with pytest.raises(TypeError):
        dom.begin_job(J.QUERY, api=5)
    with pytest.raises(TypeError):
        dom.begin_job(A.MIGRATION_OUT)
    with pytest.raises(TypeError):
        dom.migration_job_set_phase(P.PERFORM3, api=5)
    with pytest.raises(mj.NoDomain):
        dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3).__enter__()
