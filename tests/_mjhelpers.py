"""Helpers shared by the test modules (imported as ``_mjhelpers``)."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pymigjob as mj

#: a generous bound for anything that "must happen soon" on a loaded 2-core box
DEADLINE = 10.0

#: every domain property that describes state (job_info.elapsed is a clock
#: reading and therefore left out)
SNAPSHOT_PROPS = (
    "name",
    "refs",
    "alive",
    "active_job",
    "async_job",
    "phase",
    "mask",
    "jobs_queued",
    "owner_api",
    "async_owner_api",
    "owner_thread",
    "async_owner_thread",
    "abort_requested",
    "agent_job",
    "agent_owner_api",
    "agent_owner_thread",
    "uuid",
)


def snapshot(dom) -> dict[str, Any]:
    """Every observable property of a live domain."""
    snap = {prop: getattr(dom, prop) for prop in SNAPSHOT_PROPS}
    snap["job_info.type"] = dom.job_info.type
    return snap


def wait_until(pred: Callable[[], bool], what: str = "condition",
               timeout: float = DEADLINE) -> None:
    """Poll ``pred`` until it holds; fail the test after ``timeout``."""
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def wait_queued(dom, n: int, timeout: float = DEADLINE) -> None:
    """Wait until ``jobs_queued`` (holders + waiters) reaches ``n``."""
    wait_until(lambda: dom.jobs_queued == n, f"jobs_queued == {n} "
               f"(is {dom.jobs_queued})", timeout)


class Worker(threading.Thread):
    """Runs ``fn(*args, **kw)`` in a daemon thread and keeps the outcome."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
                 **kw: Any) -> None:
        super().__init__(daemon=True, name=name)
        self._fn, self._args, self._kw = fn, args, kw
        self.result: Any = None
        self.exc: BaseException | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._fn(*self._args, **self._kw)
        except BaseException as exc:  # noqa: BLE001 - reported by join_*
            self.exc = exc
        finally:
            self.ended.set()

    def join_ok(self, timeout: float = DEADLINE) -> Any:
        """Join; re-raise the thread's exception; return its result."""
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} still running after {timeout}s"
        if self.exc is not None:
            raise self.exc
        return self.result

    def join_exc(self, timeout: float = DEADLINE) -> BaseException:
        """Join; the thread must have raised; return the exception."""
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} still running after {timeout}s"
        assert self.exc is not None, f"{self.name} returned {self.result!r}, expected an error"
        return self.exc


def started(fn: Callable[..., Any], *args: Any, **kw: Any) -> Worker:
    w = Worker(fn, *args, **kw)
    w.start()
    return w


class Holder:
    """A thread that takes a sync job (an agent job with ``agent=True``),
    holds it until ``release()``, ends it."""

    def __init__(self, dom, job=mj.Job.QUERY, api: str | None = None,
                 timeout: float = DEADLINE, agent: bool = False) -> None:
        self.dom = dom
        self.acquired = threading.Event()
        self._release = threading.Event()
        self.ident = 0

        def body():  # agent: `job` is an AgentJob, held in the agent slot
            if agent:
                dom.begin_agent_job(job, api=api, timeout=timeout)
            else:
                dom.begin_job(job, api=api, timeout=timeout)
            self.ident = threading.get_ident()
            self.acquired.set()
            self._release.wait(DEADLINE * 3)
            return dom.end_agent_job() if agent else dom.end_job()

        self.worker = Worker(body, name=f"holder-{job!r}")

    def start(self) -> "Holder":
        self.worker.start()
        while not self.acquired.wait(0.01):
            if self.worker.ended.is_set():
                self.worker.join_ok()
                raise AssertionError("holder ended without acquiring its job")
        return self

    def release_nowait(self) -> None:
        """Let the holder end its job without waiting for it (e.g. from an event loop)."""
        self._release.set()

    def release(self) -> Any:
        """Let the holder end its job; returns end_job()'s value."""
        self._release.set()
        return self.worker.join_ok()

    def __enter__(self) -> "Holder":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self.worker.ended.is_set():
            self._release.set()
            self.worker.join(DEADLINE)


#: how every "state change lock" error begins
LOCK = "cannot acquire state change lock"


def settled(dom, refs: int = 1) -> None:
    """Nothing held, nothing waiting, refs exactly as expected."""
    assert dom.active_job == mj.Job.NONE
    assert dom.async_job == mj.AsyncJob.NONE
    assert dom.jobs_queued == 0
    assert dom.refs == refs
    assert dom.owner_api is None and dom.owner_thread == 0


def fresh(dom) -> None:
    """The state of a fresh domain (the mask is left out: see
    core/test_jobs.py's test_fresh_domain)."""
    assert dom.refs == 1
    assert dom.active_job == mj.Job.NONE
    assert dom.async_job == mj.AsyncJob.NONE
    assert dom.phase == 0
    assert dom.jobs_queued == 0
    assert dom.owner_api is None
    assert dom.async_owner_api is None
    assert dom.owner_thread == 0
    assert dom.async_owner_thread == 0
    assert dom.abort_requested is False
    assert dom.job_info.type == mj.JobType.NONE
    assert dom.job_info.elapsed == 0.0


def error_records(caplog) -> list:
    """The records at ERROR or above on logger ``pymigjob``."""
    import logging

    return [r for r in caplog.records
            if r.name == "pymigjob" and r.levelno >= logging.ERROR]
