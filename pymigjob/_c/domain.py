"""Domain: one libvirt domain object with its job state, one method per
libvirt primitive.  Each operation is one call into the C core."""

from __future__ import annotations

import logging
from enum import Enum
from types import TracebackType
from typing import Any, Callable

from .binding import (
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
    settle,
    take_error,
)
from .binding import c_api as _c_api
from . import aio as _aio
from .._args import bad_kind as _bad_enum
from .._args import c_int_kind as _in_c_int
from .._args import kind_type as _check_kind_type
from ..enums import AsyncJob, Job, JobType, Phase
from .._base import JobInfo
from ..errors import NoDomain
from ..guards import JobAsyncGuard, JobGuard, MigrationGuard, NestedJobGuard, exit_failed
from ..status import JobStatus, status_of

log = logging.getLogger("pymigjob")

_begin_job = lib.mj_begin_job
_DESTROY = lib.MJ_JOB_DESTROY  # the one sync job whose begin and end are persisted
_end_job = lib.mj_end_job
_PHASE_SET = lib.MJ_PHASE_SET
_PHASE_NO_JOB = lib.MJ_PHASE_NO_JOB
_PHASE_BACKWARDS = lib.MJ_PHASE_BACKWARDS
_MASK_LIMIT = 2**64
_DEAD_U64 = lib.MJ_DEAD_U64
_NO_DOMAIN = lib.MJ_ERR_NO_DOMAIN
# value -> member without EnumMeta.__call__ (~300 ns) on every property read
_JOB_OF = {int(m): m for m in Job}
_ASYNC_JOB_OF = {int(m): m for m in AsyncJob}
_JOB_TYPE_OF = {int(m): m for m in JobType}


def _run_begin(begin: Callable[..., int], p: Any, slot: bool, *args: Any) -> None:
    """A blocking C begin on `p`, to its end: held, or its error raised.
    Whatever escapes -- its error, a KeyboardInterrupt landing anywhere,
    even the instant the C call returns a grant -- gives back what the
    begin left in `slot`.  (begin_job inlines this: the hot path.)"""
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


#: per argument, the exact types a kind may have without a closer look: a
#: plain int or the argument's own enum.  The rest are checked (_check_int):
#: cffi would also take anything with __int__ (Decimal('4.9') as 4), and a
#: member of another enum compares equal to this one's of the same value
#: (AsyncJob.MIGRATION_OUT == Job.QUERY), so it is refused, not mixed up.
_JOB_OK = frozenset({int, Job})
_ASYNC_JOB_OK = frozenset({int, AsyncJob})
_PHASE_OK = frozenset({int, Phase})

#: begin_job(kind) with no api and no timeout, in one argument (see migjob.h)
_QUICK_BEGIN = {
    kind: getattr(lib, f"mj_begin_{kind.name.lower()}_job")
    for kind in (Job.QUERY, Job.DESTROY, Job.SUSPEND, Job.MODIFY, Job.ABORT,
                 Job.MIGRATION_OP)
}


def _check_int(value: object, cls: type, what: str) -> None:
    """TypeError unless value is a plain int (or int subclass) or a member of
    cls itself: not a bool, not another enum's member."""
    _check_kind_type(value, cls, what)


class QuickJobGuard:
    """`with dom.job(kind):` with no api and no timeout: one C call in, one
    out.  It keeps no state between uses, so a domain reuses one per kind
    from any thread."""

    __slots__ = ("_dom", "_begin")

    def __init__(self, dom: Domain, begin: Callable[[Any], int]) -> None:
        self._dom = dom
        self._begin = begin

    def __enter__(self) -> Domain:
        dom = self._dom
        p = dom._p
        try:
            rc = self._begin(p)
            if rc:
                settle(rc)
        except BaseException:
            abandon(p, SYNC_SLOT)
            raise
        return dom

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        if _end_job(self._dom._p) < 0:
            failure = last_error()
            if exc is None:
                raise failure
            exit_failed(exc, failure, "end_job()")  # the block's exception goes on


class Domain:
    """A handle on a domain.  Handles never count in `refs`; a handle whose
    domain has died (refs reached 0) raises NoDomain when used."""

    __slots__ = ("_p", "_name", "_driver", "_track", "_quick_guards", "__weakref__")

    def __init__(self, pointer: Any, name: str, driver: Any = None) -> None:
        """`pointer` is an ffi.gc pointer whose destructor drops this handle's
        pin: a C-level destructor, which no signal can interrupt halfway
        (a Python __del__ could be, leaking the pin)."""
        self._p = pointer
        self._name = name
        self._driver = driver
        self._quick_guards: dict[int, QuickJobGuard] | None = None
        # the driver's persistence tracker (pymigjob.persist), None when off
        self._track = getattr(driver, "_tracker", None)

    def __repr__(self) -> str:
        return f"<pymigjob.Domain {self._name!r} refs={self.refs}>"

    # ---- read-only state --------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def refs(self) -> int:
        return lib.mj_domain_refs(self._p)

    @property
    def alive(self) -> bool:
        return lib.mj_domain_alive(self._p)

    # each getter is one C call: on a dead domain it returns a sentinel and
    # sets the NO_DOMAIN error

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
        if job.__class__ in _JOB_OK:
            quick = _QUICK_BEGIN.get(job) if api is None and timeout is None else None
        else:
            _check_int(job, Job, "job")
            quick = None
        p = self._p
        if quick is None:
            c_api = _c_api(api)
            c_to = -1.0 if timeout is None else c_timeout(timeout)
            _in_c_int(job, Job, "job")
        try:
            rc = quick(p) if quick is not None else _begin_job(p, job, c_api, c_to, WAIT_SLICE)
            if rc:
                settle(rc)
        except BaseException:
            abandon(p, SYNC_SLOT)
            raise
        if self._track is not None and job == _DESTROY:
            self._track.changed(self)

    def end_job(self) -> int:
        tracked = self._track is not None and self in self._track.destroying
        refs = _end_job(self._p)
        if refs < 0:
            raise last_error()
        if tracked:
            self._track.changed(self)
        return refs

    def begin_async_job(self, async_job: AsyncJob | int, api: str | None = None,
                        timeout: float | None = None) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _check_int(async_job, AsyncJob, "async_job")
        c_api, c_to = _c_api(api), c_timeout(timeout)
        _in_c_int(async_job, AsyncJob, "async_job")
        _run_begin(lib.mj_begin_async_job, self._p, ASYNC_SLOT, async_job, c_api, c_to,
                   WAIT_SLICE)
        if self._track is not None:
            self._track.changed(self)

    def end_async_job(self) -> int:
        refs = lib.mj_end_async_job(self._p)
        if refs < 0:
            raise last_error()
        if self._track is not None:
            self._track.changed(self)
        return refs

    def set_async_job_mask(self, mask: int) -> None:
        if isinstance(mask, bool) or not isinstance(mask, int):
            raise TypeError(f"mask must be an int, not {type(mask).__name__}")
        if not 0 <= mask < _MASK_LIMIT:
            raise ValueError(f"mask must be in [0, 2**64), not {mask!r}")
        if lib.mj_set_async_job_mask(self._p, mask) < 0:
            raise last_error()

    def begin_nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                         timeout: float | None = None) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _check_int(async_job, AsyncJob, "async_job")
        c_api, c_to = _c_api(api), c_timeout(timeout)
        _in_c_int(async_job, AsyncJob, "async_job")
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
            _check_int(async_job, AsyncJob, "async_job")
        c_api, c_to = _c_api(api), c_timeout(timeout)
        if mask is not None and (isinstance(mask, bool) or not isinstance(mask, int)):
            raise TypeError(f"mask must be an int or None, not {type(mask).__name__}")
        if mask is not None and not 0 <= mask < _MASK_LIMIT:
            raise ValueError(f"mask must be in [0, 2**64), not {mask!r}")
        _in_c_int(async_job, AsyncJob, "async_job")
        _run_begin(lib.mj_migration_job_start, self._p, ASYNC_SLOT, async_job, c_api, c_to,
                   WAIT_SLICE, mask is not None, mask or 0)
        if self._track is not None:
            self._track.changed(self)

    def migration_job_set_phase(self, phase: int, api: str | None = None) -> bool:
        return self._enter_phase(lib.mj_migration_job_set_phase, phase, api)

    def migration_job_start_phase(self, phase: int, api: str | None = None) -> bool:
        return self._enter_phase(lib.mj_migration_job_start_phase, phase, api)

    def _enter_phase(self, call: Callable[[Any, int, Any], int], phase: int,
                     api: str | None) -> bool:
        """SetPhase or StartPhase (which also takes this API's reference)."""
        if phase.__class__ not in _PHASE_OK:
            _check_int(phase, Phase, "phase")
        c_api = _c_api(api)
        try:
            rc = call(self._p, phase, c_api)
        except (TypeError, OverflowError):
            _bad_enum(Phase, phase, "phase")
        try:
            if rc == _PHASE_SET:
                return True
            if rc == _PHASE_NO_JOB:
                return False
            if rc == _PHASE_BACKWARDS:  # refused; the seed only logs it
                log.error("%s", take_error()[1])
                return False
            raise last_error()
        finally:
            if self._track is not None:
                self._track.changed(self)

    def migration_job_claim_parked(self, async_job: AsyncJob | int, phase: int,
                                   new_phase: int, api: str | None = None) -> bool:
        """Atomically: if the async job is parked (no owner thread) in
        `phase`, start `new_phase` as migration_job_start_phase would (a
        close callback's way in, with no race against the next API)."""
        for value, cls, what in ((async_job, AsyncJob, "async_job"), (phase, Phase, "phase"),
                                 (new_phase, Phase, "new_phase")):
            _check_int(value, cls, what)
        try:
            rc = lib.mj_migration_job_claim_parked(self._p, async_job, phase, new_phase,
                                                   _c_api(api))
        except OverflowError:
            raise ValueError("async_job or phase out of range") from None
        if rc < 0:
            raise last_error()
        if rc and self._track is not None:
            self._track.changed(self)
        return bool(rc)

    def _job_fields(self) -> tuple[int, int, int, str | None]:
        """(active job, async job, phase, owner API of the async job if any,
        else of the sync job), read at one instant."""
        return job_fields(self._p)

    def migration_job_continue(self) -> int:
        refs = lib.mj_migration_job_continue(self._p)
        if refs < 0:
            raise last_error()
        if self._track is not None:
            self._track.parked(self)
        return refs

    def migration_job_is_active(self, async_job: AsyncJob | int) -> bool:
        """Never raises: anything but an AsyncJob or a plain int (a member of
        another enum included) is not an active async job."""
        if async_job.__class__ not in _ASYNC_JOB_OK and (
                isinstance(async_job, bool) or not isinstance(async_job, int)
                or isinstance(async_job, Enum)):
            return False
        try:
            return bool(lib.mj_migration_job_is_active(self._p, async_job))
        except OverflowError:
            return False

    def check_migration_job(self, async_job: AsyncJob | int) -> None:
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _check_int(async_job, AsyncJob, "async_job")
        try:
            rc = lib.mj_check_migration_job(self._p, async_job)
        except (TypeError, OverflowError):
            _bad_enum(AsyncJob, async_job, "async_job")
        if rc < 0:
            raise last_error()

    def migration_job_finish(self) -> int:
        refs = lib.mj_migration_job_finish(self._p)
        if refs < 0:
            raise last_error()
        if self._track is not None:
            self._track.changed(self)
        return refs

    # ---- persistence --------------------------------------------------------

    def job_status(self) -> JobStatus:
        """The job state libvirt persists (pymigjob.status.JobStatus)."""
        return status_of(self)

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

    def _check_api(self, api: object) -> None:
        """The TypeError / ValueError a call would give for this api (for a
        guard that checks its arguments before any call touches state)."""
        _c_api(api)

    def job(self, job: Job | int, api: str | None = None,
            timeout: float | None = None) -> JobGuard | QuickJobGuard:
        if api is None and timeout is None and self._track is None \
                and job.__class__ in _JOB_OK:
            # the common case: one stateless guard per kind, reused
            guards = self._quick_guards
            guard = None if guards is None else guards.get(job)
            if guard is not None:
                return guard
            quick = _QUICK_BEGIN.get(job)
            if quick is not None:
                if guards is None:
                    guards = self._quick_guards = {}
                guard = guards[job] = QuickJobGuard(self, quick)
                return guard
        return JobGuard(self, job, api, timeout)

    def nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                   timeout: float | None = None) -> NestedJobGuard:
        return NestedJobGuard(self, async_job, api, timeout)

    def migration(self, async_job: AsyncJob | int, phase: int, api: str | None = None,
                  timeout: float | None = None, mask: int | None = None) -> MigrationGuard:
        """The first API of a migration: start + set phase; continue on exit."""
        return MigrationGuard(self, async_job, phase, api, True, timeout, mask)

    def migration_phase(self, async_job: AsyncJob | int, phase: int,
                        api: str | None = None) -> MigrationGuard:
        """A later API: check active + start phase; continue (or finish) on exit."""
        return MigrationGuard(self, async_job, phase, api, False, None, None)

    # ---- waiting from asyncio (pymigjob.aio) --------------------------------

    def begin_job_async(self, job: Job | int, api: str | None = None,
                        timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_job_async(job)`: begin_job for a coroutine.  It waits
        in the same FIFO queue without blocking the event loop or using a
        thread; cancelled, it holds nothing.  Arguments are checked when awaited."""
        track = self._track
        return _aio.begin(_begin_job, self, job, api, timeout, Job, "job",
                          None if track is None or job != _DESTROY else track.changed,
                          SYNC_SLOT)

    def begin_async_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                              timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_async_job_async(async_job)` (see begin_job_async)."""
        track = self._track
        return _aio.begin(lib.mj_begin_async_job, self, async_job, api, timeout,
                          AsyncJob, "async_job", None if track is None else track.changed,
                          ASYNC_SLOT)

    def begin_nested_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                               timeout: float | None = None) -> _aio.Begin:
        """`await dom.begin_nested_job_async(async_job)` (see begin_job_async)."""
        return _aio.begin(lib.mj_begin_nested_job, self, async_job, api, timeout,
                          AsyncJob, "async_job", None, SYNC_SLOT)

    async def migration_job_start_async(self, async_job: AsyncJob | int,
                                        mask: int | None = None, api: str | None = None,
                                        timeout: float | None = None) -> None:
        """`await dom.migration_job_start_async(async_job)` (see begin_job_async)."""
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _check_int(async_job, AsyncJob, "async_job")
        _c_api(api), c_timeout(timeout)  # checked in the blocking call's order
        if mask is not None and (isinstance(mask, bool) or not isinstance(mask, int)):
            raise TypeError(f"mask must be an int or None, not {type(mask).__name__}")
        if mask is not None and not 0 <= mask < _MASK_LIMIT:
            raise ValueError(f"mask must be in [0, 2**64), not {mask!r}")
        track = self._track
        await _aio.begin(lib.mj_migration_job_start, self, async_job, api, timeout,
                         AsyncJob, "async_job", None if track is None else track.changed,
                         ASYNC_SLOT, (mask is not None, mask or 0))

    def abort_job_async(self, api: str | None = None,
                        timeout: float | None = None) -> _aio.Begin:
        """`await dom.abort_job_async()`: abort_job for a coroutine; the abort
        is applied the moment the ABORT job is granted (see begin_job_async)."""
        return _aio.begin(lib.mj_abort_job, self, 0, api, timeout, None, "", None,
                          SYNC_SLOT)

    def job_async(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None) -> JobAsyncGuard:
        """`async with dom.job_async(Job.MODIFY):` -- begin_job_async ... end_job."""
        return JobAsyncGuard(self, job, api, timeout)
