"""Domain over the C core: one libvirt domain object with its job state,
one method per libvirt primitive, each one call into the C core (what both
backends' Domains share is pymigjob._base.DomainBase's).

Interrupt safety (DECISIONS.md, "Review fixes"): every begin checks each
argument cffi could refuse before its ``try``; the C call is the first
statement of the ``try``; whatever escapes -- the begin's error, a
KeyboardInterrupt landing anywhere, even the instant the call returns a
grant -- reaches ``abandon(p, slot)``, which gives back what this begin left
in that slot and nothing older.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable

from .. import _args, _ft
from .._base import DomainBase, JobInfo, Tracked
from ..enums import AgentJob, AsyncJob, Job, JobOperation, JobType
from ..errors import NoDomain
from ..guards import JobGuard, exit_failed
from . import aio as _aio
from .asyncjob import AsyncJobCalls
from .binding import AGENT_JOB_OK as _AGENT_JOB_OK
from .binding import ASYNC_JOB_OK as _ASYNC_JOB_OK
from .binding import JOB_OK as _JOB_OK
from .binding import (
    AGENT_SLOT,
    ASYNC_SLOT,
    NULL,
    SYNC_SLOT,
    WAIT_SLICE,
    abandon,
    c_string,
    c_timeout,
    job_fields,
    last_error,
    lib,
    run_begin,
    run_nowait,
    settle,
)
from .binding import c_api as _c_api
from .migration import MigrationCalls

_begin_job = lib.mj_begin_job
_end_job = lib.mj_end_job
_DEAD_U64 = lib.MJ_DEAD_U64
_NO_DOMAIN = lib.MJ_ERR_NO_DOMAIN
# value -> member without EnumMeta.__call__ (~300 ns) on every property read
_JOB_OF = {int(m): m for m in Job}
_ASYNC_JOB_OF = {int(m): m for m in AsyncJob}
_JOB_TYPE_OF = {int(m): m for m in JobType}
_AGENT_JOB_OF = {int(m): m for m in AgentJob}
#: begin_agent_job(kind) with no api and no timeout, in one argument
_QUICK_AGENT_BEGIN = {AgentJob.QUERY: lib.mj_begin_agent_query_job,
                      AgentJob.MODIFY: lib.mj_begin_agent_modify_job}

#: begin_job(kind) with no api and no timeout, in one argument (see migjob.h)
_QUICK_BEGIN = {
    kind: getattr(lib, f"mj_begin_{kind.name.lower()}_job")
    for kind in (Job.QUERY, Job.DESTROY, Job.SUSPEND, Job.MODIFY, Job.ABORT,
                 Job.MIGRATION_OP)
}
# free-threaded builds: begin_job hands the interpreter no object whose
# reference count other threads change too (pymigjob/_ft.py says how)
_JOB_INT = {m: m._value_ for m in Job}
_QUICK_JOBS = tuple(_QUICK_BEGIN.get(Job(v)) for v in range(max(Job) + 1))
_FIRST_WAIT: float = 0 if _ft.FREE_THREADED else WAIT_SLICE




def _read(value: int) -> int:
    """An int job getter's result: -1 is a dead domain (NO_DOMAIN is set)."""
    if value < 0:
        raise last_error()
    return value


class QuickJobGuard:
    """`with dom.job(kind):` with no api and no timeout: one C call in, one
    out.  It keeps no state between uses, so a domain reuses one per kind
    from any thread."""

    __slots__ = ("_dom", "_p", "_begin")

    def __init__(self, dom: Domain, begin: Callable[[Any], int]) -> None:
        self._dom = dom
        self._p = dom._p
        self._begin = begin

    def __enter__(self) -> Domain:
        p = self._p
        try:
            rc = self._begin(p)
            if rc:
                settle(rc)
        except BaseException:
            abandon(p, SYNC_SLOT)
            raise
        return self._dom

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        if _end_job(self._p) < 0:
            failure = last_error()
            if exc is None:
                raise failure
            exit_failed(exc, failure, "end_job()")  # the block's exception goes on


class Domain(AsyncJobCalls, MigrationCalls, DomainBase):
    """A handle on a domain.  Handles never count in `refs`; a handle whose
    domain has died (refs reached 0) raises NoDomain when used."""

    __slots__ = ("_p", "_name", "_quick_guards", "_cleanups", "__weakref__")

    def __init__(self, pointer: Any, name: str) -> None:
        """`pointer` is binding.new_domain's: its destructor drops this
        handle's pin."""
        self._p = pointer
        self._name = name
        self._quick_guards: dict[int, QuickJobGuard] | None = None
        if _ft.FREE_THREADED:  # (see _ft: freed by the collector there)
            _ft.defer((pointer,))

    # ---- read-only state --------------------------------------------------

    # each getter is one C call: on a dead domain it returns a sentinel and
    # sets the NO_DOMAIN error

    @property
    def refs(self) -> int:
        return lib.mj_domain_refs(self._p)

    @property
    def alive(self) -> bool:
        return lib.mj_domain_alive(self._p)

    @property
    def active_job(self) -> Job:
        return _JOB_OF[_read(lib.mj_domain_active_job(self._p))]

    @property
    def async_job(self) -> AsyncJob:
        return _ASYNC_JOB_OF[_read(lib.mj_domain_async_job(self._p))]

    @property
    def phase(self) -> int:
        return _read(lib.mj_domain_phase(self._p))

    @property
    def mask(self) -> int:
        return self._read_u64(lib.mj_domain_mask(self._p))

    @property
    def jobs_queued(self) -> int:
        return _read(lib.mj_domain_jobs_queued(self._p))

    @property
    def owner_api(self) -> str | None:
        return self._read_api(lib.mj_domain_owner_api(self._p))

    @property
    def async_owner_api(self) -> str | None:
        return self._read_api(lib.mj_domain_async_owner_api(self._p))

    @property
    def owner_thread(self) -> int:
        return self._read_u64(lib.mj_domain_owner_thread(self._p))

    @property
    def async_owner_thread(self) -> int:
        return self._read_u64(lib.mj_domain_async_owner_thread(self._p))

    @property
    def agent_job(self) -> AgentJob:
        return _AGENT_JOB_OF[_read(lib.mj_domain_agent_job(self._p))]

    @property
    def agent_owner_api(self) -> str | None:
        return self._read_api(lib.mj_domain_agent_owner_api(self._p))

    @property
    def agent_owner_thread(self) -> int:
        return self._read_u64(lib.mj_domain_agent_owner_thread(self._p))

    @property
    def uuid(self) -> str | None:
        """libvirt's textual uuid (lower case), or None when added without one."""
        return c_string(lib.mj_domain_uuid(self._p))

    @property
    def job_info(self) -> JobInfo:
        p = self._p
        info_type = _read(lib.mj_domain_job_info_type(p))
        elapsed = lib.mj_domain_job_elapsed(p)
        if elapsed < 0:
            raise last_error()
        return JobInfo(_JOB_TYPE_OF[info_type], elapsed)

    @property
    def abort_requested(self) -> bool:
        return _read(lib.mj_domain_abort_requested(self._p)) == 1

    # MJ_DEAD_U64 is also a possible mask (all ones) and NULL is "no owner
    # API" of a live domain: only then is alive asked too.  (The domain may
    # die in between, after a good read: then it is gone, with no C error.)

    def _read_u64(self, value: int) -> int:
        if value == _DEAD_U64 and not lib.mj_domain_alive(self._p):
            raise self._gone()
        return value

    def _read_api(self, value: Any) -> str | None:
        if value == NULL:
            if not lib.mj_domain_alive(self._p):
                raise self._gone()
            return None
        return c_string(value)

    def _gone(self) -> Exception:
        """The getter's NO_DOMAIN error, taken off the stack so that it
        cannot be read for another call's; none when the domain died just
        after a good read."""
        if lib.mj_last_error_code() == _NO_DOMAIN:
            return last_error()
        uuid = self.uuid
        if uuid is not None:
            return NoDomain(f"no domain with matching uuid '{uuid}' ({self._name})")
        return NoDomain(f"no domain with matching name '{self._name}'")

    def _job_fields(self) -> tuple[int, int, int, str | None]:
        return job_fields(self._p)

    # ---- references --------------------------------------------------------

    def ref(self) -> int:
        refs = lib.mj_domain_ref(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def unref(self) -> int:
        refs = lib.mj_domain_unref(self._p)
        if refs < 0:
            raise last_error()
        return refs

    # ---- sync, async and nested jobs --------------------------------------

    def begin_job(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None, nowait: bool = False) -> bool:
        if api is None and timeout is None and nowait is False and job.__class__ in _JOB_OK:
            value = _JOB_INT.get(job)  # (dict.get of a function would count it)
            quick = None if value is None else _QUICK_JOBS[value]
            if quick is not None:  # the hot path: one C call of one argument
                p = self._p
                try:
                    rc = quick(p)
                    if rc:
                        settle(rc)
                except BaseException:
                    abandon(p, SYNC_SLOT)
                    raise
                return True
        # binding.c_args' checks, inline (no frame more on begin_job)
        if job.__class__ not in _JOB_OK:
            _args.kind_type(job, Job, "job")
        c_api = _c_api(api)
        c_to = -1 if timeout is None else _args.timeout(timeout)  # (no float: see _ft)
        if nowait is not False and _args.flag(nowait, "nowait"):
            _args.c_int_kind(job, Job, "job")
            return run_nowait(lib.mj_begin_job_nowait, self._p, SYNC_SLOT, job, c_api)
        _args.c_int_kind(job, Job, "job")
        p = self._p
        try:
            rc = _begin_job(p, job, c_api, c_to, _FIRST_WAIT)
            if rc:
                settle(rc)
        except BaseException:
            abandon(p, SYNC_SLOT)
            raise
        return True

    def end_job(self) -> int:
        refs = _end_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def begin_async_job(self, async_job: AsyncJob | int, api: str | None = None,
                        timeout: float | None = None, flags: int = 0, *,
                        operation: JobOperation | int | None = None) -> bool:
        """BeginAsyncJob with libvirt's apiFlags (`flags`, kept until the job
        ends) and the job data's operation (None: the kind's own)."""
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        c_flags = flags if flags.__class__ is int and 0 <= flags < 2**32 \
            else _args.api_flags(flags)
        c_op = -1 if operation is None else _args.enum_value(JobOperation, operation,
                                                               "operation")
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        return run_begin(lib.mj_begin_async_job_flags, self._p, ASYNC_SLOT, async_job,
                         c_api, c_to, WAIT_SLICE, c_flags, c_op)

    def end_async_job(self, error: str | None = None) -> int:
        """EndAsyncJob; `error` makes the completed job data FAILED
        (CANCELED after an abort request)."""
        text = _args.error_arg(error)
        refs = lib.mj_end_async_job_error(self._p,
                                          NULL if text is None else text.encode())
        if refs < 0:
            raise last_error()
        return refs

    def set_async_job_mask(self, mask: int) -> None:
        if lib.mj_set_async_job_mask(self._p, _args.mask(mask)) < 0:
            raise last_error()

    def begin_nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                         timeout: float | None = None) -> bool:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        return run_begin(lib.mj_begin_nested_job, self._p, SYNC_SLOT, async_job, c_api, c_to,
                         WAIT_SLICE)

    def end_nested_job(self) -> int:
        refs = lib.mj_end_nested_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    # ---- agent jobs ---------------------------------------------------------

    def begin_agent_job(self, agent_job: AgentJob | int, api: str | None = None,
                        timeout: float | None = None, nowait: bool = False) -> bool:
        """The agent slot: waits for nothing but another agent job (not for
        the sync slot, not for the mask); counts in jobs_queued and
        max_queued.  `nowait`: False instead of waiting."""
        if api is None and timeout is None and nowait is False and \
                agent_job.__class__ in _AGENT_JOB_OK:
            quick = _QUICK_AGENT_BEGIN.get(agent_job)
            if quick is not None:  # one C call of one argument, as begin_job's
                p = self._p
                try:
                    rc = quick(p)
                    if rc:
                        settle(rc)
                except BaseException:
                    abandon(p, AGENT_SLOT)
                    raise
                return True
        if agent_job.__class__ not in _AGENT_JOB_OK:
            _args.kind_type(agent_job, AgentJob, "agent_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        nowait = _args.flag(nowait, "nowait")
        _args.c_int_kind(agent_job, AgentJob, "agent_job")
        if nowait:
            return run_nowait(lib.mj_begin_agent_job_nowait, self._p, AGENT_SLOT, agent_job,
                              c_api)
        return run_begin(lib.mj_begin_agent_job, self._p, AGENT_SLOT, agent_job, c_api, c_to,
                         WAIT_SLICE)

    def end_agent_job(self) -> int:
        """Never saves status: agent jobs are not tracked."""
        refs = lib.mj_end_agent_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    # ---- abort ------------------------------------------------------------

    def abort_job(self, api: str | None = None, timeout: float | None = None) -> None:
        """virDomainAbortJob: take an ABORT job, flag the async job, end it.
        The core applies the abort the moment the ABORT job is granted, so
        the caller never holds it, interrupted or not."""
        run_begin(lib.mj_abort_job, self._p, SYNC_SLOT, _c_api(api), c_timeout(timeout),
                  WAIT_SLICE)

    def check_abort(self) -> None:
        if lib.mj_check_abort(self._p) < 0:
            raise last_error()

    # ---- context managers ---------------------------------------------------

    def job(self, job: Job | int, api: str | None = None,
            timeout: float | None = None) -> JobGuard | QuickJobGuard:
        if api is None and timeout is None and job.__class__ in _JOB_OK:
            # the common case: one stateless guard per kind, reused
            guards = self._quick_guards
            if guards is not None:
                guard = guards.get(job)
                if guard is not None:
                    return guard
            quick = _QUICK_BEGIN.get(job)
            if quick is not None:
                if guards is None:
                    guards = self._quick_guards = {}
                guard = guards[job] = QuickJobGuard(self, quick)
                return guard
        return JobGuard(self, job, api, timeout)

    # ---- waiting from asyncio (pymigjob._c.aio) -----------------------------

    def begin_job_async(self, job: Job | int, api: str | None = None,
                        timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_job_async(job)`: begin_job for a coroutine.  It waits
        in the same FIFO queue without blocking the event loop or using a
        thread; cancelled, it holds nothing.  Arguments are checked when awaited."""
        return _aio.begin(_begin_job, self._p, job, api, timeout, Job, "job", SYNC_SLOT)

    def begin_async_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                              timeout: float | None = None, flags: int = 0) -> _aio.Begin:
        """`await dom.begin_async_job_async(async_job)` (see begin_job_async)."""
        if flags.__class__ is int and flags == 0:
            return _aio.begin(lib.mj_begin_async_job, self._p, async_job, api, timeout,
                              AsyncJob, "async_job", ASYNC_SLOT)
        return self._begin_async_job_flags_async(async_job, api, timeout, flags)

    def begin_agent_job_async(self, agent_job: AgentJob | int, api: str | None = None,
                              timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_agent_job_async(agent_job)` (see begin_job_async)."""
        return _aio.begin(lib.mj_begin_agent_job, self._p, agent_job, api, timeout,
                          AgentJob, "agent_job", AGENT_SLOT)

    def begin_nested_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                               timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_nested_job_async(async_job)` (see begin_job_async)."""
        return _aio.begin(lib.mj_begin_nested_job, self._p, async_job, api, timeout,
                          AsyncJob, "async_job", SYNC_SLOT)

    def abort_job_async(self, api: str | None = None,
                        timeout: float | None = None) -> _aio.Begin:
        """`await dom.abort_job_async()`: abort_job for a coroutine; the abort
        is applied the moment the ABORT job is granted (see begin_job_async)."""
        return _aio.begin(lib.mj_abort_job, self._p, 0, api, timeout, None, "", SYNC_SLOT)


class TrackedDomain(Tracked, Domain):
    """A domain of a driver with a tracker (see pymigjob._base.Tracked)."""

    __slots__ = ("_track",)


_ft.defer_globals(globals())  # free-threaded builds: see _ft
