"""Cases two surviving mutants of the C core showed the suite was missing.

A waiter whose job was handed to it (the holder's end granted it) but which
nobody has picked up yet can have that job ended by another caller:
``end_job`` does not ask who holds the job, and gives back the job's
reference and queue slot.  When the waiter is then given up (a cancelled
coroutine, a Ctrl-C between two wait slices) the core finds the job gone and
must give back nothing more: a second unref takes the creator's reference
(refs 0, the domain dead).  The mutant that always unrefs in the core's
``cancel_waiter`` (job.c) passed every other test.

* asyncio: the coroutine's waiter is granted while its loop is blocked (a
  ``time.sleep`` in the loop thread, so the notifier cannot wake it), another
  thread ends the job, then the task is cancelled.
* Ctrl-C: ``signal.pthread_kill`` sends SIGINT to the main thread waiting in
  ``begin_job``.  The Python handler runs in the main thread between two C
  wait slices (50 ms each), never inside one, so while it runs the waiter is
  pending and not waiting: the handler holds the main thread there while
  other threads end the holder's job (the grant) and then the granted job,
  and only then raises KeyboardInterrupt, whose cleanup cancels the waiter.
  Deterministic: the handler cannot run before the begin is queued (the
  signal is sent after that) nor after a grant was picked up (the grant is
  made while the handler runs).

The C-level tests of the same (``csrc/tests``: cancel_after_foreign_end,
notifier_cancel_after_foreign_end) and of the other mutant (claim_parked
without its owner check: claim_parked_not_while_driven) are in the C suite.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

import pymigjob as mj
from _interrupts import LONG_WAIT
from _mjhelpers import DEADLINE, Holder, started, wait_queued

J = mj.Job
A = mj.AsyncJob

pytestmark = [pytest.mark.concurrency, pytest.mark.timeout(120)]

KINDS = ["job", "async_job"]


def held_by(dom, kind: str) -> tuple:
    """(job, owner API, owner thread) of the sync job, or of the async job."""
    if kind == "job":
        return dom.active_job, dom.owner_api, dom.owner_thread
    return dom.async_job, dom.async_owner_api, dom.async_owner_thread


def end(dom, kind: str) -> int:
    return dom.end_job() if kind == "job" else dom.end_async_job()


def at_rest(dom) -> None:
    """Nothing held or queued, only the creator's reference, still usable."""
    assert dom.alive, "giving the waiter up killed the domain"
    assert dom.refs == 1
    assert dom.jobs_queued == 0
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    dom.begin_job(J.MODIFY, api="after", timeout=DEADLINE)
    assert dom.end_job() == 1


@pytest.mark.parametrize("third", [False, True], ids=["alone", "third-caller"])
@pytest.mark.parametrize("kind", KINDS)
def test_cancelled_coroutine_whose_granted_job_was_ended_elsewhere(dom, kind, third):
    """With `third`, another caller has begun a job of the same slot before
    the cancel: giving the waiter up must leave that job alone too."""
    wanted = J.QUERY if kind == "job" else A.SAVE
    holder = Holder(dom, J.MODIFY, api="holder", timeout=DEADLINE).start()

    async def main():
        loop_thread = threading.get_ident()
        if kind == "job":
            begin = dom.begin_job_async(J.QUERY, api="coro", timeout=DEADLINE)
        else:
            begin = dom.begin_async_job_async(A.SAVE, api="coro", timeout=DEADLINE)
        task = asyncio.ensure_future(begin)
        loop = asyncio.get_running_loop()
        end_at = loop.time() + DEADLINE
        while dom.jobs_queued != 2:  # the coroutine's waiter is queued
            assert loop.time() < end_at, "the coroutine never queued"
            await asyncio.sleep(0.001)
        assert dom.refs == 3 and not task.done()

        seen = {}

        def elsewhere():
            seen["holder end"] = holder.release()  # grants the coroutine's waiter
            seen["held"] = held_by(dom, kind)
            seen["end"] = end(dom, kind)           # ends the job granted to it
            if third:
                if kind == "job":
                    dom.begin_job(J.MODIFY, api="third", timeout=DEADLINE)
                else:
                    dom.begin_async_job(A.DUMP, api="third", timeout=DEADLINE)

        other = started(elsewhere, name="elsewhere")
        # block the loop thread meanwhile: the grant cannot reach the coroutine
        while not other.ended.is_set():
            time.sleep(0.005)
        other.join_ok()
        task.cancel()  # before the loop ever ran the notifier's reader
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen, loop_thread

    seen, loop_thread = asyncio.run(asyncio.wait_for(main(), 3 * DEADLINE))
    assert seen["holder end"] == 2
    assert seen["held"] == (wanted, "coro", loop_thread)
    assert seen["end"] == 1
    if third:
        assert dom.alive, "giving the waiter up killed the domain"
        assert held_by(dom, kind)[:2] == ((J.MODIFY, "third") if kind == "job"
                                          else (A.DUMP, "third"))
        assert dom.refs == 2 and dom.jobs_queued == 1
        assert end(dom, kind) == 1
    at_rest(dom)


@pytest.fixture
def sigint_restored():
    assert threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def pending_count() -> int | None:
    """The C core's count of this thread's pending waiters (None: pure)."""
    if mj.backend == "pure":
        return None
    from pymigjob._c.binding import lib

    return lib.mj_pending_count()


@pytest.mark.parametrize("kind", KINDS)
def test_ctrl_c_after_the_granted_job_was_ended_elsewhere(sigint_restored, kind):
    drv = mj.Driver(job_wait_timeout=LONG_WAIT)
    dom = drv.add_domain("vm1")
    wanted = J.QUERY if kind == "job" else A.SAVE
    holder = Holder(dom, J.MODIFY, api="holder", timeout=LONG_WAIT).start()
    main_thread = threading.get_ident()
    in_handler = threading.Event()
    done = threading.Event()
    seen = {}

    def handler(signum, frame):
        # the main thread, between two C wait slices: the waiter is pending
        seen["pending"] = pending_count()
        in_handler.set()
        seen["done"] = done.wait(DEADLINE)
        raise KeyboardInterrupt

    def elsewhere():
        wait_queued(dom, 2)  # the main thread's begin is queued
        signal.pthread_kill(main_thread, signal.SIGINT)
        assert in_handler.wait(DEADLINE), "the SIGINT handler never ran"
        try:
            seen["holder end"] = holder.release()  # grants the main thread's waiter
            seen["held"] = held_by(dom, kind)
            seen["end"] = end(dom, kind)           # ends the job granted to it
        finally:
            done.set()

    signal.signal(signal.SIGINT, handler)
    other = started(elsewhere, name="elsewhere")
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        if kind == "job":
            dom.begin_job(J.QUERY, api="main", timeout=LONG_WAIT)
        else:
            dom.begin_async_job(A.SAVE, api="main", timeout=LONG_WAIT)
    assert time.monotonic() - start < LONG_WAIT / 2, "the wait was not interrupted"
    other.join_ok()
    assert seen["pending"] in (1, None) and seen["done"]
    assert seen["holder end"] == 2
    assert seen["held"] == (wanted, "main", main_thread)
    assert seen["end"] == 1
    assert pending_count() in (0, None)
    at_rest(dom)
