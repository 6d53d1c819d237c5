"""The five core defects review found (each was reproduced against 0.1):

1. an interrupt the instant a C call returns a grant left the job held;
2. a hand-off granted a waiter whose deadline had passed;
3. a failing begin inside a signal handler gave up the outer begin's waiter;
4. a library call inside a signal handler replaced the error being raised;
5. refs could be counted past INT_MAX.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any, Callable

import pytest

import pymigjob as mj

J = mj.Job
A = mj.AsyncJob
AG = mj.AgentJob

pytestmark = [pytest.mark.concurrency, pytest.mark.timeout(60)]


def state(dom) -> tuple:
    return (dom.active_job, dom.async_job, dom.jobs_queued, dom.refs)


def all_slots(dom) -> tuple:
    """state(), the agent slot included."""
    return state(dom) + (dom.agent_job,)


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt, whoever installed what before."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


# ---- 1. an interrupt the instant the C call returns "granted" ----------------


def _grant_hook(signo: int) -> None:
    from pymigjob._c.binding import lib

    lib.mj_testing_signal_on_grant(signo)


def _migrating(dom) -> None:
    dom.begin_async_job(A.MIGRATION_OUT, api="migrate")


#: name -> (set-up on the domain, the begin)
BEGINS: dict[str, tuple[Callable[[Any], None] | None, Callable[[Any], Any]]] = {
    "begin_job (quick)": (None, lambda d: d.begin_job(J.QUERY)),
    "begin_job (api, timeout)": (None, lambda d: d.begin_job(J.MODIFY, api="m", timeout=5)),
    "job() quick guard": (None, lambda d: d.job(J.QUERY).__enter__()),
    "job() guard": (None, lambda d: d.job(J.QUERY, api="q").__enter__()),
    "begin_async_job": (None, lambda d: d.begin_async_job(A.SAVE, api="save")),
    "migration_job_start": (None, lambda d: d.migration_job_start(A.MIGRATION_OUT)),
    "begin_nested_job": (_migrating, lambda d: d.begin_nested_job(A.MIGRATION_OUT)),
    "abort_job": (_migrating, lambda d: d.abort_job(api="abort")),
    "begin_job_async": (None, lambda d: _run(d.begin_job_async(J.QUERY, api="q"))),
    "begin_async_job_async": (None, lambda d: _run(d.begin_async_job_async(A.DUMP))),
    "job_async guard": (None, lambda d: _run(d.job_async(J.MODIFY).__aenter__())),
    "begin_nested_job_async": (_migrating,
                               lambda d: _run(d.begin_nested_job_async(A.MIGRATION_OUT))),
    "migration_job_start_async": (None, lambda d: _run(d.migration_job_start_async(A.SAVE))),
    "abort_job_async": (_migrating, lambda d: _run(d.abort_job_async())),
    "begin_job (nowait)": (None, lambda d: d.begin_job(J.QUERY, nowait=True)),
    "begin_agent_job (quick)": (None, lambda d: d.begin_agent_job(AG.QUERY)),
    "begin_agent_job": (None, lambda d: d.begin_agent_job(AG.QUERY, api="g", timeout=5)),
    "agent() quick guard": (None, lambda d: d.agent(AG.QUERY).__enter__()),
    "begin_agent_job (nowait)": (None, lambda d: d.begin_agent_job(AG.MODIFY, nowait=True)),
    "agent() guard": (None, lambda d: d.agent(AG.MODIFY, api="g").__enter__()),
    "begin_agent_job_async": (None, lambda d: _run(d.begin_agent_job_async(AG.QUERY))),
    # an agent begin while a sync job is held: it neither waits nor touches it
    "begin_agent_job (sync held)": (lambda d: d.begin_job(J.MODIFY, api="mon"),
                                    lambda d: d.begin_agent_job(AG.QUERY, timeout=5)),
}
#: the begins that wait for the agent slot, not the sync one
AGENT_BEGINS = {name for name in BEGINS if "agent" in name and "sync held" not in name}


def _run(coro) -> None:
    """Run a coroutine on a fresh loop (not asyncio.run, whose SIGINT handler
    would cancel the task instead of raising)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.c_core
@pytest.mark.parametrize("contended", [False, True], ids=["at once", "after a wait"])
@pytest.mark.parametrize("name", list(BEGINS))
def test_interrupt_as_the_grant_returns_leaves_nothing_held(drv, sigint_raises, name,
                                                            contended):
    """The core raises SIGINT just before a begin (or the wait or poll that
    completes it) returns "granted"; CPython runs the handler at that very
    return, before the result is stored.  Nothing stays held or queued."""
    dom = drv.add_domain("vm1")
    setup, begin = BEGINS[name]
    if contended and ("nowait" in name or "sync held" in name):
        pytest.skip("never waits: a nowait begin that cannot start returns False")
    if setup is not None:
        setup(dom)
    before = all_slots(dom)
    holder = None
    agent = name in AGENT_BEGINS
    if contended:
        # another thread holds the sync slot; it ends it once we are queued
        queued = threading.Event()
        held = threading.Event()

        def hold():
            if agent:
                dom.begin_agent_job(AG.MODIFY, api="holder")
            elif setup is None:
                dom.begin_job(J.MODIFY, api="holder")
            else:
                dom.begin_nested_job(A.MIGRATION_OUT, api="holder")
            held.set()
            while dom.jobs_queued < before[2] + 2:
                time.sleep(0.005)
            queued.set()
            time.sleep(0.05)
            if agent:
                dom.end_agent_job()
            else:
                dom.end_job()

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
    _grant_hook(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            begin(dom)
    finally:
        _grant_hook(0)
        if holder is not None:
            holder.join(10)
    assert all_slots(dom) == before, name
    if "sync held" in name:
        dom.end_job()
    # and the domain works: the next begins get their jobs at once
    dom.begin_job(J.QUERY, timeout=0)
    dom.end_job()
    dom.begin_agent_job(AG.QUERY, timeout=0)
    dom.end_agent_job()


#: libvirt 11's calls that take something without waiting, or begin with flags
TAKERS: dict[str, Callable[[Any], Any]] = {
    "restore_async_job": lambda d: d.restore_async_job(A.MIGRATION_OUT,
                                                       mj.Phase.POSTCOPY_FAILED, flags=1),
    "begin_async_job(flags)": lambda d: d.begin_async_job(A.BACKUP, "b", None, 7,
                                                          operation=mj.JobOperation.BACKUP),
    "migration_job_start(flags)": lambda d: d.migration_job_start(A.MIGRATION_IN, flags=3),
    "begin_async_job_async(flags)": lambda d: _run(d.begin_async_job_async(A.DUMP, None,
                                                                            None, 5)),
    "migration_job_start_async(flags)": lambda d: _run(
        d.migration_job_start_async(A.MIGRATION_OUT, flags=5)),
}


@pytest.mark.c_core
@pytest.mark.parametrize("name", list(TAKERS))
def test_interrupt_as_a_taker_returns_leaves_nothing(drv, sigint_raises, name):
    """restore_async_job takes a reference and a place in jobs_queued; an
    interrupt landing as it returns gives both back (and the job)."""
    dom = drv.add_domain("vm1")
    before = state(dom) + (dom.api_flags, dom.job_stats(), dom.async_owner_api)
    _grant_hook(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            TAKERS[name](dom)
    finally:
        _grant_hook(0)
    assert state(dom) + (dom.api_flags, dom.job_stats(), dom.async_owner_api) == before
    # nothing was completed either: the job never happened for the caller
    assert dom.job_stats(completed=True) is None
    TAKERS[name](dom)
    assert dom.refs == 2


@pytest.mark.c_core
def test_interrupt_as_the_grant_returns_never_touches_an_older_job(drv, sigint_raises):
    """The give-back is this begin's own: a job the thread already held on the
    same domain, in the other slot, stays held."""
    dom = drv.add_domain("vm1")
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    _grant_hook(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        dom.begin_nested_job(A.MIGRATION_OUT)
    _grant_hook(0)
    assert dom.active_job == J.NONE and dom.async_job == A.MIGRATION_OUT
    assert dom.refs == 2 and dom.jobs_queued == 1
    dom.migration_job_finish()


# ---- 2. an expired waiter is not handed the slot ----------------------------------


def test_expired_waiter_is_not_granted_and_the_next_one_is(drv):
    """A coroutine queued first (0.1 s budget) whose loop is busy when the slot
    frees (0.2 s) must time out; the thread queued behind it gets the job at
    once, not at its own deadline."""
    dom = drv.add_domain("vm1")
    dom.begin_job(J.MODIFY, api="holder")
    t0 = time.monotonic()
    res: dict[str, Any] = {}

    def live_thread():
        try:
            dom.begin_job(J.QUERY, api="thread", timeout=0.6)
            res["thread"] = time.monotonic() - t0
            dom.end_job()
        except mj.Error as e:
            res["thread"] = e

    async def main():
        async def coro():
            try:
                await dom.begin_job_async(J.QUERY, api="coro", timeout=0.1)
                res["coro"] = "held"
                dom.end_job()
            except mj.JobTimeout as e:
                res["coro"] = e

        task = asyncio.ensure_future(coro())
        await asyncio.sleep(0)                  # the coroutine is queued
        t = threading.Thread(target=live_thread)
        t.start()
        while dom.jobs_queued < 3:
            time.sleep(0.002)
        threading.Timer(0.2 - (time.monotonic() - t0), dom.end_job).start()
        time.sleep(1.0)                         # the loop is busy
        await task
        t.join()

    asyncio.run(main())
    assert isinstance(res["coro"], mj.JobTimeout), res
    assert res["coro"].message == \
        "cannot acquire state change lock (held by monitor=holder)"
    assert isinstance(res["thread"], float) and res["thread"] < 0.5, res
    assert state(dom) == (J.NONE, A.NONE, 0, 1)


# ---- 3. a begin in a signal handler gives back only its own waiter ------------------


def test_failing_begin_in_a_handler_leaves_the_outer_waiter(drv):
    dom = drv.add_domain("vm1")
    busy = drv.add_domain("vm2")
    held = threading.Event()
    release = threading.Event()

    def holder():
        dom.begin_job(J.MODIFY, api="holder")
        busy.begin_job(J.MODIFY, api="holder2")
        held.set()
        time.sleep(0.3)
        dom.end_job()
        release.wait(5)
        busy.end_job()

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    probes = []

    def on_alarm(signum, frame):
        try:
            busy.begin_job(J.QUERY, timeout=0)
            busy.end_job()
        except mj.JobTimeout:
            probes.append("timeout")

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.02)   # in the first slice and after
        dom.begin_job(J.QUERY, api="outer")
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert dom.active_job == J.QUERY and dom.owner_api == "outer"
        dom.end_job()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release.set()
        t.join()
    assert probes, "the handler never ran"
    assert state(dom) == (J.NONE, A.NONE, 0, 1)


# ---- 4. a handler's failing call does not replace the error being raised -----------


def test_error_raised_is_the_calls_own(drv):
    dom = drv.add_domain("vm1")
    other = drv.add_domain("vm2")
    dom.begin_job(J.MODIFY, api="holder")
    calls = []

    def on_alarm(signum, frame):
        calls.append(1)
        try:
            other.check_migration_job(A.MIGRATION_OUT)
        except mj.OperationInvalid:
            pass

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
        with pytest.raises(mj.JobTimeout) as ei:
            dom.begin_job(J.QUERY, timeout=0.3)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(calls) >= 3
    assert ei.value.message == "cannot acquire state change lock (held by monitor=holder)"
    dom.end_job()


# ---- 5. refs stop at MJ_REFS_MAX ---------------------------------------------------------


def _set_refs(dom, refs: int) -> None:
    if mj.backend == "pure":
        dom._refs = refs
    else:
        from pymigjob._c.binding import lib

        assert lib.mj_testing_set_refs(dom._p, refs) == 0


def test_refs_stop_at_the_limit(drv):
    limit = 2**31 - 1
    dom = drv.add_domain("vm1")
    _set_refs(dom, limit - 1)
    try:
        assert dom.ref() == limit
        for refuse in (dom.ref, lambda: dom.begin_job(J.QUERY),
                       lambda: dom.begin_async_job(A.SAVE)):
            with pytest.raises(mj.OperationFailed) as ei:
                refuse()
            assert not isinstance(ei.value, mj.QueueFull)
            assert ei.value.message == (f"domain 'vm1' already has {limit} references, "
                                        "the most it can count")
            assert state(dom) == (J.NONE, A.NONE, 0, limit)
    finally:
        _set_refs(dom, 1)
    dom.begin_job(J.QUERY)
    assert dom.refs == 2
    dom.end_job()
