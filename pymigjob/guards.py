"""Context managers: the migration call sequences of libvirt's
src/qemu/MIGRATION.txt as `with` blocks.
Class-based (several times cheaper than @contextmanager).  An exception
escaping a block ends what the block began and propagates.  They use only
the public Domain API (``GuardedDomain``, which both backends' Domains meet),
so both implementations (C-backed and pure) share them.

When the block raised and what the exit runs (end_job, ...) fails as well,
the block's own exception propagates unchanged, and the exit's failure is
attached to it as a note (DECISIONS.md, "Context managers")."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Awaitable, Callable, Protocol

from ._args import api_bytes, enum_value, error_text, kind_type
from .enums import AsyncJob, Phase
from .errors import InternalError, add_note

log = logging.getLogger("pymigjob")


class GuardedDomain(Protocol):
    """What the guards use of a Domain: api.md's primitives."""

    @property
    def phase(self) -> int: ...

    def begin_job(self, job: int, api: str | None = ..., timeout: float | None = ...,
                  nowait: bool = ...) -> bool: ...

    def end_job(self) -> int: ...

    def begin_nested_job(self, async_job: int, api: str | None = ...,
                         timeout: float | None = ...) -> bool: ...

    def end_nested_job(self) -> int: ...

    def begin_agent_job(self, agent_job: int, api: str | None = ...,
                        timeout: float | None = ..., nowait: bool = ...) -> bool: ...

    def end_agent_job(self) -> int: ...

    def begin_job_async(self, job: int, api: str | None = ...,
                        timeout: float | None = ...) -> Awaitable[bool]: ...

    def migration_job_start(self, async_job: int, mask: int | None = ...,
                            api: str | None = ..., timeout: float | None = ...) -> bool: ...

    def migration_job_set_phase(self, phase: int, api: str | None = ...) -> bool: ...

    def migration_job_start_phase(self, phase: int, api: str | None = ...) -> bool: ...

    def check_migration_job(self, async_job: int) -> None: ...

    def migration_job_continue(self, cleanup: Any = ...) -> Any: ...

    def migration_job_finish(self, error: str | None = ...) -> int: ...

    @property
    def postcopy(self) -> bool: ...

    def mark_postcopy_failed(self) -> None: ...


def exit_failed(body: BaseException, failure: BaseException, call: str) -> None:
    """A guard's exit ran `call` after the block raised `body`, and it failed
    too: `body` goes on (the caller returns from __exit__ without raising);
    the failure is attached to it as a note, or logged on Python 3.10, which
    has no notes."""
    text = (f"pymigjob: leaving the with block, {call} failed too: "
            f"{type(failure).__name__}: {failure}")
    if not add_note(body, text):
        log.warning("%s (while %s propagated)", text, type(body).__name__)


def _end(end: Callable[[], object], exc: BaseException | None, call: str) -> None:
    """A guard's exit: `end()` (named `call`); when it fails after the block
    raised `exc`, `exc` goes on with the failure noted (exit_failed)."""
    try:
        end()
    except Exception as failure:
        if exc is None:
            raise
        exit_failed(exc, failure, call)


class _BeginArgs:
    """What a job guard passes to its begin."""

    __slots__ = ("_dom", "_job", "_api", "_timeout")

    def __init__(self, dom: GuardedDomain, job: int, api: str | None,
                 timeout: float | None) -> None:
        self._dom = dom
        self._job = job
        self._api = api
        self._timeout = timeout


class JobGuard(_BeginArgs):
    """`with dom.job(Job.MODIFY):` -- begin_job ... end_job."""

    __slots__ = ()

    def __enter__(self) -> GuardedDomain:
        self._dom.begin_job(self._job, self._api, self._timeout)
        return self._dom

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        try:  # (_end's body, inline: with dom.job(kind, api=...) is a hot path)
            self._dom.end_job()
        except Exception as failure:
            if exc is None:
                raise
            exit_failed(exc, failure, "end_job()")


class NestedJobGuard(JobGuard):
    """`with dom.nested_job(AsyncJob.MIGRATION_OUT):` around a monitor call."""

    __slots__ = ()

    def __enter__(self) -> GuardedDomain:
        self._dom.begin_nested_job(self._job, self._api, self._timeout)
        return self._dom

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        try:  # (_end's body, inline: around every monitor call)
            self._dom.end_nested_job()
        except Exception as failure:
            if exc is None:
                raise
            exit_failed(exc, failure, "end_nested_job()")


class AgentJobGuard(JobGuard):
    """`with dom.agent(AgentJob.QUERY):` -- begin_agent_job ... end_agent_job,
    around a guest agent call."""

    __slots__ = ()

    def __enter__(self) -> GuardedDomain:
        self._dom.begin_agent_job(self._job, self._api, self._timeout)
        return self._dom

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        _end(self._dom.end_agent_job, exc, "end_agent_job()")


class JobAsyncGuard(_BeginArgs):
    """``async with dom.job_async(Job.MODIFY):`` -- begin_job_async ... end_job."""

    __slots__ = ()

    async def __aenter__(self) -> GuardedDomain:
        await self._dom.begin_job_async(self._job, self._api, self._timeout)
        return self._dom

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        _end(self._dom.end_job, exc, "end_job()")


class MigrationGuard:
    """One migration API's share of the async job.

    First API (`dom.migration`): migration_job_start + set_phase.  Later API
    (`dom.migration_phase`): check_migration_job + start_phase.  On a clean
    exit the job is parked with migration_job_continue, unless `finish()`
    ended it; on an exception the whole async job is finished, as libvirt's
    error paths do, and refs are back where they were before the block --
    the job data records the failure (FAILED with the exception's text, or
    CANCELED after an abort).  Except in post-copy (``dom.postcopy``): the
    guest then lives on both hosts, so, as libvirt, the job is not finished
    but marked post-copy failed and parked for a resume.
    """

    __slots__ = ("domain", "async_job", "_phase", "_api", "_first", "_timeout",
                 "_mask", "_done")

    def __init__(self, dom: GuardedDomain, async_job: int, phase: int, api: str | None,
                 first: bool, timeout: float | None, mask: int | None) -> None:
        # arguments first, state after: a bad api is a TypeError/ValueError
        # here, not the state error check_migration_job would give first
        if async_job.__class__ is not AsyncJob:
            kind_type(async_job, AsyncJob, "async_job")
        self._phase = phase if phase.__class__ is Phase else enum_value(Phase, phase, "phase")
        if api is not None:
            api_bytes(api)  # the check of api, cached for the names daemons repeat
        self.domain = dom
        self.async_job = async_job
        self._api = api
        self._first = first
        self._timeout = timeout
        self._mask = mask
        self._done = False

    def __enter__(self) -> MigrationGuard:
        dom = self.domain
        if self._first:
            dom.migration_job_start(self.async_job, self._mask, self._api, self._timeout)
            dom.migration_job_set_phase(self._phase, self._api)
        else:
            dom.check_migration_job(self.async_job)
            try:
                dom.migration_job_start_phase(self._phase, self._api)
            except InternalError:
                # refused under strict_phases after taking this API's
                # reference: the API did nothing, so it gives back that
                # reference and nothing else.  (Not migration_job_continue:
                # that also parks the job, i.e. clears the async owner
                # thread, which changed the state when the job was not
                # parked -- the hostile test's "raised an error and changed
                # the state".)  The refused phase's tracked change stopped
                # the park clock; a parked job gets it back.
                dom.unref()
                track = getattr(dom, "_track", None)
                if track is not None and dom.async_owner_thread == 0:
                    track.parked(dom)
                raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._done:
            return
        self._done = True
        if exc is None:
            self.domain.migration_job_continue()
            return
        dom = self.domain
        if self._postcopy():
            _end(lambda: self._park_failed(dom), exc,
                 "mark_postcopy_failed() + migration_job_continue()")
        else:
            _end(lambda: dom.migration_job_finish(error_text(exc)), exc,
                 "migration_job_finish()")

    def _postcopy(self) -> bool:
        """Is the job post-copy?  A domain that cannot say (it died) is not:
        the finish then fails and is noted as before."""
        try:
            return bool(self.domain.postcopy)
        except Exception:
            return False

    @staticmethod
    def _park_failed(dom: GuardedDomain) -> None:
        """Post-copy failed in this step: the job waits, parked, for a resume."""
        dom.mark_postcopy_failed()
        dom.migration_job_continue()

    @property
    def phase(self) -> int:
        return self.domain.phase

    def set_phase(self, phase: int, api: str | None = None) -> bool:
        """migration_job_set_phase within this API."""
        return self.domain.migration_job_set_phase(phase, api)

    def finish(self, error: str | None = None) -> int:
        """End the async job here (the last API); the block will not continue
        it.  `error`: the job failed (its record says FAILED, or CANCELED
        after an abort request)."""
        if self._done:
            raise RuntimeError("this migration step has already ended")
        self._done = True
        return self.domain.migration_job_finish(error)
