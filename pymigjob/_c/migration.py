"""The C-backed Domain's migration helpers of the seed (qemuMigrationJob*):
start, the phases, parking and claiming back, finish.  A mixin of
pymigjob._c.domain.Domain (one C call each); begins are interrupt-safe as
that module's docstring says (binding.run_begin).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from .. import _args
from ..enums import AsyncJob, Phase
from . import aio as _aio
from .binding import ASYNC_JOB_OK as _ASYNC_JOB_OK
from .binding import ASYNC_SLOT, WAIT_SLICE, last_error, lib, run_begin, take_error
from .binding import c_api as _c_api

log = logging.getLogger("pymigjob")

_PHASE_SET = lib.MJ_PHASE_SET
_PHASE_NO_JOB = lib.MJ_PHASE_NO_JOB
_PHASE_BACKWARDS = lib.MJ_PHASE_BACKWARDS


class MigrationCalls:
    """The seed's migration helpers over the C core (needs ``_p``, the
    cleanup registry of pymigjob._base.DomainBase, and ``end_async_job``)."""

    __slots__ = ()
    _p: Any
    _register_cleanup: Callable[[Any], Any]
    _unregister_cleanup: Callable[[Any], None]
    end_async_job: Callable[..., int]

    def migration_job_start(self, async_job: AsyncJob | int, mask: int | None = None,
                            api: str | None = None, timeout: float | None = None,
                            flags: int = 0) -> bool:
        """qemuMigrationJobStart: a migration kind fails at once, before any
        wait, while a migration async job is active (one C call)."""
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        c_api = _c_api(api)
        c_to = -1.0 if timeout is None else _args.timeout(timeout)
        if mask is not None:
            mask = _args.mask(mask, "an int or None")
        c_flags = _args.api_flags(flags)
        _args.c_int_kind(async_job, AsyncJob, "async_job")
        return run_begin(lib.mj_migration_job_start_flags, self._p, ASYNC_SLOT, async_job,
                         c_api, c_to, WAIT_SLICE, mask is not None, mask or 0, c_flags)

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

    def migration_job_continue(self, cleanup: Any = None) -> int:
        """qemuMigrationJobContinue: register `cleanup` (once; run by
        run_cleanups), park the job, give back a reference."""
        _args.cleanup(cleanup)
        added = self._register_cleanup(cleanup)
        refs = lib.mj_migration_job_continue(self._p)
        if refs < 0:
            self._unregister_cleanup(added)
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

    def migration_job_finish(self, error: str | None = None) -> int:
        """qemuMigrationJobFinish = end_async_job (`error` as there)."""
        return self.end_async_job(error)

    # ---- waiting from asyncio (pymigjob._c.aio) -----------------------------

    async def migration_job_start_async(self, async_job: AsyncJob | int,
                                        mask: int | None = None, api: str | None = None,
                                        timeout: float | None = None,
                                        flags: int = 0) -> bool:
        """`await dom.migration_job_start_async(async_job)` (see begin_job_async)."""
        if async_job.__class__ not in _ASYNC_JOB_OK:
            _args.kind_type(async_job, AsyncJob, "async_job")
        _c_api(api)
        if timeout is not None:
            _args.timeout(timeout)
        mask = _args.optional_mask(mask)
        c_flags = _args.api_flags(flags)
        return await _aio.begin(lib.mj_migration_job_start_flags, self._p, async_job, api,
                                timeout, AsyncJob, "async_job", ASYNC_SLOT,
                                (mask is not None, mask or 0, c_flags))
