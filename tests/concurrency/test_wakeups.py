"""Multithreaded behaviour, part 1: wake-ups (no lost one, every waiter that
may proceed) and timeouts against waiting threads.

Each test makes threads meet through Events/Barriers and the observable
``jobs_queued`` counter (holders + waiters) instead of sleeping; waiter
timeouts are long (DEADLINE) unless the test is about timeouts, so a lost
wake-up shows up as a JobTimeout instead of a slow pass."""

from __future__ import annotations

import random
import threading
import time

import pytest

import pymigjob as mj
from _mjhelpers import (
    DEADLINE,
    LOCK,
    Holder,
    settled,
    snapshot,
    started,
    wait_queued,
    wait_until,
)

A = mj.AsyncJob
J = mj.Job
P = mj.Phase



# ---- wake-ups --------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 4, 12])
def test_every_waiter_woken_when_job_ends(dom, n):
    dom.begin_job(J.MODIFY, api="setMemory")
    served = []
    lock = threading.Lock()

    def waiter(i):
        job = (J.QUERY, J.MODIFY, J.SUSPEND)[i % 3]
        dom.begin_job(job, api=f"w{i}", timeout=DEADLINE)
        with lock:
            served.append(i)
        assert dom.active_job == job
        return dom.end_job()

    workers = [started(waiter, i) for i in range(n)]
    wait_queued(dom, n + 1)
    assert dom.refs == n + 2  # list + holder + one per waiter (DECISIONS)
    dom.end_job()
    for w in workers:
        w.join_ok(2 * DEADLINE)
    assert sorted(served) == list(range(n))
    settled(dom)


def test_mask_blocked_waiter_does_not_swallow_the_wakeup(dom):
    """libvirt 2011 signalled one waiter on EndJob: it could wake a
    mask-blocked waiter that went back to sleep while the async job's own
    nested job slept on until its deadline (0.9.4's qemuDomainObjEndJob)."""
    dom.begin_async_job(A.SAVE, api="save")
    query = Holder(dom, J.QUERY, api="stats").start()

    modify_may_end = threading.Event()

    def modify():
        dom.begin_job(J.MODIFY, timeout=DEADLINE)
        seen = dom.async_job
        modify_may_end.wait(DEADLINE)
        dom.end_job()
        return seen

    blocked = started(modify)
    wait_queued(dom, 3)  # async + query holder + blocked MODIFY
    # release the query once our nested job is queued behind it
    releaser = started(lambda: (wait_queued(dom, 4), query.release())[1])
    dom.begin_nested_job(A.SAVE, api="monitor", timeout=DEADLINE)
    assert dom.active_job == J.ASYNC_NESTED
    # list + async + blocked waiter + our nested job
    assert releaser.join_ok() == 4
    assert blocked.is_alive()  # still held back by the mask
    assert dom.end_nested_job() == 3
    assert dom.end_async_job() == 2  # list + the MODIFY, now granted
    modify_may_end.set()
    assert blocked.join_ok() == A.NONE
    settled(dom)


def test_end_async_job_wakes_every_kind_of_blocked_waiter(dom):
    """Mask-blocked sync waiters and a second async begin all wait on the
    async job; ending it must get every one of them served in turn."""
    dom.begin_async_job(A.MIGRATION_IN, api="prepare3")
    dom.set_async_job_mask(0)
    order = []

    def sync(job):
        dom.begin_job(job, timeout=DEADLINE)
        order.append(job.name)
        dom.end_job()

    def async_():
        dom.begin_async_job(A.SAVE, timeout=DEADLINE)
        order.append("async SAVE")
        dom.end_async_job()

    workers = []
    for i, fn in enumerate([lambda: sync(J.QUERY), lambda: sync(J.MODIFY), async_,
                            lambda: sync(J.SUSPEND)]):
        workers.append(started(fn))
        wait_queued(dom, i + 2)
    dom.end_async_job()
    for w in workers:
        w.join_ok(2 * DEADLINE)
    # FIFO: QUERY, then MODIFY once QUERY ends; the SAVE begin gets the free
    # slot after MODIFY; SUSPEND is outside SAVE's default mask and so waits
    # for SAVE to end
    assert order == ["QUERY", "MODIFY", "async SAVE", "SUSPEND"]
    settled(dom)


def test_ref_unref_from_many_threads(dom):
    threads, rounds = 6, 2000
    barrier = threading.Barrier(threads)

    def hammer():
        barrier.wait(DEADLINE)
        low = None
        for _ in range(rounds):
            up = dom.ref()
            down = dom.unref()
            assert up >= 2 and down >= 1
            low = down if low is None else min(low, down)
        return low

    lows = [w.join_ok(4 * DEADLINE) for w in [started(hammer) for _ in range(threads)]]
    assert all(low >= 1 for low in lows)
    assert dom.refs == 1 and dom.alive


def test_many_waiters_all_served_with_mutual_exclusion(dom):
    threads, rounds = 10, 30
    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    inside = [0]
    violations = []

    def worker(i):
        rng = random.Random(i)
        barrier.wait(DEADLINE)
        for _ in range(rounds):
            job = rng.choice([J.QUERY, J.MODIFY, J.SUSPEND, J.DESTROY, J.MIGRATION_OP])
            dom.begin_job(job, api=f"t{i}", timeout=DEADLINE)
            with lock:
                inside[0] += 1
                if inside[0] != 1:
                    violations.append(("two holders", inside[0]))
            if dom.active_job != job or dom.owner_thread != threading.get_ident():
                violations.append(("wrong holder", dom.active_job, job))
            with lock:
                inside[0] -= 1
            dom.end_job()
        return rounds

    workers = [started(worker, i) for i in range(threads)]
    assert sum(w.join_ok(4 * DEADLINE) for w in workers) == threads * rounds
    assert violations == []
    settled(dom)


def test_async_and_sync_jobs_mixed_keep_their_invariants(dom):
    """Random async jobs (with nested jobs), queries and modifies from many
    threads.  While a MODIFY is held no async job may exist (it cannot start
    without a free sync slot, and MODIFY is outside the default mask)."""
    rounds = 20
    barrier = threading.Barrier(5)
    violations = []

    def async_worker(kind):
        barrier.wait(DEADLINE)
        for _ in range(rounds):
            dom.begin_async_job(kind, api=kind.name, timeout=DEADLINE)
            if dom.async_owner_thread != threading.get_ident():
                violations.append("async owner")
            for _ in range(2):
                dom.begin_nested_job(kind, timeout=DEADLINE)
                if dom.active_job != J.ASYNC_NESTED:
                    violations.append(("nested", dom.active_job))
                dom.end_nested_job()
            dom.end_async_job()
        return rounds

    def modify_worker():
        barrier.wait(DEADLINE)
        for _ in range(rounds):
            dom.begin_job(J.MODIFY, timeout=DEADLINE)
            for _ in range(3):
                if dom.async_job != A.NONE:
                    violations.append(("modify during async", dom.async_job))
                time.sleep(0)
            dom.end_job()
        return rounds

    def query_worker():
        barrier.wait(DEADLINE)
        for _ in range(rounds * 2):
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            if dom.active_job != J.QUERY:
                violations.append(("query", dom.active_job))
            dom.end_job()
        return rounds * 2

    workers = [started(async_worker, A.SAVE), started(async_worker, A.DUMP),
               started(modify_worker), started(modify_worker), started(query_worker)]
    for w in workers:
        w.join_ok(6 * DEADLINE)
    assert violations == []
    settled(dom)


def test_refs_exact_right_after_a_handoff(dom):
    """refs is libvirt's count at every moment (item 7): once a waiter has been
    handed the slot, the previous holder's job is over and its reference gone,
    so the new holder -- the only job left -- sees exactly list + itself.
    (libvirt 2011 unrefs inside EndJob while holding the domain lock.)"""
    rounds = 200
    a_holds = threading.Barrier(2)
    round_done = threading.Barrier(2)
    seen = []

    def previous_holder():
        for _ in range(rounds):
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            a_holds.wait(DEADLINE)
            wait_queued(dom, 2)
            dom.end_job()
            round_done.wait(DEADLINE)

    def next_holder():
        for _ in range(rounds):
            a_holds.wait(DEADLINE)
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            seen.append((dom.refs, dom.jobs_queued))
            dom.end_job()
            round_done.wait(DEADLINE)

    workers = [started(previous_holder), started(next_holder)]
    for w in workers:
        w.join_ok(6 * DEADLINE)
    wrong = [obs for obs in seen if obs != (2, 1)]
    assert wrong == [], f"{len(wrong)}/{rounds} hand-offs saw {sorted(set(wrong))}"
    settled(dom)


# ---- timeouts --------------------------------------------------------------------

@pytest.mark.parametrize("timeout", [0.05, 0.1, 0.2])
def test_short_timeout_while_held_by_another_thread(dom, timeout):
    with Holder(dom, J.MODIFY, api="setMemory"):
        before = snapshot(dom)
        t0 = time.monotonic()
        exc = started(dom.begin_job, J.QUERY, timeout=timeout).join_exc()
        waited = time.monotonic() - t0
        assert isinstance(exc, mj.JobTimeout)
        assert exc.message == f"{LOCK} (held by monitor=setMemory)"
        assert waited >= timeout * 0.9
        assert snapshot(dom) == before  # its ref and queue slot were given back
    settled(dom)


def test_many_short_timeouts_at_once(dom):
    with Holder(dom, J.MODIFY):
        workers = [started(dom.begin_job, J.QUERY, timeout=0.05 + 0.03 * i)
                   for i in range(8)]
        for w in workers:
            assert isinstance(w.join_exc(), mj.JobTimeout)
        assert dom.jobs_queued == 1 and dom.refs == 2
    settled(dom)


def test_timed_out_waiter_does_not_break_the_queue(dom):
    dom.begin_job(J.MODIFY)
    early = started(dom.begin_job, J.QUERY, timeout=0.3)
    wait_until(lambda: dom.jobs_queued == 2 or early.ended.is_set(), "early queued")

    def patient():
        dom.begin_job(J.QUERY, timeout=DEADLINE)
        return dom.end_job()

    late = started(patient)
    # normally the patient waiter queues behind the early one before it times out
    wait_until(lambda: dom.jobs_queued == 3 or early.ended.is_set(), "late queued")
    assert isinstance(early.join_exc(), mj.JobTimeout)
    wait_queued(dom, 2)
    assert dom.jobs_queued == 2
    dom.end_job()
    late.join_ok()
    settled(dom)


def test_grant_and_timeout_race_leaves_nothing_held(dom):
    """End a job right around a waiter's deadline, many times: the waiter
    either gets the job (and ends it) or times out, never both and never a
    slot left held by nobody."""
    outcomes = {"got": 0, "timeout": 0}
    for i in range(40):
        dom.begin_job(J.MODIFY)

        calling = threading.Event()

        def waiter():
            calling.set()
            try:
                dom.begin_job(J.QUERY, timeout=0.01)
            except mj.JobTimeout:
                return "timeout"
            dom.end_job()
            return "got"

        w = started(waiter)
        assert calling.wait(DEADLINE)
        time.sleep(0.002 * (i % 8))  # vary the interleaving; nothing is timed
        dom.end_job()
        outcomes[w.join_ok()] += 1
        settled(dom)
    assert sum(outcomes.values()) == 40


def test_one_deadline_covers_every_wait(dom):
    """A MODIFY blocked first by the async mask, then (after the async job
    ends) by a held QUERY: its budget is not restarted by the second wait,
    and the timeout then names the sync owner."""
    dom.begin_async_job(A.SAVE, api="save")
    with Holder(dom, J.QUERY, api="stats"):
        t0 = time.monotonic()
        w = started(dom.begin_job, J.MODIFY, timeout=1.0)
        wait_queued(dom, 3)
        time.sleep(0.7)
        dom.end_async_job()
        exc = w.join_exc()
        waited = time.monotonic() - t0
    assert isinstance(exc, mj.JobTimeout)
    assert exc.message == f"{LOCK} (held by monitor=stats)"
    assert 0.9 <= waited < 1.6, f"waited {waited:.2f}s: deadline restarted?"
    settled(dom)
