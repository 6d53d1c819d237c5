"""pymigjob.aio: timeouts naming the holder, the blocking calls' errors,
threads and coroutines in one FIFO queue, two loops in two threads, and a
stress run of threads and coroutines with cancels and timeouts."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import pymigjob as mj
from pymigjob import aio
from _aiohelpers import idle, queued, run
from _mjhelpers import LOCK, DEADLINE, Holder, snapshot, started, wait_queued, wait_until

A = mj.AsyncJob
J = mj.Job
MANY_WAITS = int(os.environ.get("PYMIGJOB_AIO_WAITS", "100000"))

pytestmark = pytest.mark.usefixtures("no_leftovers")


# ---- timeouts, errors -----------------------------------------------------------


def test_timeout_names_the_holder_and_keeps_the_deadline(dom):
    with Holder(dom, J.MODIFY, api="setMemory"):
        before = snapshot(dom)

        async def main():
            t0 = time.monotonic()
            with pytest.raises(mj.JobTimeout) as ei:
                await dom.begin_job_async(J.QUERY, timeout=0.1)
            took = time.monotonic() - t0
            assert ei.value.message == f"{LOCK} (held by monitor=setMemory)"
            assert str(ei.value) == f"Timed out during operation: {LOCK} (held by monitor=setMemory)"
            assert 0.095 <= took < 0.1 + 1.0
            with pytest.raises(mj.JobTimeout) as ei:  # zero: fails at once
                await dom.begin_job_async(J.QUERY, timeout=0)
            assert ei.value.message == f"{LOCK} (held by monitor=setMemory)"

        run(main())
        assert snapshot(dom) == before
    idle(dom)


def test_timeout_names_the_async_owner_when_the_mask_blocks(dom):
    dom.begin_async_job(A.MIGRATION_OUT, api="migrate")

    async def main():
        with pytest.raises(mj.JobTimeout) as ei:
            await dom.begin_job_async(J.MODIFY, timeout=0.05)
        assert ei.value.message == f"{LOCK} (held by monitor=migrate)"
        with pytest.raises(mj.JobTimeout) as ei:
            await dom.begin_async_job_async(A.SAVE, timeout=0.05)
        assert ei.value.message == f"{LOCK} (held by monitor=migrate)"
        await dom.begin_job_async(J.QUERY, timeout=0.05)  # the mask allows it
        dom.end_job()

    run(main())
    assert dom.jobs_queued == 1 and dom.refs == 2
    dom.end_async_job()
    idle(dom)


def test_async_job_waits_for_the_async_slot(dom):
    async def main():
        dom.begin_async_job(A.SAVE, api="save")
        task = asyncio.ensure_future(dom.begin_async_job_async(A.DUMP, api="dump"))
        await queued(dom, 2)
        dom.end_async_job()
        await task
        assert dom.async_job == A.DUMP and dom.async_owner_api == "dump"
        assert dom.end_async_job() == 1

    run(main())
    idle(dom)


def test_same_errors_as_the_blocking_calls():
    drv = mj.Driver(job_wait_timeout=5, max_queued=1)
    dom = drv.add_domain("vm1")
    dom.begin_job(J.MODIFY, api="holder")

    async def main():
        with pytest.raises(mj.QueueFull) as sync_err:
            dom.begin_job(J.QUERY)
        with pytest.raises(mj.QueueFull) as async_err:
            await dom.begin_job_async(J.QUERY)
        assert async_err.value.message == sync_err.value.message == (
            f"{LOCK} (held by monitor=holder) due to max_queued limit")
        with pytest.raises(TypeError) as sync_err:
            dom.begin_job(J.QUERY, api=5)
        with pytest.raises(TypeError) as async_err:
            await dom.begin_job_async(J.QUERY, api=5)
        assert str(async_err.value) == str(sync_err.value)
        with pytest.raises(ValueError):
            await dom.begin_job_async(J.QUERY, timeout=float("nan"))
        with pytest.raises(ValueError):
            await dom.begin_async_job_async(2**64)

    run(main())
    assert dom.jobs_queued == 1 and dom.refs == 2
    dom.end_job()


def test_cancel_waiters_fails_coroutines_and_threads_alike(drv, dom):
    async def main():
        dom.begin_job(J.MODIFY)
        thread = started(dom.begin_job, J.QUERY, timeout=DEADLINE)
        await queued(dom, 2)
        task = asyncio.ensure_future(dom.begin_job_async(J.QUERY))
        await queued(dom, 3)
        drv.cancel_waiters("bye")
        with pytest.raises(mj.OperationAborted) as ei:
            await task
        texc = await asyncio.to_thread(thread.join_exc)
        assert str(ei.value) == str(texc) == "operation aborted: job wait cancelled: bye"
        dom.end_job()

    run(main())
    idle(dom)


# ---- threads and coroutines in one FIFO ---------------------------------------------


def test_threads_and_coroutines_are_served_in_arrival_order(dom):
    order = []

    def thread_waiter(name):
        dom.begin_job(J.QUERY, timeout=DEADLINE)
        order.append(name)
        dom.end_job()

    async def coro_waiter(name):
        await dom.begin_job_async(J.QUERY, timeout=DEADLINE)
        order.append(name)
        await asyncio.sleep(0)  # hold it across a loop step
        dom.end_job()

    plan = ["t0", "c0", "c1", "t1", "c2", "t2", "t3", "c3"]

    async def main():
        dom.begin_job(J.MODIFY)
        threads, tasks = [], []
        for i, name in enumerate(plan):
            if name[0] == "t":
                threads.append(started(thread_waiter, name))
            else:
                tasks.append(asyncio.ensure_future(coro_waiter(name)))
            await queued(dom, 2 + i)
        dom.end_job()
        await asyncio.gather(*tasks)
        for t in threads:
            await asyncio.to_thread(t.join_ok)

    run(main())
    assert order == plan
    idle(dom)


def test_neither_threads_nor_coroutines_starve(dom):
    """Two threads and two coroutines loop over the same job for a while;
    with one FIFO each side gets about half of the grants."""
    stop = threading.Event()
    counts = {"thread": 0, "coro": 0}
    lock = threading.Lock()

    def thread_loop():
        while not stop.is_set():
            dom.begin_job(J.QUERY, timeout=DEADLINE)
            time.sleep(0.0002)
            with lock:
                counts["thread"] += 1
            dom.end_job()

    async def coro_loop():
        while not stop.is_set():
            await dom.begin_job_async(J.QUERY, timeout=DEADLINE)
            await asyncio.sleep(0.0002)
            counts["coro"] += 1
            dom.end_job()

    async def main():
        threads = [started(thread_loop) for _ in range(2)]
        tasks = [asyncio.ensure_future(coro_loop()) for _ in range(2)]
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*tasks)
        for t in threads:
            await asyncio.to_thread(t.join_ok)

    run(main())
    total = counts["thread"] + counts["coro"]
    assert total > 100
    assert min(counts.values()) > 0.25 * total, counts
    idle(dom)


@pytest.mark.c_core
def test_two_loops_in_two_threads(dom):
    """Each loop gets its own notifier; their coroutines share the FIFO."""
    order = []

    async def waiter(name):
        await dom.begin_job_async(J.QUERY, timeout=DEADLINE)
        order.append(name)
        dom.end_job()

    def loop_thread(name):
        asyncio.run(waiter(name))

    dom.begin_job(J.MODIFY)
    try:
        a = started(loop_thread, "loop-a")
        wait_queued(dom, 2)
        b = started(loop_thread, "loop-b")
        wait_queued(dom, 3)
        # a coroutine queues in the core before it registers its loop's notifier
        wait_until(lambda: len(aio._notifiers) == 2, "a notifier for each loop")
    finally:
        dom.end_job()
    a.join_ok()
    b.join_ok()
    assert order == ["loop-a", "loop-b"]
    idle(dom)


def test_stress_threads_and_coroutines_with_cancels_and_timeouts():
    """Threads and coroutines hammer four domains with sync and async jobs,
    short timeouts, wait_for cancellations and task.cancel(); every outcome
    must be a held job (then ended), a JobTimeout or a cancellation, and in
    the end every domain is idle with refs == 1, nothing pending, no fd left."""
    import random

    drv = mj.Driver(job_wait_timeout=2)
    doms = [drv.add_domain(f"vm{i}") for i in range(4)]
    stop = threading.Event()
    errors = []
    counts = {"held": 0, "timeout": 0, "cancelled": 0}

    def thread_loop(seed):
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                d = rng.choice(doms)
                try:
                    if rng.random() < 0.2:
                        d.begin_async_job(A.SAVE, timeout=rng.uniform(0, 0.02))
                        time.sleep(rng.uniform(0, 0.001))
                        d.end_async_job()
                    else:
                        d.begin_job(J.QUERY, timeout=rng.uniform(0, 0.02))
                        time.sleep(rng.uniform(0, 0.0005))
                        d.end_job()
                except mj.JobTimeout:
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    async def coro_loop(seed):
        rng = random.Random(seed)
        while not stop.is_set():
            d = rng.choice(doms)
            asynchronous = rng.random() < 0.2
            timeout = rng.choice([0, 0.0005, rng.uniform(0, 0.05)])
            begin = (d.begin_async_job_async(A.DUMP, timeout=timeout) if asynchronous
                     else d.begin_job_async(J.QUERY, timeout=timeout))
            how = rng.random()
            try:
                if how < 0.3:
                    await asyncio.wait_for(begin, rng.uniform(0, 0.01))
                elif how < 0.5:
                    task = asyncio.ensure_future(begin)
                    await asyncio.sleep(rng.choice([0, 0, 0.0005]))
                    task.cancel()
                    await task
                else:
                    await begin
            except mj.JobTimeout:  # (a TimeoutError too: first)
                counts["timeout"] += 1
                continue
            except (asyncio.CancelledError, asyncio.TimeoutError):
                counts["cancelled"] += 1
                continue
            counts["held"] += 1
            await asyncio.sleep(rng.choice([0, 0, 0.0005, 0.002]))
            d.end_async_job() if asynchronous else d.end_job()

    async def main():
        threads = [started(thread_loop, i) for i in range(3)]
        tasks = [asyncio.ensure_future(coro_loop(100 + i)) for i in range(40)]
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.gather(*tasks)
        for t in threads:
            await asyncio.to_thread(t.join_ok)

    run(main())
    assert not errors, errors
    assert min(counts.values()) > 0, counts
    assert mj._c.binding.lib.mj_pending_count() == 0
    for d in doms:
        idle(d)
