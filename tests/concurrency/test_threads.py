"""Multithreaded behaviour, part 3: removal and cancellation of waiters,
independent domains, the driver's list under threads, exact counters
afterwards (see test_wakeups.py for the method)."""

from __future__ import annotations

import threading
import time

import pytest

import pymigjob as mj
from _mjhelpers import (
    DEADLINE,
    Holder,
    settled,
    started,
    wait_queued,
)

A = mj.AsyncJob
J = mj.Job
P = mj.Phase



# ---- removal and cancellation -----------------------------------------------------------

def test_remove_domain_fails_waiters_with_no_domain(drv, dom):
    holder = Holder(dom, J.MODIFY, api="setMemory").start()
    waiters = [
        started(dom.begin_job, J.QUERY, timeout=DEADLINE),
        started(dom.begin_job, J.MODIFY, timeout=DEADLINE),
        started(dom.begin_async_job, A.SAVE, timeout=DEADLINE),
        started(dom.abort_job, timeout=DEADLINE),
    ]
    wait_queued(dom, 5)
    assert dom.refs == 6
    t0 = time.monotonic()
    assert isinstance(drv.remove_domain("vm1"), int)
    for w in waiters:
        exc = w.join_exc()
        assert isinstance(exc, mj.NoDomain), repr(exc)
        assert exc.message == "no domain with matching name 'vm1'"
    assert time.monotonic() - t0 < DEADLINE / 2  # woken, not timed out
    assert dom.refs == 1  # only the holder's job keeps it alive
    assert dom.jobs_queued == 1
    assert dom.alive
    with pytest.raises(mj.NoDomain):  # later begins fail too
        dom.begin_job(J.QUERY, timeout=DEADLINE)
    with pytest.raises(mj.NoDomain):
        drv.lookup("vm1")
    assert holder.release() == 0  # the held job may still end: the last ref
    assert dom.alive is False
    assert dom.refs == 0


def test_remove_domain_fails_mask_blocked_waiter(drv, dom):
    dom.begin_async_job(A.SAVE, api="save")
    w = started(dom.begin_job, J.MODIFY, timeout=DEADLINE)
    wait_queued(dom, 2)
    drv.remove_domain("vm1")
    assert isinstance(w.join_exc(), mj.NoDomain)
    assert dom.refs == 1
    assert dom.end_async_job() == 0
    assert not dom.alive


def test_remove_domain_fails_nested_waiter(drv, dom):
    dom.begin_async_job(A.SAVE)
    holder = Holder(dom, J.QUERY).start()
    remover = started(lambda: (wait_queued(dom, 3), drv.remove_domain("vm1")))
    with pytest.raises(mj.NoDomain):
        dom.begin_nested_job(A.SAVE, timeout=DEADLINE)
    remover.join_ok()
    assert holder.release() == 1
    assert dom.end_async_job() == 0


@pytest.mark.parametrize("reason", [None, "daemon restart"])
def test_cancel_waiters(drv, reason):
    doms = [drv.add_domain("a"), drv.add_domain("b")]
    holders = [Holder(d, J.MODIFY, api="setMemory").start() for d in doms]
    waiters = [started(d.begin_job, J.QUERY, timeout=DEADLINE) for d in doms for _ in range(2)]
    for d in doms:
        wait_queued(d, 3)
    if reason is None:
        drv.cancel_waiters()
        reason = "driver shutdown"
    else:
        drv.cancel_waiters(reason)
    for w in waiters:
        exc = w.join_exc()
        assert isinstance(exc, mj.OperationAborted), repr(exc)
        assert exc.message == f"job wait cancelled: {reason}"
        assert exc.code == mj.ErrorCode.OPERATION_ABORTED
    for d in doms:
        assert d.jobs_queued == 1 and d.refs == 2
        with pytest.raises(mj.OperationAborted):
            d.begin_job(J.QUERY, timeout=DEADLINE)
        with pytest.raises(mj.OperationAborted):
            d.begin_async_job(A.SAVE, timeout=DEADLINE)
    for h in holders:
        assert h.release() == 1  # held jobs may still end
    for d in doms:
        assert d.jobs_queued == 0 and d.refs == 1


def test_cancel_waiters_fails_mask_blocked_and_nested_waiters(drv, dom):
    dom.begin_async_job(A.MIGRATION_IN, api="prepare3")
    dom.set_async_job_mask(0)
    blocked = started(dom.begin_job, J.QUERY, timeout=DEADLINE)
    wait_queued(dom, 2)
    drv.cancel_waiters("stop")
    exc = blocked.join_exc()
    assert isinstance(exc, mj.OperationAborted)
    assert exc.message == "job wait cancelled: stop"
    assert dom.refs == 2 and dom.jobs_queued == 1
    assert dom.end_async_job() == 1


# ---- independence and the driver's list ------------------------------------------------

def test_domains_do_not_block_each_other(drv):
    a, b = drv.add_domain("a"), drv.add_domain("b")
    with Holder(a, J.MODIFY):
        b.begin_job(J.MODIFY, timeout=2.0)
        b.end_job()
        b.migration_job_start(A.MIGRATION_OUT, timeout=2.0)
        b.migration_job_finish()
    settled(a)
    settled(b)


def test_concurrent_add_of_the_same_name(drv):
    threads = 8
    barrier = threading.Barrier(threads)

    def add():
        barrier.wait(DEADLINE)
        try:
            return drv.add_domain("same")
        except mj.OperationFailed as exc:
            return exc

    results = [w.join_ok() for w in [started(add) for _ in range(threads)]]
    doms = [r for r in results if isinstance(r, mj.Domain)]
    errors = [r for r in results if isinstance(r, mj.OperationFailed)]
    assert len(doms) == 1 and len(errors) == threads - 1
    assert all(e.message == "domain 'same' already exists" for e in errors)
    assert drv.lookup("same") is doms[0]
    assert doms[0].refs == 1


def test_concurrent_add_lookup_remove(drv):
    threads, rounds = 4, 100
    barrier = threading.Barrier(threads)

    def churn(i):
        barrier.wait(DEADLINE)
        for k in range(rounds):
            name = f"t{i}-{k}"
            d = drv.add_domain(name)
            assert drv.lookup(name) is d
            d.begin_job(J.QUERY, timeout=DEADLINE)
            assert d.end_job() == 1
            assert drv.remove_domain(name) == 0
            assert not d.alive
        return rounds

    assert sum(w.join_ok(3 * DEADLINE) for w in
               [started(churn, i) for i in range(threads)]) == threads * rounds
    assert drv.domains() == []


def test_refs_exact_after_threads_using_every_primitive(dom):
    """Many threads each run a whole source-side migration or a few jobs on
    one domain; afterwards refs is exactly the list's one."""
    barrier = threading.Barrier(4)

    def migrate():
        barrier.wait(DEADLINE)
        for _ in range(10):
            with dom.migration(A.MIGRATION_OUT, P.BEGIN3, timeout=DEADLINE):
                pass
            with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
                with dom.nested_job(A.MIGRATION_OUT, timeout=DEADLINE):
                    pass
            with dom.migration_phase(A.MIGRATION_OUT, P.CONFIRM3) as mig:
                mig.finish()

    def jobs():
        barrier.wait(DEADLINE)
        for _ in range(30):
            with dom.job(J.QUERY, timeout=DEADLINE):
                pass
            dom.ref()
            dom.unref()

    workers = [started(migrate), started(jobs), started(jobs), started(jobs)]
    for w in workers:
        w.join_ok(6 * DEADLINE)
    settled(dom)
