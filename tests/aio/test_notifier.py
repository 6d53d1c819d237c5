"""pymigjob.aio's notifier (an eventfd per loop): the uncontended path (one
C call, no suspension, no notifier), one notifier per loop released with its
last waiter or after NOTIFIER_IDLE, loop shutdown with waiters pending
(``asyncio.run`` and a bare ``loop.close``), no fd leak after many waits
(100 000 by default; set ``PYMIGJOB_AIO_WAITS=1000000`` for a million), and
10 000 coroutines on 100 domains.  (Semantics shared with the twin:
test_basics.py; cancellation: test_cancel.py; the queue: test_queue.py.)"""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest

import pymigjob as mj
from pymigjob import aio
from _aiohelpers import fds, idle, no_notifier, queued, run, until
from _mjhelpers import DEADLINE, started, wait_queued

A = mj.AsyncJob
J = mj.Job
MANY_WAITS = int(os.environ.get("PYMIGJOB_AIO_WAITS", "100000"))

pytestmark = pytest.mark.usefixtures("no_leftovers")


# ---- the uncontended path -------------------------------------------------------


def test_uncontended_begin_never_suspends(dom, counting):
    async def main():
        coro = dom.begin_job_async(J.QUERY, api="stats")
        with pytest.raises(StopIteration):  # finished on its first step
            coro.send(None)
        assert dom.active_job == J.QUERY and dom.owner_api == "stats"
        assert dom.owner_thread == threading.get_ident()
        assert dom.end_job() == 1
        coro = dom.begin_async_job_async(A.DUMP, api="dump")
        with pytest.raises(StopIteration):
            coro.send(None)
        assert dom.async_job == A.DUMP and dom.async_owner_api == "dump"
        assert dom.end_async_job() == 1
        assert dict(aio._notifiers) == {}

    run(main())
    assert counting[0] == 0
    idle(dom)


@pytest.mark.c_core
def test_one_notifier_per_loop_released_with_its_last_waiter(dom, immediate):
    async def main():
        loop = asyncio.get_running_loop()
        dom.begin_job(J.MODIFY)
        tasks = [asyncio.ensure_future(dom.begin_job_async(J.QUERY)) for _ in range(3)]
        await queued(dom, 4)
        (notifier,) = aio._notifiers.values()
        assert notifier.loop is loop and len(notifier.waits) == 3
        assert "close" in vars(loop)  # the close hook is installed
        fd = notifier.fd
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
        for t in tasks:
            dom.end_job()
            await t
        assert notifier.closed and dict(aio._notifiers) == {}
        assert "close" not in vars(loop)  # and removed with the notifier
        assert fd not in loop._selector.get_map()  # reader removed
        dom.end_job()

    run(main())
    idle(dom)


@pytest.mark.c_core
def test_idle_notifier_is_kept_for_a_while_then_released(dom, monkeypatch):
    monkeypatch.setattr(aio, "NOTIFIER_IDLE", 0.05)

    async def one_wait():
        dom.begin_job(J.MODIFY)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        await queued(dom, 2)
        (notifier,) = aio._notifiers.values()
        dom.end_job()
        await task
        dom.end_job()
        return notifier

    async def main():
        loop = asyncio.get_running_loop()
        first = await one_wait()
        assert not first.closed and first.waits == {}  # kept, idle
        for _ in range(3):
            assert await one_wait() is first  # reused
        await until(lambda: first.closed, "the idle notifier released")
        assert first.fd not in loop._selector.get_map()
        assert "close" not in vars(loop) and dict(aio._notifiers) == {}
        second = await one_wait()  # a new one when needed again
        assert second is not first and not second.closed

    run(main())  # the loop's close releases the second one
    idle(dom)


# ---- loop shutdown with waiters pending -------------------------------------------


def test_asyncio_run_returning_with_waiters_pending(dom):
    dom.begin_job(J.MODIFY)

    async def main():
        for _ in range(5):
            asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        await queued(dom, 6)
        # returns without awaiting them: asyncio.run cancels them

    asyncio.run(main())
    assert dom.jobs_queued == 1 and dom.refs == 2
    no_notifier()
    dom.end_job()
    idle(dom)


def test_bare_loop_close_with_waiters_pending(dom):
    dom.begin_job(J.MODIFY)
    loop = asyncio.new_event_loop()
    tasks = [loop.create_task(dom.begin_job_async(J.QUERY)) for _ in range(5)]
    loop.run_until_complete(asyncio.sleep(0.01))
    assert dom.jobs_queued == 6 and dom.refs == 7
    loop.close()  # never runs the tasks again
    assert dom.jobs_queued == 1 and dom.refs == 2  # given up at once
    assert dict(aio._notifiers) == {}
    assert "close" not in vars(loop)
    del tasks, loop  # the abandoned coroutines are closed: nothing happens
    gc.collect()
    assert dom.jobs_queued == 1 and dom.refs == 2
    dom.end_job()
    idle(dom)


def test_loop_close_with_a_grant_not_yet_seen(dom):
    """A waiter granted while its loop was not running holds the job; closing
    the loop gives it back, to the thread queued behind it."""
    dom.begin_job(J.MODIFY)
    loop = asyncio.new_event_loop()
    task = loop.create_task(dom.begin_job_async(J.QUERY, api="coro"))
    loop.run_until_complete(asyncio.sleep(0.01))
    thread = started(dom.begin_job, J.SUSPEND, api="thread", timeout=DEADLINE)
    wait_queued(dom, 3)
    dom.end_job()  # the coroutine gets it; its loop is not running
    assert dom.owner_api == "coro"
    loop.close()
    thread.join_ok()
    assert dom.owner_api == "thread" and dom.refs == 2 and dom.jobs_queued == 1
    del task, loop
    gc.collect()
    dom.end_job()
    idle(dom)


def test_loop_dropped_without_close(dom):
    """A loop that is neither closed nor running any more, dropped with
    waiters: collecting it gives them up (no close hook ran)."""
    dom.begin_job(J.MODIFY)
    loop = asyncio.new_event_loop()
    tasks = [loop.create_task(dom.begin_job_async(J.QUERY)) for _ in range(3)]
    loop.run_until_complete(asyncio.sleep(0.01))
    assert dom.jobs_queued == 4
    del tasks
    with pytest.warns(ResourceWarning):
        del loop
        gc.collect()
    assert dom.jobs_queued == 1 and dom.refs == 2
    dom.end_job()
    idle(dom)


@pytest.mark.concurrency
# ---- scale ------------------------------------------------------------------------


@pytest.mark.c_core
@pytest.mark.timeout(max(60, MANY_WAITS // 4000))
def test_no_fd_leak_after_many_waits(counting, immediate, monkeypatch):
    """MANY_WAITS contended begins with the notifier released as soon as it
    is idle (NOTIFIER_IDLE = 0); the fd count must not move.  Four fifths
    come from four coroutines that each keep the job across a loop step
    while the others queue (in ten bursts); one fifth from a lone waiter
    behind a holder, which creates and releases a notifier for every wait."""
    created = [0]
    real_init = aio._LoopNotifier.__init__

    def init(self, loop):
        created[0] += 1
        real_init(self, loop)

    monkeypatch.setattr(aio._LoopNotifier, "__init__", init)
    drv = mj.Driver(job_wait_timeout=60)
    dom = drv.add_domain("vm1")
    lone = MANY_WAITS // 5
    bursts, workers = 10, 4
    per_worker = (MANY_WAITS - lone) // bursts // workers

    async def worker(n):
        for _ in range(n):
            await dom.begin_job_async(J.QUERY)
            await asyncio.sleep(0)
            dom.end_job()

    async def main():
        before = fds()  # with the loop's own fds
        for _ in range(bursts):
            await asyncio.gather(*(worker(per_worker) for _ in range(workers)))
            assert dict(aio._notifiers) == {}
            assert fds() == before
        created[0] = 0
        for _ in range(lone):
            dom.begin_job(J.MODIFY)
            task = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
            await asyncio.sleep(0)
            dom.end_job()
            await task
            dom.end_job()
        assert created[0] == lone  # one notifier per wait
        assert fds() == before

    asyncio.run(asyncio.wait_for(main(), max(3 * DEADLINE, MANY_WAITS / 4000)))
    assert counting[0] >= 0.7 * MANY_WAITS  # went through the notifier
    idle(dom)


@pytest.mark.c_core
def test_10000_coroutines_on_100_domains():
    drv = mj.Driver(job_wait_timeout=120)
    doms = [drv.add_domain(f"vm{i}") for i in range(100)]
    threads_before = threading.active_count()
    done = [0]

    async def user(dom, i):
        job = J.QUERY if i % 2 else J.MODIFY
        async with dom.job_async(job, api=f"u{i}"):
            await asyncio.sleep(0)
        done[0] += 1

    async def main():
        fds_before = fds()
        for d in doms:
            d.begin_job(J.MODIFY, api="holder")
        tasks = [asyncio.ensure_future(user(doms[i % 100], i)) for i in range(10000)]
        await until(lambda: all(d.jobs_queued == 101 for d in doms), "all queued")
        assert fds() == fds_before + 1  # one notifier for all of them
        assert threading.active_count() == threads_before
        for d in doms:
            d.end_job()
        await asyncio.gather(*tasks)

    run(main())
    assert done[0] == 10000
    assert threading.active_count() == threads_before
    for d in doms:
        idle(d)
