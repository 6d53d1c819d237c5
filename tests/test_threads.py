"""Multithreaded behaviour: wake-ups, fairness, mask re-checks, nested-job
interleaving, removal and cancellation of waiters, exact counters afterwards.

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
from _mjhelpers import DEADLINE, Holder, snapshot, started, wait_queued, wait_until

A = mj.AsyncJob
J = mj.Job
P = mj.Phase
LOCK = "cannot acquire state change lock"


def settled(dom, refs=1):
    """Nothing held, nothing waiting, refs exactly as expected."""
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    assert dom.jobs_queued == 0
    assert dom.refs == refs
    assert dom.owner_api is None and dom.owner_thread == 0


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
    nested job slept on until its deadline (libvirt-jobs.md §3.7)."""
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
