"""Multithreaded behaviour, part 2: the async mask re-checked while threads
wait, first come first served among the eligible waiters, nested jobs
interleaving with other threads (see test_wakeups.py for the method)."""

from __future__ import annotations

import threading
import time

import pytest

import pymigjob as mj
from _mjhelpers import (
    DEADLINE,
    LOCK,
    Holder,
    settled,
    started,
    wait_queued,
    wait_until,
)

A = mj.AsyncJob
J = mj.Job
P = mj.Phase



# ---- masks while waiting -------------------------------------------------------------

def test_query_allowed_during_migration_out_while_modify_waits(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    dom.migration_job_set_phase(P.PERFORM3)

    def modify():
        dom.begin_job(J.MODIFY, api="setMemory", timeout=DEADLINE)
        seen = (dom.async_job, dom.active_job)
        dom.end_job()
        return seen

    waiting = started(modify)
    wait_queued(dom, 2)

    def query():
        dom.begin_job(J.QUERY, api="stats", timeout=2.0)
        seen = (dom.active_job, dom.async_job)
        dom.end_job()
        return seen

    # the earlier, mask-blocked MODIFY does not hold up the allowed QUERY
    assert started(query).join_ok() == (J.QUERY, A.MIGRATION_OUT)
    assert waiting.is_alive()
    assert dom.jobs_queued == 2
    dom.migration_job_finish()
    assert waiting.join_ok() == (A.NONE, J.MODIFY)
    settled(dom)


def test_async_start_while_sync_waiter_sleeps_keeps_it_out(dom):
    """The async/sync retry race: a MODIFY waits for the sync slot; an async
    job queued ahead of it takes the async slot when the slot frees.  The
    MODIFY, now forbidden by the mask, must not get in."""
    holder = Holder(dom, J.QUERY, api="stats").start()
    async_taken = threading.Event()
    async_end = threading.Event()

    def async_job():
        dom.begin_async_job(A.SAVE, api="save", timeout=DEADLINE)
        async_taken.set()
        async_end.wait(DEADLINE)
        return dom.end_async_job()

    def modify():
        dom.begin_job(J.MODIFY, api="setMemory", timeout=DEADLINE)
        seen = dom.async_job
        dom.end_job()
        return seen

    a = started(async_job)
    wait_queued(dom, 2)
    m = started(modify)
    wait_queued(dom, 3)
    holder.release()
    assert async_taken.wait(DEADLINE)
    assert dom.async_job == A.SAVE
    assert dom.active_job != J.MODIFY
    # the sync slot is free and QUERY allowed: a query goes straight in,
    # which it could not if MODIFY had been let in
    dom.begin_job(J.QUERY, timeout=2.0)
    assert dom.active_job == J.QUERY
    dom.end_job()
    assert m.is_alive()
    async_end.set()
    assert a.join_ok() >= 1
    assert m.join_ok() == A.NONE
    settled(dom)


def test_sync_waiter_ahead_of_async_goes_first(dom):
    holder = Holder(dom, J.QUERY).start()
    order = []
    violations = []

    def modify():
        dom.begin_job(J.MODIFY, timeout=DEADLINE)
        order.append("modify")
        for _ in range(5):
            if dom.async_job != A.NONE:
                violations.append("async job started while MODIFY held")
            time.sleep(0.01)
        dom.end_job()

    def async_job():
        dom.begin_async_job(A.DUMP, timeout=DEADLINE)
        order.append("async")
        if dom.active_job == J.MODIFY:
            violations.append("MODIFY held during async job")
        dom.end_async_job()

    m = started(modify)
    wait_queued(dom, 2)
    a = started(async_job)
    wait_queued(dom, 3)
    holder.release()
    m.join_ok()
    a.join_ok()
    assert order == ["modify", "async"]
    assert violations == []
    settled(dom)


def test_async_job_start_waits_for_allowed_queries(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    with Holder(dom, J.QUERY) as query:
        second = started(lambda: (dom.begin_async_job(A.SAVE, timeout=DEADLINE),
                                  dom.async_job, dom.end_async_job())[1])
        wait_queued(dom, 3)
        dom.end_async_job()  # the async slot is free, the sync slot is not
        assert second.is_alive()
        query.release()
        assert second.join_ok() == A.SAVE
    settled(dom)


# ---- FIFO among eligible waiters ------------------------------------------------------

def test_fifo_order_of_waiters(dom):
    dom.begin_job(J.MODIFY)
    order = []
    kinds = [J.QUERY, J.MODIFY, J.SUSPEND, J.QUERY, J.DESTROY, J.MODIFY, J.QUERY]

    def waiter(i, job):
        dom.begin_job(job, timeout=DEADLINE)
        order.append(i)
        dom.end_job()

    workers = []
    for i, job in enumerate(kinds):
        workers.append(started(waiter, i, job))
        wait_queued(dom, i + 2)  # queue each one before the next arrives
    dom.end_job()
    for w in workers:
        w.join_ok()
    assert order == list(range(len(kinds)))
    settled(dom)


def test_mask_blocked_waiter_never_holds_up_allowed_ones(dom):
    dom.begin_async_job(A.SAVE)
    holder = Holder(dom, J.QUERY).start()
    order = []

    def waiter(name, job):
        dom.begin_job(job, timeout=DEADLINE)
        order.append(name)
        dom.end_job()

    blocked = started(waiter, "modify", J.MODIFY)
    wait_queued(dom, 3)
    allowed = [started(waiter, f"q{i}", J.QUERY) for i in range(1)]
    wait_queued(dom, 4)
    destroy = started(waiter, "destroy", J.DESTROY)
    wait_queued(dom, 5)
    holder.release()
    allowed[0].join_ok()
    destroy.join_ok()
    assert order == ["q0", "destroy"]
    assert blocked.is_alive()
    dom.end_async_job()
    blocked.join_ok()
    assert order == ["q0", "destroy", "modify"]
    settled(dom)


def test_nested_job_gets_no_priority(dom):
    dom.begin_async_job(A.MIGRATION_OUT)
    holder = Holder(dom, J.QUERY).start()
    order = []

    def query():
        dom.begin_job(J.QUERY, timeout=DEADLINE)
        order.append("query")
        dom.end_job()

    q = started(query)
    wait_queued(dom, 3)
    releaser = started(lambda: (wait_queued(dom, 4), holder.release()))
    dom.begin_nested_job(A.MIGRATION_OUT, timeout=DEADLINE)
    order.append("nested")
    releaser.join_ok()
    q.join_ok()
    assert order == ["query", "nested"]
    dom.end_nested_job()
    dom.end_async_job()
    settled(dom)


def test_end_hands_the_slot_to_the_waiter_directly(dom):
    """No barging: once a job ends with an eligible waiter queued, the slot is
    that waiter's; a newcomer with a zero budget finds it taken."""
    dom.begin_job(J.MODIFY)
    got = threading.Event()
    go = threading.Event()

    def waiter():
        dom.begin_job(J.QUERY, api="waiter", timeout=DEADLINE)
        got.set()
        go.wait(DEADLINE)
        return dom.end_job()

    w = started(waiter)
    wait_queued(dom, 2)
    dom.end_job()
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.QUERY, timeout=0)
    assert dom.active_job == J.QUERY
    assert got.wait(DEADLINE)
    assert ei.value.message in (LOCK, f"{LOCK} (held by monitor=waiter)")
    go.set()
    w.join_ok()
    settled(dom)


def test_end_async_job_hands_the_slot_to_a_mask_blocked_waiter(dom):
    dom.begin_async_job(A.SAVE)
    go = threading.Event()

    def waiter():
        dom.begin_job(J.MODIFY, api="setMemory", timeout=DEADLINE)
        go.wait(DEADLINE)
        return dom.end_job()

    w = started(waiter)
    wait_queued(dom, 2)
    dom.end_async_job()
    with pytest.raises(mj.JobTimeout) as ei:
        dom.begin_job(J.QUERY, timeout=0)
    assert ei.value.message == f"{LOCK} (held by monitor=setMemory)"
    go.set()
    w.join_ok()
    settled(dom)


def test_widening_the_mask_lets_a_waiter_in(dom):
    dom.begin_async_job(A.DUMP, api="dump")
    w = started(lambda: (dom.begin_job(J.MODIFY, timeout=DEADLINE), dom.end_job())[1])
    wait_queued(dom, 2)
    t0 = time.monotonic()
    dom.set_async_job_mask(mj.job_mask(J.MODIFY))
    assert w.join_ok() == 2
    assert time.monotonic() - t0 < DEADLINE / 2  # woken, not timed out
    dom.end_async_job()
    settled(dom)


def test_async_begin_not_starved_by_a_stream_of_queries(dom):
    """libvirt 2011 let allowed sync jobs that keep arriving delay an async
    start until its deadline (§3.7); FIFO serves it in turn."""
    dom.begin_async_job(A.MIGRATION_OUT, api="perform3")
    stop = threading.Event()

    def query_stream():
        n = 0
        while not stop.is_set():
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            n += 1
            dom.end_job()
        return n

    streams = [started(query_stream) for _ in range(3)]
    wait_until(lambda: dom.jobs_queued >= 2, "queries running")
    calling = threading.Event()

    def save_job():
        calling.set()
        dom.begin_async_job(A.SAVE, timeout=5.0)
        kind = dom.async_job
        dom.end_async_job()
        return kind

    save = started(save_job)
    assert calling.wait(DEADLINE)
    time.sleep(0.05)  # let it queue behind the running async job (not asserted)
    assert not save.ended.is_set()
    dom.end_async_job()
    try:
        assert save.join_ok(2 * DEADLINE) == A.SAVE
    finally:
        stop.set()
        served = [s.join_ok() for s in streams]
    assert all(n > 0 for n in served)
    settled(dom)


# ---- nested jobs interleave with other threads --------------------------------------

def test_nested_jobs_interleave_with_queries(dom):
    """The async job's monitor calls and other threads' queries take turns
    in the sync slot while the async job stays active."""
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    order = []
    query_in = threading.Event()
    query_go = threading.Event()

    def query():
        dom.begin_job(J.QUERY, api="stats", timeout=DEADLINE)
        order.append(("query", dom.async_job))
        query_in.set()
        assert query_go.wait(DEADLINE)
        return dom.end_job()

    dom.begin_nested_job(A.MIGRATION_OUT, timeout=DEADLINE)
    order.append(("nested", dom.async_job))
    q = started(query)
    wait_queued(dom, 3)  # async, nested, waiting query
    assert not query_in.is_set()
    dom.end_nested_job()
    assert query_in.wait(DEADLINE)
    # the next monitor call now waits for the query
    releaser = started(lambda: (wait_queued(dom, 3), query_go.set()))
    dom.begin_nested_job(A.MIGRATION_OUT, timeout=DEADLINE)
    order.append(("nested", dom.async_job))
    releaser.join_ok()
    assert q.join_ok() == 3  # list + async + the nested job now held
    assert order == [("nested", A.MIGRATION_OUT), ("query", A.MIGRATION_OUT),
                     ("nested", A.MIGRATION_OUT)]
    dom.end_nested_job()
    assert dom.migration_job_finish() == 1
    settled(dom)


def test_nested_jobs_and_queries_stress(dom):
    dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
    rounds = 60
    violations = []
    stop = threading.Event()

    def queries():
        n = 0
        while not stop.is_set() and n < 10 * rounds:
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            if dom.active_job != J.QUERY or dom.async_job != A.MIGRATION_OUT:
                violations.append(("query saw", dom.active_job, dom.async_job))
            dom.end_job()
            n += 1
        return n

    workers = [started(queries) for _ in range(3)]
    for _ in range(rounds):
        dom.begin_nested_job(A.MIGRATION_OUT, timeout=DEADLINE)
        if dom.active_job != J.ASYNC_NESTED:
            violations.append(("nested saw", dom.active_job))
        dom.end_nested_job()
    stop.set()
    served = [w.join_ok(3 * DEADLINE) for w in workers]
    assert all(n > 0 for n in served)
    assert violations == []
    assert dom.refs == 2 and dom.jobs_queued == 1
    assert dom.migration_job_finish() == 1
    settled(dom)
