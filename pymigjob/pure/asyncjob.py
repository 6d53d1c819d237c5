"""The pure twin's libvirt 11 calls on the async job's life: apiFlags, one
migration at a time, park / discard / restore, post-copy and its resume,
job data -- csrc/asyncjob.c, postcopy.c and jobdata.c in Python, with the
same checks, results and messages.  A mixin of pymigjob.pure.domain.Domain,
over the state of pymigjob.pure.core.Core."""

from __future__ import annotations

import time
from typing import Any

from .. import _args
from .. import _constants as T
from ..enums import AsyncJob, JobState, Phase
from ..errors import ArgumentUnsupported, InternalError, OperationInvalid, OperationUnsupported
from ..jobdata import JobData, job_data
from .core import Record, _kind_range
from .waiter import _get_ident, _monotonic

_NONE = 0
_NESTED = T.MJ_JOB_ASYNC_NESTED
_OUT = T.MJ_ASYNC_JOB_MIGRATION_OUT
_IN = T.MJ_ASYNC_JOB_MIGRATION_IN
_POSTCOPY_FAILED = T.MJ_PHASE_POSTCOPY_FAILED
_PERFORM_RESUME = T.MJ_PHASE_PERFORM_RESUME
_FAILED = T.MJ_JOB_STATE_FAILED
_CANCELED = T.MJ_JOB_STATE_CANCELED
_NO_JOB = "no job is active on the domain"


def _c_kind(value: object, cls: type, what: str) -> None:
    """The C-backed side's check before the core: type, then the C int range."""
    if value.__class__ is not cls:
        _args.kind_type(value, cls, what)
        _args.c_int_kind(value, cls, what)  # type: ignore[arg-type]


class AsyncJobCalls:
    """libvirt 11's async job calls over the twin's core (a Core's state)."""

    __slots__ = ()
    _lock: Any
    _name: str

    # ---- state ----------------------------------------------------------------

    @property
    def api_flags(self) -> int:
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            return self._api_flags  # type: ignore[attr-defined,no-any-return]

    @property
    def async_paused(self) -> bool:
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            return self._async_paused  # type: ignore[attr-defined,no-any-return]

    @property
    def postcopy(self) -> bool:
        """The async job is a post-copy migration: its phase in the resume
        range, post-copy failed, or a POSTCOPY* job state (set_job_state)."""
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            return self._postcopy_locked()

    def _postcopy_locked(self) -> bool:
        s: Any = self
        if s._async_job not in T.MIGRATION_JOBS:
            return False
        return (s._phase >= _POSTCOPY_FAILED or s._async_paused
                or s._current.state in T.POSTCOPY_STATES)

    # ---- one migration at a time, park, discard, restore -----------------------

    def migration_job_is_allowed(self) -> None:
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            self._migration_allowed_locked()  # type: ignore[attr-defined]

    def _need_async_locked(self) -> None:
        self._check_alive()  # type: ignore[attr-defined]
        if self._async_job == _NONE:  # type: ignore[attr-defined]
            raise OperationInvalid(_NO_JOB)

    def release_async_job(self) -> None:
        with self._lock:
            self._need_async_locked()
            self._async_owner = 0  # type: ignore[attr-defined]

    def discard_async_job(self) -> int:
        s: Any = self
        with self._lock:
            self._need_async_locked()
            nested = s._active == _NESTED
            if nested:
                # its nested job goes too, with its reference and queue place
                (s._active, s._owner, s._owner_api, s._sync_grant, s._jobs_queued) = (
                    _NONE, 0, None, None, s._jobs_queued - 1)
            # unlike libvirt, the place in jobs_queued is given back too
            s._release_async_locked()
            # the nested job's reference, then the async job's (a caller that
            # gave back more than it took may see the first kill the domain)
            left = s._unref_locked() if nested else 1
            return left if left == 0 else s._unref_locked()  # type: ignore[no-any-return]

    def restore_async_job(self, async_job: AsyncJob | int, phase: int, *,
                          mask: int | None = None, flags: int = 0,
                          api: str | None = None, started: int | None = None) -> None:
        s: Any = self
        _args.kind_type(async_job, AsyncJob, "async_job")
        _args.kind_type(phase, Phase, "phase")
        checked_mask = _args.optional_mask(mask)
        api_flags = _args.api_flags(flags)
        api = _args.api(api)
        started_ms = _args.started(started)
        _args.c_int_kind(async_job, AsyncJob, "async_job")  # type: ignore[arg-type]
        _args.c_int_kind(phase, Phase, "phase")
        async_job = _kind_range(async_job, T.MJ_ASYNC_JOB_LAST, AsyncJob,  # type: ignore[arg-type]
                                "async job")
        phase = _kind_range(phase, T.MJ_PHASE_LAST, Phase, "migration phase")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        if checked_mask is None:
            checked_mask = T.RESTORED_MASK_OF_ASYNC_JOB[async_job]
        if api is None:  # the reconnect thread's name, cut as C cuts it
            api = f"init-{self._name}".encode()[:T.MJ_NAME_MAX].decode("utf-8", "replace")
        state = T.MJ_JOB_STATE_PAUSED if async_job in T.MIGRATION_JOBS \
            else T.MJ_JOB_STATE_ACTIVE
        with self._lock:
            if s._removed or s._refs <= 0:
                raise s._dead()
            if s._async_job != _NONE:
                raise OperationInvalid(
                    f"cannot restore async job {T.ASYNC_JOB_LABELS[async_job]}: async job "
                    f"{T.ASYNC_JOB_LABELS[s._async_job]} is active on the domain")
            s._check_ref_room_locked()
            now = _monotonic()
            origin = now
            if started_ms > 0:
                # libvirt loses a preserved job's start: keep it, and count
                # the elapsed time from it (a start in the future from now)
                origin = now - max(0, time.time_ns() // 1_000_000 - started_ms) / 1000
            record = Record(T.OPERATION_OF_ASYNC_JOB[async_job], state, started_ms, origin)
            (s._refs, s._jobs_queued, s._async_job, s._async_owner, s._async_owner_api,
             s._phase, s._mask, s._async_started, s._abort_requested, s._api_flags,
             s._async_paused, s._current, s._async_grant) = (
                s._refs + 1, s._jobs_queued + 1, async_job, 0, api, phase,
                checked_mask | T.JOB_BITS[T.MJ_JOB_DESTROY], origin, False, api_flags,
                False, record, None)
            s._dispatch()

    # ---- post-copy -------------------------------------------------------------

    def mark_postcopy_failed(self) -> None:
        s: Any = self
        with self._lock:
            self._need_async_locked()
            if s._async_job not in T.MIGRATION_JOBS:
                raise OperationInvalid(f"domain '{self._name}' is not being migrated")
            s._phase, s._async_paused, s._async_owner = _POSTCOPY_FAILED, True, 0

    def clear_postcopy_failed(self) -> None:
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            self._async_paused = False  # type: ignore[attr-defined]

    def migration_can_resume(self, async_job: AsyncJob | int, expected_phase: int, *,
                             postcopy: bool = True, change_protection: bool = True) -> None:
        s: Any = self
        _c_kind(async_job, AsyncJob, "async_job")
        _c_kind(expected_phase, Phase, "expected_phase")
        _args.flag(postcopy, "postcopy")
        _args.flag(change_protection, "change_protection")
        async_job = _kind_range(async_job, T.MJ_ASYNC_JOB_LAST, AsyncJob,  # type: ignore[arg-type]
                                "async job")
        expected = _kind_range(expected_phase, T.MJ_PHASE_LAST, Phase, "migration phase")
        if not postcopy:
            raise ArgumentUnsupported(
                "resuming failed post-copy migration requires post-copy to be enabled")
        if async_job == _OUT and expected < _PERFORM_RESUME and not change_protection:
            raise ArgumentUnsupported(
                "resuming failed post-copy migration requires change protection")
        name = self._name
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            if s._async_job != async_job:
                what = "processing incoming migration" if async_job == _IN else "being migrated"
                raise OperationInvalid(f"domain '{name}' is not {what}")
            if s._async_owner not in (0, _get_ident()):
                raise OperationInvalid(f"migration of domain {name} is being actively "
                                       "monitored by another thread")
            if not self._postcopy_locked():
                raise OperationInvalid(f"migration of domain {name} is not in post-copy phase")
            if s._phase < _POSTCOPY_FAILED and not s._async_paused:
                raise OperationInvalid(f"post-copy migration of domain {name} has not failed")
            if s._phase > expected:
                raise OperationInvalid(f"resuming failed post-copy migration of domain "
                                       f"{name} already in progress")

    # ---- job data --------------------------------------------------------------

    def set_job_state(self, state: JobState | int, error: str | None = None, *,
                      stopped: bool = False, delta: float | None = None) -> None:
        s: Any = self
        _args.kind_type(state, JobState, "state")
        text = _args.error_arg(error)
        _args.flag(stopped, "stopped")
        seconds = _args.delta(delta)
        state = _kind_range(state, T.MJ_JOB_STATE_LAST, JobState,  # type: ignore[arg-type]
                            "job state")
        with self._lock:
            self._need_async_locked()
            record = s._current
            record.state, record.error = state, text
            if stopped:
                record.stopped = time.time_ns() // 1_000_000
            if seconds is not None:
                record.delta = seconds

    def _complete_locked(self, error: str | None) -> None:
        """The async job ends: its record becomes the completed one."""
        s: Any = self
        record = s._current
        if error is not None:
            # a failure after an abort request is the abort's doing
            record.state = _CANCELED if s._abort_requested else _FAILED
            record.error = error
        elif record.state not in (_FAILED, _CANCELED):
            record.state = T.MJ_JOB_STATE_COMPLETED
        record.ended = _monotonic()
        s._completed = record

    def job_stats(self, completed: bool = False,
                  keep_completed: bool = False) -> JobData | None:
        s: Any = self
        _args.flag(completed, "completed")
        _args.flag(keep_completed, "keep_completed")
        with self._lock:
            self._check_alive()  # type: ignore[attr-defined]
            if completed:
                record = s._completed
                if s._async_job != _NONE or record is None:
                    return None
                if not keep_completed:
                    s._completed = None
            elif s._async_job == _IN:
                raise OperationUnsupported(
                    "migration statistics are available only on the source host")
            elif s._async_job == _NONE or s._current.state == T.MJ_JOB_STATE_NONE:
                return None                 # libvirt: state NONE is no job at all
            else:
                record = s._current
            end = record.ended or _monotonic()
            return job_data(record.state, record.operation, record.started, record.stopped,
                            max(0.0, end - record.origin), record.delta, record.error)

    def _info_type_locked(self) -> int:
        """virDomainJobStatusToType of the current record."""
        s: Any = self
        if s._async_job == _NONE:
            return T.MJ_JOB_INFO_NONE
        return T.INFO_TYPE_OF_STATE[s._current.state]
