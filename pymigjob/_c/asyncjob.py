"""The C-backed Domain's libvirt 11 calls on the async job's life: apiFlags,
one migration at a time, park / discard / restore, post-copy and its
resume, job data.  A mixin of pymigjob._c.domain.Domain (one C call each).

restore_async_job takes a reference and a place in jobs_queued without
waiting: like a begin, the C call is the first statement of its ``try`` and
the exception path gives back what it left (``abandon``), so an interrupt
landing the instant it returns leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from .. import _args
from .. import _constants as K
from ..enums import AsyncJob, JobState, Phase
from ..jobdata import JobData, job_data
from .binding import ASYNC_SLOT, NULL, abandon, c_api, job_stats, last_error, lib

_STATS_COMPLETED = K.MJ_JOB_STATS_COMPLETED
_STATS_KEEP = K.MJ_JOB_STATS_KEEP_COMPLETED


def _kind(value: object, cls: type, what: str) -> int:
    """A kind argument checked for C: its type, then the C int range."""
    if value.__class__ is not cls:
        _args.kind_type(value, cls, what)
        _args.c_int_kind(value, cls, what)  # type: ignore[arg-type]
    return value  # type: ignore[return-value]


class AsyncJobCalls:
    """libvirt 11's async job calls over the C core (needs ``_p``)."""

    __slots__ = ()
    _p: Any

    # ---- state ----------------------------------------------------------------

    @property
    def api_flags(self) -> int:
        value: int = lib.mj_domain_api_flags(self._p)
        if value < 0:
            raise last_error()
        return value

    @property
    def async_paused(self) -> bool:
        value = lib.mj_domain_async_paused(self._p)
        if value < 0:
            raise last_error()
        return value == 1

    @property
    def postcopy(self) -> bool:
        """The async job is a post-copy migration: its phase in the resume
        range, post-copy failed, or a POSTCOPY* job state (set_job_state)."""
        value = lib.mj_domain_postcopy(self._p)
        if value < 0:
            raise last_error()
        return value == 1

    # ---- one migration at a time, park, discard, restore -----------------------

    def migration_job_is_allowed(self) -> None:
        """qemuMigrationJobIsAllowed: OperationInvalid while a migration
        async job (IN or OUT) is active."""
        if lib.mj_migration_job_is_allowed(self._p) < 0:
            raise last_error()

    def release_async_job(self) -> None:
        """Park the async job: no owner thread, the owner API kept."""
        if lib.mj_release_async_job(self._p) < 0:
            raise last_error()

    def discard_async_job(self) -> int:
        """End the async job (and a nested job of it) with no completed
        record; refs left."""
        refs: int = lib.mj_discard_async_job(self._p)
        if refs < 0:
            raise last_error()
        return refs

    def restore_async_job(self, async_job: AsyncJob | int, phase: int, *,
                          mask: int | None = None, flags: int = 0,
                          api: str | None = None, started: int | None = None) -> None:
        """After a restart: the async job, parked in `phase`, holding the
        reference and queue place a begin takes.  `api` defaults to
        ``init-<name>``; `started` (ms since the epoch) to now."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        _args.kind_type(phase, Phase, "phase")
        checked_mask = _args.optional_mask(mask)
        c_flags = _args.api_flags(flags)
        api_arg = c_api(api)
        c_started = _args.started(started)
        _args.c_int_kind(async_job, AsyncJob, "async_job")  # type: ignore[arg-type]
        _args.c_int_kind(phase, Phase, "phase")
        p = self._p
        try:
            if lib.mj_restore_async_job(p, async_job, phase, checked_mask is not None,
                                        checked_mask or 0, c_flags, api_arg, c_started,
                                        -1, -1) < 0:
                raise last_error()
        except BaseException:
            abandon(p, ASYNC_SLOT)
            raise

    # ---- post-copy -------------------------------------------------------------

    def mark_postcopy_failed(self) -> None:
        """Post-copy failed: phase POSTCOPY_FAILED, async_paused, the job
        parked (refs unchanged)."""
        if lib.mj_mark_postcopy_failed(self._p) < 0:
            raise last_error()

    def clear_postcopy_failed(self) -> None:
        """A post-copy recovery started: async_paused cleared."""
        if lib.mj_clear_postcopy_failed(self._p) < 0:
            raise last_error()

    def migration_can_resume(self, async_job: AsyncJob | int, expected_phase: int, *,
                             postcopy: bool = True, change_protection: bool = True) -> None:
        """qemuMigrationAnyCanResume's seven checks, in its order."""
        _kind(async_job, AsyncJob, "async_job")
        _kind(expected_phase, Phase, "expected_phase")
        _args.flag(postcopy, "postcopy")
        _args.flag(change_protection, "change_protection")
        if lib.mj_migration_can_resume(self._p, async_job, expected_phase, postcopy,
                                       change_protection) < 0:
            raise last_error()

    # ---- job data --------------------------------------------------------------

    def set_job_state(self, state: JobState | int, error: str | None = None, *,
                      stopped: bool = False, delta: float | None = None) -> None:
        """The daemon's own progress of the async job (its job data); with
        `stopped` the vCPUs stopped now, `delta` the destination's received
        - sent in seconds."""
        _args.kind_type(state, JobState, "state")
        text = _args.error_arg(error)
        _args.flag(stopped, "stopped")
        seconds = _args.delta(delta)
        _args.c_int_kind(state, JobState, "state")  # type: ignore[arg-type]
        if lib.mj_set_job_data(self._p, state, NULL if text is None else text.encode(),
                               stopped, seconds is not None, seconds or 0.0) < 0:
            raise last_error()

    def job_stats(self, completed: bool = False,
                  keep_completed: bool = False) -> JobData | None:
        """virDomainGetJobStats: the running async job's record, or with
        `completed` the last ended one's (only while none runs; deleted once
        read unless `keep_completed`); None when there is nothing."""
        flags = (_STATS_COMPLETED if _args.flag(completed, "completed") else 0) | (
            _STATS_KEEP if _args.flag(keep_completed, "keep_completed") else 0)
        fields = job_stats(self._p, flags)
        return None if fields is None else job_data(*fields)
