"""pymigjob.aio: coroutines wait for jobs through the loop's notifier (an
eventfd), in the same FIFO queue as threads, without a thread each.

Covers: the uncontended path (one C call, no suspension, no notifier),
cancellation at every await point (queued, granted-but-not-yet-seen,
seen-but-not-yet-resumed, after an early deadline poll, in ``async with``,
``wait_for`` / ``asyncio.timeout`` / ``task.cancel`` / ``coro.close``),
timeouts naming the holder, threads and coroutines in one FIFO, loop shutdown
with waiters pending (``asyncio.run`` and a bare ``loop.close``), no fd leak
after many waits (100 000 by default; set ``PYMIGJOB_AIO_WAITS=1000000`` for a
million), and 10 000 coroutines on 100 domains.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest

import pymigjob as mj
from pymigjob import aio
from _interrupts import interrupted_coroutine_begins
from _mjhelpers import DEADLINE, Holder, snapshot, started, wait_queued, wait_until

A = mj.AsyncJob
J = mj.Job
LOCK = "cannot acquire state change lock"
MANY_WAITS = int(os.environ.get("PYMIGJOB_AIO_WAITS", "100000"))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 3 * DEADLINE))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(pred, what="condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def queued(dom, n):
    await until(lambda: dom.jobs_queued == n, f"jobs_queued == {n}")


def idle(dom, refs=1):
    assert dom.active_job == J.NONE
    assert dom.async_job == A.NONE
    assert dom.jobs_queued == 0
    assert dom.refs == refs


def no_notifier():
    """Every notifier has been released (reader removed, eventfd closed)."""
    gc.collect()
    assert dict(aio._notifiers) == {}


@pytest.fixture(autouse=True)
def _no_leftovers():
    before = fds()
    yield
    no_notifier()
    assert fds() == before, "an eventfd (or another fd) leaked"


@pytest.fixture
def immediate(monkeypatch):
    """Release a loop's notifier as soon as its last waiter goes."""
    monkeypatch.setattr(aio, "NOTIFIER_IDLE", 0)


@pytest.fixture
def counting(monkeypatch):
    """Counts the waiters detached onto a notifier (contended begins)."""
    calls = [0]
    real = aio._detach

    def detach(n, out):
        calls[0] += 1
        return real(n, out)

    monkeypatch.setattr(aio, "_detach", detach)
    return calls


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
