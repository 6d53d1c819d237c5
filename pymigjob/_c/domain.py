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

import logging
from types import TracebackType
from typing import Any, Callable

from .. import _args, _ft
from .._base import DomainBase, JobInfo, Tracked
from ..enums import AsyncJob, Job, JobType, Phase
from ..errors import NoDomain
from ..guards import JobGuard, exit_failed
from . import aio as _aio
from .binding import ASYNC_JOB_OK as _ASYNC_JOB_OK
from .binding import JOB_OK as _JOB_OK
from .binding import (
    ASYNC_SLOT,
    NULL,
    SYNC_SLOT,
    WAIT_SLICE,
    abandon,
    c_string,
    c_args,
    c_timeout,
    job_fields,
    last_error,
    lib,
    settle,
    take_error,
)
from .binding import c_api as _c_api

log = logging.getLogger("pymigjob")

_begin_job = lib.mj_begin_job
_end_job = lib.mj_end_job
_PHASE_SET = lib.MJ_PHASE_SET
_PHASE_NO_JOB = lib.MJ_PHASE_NO_JOB
_PHASE_BACKWARDS = lib.MJ_PHASE_BACKWARDS
_DEAD_U64 = lib.MJ_DEAD_U64
_NO_DOMAIN = lib.MJ_ERR_NO_DOMAIN
# value -> member without EnumMeta.__call__ (~300 ns) on every property read
_JOB_OF = {int(m): m for m in Job}
_ASYNC_JOB_OF = {int(m): m for m in AsyncJob}
_JOB_TYPE_OF = {int(m): m for m in JobType}

#: begin_job(kind) with no api and no timeout, in one argument (see migjob.h)
_QUICK_BEGIN = {
    kind: getattr(lib, f"mj_begin_{kind.name.lower()}_job")
    for kind in (Job.QUERY, Job.DESTROY, Job.SUSPEND, Job.MODIFY, Job.ABORT,
                 Job.MIGRATION_OP)
}

# ---- free-threaded builds (see _ft) ------------------------------------------
# Two cores that change one object's reference count take turns on its cache
# line, so begin_job's paths hand the interpreter only objects with no count
# to change: immortal small ints, and deferred objects loaded from a tuple or
# a global (a dict lookup's result is counted, whatever it is).  A Job member
# or a plain int -> its int (_JOB_INT, immortal) -> _QUICK_JOBS[int], the
# one-argument begin.  Floats are never immortal in imported code and cannot
# be deferred, so with an API name the "no timeout" goes as the int -1 and
# the first wait slice as the int 0 (on free-threaded builds only): the
# begin returns WAITING at once instead of after one slice, and
# binding.settle waits in slices as before; the semantics are the same.
_JOB_INT = {m: m._value_ for m in Job}
_QUICK_JOBS = tuple(_QUICK_BEGIN.get(Job(v)) for v in range(max(Job) + 1))
_FIRST_WAIT: float = 0 if _ft.FREE_THREADED else WAIT_SLICE
#: free-threaded builds defer each handle's pointer (Domain.__init__)
_DEFER_POINTER: bool = _ft.FREE_THREADED


def _run_begin(begin: Callable[..., int], p: Any, slot: bool, *args: Any) -> None:
    """A blocking C begin on `p`, to its end: held, or its error raised.
    Whatever escapes gives back what the begin left in `slot` (see the
    module's docstring).  (begin_job inlines this: the hot path.)"""
    try:
        rc = begin(p, *args)
        if rc:
            settle(rc)
    except BaseException:
        abandon(p, slot)
        raise


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


class Domain(DomainBase):
    """A handle on a domain.  Handles never count in `refs`; a handle whose
    domain has died (refs reached 0) raises NoDomain when used."""

    __slots__ = ("_p", "_name", "_quick_guards", "__weakref__")

    def __init__(self, pointer: Any, name: str) -> None:
        """`pointer` is binding.new_domain's: its destructor drops this
        handle's pin."""
        self._p = pointer
        self._name = name
        self._quick_guards: dict[int, QuickJobGuard] | None = None
        if _DEFER_POINTER:
            # every call loads self._p, and the reference counts of two
            # handles' pointers that the allocator put side by side share a
            # cache line: two threads on their own domains took turns on it.
            # Deferred, no load counts it.  The cost: a dropped handle's
            # pointer, and its pin on the C domain's memory, goes at the next
            # run of the cyclic collector instead of at once (refs, and so
            # the domain's life, are not affected)
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
                  timeout: float | None = None) -> None:
        if api is None and timeout is None and job.__class__ in _JOB_OK:
            value = _JOB_INT.get(job)  # (see _JOB_INT: no dict.get of a function)
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
                return
        # binding.c_args' checks, inline (no frame more on begin_job)
        if job.__class__ not in _JOB_OK:
            _args.kind_type(job, Job, "job")
        c_api = _c_api(api)
        c_to = -1 if timeout is None else _args.timeout(timeout)  # (see _JOB_INT)
        _args.c_int_kind(job, Job, "job")
        p = self._p
        try:
            rc = _begin_job(p, job, c_api, c_to, _FIRST_WAIT)
            if rc:
                settle(rc)
        except BaseException:
            abandon(p, SYNC_SLOT)
            raise

    def end_job(self) -> int:
        refs = _end_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def begin_async_job(self, async_job: AsyncJob | int, api: str | None = None,
                        timeout: float | None = None) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        _run_begin(lib.mj_begin_async_job, self._p, ASYNC_SLOT, async_job, c_api, c_to,
                   WAIT_SLICE)

    def end_async_job(self) -> int:
        refs = lib.mj_end_async_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def set_async_job_mask(self, mask: int) -> None:
        if lib.mj_set_async_job_mask(self._p, _args.mask(mask)) < 0:
            raise last_error()

    def begin_nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                         timeout: float | None = None) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        _run_begin(lib.mj_begin_nested_job, self._p, SYNC_SLOT, async_job, c_api, c_to,
                   WAIT_SLICE)

    def end_nested_job(self) -> int:
        refs = lib.mj_end_nested_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    # ---- the seed's migration helpers --------------------------------------

    def migration_job_start(self, async_job: AsyncJob | int, mask: int | None = None,
                            api: str | None = None, timeout: float | None = None) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        if mask is not None:
            mask = _args.mask(mask, "an int or None")
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        _run_begin(lib.mj_migration_job_start, self._p, ASYNC_SLOT, async_job, c_api, c_to,
                   WAIT_SLICE, mask is not None, mask or 0)

    def migration_job_set_phase(self, phase: int, api: str | None = None) -> bool:
        return self._enter_phase(lib.mj_migration_job_set_phase, phase, api)

    def migration_job_start_phase(self, phase: int, api: str | None = None) -> bool:
        return self._enter_phase(lib.mj_migration_job_start_phase, phase, api)

    def _enter_phase(self, call: Callable[[Any, int, Any], int], phase: int,
                     api: str | None) -> bool:
        """SetPhase or StartPhase (which also takes this API's reference)."""
        if phase.__class__ is Phase:  # a member: its type and range are right
            c_api = _c_api(api)
        else:  # type, api, then the C int range: the blocking calls' order
            _args.kind_type(phase, Phase, "phase")
            c_api = _c_api(api)
            _args.c_int_kind(phase, Phase, "phase")
        rc = call(self._p, phase, c_api)
        if rc == _PHASE_SET:
            return True
        if rc == _PHASE_NO_JOB:
            return False
        if rc == _PHASE_BACKWARDS:  # refused; the seed only logs it
            log.error("%s", take_error()[1])
            return False
        raise last_error()

    def migration_job_claim_parked(self, async_job: AsyncJob | int, phase: int,
                                   new_phase: int, api: str | None = None) -> bool:
        """Atomically: if the async job is parked (no owner thread) in
        `phase`, start `new_phase` as migration_job_start_phase would (a
        close callback's way in, with no race against the next API)."""
        for value, cls, what in ((async_job, AsyncJob, "async_job"), (phase, Phase, "phase"),
                                 (new_phase, Phase, "new_phase")):
            _args.kind_type(value, cls, what)
        c_api = _c_api(api)
        if not _args.in_c_int(async_job, phase, new_phase):
            raise ValueError("async_job or phase out of range")
        rc = lib.mj_migration_job_claim_parked(self._p, async_job, phase, new_phase, c_api)
        if rc < 0:
            raise last_error()
        return bool(rc)

    def migration_job_continue(self) -> int:
        refs = lib.mj_migration_job_continue(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def migration_job_is_active(self, async_job: AsyncJob | int) -> bool:
        """Never raises: anything but an AsyncJob or a plain int (a member of
        another enum included) is not an active async job."""
        if not _args.is_kind(async_job, AsyncJob) or not _args.in_c_int(async_job):
            return False
        return bool(lib.mj_migration_job_is_active(self._p, async_job))

    def check_migration_job(self, async_job: AsyncJob | int) -> None:
        if async_job.__class__ is not AsyncJob:  # a member is in range
            _args.kind_type(async_job, AsyncJob, "async_job")
            _args.c_int_kind(async_job, AsyncJob, "async_job")
        if lib.mj_check_migration_job(self._p, async_job) < 0:
            raise last_error()

    def migration_job_finish(self) -> int:
        refs = lib.mj_migration_job_finish(self._p)
        if refs < 0:
            raise last_error()
        return refs

    # ---- abort ------------------------------------------------------------

    def abort_job(self, api: str | None = None, timeout: float | None = None) -> None:
        """virDomainAbortJob: take an ABORT job, flag the async job, end it.
        The core applies the abort the moment the ABORT job is granted, so
        the caller never holds it, interrupted or not."""
        _run_begin(lib.mj_abort_job, self._p, SYNC_SLOT, _c_api(api), c_timeout(timeout),
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
                              timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_async_job_async(async_job)` (see begin_job_async)."""
        return _aio.begin(lib.mj_begin_async_job, self._p, async_job, api, timeout,
                          AsyncJob, "async_job", ASYNC_SLOT)

    def begin_nested_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                               timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_nested_job_async(async_job)` (see begin_job_async)."""
        return _aio.begin(lib.mj_begin_nested_job, self._p, async_job, api, timeout,
                          AsyncJob, "async_job", SYNC_SLOT)

    async def migration_job_start_async(self, async_job: AsyncJob | int,
                                        mask: int | None = None, api: str | None = None,
                                        timeout: float | None = None) -> None:
        """`await dom.migration_job_start_async(async_job)` (see begin_job_async)."""
        mask = c_args(async_job, _ASYNC_JOB_OK, AsyncJob, "async_job", api, timeout,
                      mask)[2]
        await _aio.begin(lib.mj_migration_job_start, self._p, async_job, api, timeout,
                         AsyncJob, "async_job", ASYNC_SLOT, (mask is not None, mask or 0))

    def abort_job_async(self, api: str | None = None,
                        timeout: float | None = None) -> _aio.Begin:
        """`await dom.abort_job_async()`: abort_job for a coroutine; the abort
        is applied the moment the ABORT job is granted (see begin_job_async)."""
        return _aio.begin(lib.mj_abort_job, self._p, 0, api, timeout, None, "", SYNC_SLOT)


class TrackedDomain(Tracked, Domain):
    """A domain of a driver with a tracker (see pymigjob._base.Tracked)."""

    __slots__ = ("_track",)


# free-threaded builds: deferred reference counts for this module's cffi
# functions and tables (see _ft; nothing elsewhere)
_ft.defer_globals(globals())
