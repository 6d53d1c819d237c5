"""KeyboardInterrupt injection at chosen points of pymigjob's own Python code,
shared by the C-backed (test_signals) and pure (test_pure) interrupt tests."""

from __future__ import annotations

import linecache
import sys
from typing import Any, Callable, Collection

from _mjhelpers import Holder
from pymigjob import AgentJob as AG, AsyncJob as A, Job as J

#: long enough that no begin under test times out by itself
LONG_WAIT = 30.0

#: blocked begins, each as a call on a domain whose job someone else holds
BEGINS: dict[str, Callable[[Any], Any]] = {
    "begin_job": lambda d: d.begin_job(J.QUERY, api="q", timeout=LONG_WAIT),
    "job() guard": lambda d: d.job(J.QUERY).__enter__(),
    "begin_async_job": lambda d: d.begin_async_job(A.SAVE, timeout=LONG_WAIT),
    "migration_job_start": lambda d: d.migration_job_start(A.MIGRATION_OUT),
    "begin_nested_job": lambda d: d.begin_nested_job(A.NONE, timeout=LONG_WAIT),
    "abort_job": lambda d: d.abort_job(timeout=LONG_WAIT),
}
#: the begins that wait for the agent slot: blocked behind an agent job
AGENT_BEGINS: dict[str, Callable[[Any], Any]] = {
    "begin_agent_job": lambda d: d.begin_agent_job(AG.QUERY, api="g", timeout=LONG_WAIT),
    "agent() guard": lambda d: d.agent(AG.MODIFY).__enter__(),
}
BEGINS.update(AGENT_BEGINS)


def _ours(frame) -> bool:
    return frame.f_globals.get("__name__", "").startswith("pymigjob")


def _with_line(frame) -> bool:
    """A line event on a `with` statement: also where its __exit__ runs.  A
    trace function raising there skips the __exit__ (a lock stays held);
    CPython never runs a signal handler at that point (it checks for signals
    after calls, so after __exit__), so the injections leave these lines out."""
    return linecache.getline(frame.f_code.co_filename, frame.f_lineno).lstrip() \
        .startswith("with ")


def inject_at(n: int, frames: Collection[str] | None = None):
    """A trace function raising KeyboardInterrupt at the n-th line or call
    event inside pymigjob's code (in the functions named in `frames`, if
    given) -- stricter than CPython, which runs signal handlers only at calls
    and backward jumps.  Returns (tracer, where): where[1] becomes
    (function, line, event) of the injection."""
    where: list[Any] = [0, None]

    def tracer(frame, event, arg):
        if not _ours(frame) or (frames is not None and frame.f_code.co_name not in frames):
            return None
        if event == "call" or (event == "line" and not _with_line(frame)):
            where[0] += 1
            if where[0] == n:
                sys.settrace(None)
                frame.f_trace = None
                where[1] = (frame.f_code.co_name, frame.f_lineno, event)
                raise KeyboardInterrupt(f"injected at event {n}")
        return tracer

    return tracer, where


def interrupt_on_return(function: str, why: str):
    """A trace function raising KeyboardInterrupt as pymigjob's `function`
    returns (once)."""
    def tracer(frame, event, arg):
        if not _ours(frame):
            return None
        if frame.f_code.co_name == function and event == "return":
            sys.settrace(None)
            frame.f_trace = None
            raise KeyboardInterrupt(why)
        return tracer

    return tracer


def traced(tracer, call: Callable[[], Any]) -> bool:
    """call() under `tracer`: True if it was interrupted."""
    sys.settrace(tracer)
    try:
        call()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


def run_traced(tracer, loop, awaitable) -> bool:
    """loop.run_until_complete(awaitable) under `tracer`: True if interrupted."""
    return traced(tracer, lambda: loop.run_until_complete(awaitable))


def interrupted_blocked_begins(dom, call: Callable[[Any], Any], wait_loop: str,
                               state: Callable[[], tuple], idle: tuple,
                               clean: Callable[[], None] | None = None) -> list:
    """call(dom), blocked behind a MODIFY job held by another thread (an
    agent MODIFY job for AGENT_BEGINS),
    interrupted at event 1, 2, ... of pymigjob's code until the injection
    lands in `wait_loop` (the function that waits) a second time at the same
    place: every line has been covered.  After each interrupt state() must be
    `idle` (the holder's job, queue slot and reference only); a leak is
    recorded as (where, state) and clean(), if given, mends it.  Returns the
    leaks."""
    leaks = []
    agent = any(call is c for c in AGENT_BEGINS.values())
    with Holder(dom, AG.MODIFY if agent else J.MODIFY, timeout=LONG_WAIT, agent=agent) as h:
        seen = set()
        for n in range(1, 400):
            tracer, count = inject_at(n)
            traced(tracer, lambda: call(dom))
            where = count[1]
            assert where is not None, "the call ended without the injection"
            if where in seen and where[0] == wait_loop:
                break  # back in the wait loop: every line has been covered
            seen.add(where)
            got = state()
            if got != idle:
                leaks.append((where, got))
                if clean is not None:
                    clean()
        else:
            raise AssertionError(f"the wait loop ({wait_loop}) was never reached")
        h.release()
    return leaks


def interrupted_coroutine_begins(dom, frames: Collection[str],
                                 state: Callable[[Any], tuple], idle: tuple,
                                 on_interrupt: Callable[[], Any] | None = None):
    """A contended ``dom.begin_job_async(QUERY)`` (MODIFY held), interrupted
    at event 1, 2, ... of the functions in `frames` -- up to its suspension,
    and after the grant resumes it -- until one runs to the end without an
    injection.  Loops are driven without asyncio.run (whose SIGINT handler
    would cancel the task instead) and closed after each attempt.

    on_interrupt(), if given, runs right after an injection; state(its
    result) must then be `idle` once the loop is closed and a job the
    coroutine took is ended.  Returns (leaks: [(where, state)], held_after:
    [where] of the interrupts that came after the job was taken, seen:
    every injection point)."""
    import asyncio

    leaks, held_after, seen = [], [], set()
    for n in range(1, 400):
        loop = asyncio.new_event_loop()
        dom.begin_job(J.MODIFY)
        tracer, where = inject_at(n, frames)
        box: list[Any] = []
        extra = None

        async def start():
            box.append(asyncio.ensure_future(dom.begin_job_async(J.QUERY)))
            await asyncio.sleep(0.002)

        try:
            run_traced(tracer, loop, start())
            if where[1] is None:  # not reached yet: it waits; hand it the job
                assert dom.jobs_queued == 2
                dom.end_job()
                run_traced(tracer, loop, asyncio.wait([box[0]]))
            if where[1] is None:
                assert box[0].result() is True and dom.active_job == J.QUERY
                dom.end_job()
                return leaks, held_after, seen  # a whole begin has been covered
            seen.add(where[1])
            if on_interrupt is not None:
                extra = on_interrupt()
            if dom.active_job == J.MODIFY:
                dom.end_job()
        finally:
            loop.close()  # gives up whatever is still registered
        task = box[0] if box else None
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" log at collection
        if dom.active_job == J.QUERY:  # taken, then interrupted
            assert task is not None and task.done()
            if task.cancelled() or task.exception() is not None:
                held_after.append(where[1])
            dom.end_job()
        got = state(extra)
        if got != idle:
            leaks.append((where[1], got))
    raise AssertionError("the begin never completed without an injection")
