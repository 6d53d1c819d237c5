"""Domain, in pure Python: the public methods of api.md over the twin's core
(pymigjob/pure/core.py), with the same checks, results, errors and messages
as the C-backed Domain (pymigjob/_c/domain.py).  What both Domains share is
pymigjob._base.DomainBase's."""

from __future__ import annotations

import logging

from .. import _args
from .. import _constants as T
from .._base import DomainBase, JobInfo, Tracked
from ..enums import AgentJob, AsyncJob, Job, JobOperation, JobType, Phase
from ..errors import InternalError, InvalidArgument, OperationAborted, OperationInvalid
from . import aio as _aio
from .asyncjob import AsyncJobCalls
from .core import (
    _ABORT,
    _ASYNC,
    _ASYNC_LAST,
    _DESTROY_BIT,
    _INFO_UNBOUNDED,
    _JOB_LAST,
    _MIGRATION_IN,
    _NESTED,
    _NONE,
    _PHASE_LAST,
    _AGENT_LAST,
    Core,
    _kind,
    _kind_range,
)
from .waiter import _AGENT_SLOT, _ASYNC_SLOT, _NESTED_SLOT, _SYNC, _get_ident, _monotonic

log = logging.getLogger("pymigjob")


class Domain(AsyncJobCalls, DomainBase, Core):
    """A handle on a domain.  Handles never count in `refs`; a handle whose
    domain has died (refs reached 0) raises NoDomain when used."""

    __slots__ = ("_cleanups",)

    @property
    def refs(self) -> int:
        return self._refs

    @property
    def alive(self) -> bool:
        return self._refs > 0

    @property
    def active_job(self) -> Job:
        self._check_alive()
        return Job(self._active)

    @property
    def async_job(self) -> AsyncJob:
        self._check_alive()
        return AsyncJob(self._async_job)

    @property
    def phase(self) -> int:
        self._check_alive()
        return self._phase

    @property
    def mask(self) -> int:
        self._check_alive()
        return self._mask

    @property
    def jobs_queued(self) -> int:
        self._check_alive()
        return self._jobs_queued

    @property
    def owner_api(self) -> str | None:
        self._check_alive()
        return self._owner_api

    @property
    def async_owner_api(self) -> str | None:
        self._check_alive()
        return self._async_owner_api

    @property
    def owner_thread(self) -> int:
        self._check_alive()
        return self._owner

    @property
    def async_owner_thread(self) -> int:
        self._check_alive()
        return self._async_owner

    @property
    def agent_job(self) -> AgentJob:
        self._check_alive()
        return AgentJob(self._agent)

    @property
    def agent_owner_api(self) -> str | None:
        self._check_alive()
        return self._agent_owner_api

    @property
    def agent_owner_thread(self) -> int:
        self._check_alive()
        return self._agent_owner

    @property
    def uuid(self) -> str | None:
        """libvirt's textual uuid (lower case), or None when added without one."""
        return self._uuid

    @property
    def job_info(self) -> JobInfo:
        with self._lock:
            self._check_alive()
            info_type, async_job, started = (self._info_type_locked(), self._async_job,
                                             self._async_started)
        return JobInfo(JobType(info_type), _monotonic() - started if async_job else 0.0)

    @property
    def abort_requested(self) -> bool:
        self._check_alive()
        return self._abort_requested

    def ref(self) -> int:
        with self._lock:
            self._check_alive()
            self._check_ref_room_locked()
            self._refs += 1
            return self._refs

    def unref(self) -> int:
        with self._lock:
            left = self._unref_locked()
        if left < 0:
            raise self._dead()
        return left

    def begin_job(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None, nowait: bool = False) -> bool:
        # the checks of _args, with the common cases inline: the hot path
        # (begin_async_job and begin_nested_job call _args plainly)
        if job.__class__ is not int:
            _args.kind_type(job, Job, "job")
            job = int(job)
        if api is not None:
            api = _args.name(api, "api")
        seconds = self._default_timeout if timeout is None else _args.timeout(timeout)
        if nowait is not False:
            nowait = _args.flag(nowait, "nowait")
        if not _NONE < job < _ASYNC:
            _kind_range(job, _JOB_LAST, Job, "job")
            raise InternalError("Attempt to start invalid job")
        return self._begin(_SYNC, job, api, seconds, nowait=nowait)

    def end_job(self) -> int:
        """Ends any sync job, a nested one included."""
        with self._lock:
            self._check_alive()
            if self._active == _NONE:
                raise OperationInvalid("no job is active on the domain")
            self._release_sync_locked()
            left = self._unref_locked()
        return left

    def begin_async_job(self, async_job: AsyncJob | int, api: str | None = None,
                        timeout: float | None = None, flags: int = 0, *,
                        operation: JobOperation | int | None = None) -> bool:
        job, api, seconds, api_flags, op = self._async_begin_args(async_job, api, timeout,
                                                                  flags, operation)
        return self._begin(_ASYNC_SLOT, job, api, seconds, api_flags=api_flags,
                           operation=op)

    def _async_begin_args(self, async_job: object, api: object, timeout: object,
                          flags: object, operation: object
                          ) -> tuple[int, str | None, float, int, int]:
        """begin_async_job's (and its coroutine's) arguments, in the C-backed
        order: the kind's type, api, timeout, flags, operation, the kind's range."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        api_flags = _args.api_flags(flags)
        op = -1 if operation is None else _args.enum_value(JobOperation, operation,
                                                            "operation")
        job = _kind_range(async_job, _ASYNC_LAST, AsyncJob,  # type: ignore[arg-type]
                          "async job")
        if job == _NONE:
            raise InternalError("Attempt to start invalid job")
        return job, api, seconds, api_flags, op

    def end_async_job(self, error: str | None = None) -> int:
        return self._end_async_job(_args.error_arg(error))

    def _end_async_job(self, error: str | None) -> int:
        """EndAsyncJob (also migration_job_finish's), with its job data's outcome."""
        with self._lock:
            self._check_alive()
            if self._async_job == _NONE:
                raise OperationInvalid("no job is active on the domain")
            self._complete_locked(error)
            self._release_async_locked()
            left = self._unref_locked()
        return left

    def set_async_job_mask(self, mask: int) -> None:
        mask = _args.mask(mask, "an int")
        with self._lock:
            self._check_alive()
            if self._async_job != _NONE:
                self._mask = mask | _DESTROY_BIT
                self._dispatch()            # a wider mask lets waiters in

    def begin_nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                         timeout: float | None = None) -> bool:
        return self._begin(_NESTED_SLOT, *self._async_args(async_job, api, timeout, False))

    def end_nested_job(self) -> int:
        with self._lock:
            self._check_alive()
            if self._active != _NESTED:
                raise OperationInvalid("no nested job is active on the domain")
            self._release_sync_locked()
            return self._unref_locked()

    def migration_job_start(self, async_job: AsyncJob | int, mask: int | None = None,
                            api: str | None = None, timeout: float | None = None,
                            flags: int = 0) -> bool:
        """qemuMigrationJobStart: the async job and, with its grant, the
        mask (MIGRATION_IN: 0x42; other kinds: the outgoing one); a
        migration kind fails at once while a migration runs."""
        args = self._start_args(async_job, mask, api, timeout, flags)
        return self._begin(_ASYNC_SLOT, *args[:6], api_flags=args[6],
                           migration_start=args[0] in T.MIGRATION_JOBS)

    def begin_agent_job(self, agent_job: AgentJob | int, api: str | None = None,
                        timeout: float | None = None, nowait: bool = False) -> bool:
        """The agent slot: waits for nothing but another agent job (not for
        the sync slot, not for the mask); counts in jobs_queued and
        max_queued.  `nowait`: False instead of waiting."""
        kind, api, seconds, nowait = self._agent_args(agent_job, api, timeout, nowait)
        return self._begin(_AGENT_SLOT, kind, api, seconds, nowait=nowait)

    def end_agent_job(self) -> int:
        """Never saves status: agent jobs are not tracked."""
        with self._lock:
            self._check_alive()
            if self._agent == _NONE:
                raise OperationInvalid("no agent job is active on the domain")
            self._release_agent_locked()
            return self._unref_locked()

    def _set_phase(self, phase: int, api: str | None, take_ref: bool) -> bool:
        """qemuMigrationJobSetPhase (StartPhase first takes a reference)."""
        with self._lock:
            self._check_alive()
            if take_ref:
                self._check_ref_room_locked()
                self._refs += 1             # this API's own, even if refused
            if self._async_job == _NONE:
                return False
            if phase >= self._phase or phase >= T.MJ_PHASE_POSTCOPY_FAILED:
                # only a phase that is set names its API; a refusal changes nothing
                self._phase = phase
                self._async_owner = _get_ident()
                if api is not None:
                    self._async_owner_api = api
                return True
            text = (f"migration protocol going backwards {T.PHASE_LABELS[self._phase]} "
                    f"=> {T.PHASE_LABELS[phase]}")
            if self._strict:
                raise InternalError(text)
        # the seed only logs it, and the job goes on
        log.error("%s", text)
        return False

    def migration_job_set_phase(self, phase: int, api: str | None = None) -> bool:
        _args.kind_type(phase, Phase, "phase")
        api = _args.api(api)
        phase = _kind_range(phase, _PHASE_LAST, Phase, "migration phase")
        return self._set_phase(phase, api, False)

    def migration_job_start_phase(self, phase: int, api: str | None = None) -> bool:
        _args.kind_type(phase, Phase, "phase")
        api = _args.api(api)
        phase = _kind_range(phase, _PHASE_LAST, Phase, "migration phase")
        return self._set_phase(phase, api, True)

    def migration_job_claim_parked(self, async_job: AsyncJob | int, phase: int,
                                   new_phase: int, api: str | None = None) -> bool:
        """Atomically: if the async job is parked (no owner thread) in
        `phase`, start `new_phase` as migration_job_start_phase would."""
        for value, cls, what in ((async_job, AsyncJob, "async_job"), (phase, Phase, "phase"),
                                 (new_phase, Phase, "new_phase")):
            _args.kind_type(value, cls, what)
        api = _args.api(api)
        if not _args.in_c_int(async_job, phase, new_phase):
            raise ValueError("async_job or phase out of range")
        if not (0 <= async_job < _ASYNC_LAST and 0 <= phase < _PHASE_LAST):
            raise InvalidArgument(
                f"invalid async job {int(async_job)} or migration phase {int(phase)}")
        if not 0 <= new_phase < _PHASE_LAST:
            raise InvalidArgument(f"invalid migration phase {int(new_phase)}")
        with self._lock:
            self._check_alive()
            if (async_job == _NONE or self._async_job != async_job or self._phase != phase
                    or self._async_owner != 0 or new_phase < phase):
                return False
            self._check_ref_room_locked()
            self._refs += 1                 # StartPhase's reference
            self._phase = int(new_phase)
            self._async_owner = _get_ident()
            if api is not None:
                self._async_owner_api = api
        return True

    def _job_fields(self) -> tuple[int, int, int, str | None]:
        """(active job, async job, phase, owner API of the async job if any,
        else of the sync job), read at one instant."""
        with self._lock:
            self._check_alive()
            owner = self._async_owner_api if self._async_job else self._owner_api
            return self._active, self._async_job, self._phase, owner

    def migration_job_continue(self, cleanup: object = None) -> int:
        """qemuMigrationJobContinue: registers `cleanup` (once; run by
        run_cleanups), parks the job (no owner thread; the owner API stays)
        and gives back a reference."""
        _args.cleanup(cleanup)
        added = self._register_cleanup(cleanup)
        with self._lock:
            self._async_owner = 0
            left = self._unref_locked()
        if left < 0:
            self._unregister_cleanup(added)
            raise self._dead()
        return left

    def migration_job_is_active(self, async_job: AsyncJob | int) -> bool:
        """Never raises: anything but an AsyncJob or a plain int (a member of
        another enum included) is not an active async job."""
        if not _args.is_kind(async_job, AsyncJob):
            return False
        return self._refs > 0 and self._async_job == async_job

    def check_migration_job(self, async_job: AsyncJob | int) -> None:
        async_job = _kind(async_job, _ASYNC_LAST, AsyncJob, "async_job", "async job")
        with self._lock:
            self._check_alive()
            if self._async_job == async_job:
                return
        if async_job == _MIGRATION_IN:
            raise OperationInvalid(f"domain '{self._name}' is not processing incoming migration")
        raise OperationInvalid(f"domain '{self._name}' is not being migrated")

    def migration_job_finish(self, error: str | None = None) -> int:
        return self._end_async_job(_args.error_arg(error))

    def abort_job(self, api: str | None = None, timeout: float | None = None) -> None:
        """virDomainAbortJob: take an ABORT job, flag the async job, end it.
        The abort is applied as soon as the ABORT job is granted, so the
        caller never holds it, interrupted or not."""
        self._begin(_SYNC, _ABORT, _args.api(api), self._timeout(timeout), then_abort=True)

    def check_abort(self) -> None:
        with self._lock:
            self._check_alive()
            if self._async_job != _NONE and self._abort_requested:
                # libvirt's checkpoint records the cancellation in the job data
                self._current.state = T.MJ_JOB_STATE_CANCELED
                raise OperationAborted(
                    f"{T.ASYNC_JOB_LABELS[self._async_job]}: canceled by client")

    def _remove(self) -> int:
        """virDomainObjListRemove: waiters and later begins fail with NoDomain,
        then the list's reference goes.  Refs left."""
        with self._lock:
            if self._removed or self._refs <= 0:
                raise self._dead()
            self._removed = True
            self._fail_waiters_locked(T.MJ_ERR_NO_DOMAIN)
            return self._unref_locked()

    def _cancel_waiters(self, reason: str) -> None:
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = reason
            self._fail_waiters_locked(T.MJ_ERR_OPERATION_ABORTED)

    # ---- each begin's arguments, checked in its order (its coroutine twin's too)

    def _job_args(self, job: object, api: object,
                  timeout: object) -> tuple[int, str | None, float]:
        """begin_job's (which inlines this: the hot path)."""
        _args.kind_type(job, Job, "job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        job = _kind_range(job, _JOB_LAST, Job, "job")  # type: ignore[arg-type]
        if not _NONE < job < _ASYNC:
            raise InternalError("Attempt to start invalid job")
        return job, api, seconds

    def _agent_args(self, agent_job: object, api: object, timeout: object,
                    nowait: object = False) -> tuple[int, str | None, float, bool]:
        """begin_agent_job's."""
        _args.kind_type(agent_job, AgentJob, "agent_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        nowait = _args.flag(nowait, "nowait")
        kind = _kind_range(agent_job, _AGENT_LAST, AgentJob,  # type: ignore[arg-type]
                           "agent job")
        if kind == _NONE:
            raise InternalError("Attempt to start invalid job")
        return kind, api, seconds, nowait

    def _async_args(self, async_job: object, api: object, timeout: object,
                    starts: bool) -> tuple[int, str | None, float]:
        """begin_async_job's (`starts`: NONE is no job to start) and
        begin_nested_job's."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob,  # type: ignore[arg-type]
                                "async job")
        if starts and async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        return async_job, api, seconds

    def _start_args(self, async_job: object, mask: object, api: object, timeout: object,
                    flags: object = 0) -> tuple[int, str | None, float, bool, int, int, int]:
        """migration_job_start's: the job's arguments, with the mask set at
        its grant (given, or the seed's for the kind), job info UNBOUNDED
        and the apiFlags."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        checked = _args.optional_mask(mask)
        api_flags = _args.api_flags(flags)
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob,  # type: ignore[arg-type]
                                "async job")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        if checked is None:
            checked = (T.MJ_MIGRATION_IN_JOB_MASK if async_job == _MIGRATION_IN
                       else T.MJ_MIGRATION_OUT_JOB_MASK)
        return async_job, api, seconds, True, checked, _INFO_UNBOUNDED, api_flags

    # ---- waiting from asyncio (pymigjob.pure.aio) -----------------------------

    async def begin_job_async(self, job: Job | int, api: str | None = None,
                              timeout: float | None = None) -> bool:
        """begin_job for a coroutine: waits in the same FIFO queue without
        blocking the event loop or using a thread.  Cancelled, it holds nothing.
        Arguments are checked when awaited."""
        return await _aio.begin(self, _SYNC, *self._job_args(job, api, timeout))

    async def begin_agent_job_async(self, agent_job: AgentJob | int, api: str | None = None,
                                    timeout: float | None = None) -> bool:
        """begin_agent_job for a coroutine (see begin_job_async)."""
        return await _aio.begin(self, _AGENT_SLOT,
                                *self._agent_args(agent_job, api, timeout)[:3])

    async def begin_async_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                                    timeout: float | None = None, flags: int = 0) -> bool:
        """begin_async_job for a coroutine (see begin_job_async)."""
        job, api, seconds, api_flags, _ = self._async_begin_args(async_job, api, timeout,
                                                                 flags, None)
        return await _aio.begin(self, _ASYNC_SLOT, job, api, seconds, api_flags=api_flags)

    async def begin_nested_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                                     timeout: float | None = None) -> bool:
        """begin_nested_job for a coroutine (see begin_job_async)."""
        return await _aio.begin(self, _NESTED_SLOT, *self._async_args(async_job, api, timeout, False))

    async def migration_job_start_async(self, async_job: AsyncJob | int,
                                        mask: int | None = None, api: str | None = None,
                                        timeout: float | None = None,
                                        flags: int = 0) -> bool:
        """migration_job_start for a coroutine (see begin_job_async)."""
        args = self._start_args(async_job, mask, api, timeout, flags)
        return await _aio.begin(self, _ASYNC_SLOT, *args[:6], api_flags=args[6],
                                migration_start=args[0] in T.MIGRATION_JOBS)

    async def abort_job_async(self, api: str | None = None,
                              timeout: float | None = None) -> None:
        """abort_job for a coroutine (see begin_job_async)."""
        await _aio.begin(self, _SYNC, _ABORT, _args.api(api), self._timeout(timeout),
                         then_abort=True)


class TrackedDomain(Tracked, Domain):
    """A domain of a driver with a tracker (see pymigjob._base.Tracked)."""

    __slots__ = ("_track",)
