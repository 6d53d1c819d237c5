"""Jobs as asyncio context managers, and who holds them.

libvirt checks that the thread entering a domain's monitor owns a job on
it.  In an asyncio daemon every job is held by the loop's one thread, so
the thread says nothing; what says who holds a job here is the *context*
(``contextvars``) of the coroutine that began it.  Each guard below marks
its context while the job is held: ``held_sync_job(dom)`` is true only in
the context that began the sync job (or a nested job) on `dom` -- and in
tasks it spawned meanwhile, such as ``asyncio.wait_for``'s -- and only
while that job is still the domain's active one.  ``owns_async_job`` does
the same for the thread that drives an async job's current phase, which
alone may begin nested jobs (libvirt: nested jobs come from the async
job's owner).

The guards time what they do for an :class:`Observer` (waits, holds,
timeouts, per job kind) and, given a :class:`Ledger`, add the time spent in
the library's calls to it.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Optional

import pymigjob as mj

from .observe import Ledger, Observer

__all__ = ["held_sync_job", "owns_async_job", "SyncJob", "NestedJob", "MigrationStep"]

_NO_OBSERVER = Observer()


@dataclass(eq=False)
class _Grant:
    domain: mj.Domain
    kind: int
    open: bool = True


_sync_grants: contextvars.ContextVar[tuple[_Grant, ...]] = \
    contextvars.ContextVar("pymigjob_qemu_sync_jobs", default=())
_async_grants: contextvars.ContextVar[tuple[_Grant, ...]] = \
    contextvars.ContextVar("pymigjob_qemu_async_jobs", default=())


def held_sync_job(dom: mj.Domain) -> Optional[mj.Job]:
    """The sync job (or ASYNC_NESTED) this context holds on `dom`, else None."""
    for grant in _sync_grants.get():
        if grant.domain is dom and grant.open and dom.active_job == grant.kind:
            return mj.Job(grant.kind)
    return None


def owns_async_job(dom: mj.Domain, async_job: mj.AsyncJob) -> bool:
    """This context drives the current phase of `dom`'s async job `async_job`."""
    return any(g.domain is dom and g.open and g.kind == async_job == dom.async_job
               for g in _async_grants.get())


def _timed_out(error: BaseException) -> bool:
    return isinstance(error, (mj.JobTimeout, mj.QueueFull))


class SyncJob:
    """``async with SyncJob(dom, Job.QUERY, api="query"):`` -- begin_job_async
    ... end_job; the block's context may enter the monitor."""

    def __init__(self, dom: mj.Domain, job: mj.Job, api: Optional[str] = None,
                 timeout: Optional[float] = None, observer: Optional[Observer] = None,
                 ledger: Optional[Ledger] = None) -> None:
        self.domain, self.job, self.api, self.timeout = dom, job, api, timeout
        self.observer = observer or _NO_OBSERVER
        self.ledger = ledger
        self._grant: Optional[_Grant] = None
        self._token: Optional[contextvars.Token[tuple[_Grant, ...]]] = None
        self._since = 0.0

    @property
    def label(self) -> str:
        return self.job.label

    async def _begin(self) -> None:
        await self.domain.begin_job_async(self.job, api=self.api, timeout=self.timeout)

    def _end(self) -> None:
        self.domain.end_job()

    async def __aenter__(self) -> mj.Domain:
        t0 = time.perf_counter()
        try:
            await self._begin()
        except Exception as e:
            if _timed_out(e):
                self.observer.job_timed_out(self.label)
            raise
        self._since = time.perf_counter()
        self.observer.job_waited(self.label, self._since - t0)
        if self.ledger is not None:
            self.ledger.add(self._since - t0)
        self._grant = _Grant(self.domain, int(self.job))
        self._token = _sync_grants.set(_sync_grants.get() + (self._grant,))
        return self.domain

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        assert self._grant is not None and self._token is not None
        self._grant.open = False
        _sync_grants.reset(self._token)
        t0 = time.perf_counter()
        try:
            self._end()
        except mj.Error:
            if exc is None:
                raise
        if self.ledger is not None:
            self.ledger.add(time.perf_counter() - t0)
        self.observer.job_held(self.label, t0 - self._since)


class NestedJob(SyncJob):
    """``async with NestedJob(dom, AsyncJob.MIGRATION_OUT):`` -- a nested job of
    the running async job, for one or a few monitor commands (libvirt's
    EnterMonitorAsync).  Only the context driving the async job's phase may
    begin one; any other raises before anything changes."""

    def __init__(self, dom: mj.Domain, async_job: mj.AsyncJob, api: Optional[str] = None,
                 timeout: Optional[float] = None, observer: Optional[Observer] = None,
                 ledger: Optional[Ledger] = None) -> None:
        super().__init__(dom, mj.Job.ASYNC_NESTED, api, timeout, observer, ledger)
        self.async_job = async_job

    async def _begin(self) -> None:
        if not owns_async_job(self.domain, self.async_job):
            raise mj.InternalError(
                f"a nested job of {self.async_job.label} on '{self.domain.name}' may only be "
                "begun by the caller driving that async job's phase")
        await self.domain.begin_nested_job_async(self.async_job, self.api, self.timeout)

    def _end(self) -> None:
        self.domain.end_nested_job()


class MigrationStep:
    """One step (one libvirt API) of a migration, as an ``async with`` block:

    * ``first=True``: migration_job_start (waiting from asyncio) + set_phase;
    * otherwise check_migration_job + start_phase.

    A clean exit parks the job (continue) unless ``finish()`` ended it; an
    exception ends the whole async job, as libvirt's error paths do.  While
    the block runs, its context owns the async job (may begin nested jobs)."""

    def __init__(self, dom: mj.Domain, async_job: mj.AsyncJob, phase: mj.Phase, *,
                 first: bool = False, api: Optional[str] = None,
                 timeout: Optional[float] = None, mask: Optional[int] = None,
                 role: str = "source", observer: Optional[Observer] = None,
                 ledger: Optional[Ledger] = None) -> None:
        self.domain, self.async_job, self.phase = dom, async_job, phase
        self.first, self.api, self.timeout, self.mask = first, api, timeout, mask
        self.role = role
        self.observer = observer or _NO_OBSERVER
        self.ledger = ledger
        self._grant: Optional[_Grant] = None
        self._token: Optional[contextvars.Token[tuple[_Grant, ...]]] = None
        self._done = False
        self._since = 0.0

    def _book(self, t0: float) -> None:
        if self.ledger is not None:
            self.ledger.add(time.perf_counter() - t0)

    async def __aenter__(self) -> MigrationStep:
        dom = self.domain
        t0 = time.perf_counter()
        if self.first:
            try:
                await dom.migration_job_start_async(self.async_job, self.mask, self.api,
                                                    self.timeout)
            except Exception as e:
                if _timed_out(e):
                    self.observer.job_timed_out(self.async_job.label)
                raise
            self.observer.job_waited(self.async_job.label, time.perf_counter() - t0)
            dom.migration_job_set_phase(self.phase, self.api)
        else:
            dom.check_migration_job(self.async_job)
            dom.migration_job_start_phase(self.phase, self.api)
        self._book(t0)
        self._since = time.perf_counter()
        self._grant = _Grant(dom, int(self.async_job))
        self._token = _async_grants.set(_async_grants.get() + (self._grant,))
        return self

    def set_phase(self, phase: mj.Phase) -> bool:
        t0 = time.perf_counter()
        try:
            return self.domain.migration_job_set_phase(phase, self.api)
        finally:
            self._book(t0)

    def finish(self) -> None:
        """End the async job here (the last step)."""
        if self._done:
            raise RuntimeError("this migration step has already ended")
        self._done = True
        self._close()
        self._end_async_job()

    def _end_async_job(self) -> None:
        held = self.domain.job_info.elapsed  # since the async job began, steps before included
        t0 = time.perf_counter()
        self.domain.migration_job_finish()
        self._book(t0)
        self.observer.job_held(self.async_job.label, held)

    def _close(self) -> None:
        if self._grant is not None and self._token is not None:
            self._grant.open = False
            _async_grants.reset(self._token)
            self._grant = self._token = None
            self.observer.phase_took(self.role, self.phase.label,
                                     time.perf_counter() - self._since)

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        if self._done:
            return
        self._done = True
        self._close()
        try:
            if exc is None:
                t0 = time.perf_counter()
                self.domain.migration_job_continue()
                self._book(t0)
            else:
                self._end_async_job()
        except mj.Error:
            if exc is None:
                raise
