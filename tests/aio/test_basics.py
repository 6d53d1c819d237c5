"""Waiting from asyncio (api.md "Waiting from asyncio"), backend-neutral:
same semantics, errors and messages as the blocking calls; a cancelled
waiter holds nothing.  (The C backend's notifier: test_notifier.py; threads
and coroutines in one FIFO: test_queue.py.)"""

from __future__ import annotations

import asyncio

import pytest

import pymigjob as mj
from _aiohelpers import run, until
from _mjhelpers import DEADLINE, LOCK, Holder, settled, snapshot

A = mj.AsyncJob
J = mj.Job


def test_uncontended(dom):
    async def main():
        assert await dom.begin_job_async(J.QUERY, api="stats") is True
        assert dom.active_job == J.QUERY
        assert dom.owner_api == "stats"
        assert dom.refs == 2
        assert dom.end_job() == 1
        await dom.begin_async_job_async(A.SAVE, api="save")
        assert dom.async_job == A.SAVE
        assert dom.async_owner_api == "save"
        assert dom.end_async_job() == 1

    run(main())
    settled(dom)


def test_waiting_does_not_block_the_loop(dom):
    holder = Holder(dom, J.MODIFY, api="setMemory").start()
    ticks = []

    async def ticker():
        for i in range(20):
            ticks.append(i)
            await asyncio.sleep(0.005)
        holder.release_nowait()  # only reached if the loop kept running

    async def main():
        waiter = asyncio.ensure_future(dom.begin_job_async(J.QUERY, timeout=DEADLINE))
        await asyncio.gather(waiter, ticker())
        assert dom.active_job == J.QUERY
        await asyncio.to_thread(holder.worker.join_ok)
        assert dom.end_job() == 1

    run(main())
    assert len(ticks) == 20
    settled(dom)


def test_timeout(dom):
    with Holder(dom, J.MODIFY, api="setMemory"):
        before = snapshot(dom)

        async def main():
            with pytest.raises(mj.JobTimeout) as ei:
                await dom.begin_job_async(J.QUERY, timeout=0.05)
            assert ei.value.message == f"{LOCK} (held by monitor=setMemory)"
            assert isinstance(ei.value, TimeoutError)

        run(main())
        assert snapshot(dom) == before
    settled(dom)


def test_default_timeout_from_driver():
    dom = mj.Driver(job_wait_timeout=0.1).add_domain("vm1")
    dom.begin_async_job(A.SAVE, api="save")

    async def main():
        with pytest.raises(mj.JobTimeout) as ei:
            await dom.begin_job_async(J.MODIFY)
        assert ei.value.message == f"{LOCK} (held by monitor=save)"

    run(main())
    assert dom.jobs_queued == 1 and dom.refs == 2


def test_cancelled_waiter_holds_nothing(dom):
    holder = Holder(dom, J.MODIFY).start()

    async def main():
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, timeout=DEADLINE))
        await until(lambda: dom.jobs_queued == 2, "waiter queued")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert dom.jobs_queued == 1
        assert dom.refs == 2

    run(main())
    assert holder.release() == 1
    settled(dom)  # the slot was not handed to the cancelled waiter


def test_cancel_racing_the_grant(dom):
    """Cancel at about the moment the slot is handed over: whatever wins,
    afterwards the job is either held by us (and we end it) or not at all."""
    async def one(delay):
        holder = Holder(dom, J.MODIFY).start()
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY, timeout=DEADLINE))
        await until(lambda: dom.jobs_queued == 2, "waiter queued")
        holder.release_nowait()
        if delay:
            await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            assert dom.active_job == J.QUERY
            dom.end_job()
        await asyncio.to_thread(holder.worker.join_ok)
        settled(dom)

    async def main():
        for i in range(20):
            await one((i % 5) * 0.0005)

    run(main())


def test_job_async_context_manager(dom):
    class Boom(Exception):
        pass

    async def main():
        async with dom.job_async(J.MODIFY, api="setMemory"):
            assert dom.active_job == J.MODIFY
            assert dom.owner_api == "setMemory"
        assert dom.active_job == J.NONE
        with pytest.raises(Boom):
            async with dom.job_async(J.QUERY):
                assert dom.active_job == J.QUERY
                raise Boom()
        assert dom.active_job == J.NONE

    run(main())
    settled(dom)


@pytest.mark.parametrize("call, exc", [
    (lambda d: d.begin_job_async(J.NONE), mj.InternalError),
    (lambda d: d.begin_job_async(99), ValueError),
    (lambda d: d.begin_job_async("query"), TypeError),
    (lambda d: d.begin_job_async(J.QUERY, timeout=-1), ValueError),
    (lambda d: d.begin_async_job_async(A.NONE), mj.InternalError),
    (lambda d: d.begin_async_job_async(8), ValueError),
])
def test_bad_input(dom, call, exc):
    dom.begin_job(J.QUERY, api="stats")
    before = snapshot(dom)

    async def main():
        with pytest.raises(exc):
            await call(dom)

    run(main())
    assert snapshot(dom) == before


def test_removal_and_cancel_fail_async_waiters(drv):
    a, b = drv.add_domain("a"), drv.add_domain("b")
    ha, hb = Holder(a, J.MODIFY).start(), Holder(b, J.MODIFY).start()

    async def main():
        wa = asyncio.ensure_future(a.begin_job_async(J.QUERY, timeout=DEADLINE))
        wb = asyncio.ensure_future(b.begin_job_async(J.QUERY, timeout=DEADLINE))
        await until(lambda: a.jobs_queued == 2 and b.jobs_queued == 2)
        drv.remove_domain("a")
        with pytest.raises(mj.NoDomain):
            await wa
        drv.cancel_waiters("bye")
        with pytest.raises(mj.OperationAborted) as ei:
            await wb
        assert ei.value.message == "job wait cancelled: bye"

    run(main())
    assert ha.release() == 0
    assert hb.release() == 1
