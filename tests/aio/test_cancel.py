"""pymigjob.aio: cancellation at every await point -- queued,
granted-but-not-yet-seen, seen-but-not-yet-resumed, after an early deadline
poll, in ``async with``, ``wait_for`` / ``asyncio.timeout`` / ``task.cancel``
/ ``coro.close`` -- and an interrupt at every line of a contended begin: a
cancelled or interrupted waiter holds nothing."""

from __future__ import annotations

import asyncio
import os

import pytest

import pymigjob as mj
from pymigjob import aio
from _aiohelpers import idle, queued, run, until
from _interrupts import interrupted_coroutine_begins
from _mjhelpers import DEADLINE, started

A = mj.AsyncJob
J = mj.Job
MANY_WAITS = int(os.environ.get("PYMIGJOB_AIO_WAITS", "100000"))

pytestmark = pytest.mark.usefixtures("no_leftovers")


# ---- cancellation at every await point --------------------------------------------


def test_cancel_while_queued_gives_the_slot_to_the_next(dom):
    async def main():
        dom.begin_job(J.MODIFY, api="holder")
        first = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        second = asyncio.ensure_future(dom.begin_job_async(J.QUERY, api="second"))
        await queued(dom, 3)
        assert dom.refs == 4  # waiters hold references (2011 rule)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert dom.jobs_queued == 2 and dom.refs == 3
        dom.end_job()
        await second
        assert dom.owner_api == "second"
        dom.end_job()

    run(main())
    idle(dom)


@pytest.mark.parametrize("steps", range(6))
def test_cancel_racing_the_grant_never_leaves_a_job(dom, steps):
    """end_job() hands the slot to the coroutine at once; the cancel comes
    0..5 loop steps later: before the eventfd was read, after the future was
    resolved but before the task resumed, or after it resumed.  Every
    cancelled outcome therefore raced a grant, and must have given it back
    to the next waiter in line."""
    async def main():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, api="coro"))
        await queued(dom, 2)
        nxt = started(dom.begin_job, J.SUSPEND, api="next", timeout=DEADLINE)
        await queued(dom, 3)
        dom.end_job()
        assert dom.owner_api == "coro"  # granted synchronously
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            cancelled = True
        else:
            cancelled = False
            assert dom.active_job == J.QUERY and dom.owner_api == "coro"
            dom.end_job()
        await asyncio.to_thread(nxt.join_ok)
        assert dom.active_job == J.SUSPEND and dom.owner_api == "next"
        assert dom.refs == 2 and dom.jobs_queued == 1
        dom.end_job()
        return cancelled

    cancelled = run(main())
    if steps == 0:
        assert cancelled  # the task had not even seen the grant
    idle(dom)


@pytest.mark.c_core
def test_cancel_after_the_wake_before_the_task_resumed(dom):
    """The reader callback has resolved the future (the job is ours) but the
    task has not run yet when it is cancelled: the job goes back."""
    async def main():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, api="coro"))
        await queued(dom, 2)
        (notifier,) = aio._notifiers.values()
        (wait,) = notifier.waits.values()
        dom.end_job()
        while not wait.fut.done():
            await asyncio.sleep(0)
        assert not task.done() and dom.owner_api == "coro"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    idle(dom)


def test_cancel_after_the_waiter_failed(drv):
    dom = drv.add_domain("gone")

    async def main():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        await queued(dom, 2)
        assert dom.refs == 3
        drv.remove_domain("gone")  # fails the waiter: NoDomain
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises((asyncio.CancelledError, mj.NoDomain)):
            await task
        assert dom.refs == 1  # only the MODIFY job's reference is left
        assert dom.end_job() == 0

    run(main())
    assert not dom.alive


@pytest.mark.c_core
def test_cancel_after_an_early_deadline_poll(dom, monkeypatch):
    """The deadline timer may fire before the C deadline; the coroutine polls
    (still WAITING) and awaits again.  Cancel at that second await."""
    real = aio._remaining
    polls = []

    def remaining(w):
        polls.append(real(w))
        return 0.0 if len(polls) == 1 else real(w)

    monkeypatch.setattr(aio, "_remaining", remaining)

    async def main():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, timeout=DEADLINE))
        await until(lambda: len(polls) == 2, "a second wait")
        assert not task.done() and dom.jobs_queued == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert dom.jobs_queued == 1 and dom.refs == 2
        # and an early poll followed by a grant still gets the job
        polls.clear()
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, api="late"))
        await until(lambda: len(polls) == 2, "a second wait")
        dom.end_job()
        await task
        assert dom.owner_api == "late"
        dom.end_job()

    run(main())
    idle(dom)


def test_cancel_before_the_first_step_queues_nothing(dom):
    async def main():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        task.cancel()  # it never ran
        with pytest.raises(asyncio.CancelledError):
            await task
        assert dom.jobs_queued == 1
        dom.end_job()

    run(main())
    idle(dom)


def test_closing_the_coroutine_gives_the_wait_up(dom, immediate):
    """An abandoned coroutine is closed (GeneratorExit at the await)."""
    async def main():
        dom.begin_job(J.MODIFY)
        coro = dom.begin_job_async(J.QUERY)
        fut = coro.send(None)  # suspended on the notifier's future
        assert isinstance(fut, asyncio.Future) and dom.jobs_queued == 2
        coro.close()
        assert dom.jobs_queued == 1 and dom.refs == 2
        assert dict(aio._notifiers) == {}
        dom.end_job()

    run(main())
    idle(dom)


def test_wait_for_and_timeout_around_the_wait(dom):
    async def main():
        dom.begin_job(J.MODIFY, api="holder")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(dom.begin_job_async(J.QUERY), 0.02)
        assert dom.jobs_queued == 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await dom.begin_job_async(J.QUERY)
        assert dom.jobs_queued == 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                async with dom.job_async(J.QUERY):
                    raise AssertionError("not reached")
        assert dom.jobs_queued == 1 and dom.refs == 2
        dom.end_job()

    run(main())
    idle(dom)


def test_cancel_inside_the_async_with_body_ends_the_job(dom):
    async def main():
        entered = asyncio.Event()

        async def body():
            async with dom.job_async(J.MODIFY, api="body") as d:
                assert d is dom
                entered.set()
                await asyncio.sleep(DEADLINE)

        task = asyncio.ensure_future(body())
        await entered.wait()
        assert dom.owner_api == "body"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    idle(dom)


def test_cancel_while_entering_async_with(dom):
    async def main():
        dom.begin_job(J.MODIFY)

        async def body():
            async with dom.job_async(J.QUERY):
                raise AssertionError("not reached")

        task = asyncio.ensure_future(body())
        await queued(dom, 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert dom.jobs_queued == 1 and dom.active_job == J.MODIFY
        dom.end_job()

    run(main())
    idle(dom)


#: the frames of a begin itself; the loop's machinery (the notifier's
#: construction, reader and release) is left out, as asyncio's own is
BEGIN_FRAMES = {"begin", "begin_job_async", "begin_async_job_async", "bad_kind"}


@pytest.mark.c_core
def test_interrupt_at_every_line_of_a_contended_begin(dom):
    """KeyboardInterrupt at every line of a contended begin_job_async:
    creating it, up to its suspension, and after the grant resumes it
    (loops driven without asyncio.run, whose SIGINT handler would cancel the
    task instead).  No pending waiter is ever left on the thread; once the
    loop is closed nothing is queued or referenced and no fd is left; the
    job is held only when the interrupt came after the begin's try (as with
    a blocking begin interrupted just after it returned): an interrupt the
    instant the poll returns the grant gives it back."""
    lines = open(aio.__file__).read().splitlines()
    poll_line = next(i for i, line in enumerate(lines, 1) if "rc = _poll(cell)" in line)
    poll_line = next(i for i, line in enumerate(lines, 1)
                     if i > poll_line and line.strip() == "finally:")
    def cancel_pending():
        pending = lib_pending()
        while lib_pending():
            mj._c.binding.lib.mj_pending_cancel()
        return pending

    leaks, held_after, seen = interrupted_coroutine_begins(
        dom, BEGIN_FRAMES, lambda pending: (pending, dom.jobs_queued, dom.refs), (0, 0, 1),
        cancel_pending)
    assert not leaks, leaks
    for fn, line, _ in held_after:
        assert fn == "begin" and line > poll_line, held_after
    assert len(seen) > 20


def lib_pending():
    return mj._c.binding.lib.mj_pending_count()
