"""Domain, in pure Python: one libvirt domain object with its job state.

One ``threading.Lock`` guards the whole state.  A begin that cannot start at
once queues a waiter with its own ``threading.Condition`` on that lock; every
change that can let somebody in runs ``_dispatch``, which hands the freed slot
straight to the oldest waiter that may now start (and to every later one that
may start as well), then wakes exactly those.  So the rule is first come,
first served among the waiters that may proceed, a waiter blocked by the
async mask never holds up an allowed one, and no wake-up is lost.

Waits are sliced (WAIT_SLICE) so that Ctrl-C is served promptly, against one
``time.monotonic`` deadline fixed when the begin started.  Whatever
interrupts a wait gives the place in the queue up (or the job, when it was
granted in the same instant), so nothing stays queued or held.

Reference counting is libvirt's 2011 count (api.md, DECISIONS.md): the
domain list's one, plus one per begin from the moment it starts waiting, per
held job and per started phase; at 0 the domain is dead and every call but
``name``, ``refs`` and ``alive`` raises NoDomain.  Python handles never count.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from enum import Enum
from typing import Any

from .. import _args
from .. import _constants as T
from ..enums import AsyncJob, Job, JobType, Phase
from .._base import JobInfo
from ..errors import (
    Error,
    InternalError,
    InvalidArgument,
    JobTimeout,
    NoDomain,
    OperationAborted,
    OperationFailed,
    OperationInvalid,
    QueueFull,
)
from ..guards import JobAsyncGuard, JobGuard, MigrationGuard, NestedJobGuard
from ..status import JobStatus, status_of
from . import _aio

log = logging.getLogger("pymigjob")

#: how long one wait may block before Python gets to run signal handlers
WAIT_SLICE = T.MJ_WAIT_SLICE

# the numbers, as plain ints (faster to compare than enum members)
_NONE = 0
_DESTROY = T.MJ_JOB_DESTROY
_ABORT = T.MJ_JOB_ABORT
_ASYNC = T.MJ_JOB_ASYNC
_NESTED = T.MJ_JOB_ASYNC_NESTED
_MIGRATION_IN = T.MJ_ASYNC_JOB_MIGRATION_IN
_DESTROY_BIT = T.job_mask_bit(T.MJ_JOB_DESTROY)
_DEFAULT_MASK = T.MJ_DEFAULT_JOB_MASK
_INFO_NONE = T.MJ_JOB_INFO_NONE
_INFO_UNBOUNDED = T.MJ_JOB_INFO_UNBOUNDED
_JOB_LAST = T.MJ_JOB_LAST
_ASYNC_LAST = T.MJ_ASYNC_JOB_LAST
_PHASE_LAST = T.MJ_PHASE_LAST
_JOB_BITS = T.JOB_BITS

# what a begin asks for
_SYNC, _NESTED_SLOT, _ASYNC_SLOT = 0, 1, 2
# a begin's state: NEW (nothing counted yet), QUEUED, GRANTED (the job is its,
# not yet taken over by its caller), FAILED (out of the queue, its reference
# still to give back), GONE (resolved and accounted for)
_NEW, _QUEUED, _GRANTED, _FAILED, _GONE = 4, 0, 1, 2, 3

_get_ident = threading.get_ident
_monotonic = time.monotonic


def _kind_range(value: int, last: int, cls: type, c_what: str) -> int:
    """The core's range check of a kind (its type already checked): in
    [0, last), else the core's "invalid <what> N" (InvalidArgument, a
    ValueError) -- or, beyond a C int, the plain ValueError the C-backed
    side gives before the core."""
    if 0 <= value < last:
        return int(value)
    if T.C_INT_MIN <= value <= T.C_INT_MAX:
        raise InvalidArgument(f"invalid {c_what} {int(value)}")
    raise ValueError(f"{value!r} is not a valid {cls.__name__}")


def _kind(value: object, last: int, cls: type, what: str, c_what: str) -> int:
    """_args.kind_type and _kind_range at once."""
    _args.kind_type(value, cls, what)
    return _kind_range(value, last, cls, c_what)  # type: ignore[arg-type]


class _Waiter:
    """One begin: what it asks for, until when, how far it got (state), and
    how to wake it while it is queued."""

    __slots__ = ("slot", "job", "api", "thread", "set_mask", "mask", "info_type",
                 "deadline", "state", "fail_code", "fail_text", "cond", "loop", "fut")

    def __init__(self, slot: int, job: int, api: str | None, set_mask: bool, mask: int,
                 info_type: int, deadline: float) -> None:
        self.slot = slot
        self.job = job
        self.api = api
        self.thread = _get_ident()
        self.set_mask = set_mask
        self.mask = mask
        self.info_type = info_type
        self.deadline = deadline
        self.state = _NEW
        self.fail_code = 0
        self.fail_text = ""                 # a timeout's message, when it failed so
        self.cond: threading.Condition | None = None
        # a waiter awaited by a coroutine: its loop and the future it awaits,
        # weakly (a queued waiter must not keep a dropped loop alive)
        self.loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self.fut: weakref.ref[asyncio.Future[None]] | None = None


#: the waiter of a begin that takes its job at once: _take_locked writes its
#: state, which nobody reads (so threads may share it)
_NOBODY = _Waiter(_SYNC, _NONE, None, False, 0, _INFO_NONE, 0.0)


def _wake_future(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Domain:
    """A handle on a domain.  Handles never count in `refs`; a handle whose
    domain has died (refs reached 0) raises NoDomain when used."""

    __slots__ = (
        "_lock", "_name", "_driver", "_default_timeout", "_max_queued", "_strict",
        "_refs", "_removed", "_cancel_reason",
        "_active", "_owner", "_owner_api", "_sync_grant",
        "_async_job", "_async_owner", "_async_owner_api", "_async_grant", "_phase", "_mask",
        "_async_started", "_info_type", "_abort_requested",
        "_jobs_queued", "_queue", "_track", "__weakref__",
    )

    def __init__(self, name: str, default_timeout: float = 30.0, max_queued: int = 0,
                 strict_phases: bool = False, driver: Any = None) -> None:
        self._lock = threading.Lock()
        self._name = name
        self._driver = driver
        self._default_timeout = default_timeout
        self._max_queued = max_queued
        self._strict = strict_phases
        self._refs = 1                      # the domain list's reference
        self._removed = False
        self._cancel_reason: str | None = None
        self._active = _NONE                # the sync slot
        self._owner = 0
        self._owner_api: str | None = None
        # the waiter each slot was handed to (_NOBODY when taken at once), so
        # a waiter giving up a grant releases the slot only if still its own
        self._sync_grant: _Waiter | None = None
        self._async_grant: _Waiter | None = None
        self._async_job = _NONE             # the async slot
        self._async_owner = 0
        self._async_owner_api: str | None = None
        self._phase = _NONE
        self._mask = _DEFAULT_MASK
        self._async_started = 0.0
        self._info_type = _INFO_NONE
        self._abort_requested = False
        self._jobs_queued = 0               # holders and waiters
        # the FIFO queue: a dict used as an ordered set of waiters
        self._queue: dict[_Waiter, None] = {}
        # the driver's persistence tracker (pymigjob.persist), None when off
        self._track = getattr(driver, "_tracker", None)

    def __repr__(self) -> str:
        return f"<pymigjob.Domain {self._name!r} refs={self.refs}>"

    # ---- read-only state --------------------------------------------------

    def _timeout(self, timeout: object) -> float:
        return self._default_timeout if timeout is None else _args.timeout(timeout)

    def _dead(self) -> NoDomain:
        return NoDomain(f"no domain with matching name '{self._name}'")

    def _check_alive(self) -> None:
        if self._refs <= 0:
            raise self._dead()

    @property
    def name(self) -> str:
        return self._name

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
    def job_info(self) -> JobInfo:
        with self._lock:
            self._check_alive()
            info_type, async_job, started = self._info_type, self._async_job, self._async_started
        return JobInfo(JobType(info_type), _monotonic() - started if async_job else 0.0)

    @property
    def abort_requested(self) -> bool:
        self._check_alive()
        return self._abort_requested

    # ---- references (the caller holds the lock for the _locked ones) ---------

    def _unref_locked(self) -> int:
        """Drop one reference: refs left, or -1 when already dead.  The last
        one kills the domain; anybody still queued then fails."""
        if self._refs <= 0:
            return -1
        self._refs -= 1
        if self._refs == 0:
            self._fail_waiters_locked(T.MJ_ERR_NO_DOMAIN)
        return self._refs

    def _check_ref_room_locked(self) -> None:
        """One more reference must still be countable (as in C, an int)."""
        if self._refs >= T.MJ_REFS_MAX:
            raise OperationFailed(f"domain '{self._name}' already has {T.MJ_REFS_MAX} "
                                  f"{T.REFS_LIMIT_TEXT}")

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

    # ---- the queue ------------------------------------------------------------

    def _mask_allows(self, job: int) -> bool:
        return self._async_job == _NONE or bool(self._mask & _JOB_BITS[job])

    def _may_start(self, slot: int, job: int) -> bool:
        if self._active != _NONE:
            return False
        if slot == _SYNC:
            return self._mask_allows(job)
        if slot == _NESTED_SLOT:
            return True                     # nested jobs skip the mask
        return self._async_job == _NONE

    def _lock_error(self, slot: int, job: int, cls: type[Error], suffix: str) -> Error:
        """"cannot acquire state change lock", naming libvirt's choice of
        blocker: the async owner when the async job is what is in the way,
        the sync owner otherwise (always for nested jobs)."""
        by_async = ((slot == _SYNC and not self._mask_allows(job))
                    or (slot == _ASYNC_SLOT and self._async_job != _NONE))
        api = self._async_owner_api if by_async else self._owner_api
        if api is not None:
            return cls(f"cannot acquire state change lock (held by monitor={api}){suffix}")
        return cls(f"cannot acquire state change lock{suffix}")

    def _take_locked(self, slot: int, job: int, thread: int, api: str | None,
                     set_mask: bool, mask: int, info_type: int, w: _Waiter, add: int) -> None:
        """Hand the job to a begin, in one assignment statement together with
        w's state (see _enqueue_locked); `add` is 1 when the begin's reference
        and place in jobs_queued are counted here, 0 when it had them queued."""
        if slot == _ASYNC_SLOT:
            mask = mask | _DESTROY_BIT if set_mask else _DEFAULT_MASK
            now = _monotonic()
            (self._refs, self._jobs_queued, self._async_job, self._async_owner,
             self._async_owner_api, self._phase, self._mask, self._async_started,
             self._info_type, self._abort_requested, self._async_grant, w.state) = (
                self._refs + add, self._jobs_queued + add, job, thread, api, _NONE, mask,
                now, info_type, False, w, _GRANTED)
        else:
            active = _NESTED if slot == _NESTED_SLOT else job
            (self._refs, self._jobs_queued, self._active, self._owner, self._owner_api,
             self._sync_grant, w.state) = (
                self._refs + add, self._jobs_queued + add, active, thread, api, w, _GRANTED)

    def _wake_locked(self, w: _Waiter) -> bool:
        """Tell w's owner that it was granted or failed.  False when nobody
        can be told: its event loop has closed."""
        if w.loop is None:
            if w.cond is not None:
                w.cond.notify()
            return True
        loop = w.loop()
        if loop is None or loop.is_closed():
            return False
        fut = None if w.fut is None else w.fut()
        if fut is None:   # its coroutine is not awaiting (yet): it looks first
            return True
        try:
            loop.call_soon_threadsafe(_wake_future, fut)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True

    def _dispatch(self, ended_api: str | None = None) -> None:
        """Hand freed slots to the oldest queued waiters that may start.  A
        waiter whose deadline has passed fails with its timeout instead (its
        owner may not be looking: a busy loop, a thread between two waits);
        the timeout names `ended_api`, the job whose end freed the slot."""
        queue = self._queue
        if not queue or self._active != _NONE:
            return
        now = _monotonic()
        for w in list(queue):
            if self._active != _NONE:
                break                       # nobody starts while the slot is taken
            if w.state != _QUEUED or not self._may_start(w.slot, w.job):
                continue
            if now >= w.deadline:
                text = str(self._lock_error(w.slot, w.job, JobTimeout, "").message) \
                    if ended_api is None else \
                    f"cannot acquire state change lock (held by monitor={ended_api})"
                del queue[w]
                w.fail_code, w.fail_text, w.state, self._jobs_queued = (
                    T.MJ_ERR_OPERATION_TIMEOUT, text, _FAILED, self._jobs_queued - 1)
                self._wake_locked(w)
                continue
            del queue[w]
            if not self._wake_locked(w):
                # its event loop is gone: nobody would ever end that job
                w.state = _GONE
                self._jobs_queued -= 1
                self._unref_locked()
                continue
            self._take_locked(w.slot, w.job, w.thread, w.api, w.set_mask, w.mask,
                              w.info_type, w, 0)

    def _fail_waiters_locked(self, code: int) -> None:
        queue = self._queue
        while queue:
            w = next(iter(queue))
            del queue[w]
            w.state = _FAILED
            w.fail_code = code
            self._jobs_queued -= 1
            self._wake_locked(w)

    def _failure(self, w: _Waiter) -> Error:
        if w.fail_code == T.MJ_ERR_OPERATION_TIMEOUT:
            return JobTimeout(w.fail_text)
        if w.fail_code == T.MJ_ERR_OPERATION_ABORTED:
            return OperationAborted(f"job wait cancelled: {self._cancel_reason or 'shutdown'}")
        return self._dead()

    def _release_sync_locked(self) -> None:
        api = self._owner_api
        self._active = _NONE
        self._owner = 0
        self._owner_api = None
        self._sync_grant = None
        self._jobs_queued -= 1
        self._dispatch(api)

    def _release_async_locked(self) -> None:
        api = self._async_owner_api
        self._async_job = _NONE
        self._async_owner = 0
        self._async_owner_api = None
        self._async_grant = None
        self._phase = _NONE
        self._mask = _DEFAULT_MASK
        self._async_started = 0.0
        self._info_type = _INFO_NONE
        self._abort_requested = False
        self._jobs_queued -= 1
        self._dispatch(api)

    def _abandon_locked(self, w: _Waiter) -> None:
        """The begin's owner gives up: leave the queue, or give back a job
        granted meanwhile; either way the begin's reference goes."""
        state, w.state = w.state, _GONE
        if state == _GONE or state == _NEW:
            return
        if state == _QUEUED:
            del self._queue[w]
            self._jobs_queued -= 1
        elif state == _GRANTED:
            # unless somebody already ended the job it was handed, reference
            # and queue slot included
            if w.slot == _ASYNC_SLOT and self._async_grant is w:
                self._release_async_locked()
            elif w.slot != _ASYNC_SLOT and self._sync_grant is w:
                self._release_sync_locked()
            else:
                return
        self._unref_locked()
        self._dispatch()  # in case an interrupt cut a release short of it

    def _settle_locked(self, w: _Waiter) -> bool:
        """True when w is granted (its state stays GRANTED until the caller
        takes the job); raise its failure or its timeout; False while it is
        still queued."""
        state = w.state
        if state == _GRANTED:
            return True
        if state == _FAILED:
            err = self._failure(w)
            self._unref_locked()            # the begin's reference
            w.state = _GONE
            raise err
        if state == _GONE:  # pragma: no cover - given up by its owner
            raise RuntimeError("pymigjob: this job wait was given up")
        if _monotonic() >= w.deadline:
            err = self._lock_error(w.slot, w.job, JobTimeout, "")
            # out of the queue in one statement; then only the reference is left
            _, self._jobs_queued, w.state = (
                self._queue.pop(w), self._jobs_queued - 1, _FAILED)
            self._unref_locked()
            w.state = _GONE
            raise err
        return False

    def _admit_locked(self, slot: int, job: int) -> None:
        """Whatever refuses a begin before it takes anything."""
        if self._refs <= 0:
            raise self._dead()
        if self._removed:
            raise self._dead()
        if self._cancel_reason is not None:
            raise OperationAborted(f"job wait cancelled: {self._cancel_reason}")
        if slot == _NESTED_SLOT and self._async_job != job:
            raise InternalError(f"unexpected async job {job} type expected {self._async_job}")
        if (self._max_queued and slot != _ASYNC_SLOT
                and not (slot == _SYNC and job == _DESTROY)
                and self._jobs_queued + 1 > self._max_queued):
            raise self._lock_error(slot, job, QueueFull, " due to max_queued limit")
        self._check_ref_room_locked()

    def _enqueue_locked(self, w: _Waiter, admitted: bool = False) -> bool:
        """A begin with a waiter takes its reference (libvirt 2011: before
        waiting) and its place, or the job at once (True).

        Each change of counts, place or job is one assignment statement that
        also sets w's state: CPython runs signal handlers only at calls and
        backward jumps (and a trace function sees whole lines), so a
        KeyboardInterrupt lands before or after the change, and w.state
        always tells _abandon_locked what to undo."""
        if not admitted:
            self._admit_locked(w.slot, w.job)
        if self._may_start(w.slot, w.job):
            self._take_locked(w.slot, w.job, w.thread, w.api, w.set_mask, w.mask,
                              w.info_type, w, 1)
            return True
        self._refs, self._jobs_queued, self._queue[w], w.state = (
            self._refs + 1, self._jobs_queued + 1, None, _QUEUED)
        return False

    def _begin(self, slot: int, job: int, api: str | None, timeout: float,
               set_mask: bool = False, mask: int = 0, info_type: int = _INFO_NONE,
               then_abort: bool = False) -> None:
        """Begin and, if need be, wait (in slices) until held, failed or timed
        out.  `then_abort`: an AbortJob's ABORT job, applied and ended the
        moment this thread sees it granted (the caller never holds it).
        Whatever interrupts it (Ctrl-C), it holds nothing afterwards."""
        with self._lock:
            if not then_abort:
                # uncontended: no waiter needed (an interrupt after the take
                # is one just after the call returned)
                self._admit_locked(slot, job)
                if self._may_start(slot, job):
                    self._take_locked(slot, job, _get_ident(), api, set_mask, mask, info_type,
                                      _NOBODY, 1)
                    return
            self._wait_locked(_Waiter(slot, job, api, set_mask, mask, info_type,
                                      _monotonic() + timeout), then_abort, not then_abort)

    def _wait_locked(self, w: _Waiter, then_abort: bool, admitted: bool) -> None:
        try:
            if not self._enqueue_locked(w, admitted):
                w.cond = cond = threading.Condition(self._lock)
                while not self._settle_locked(w):
                    cond.wait(max(0.0, min(WAIT_SLICE, w.deadline - _monotonic())))
            if then_abort:
                self._apply_abort_locked(w)
            else:
                w.state = _GONE             # held: the caller's from here on
        except BaseException:
            self._abandon_locked(w)
            raise

    async def _begin_async(self, slot: int, job: int, api: str | None, timeout: float,
                           set_mask: bool = False, mask: int = 0,
                           info_type: int = _INFO_NONE, then_abort: bool = False) -> None:
        """_begin for a coroutine: the same queue, awaited without a thread.
        Cancelled (or closed, or interrupted) anywhere, it holds nothing; so
        does a waiter whose loop closes or is dropped (see _aio)."""
        loop = asyncio.get_running_loop()
        w = _Waiter(slot, job, api, set_mask, mask, info_type, _monotonic() + timeout)
        w.loop = weakref.ref(loop)
        registered = False
        try:
            while True:
                fut = loop.create_future()
                with self._lock:
                    if w.state == _NEW:
                        self._enqueue_locked(w)
                    if self._settle_locked(w):
                        if then_abort:
                            self._apply_abort_locked(w)
                        else:
                            w.state = _GONE  # held: the caller's from here on
                        break
                    w.fut = weakref.ref(fut)
                if not registered:
                    _aio.register(loop, self, w)
                    registered = True
                timer = loop.call_later(max(0.0, w.deadline - _monotonic()),
                                        _wake_future, fut)
                try:
                    await fut
                finally:
                    timer.cancel()
        except GeneratorExit:
            # an abandoned coroutine, closed by the garbage collector: perhaps
            # while this very thread holds one of the locks the cleanup takes
            self._abandon_soon(w, loop if registered else None)
            raise
        except BaseException:
            with self._lock:
                self._abandon_locked(w)
            if registered:
                _aio.unregister(loop, w)
            raise
        if registered:
            _aio.unregister(loop, w)

    def _abandon_soon(self, w: _Waiter, loop: asyncio.AbstractEventLoop | None) -> None:
        def cleanup() -> None:
            with self._lock:
                self._abandon_locked(w)
            _aio.unregister(loop, w)

        if self._lock.acquire(blocking=False):
            try:
                self._abandon_locked(w)
            finally:
                self._lock.release()
            if loop is None or _aio._lock.acquire(blocking=False):
                if loop is not None:
                    _aio._lock.release()
                _aio.unregister(loop, w)
                return
        _aio.later(cleanup)

    # ---- sync, async and nested jobs --------------------------------------

    def begin_job(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None) -> None:
        # the checks of _args, with the common cases inline: the hot path
        # (begin_async_job and begin_nested_job call _args plainly)
        if job.__class__ is not int:
            _args.kind_type(job, Job, "job")
            job = int(job)
        if api is not None:
            api = _args.name(api, "api")
        seconds = self._default_timeout if timeout is None else _args.timeout(timeout)
        if not _NONE < job < _ASYNC:
            _kind_range(job, _JOB_LAST, Job, "job")
            raise InternalError("Attempt to start invalid job")
        self._begin(_SYNC, job, api, seconds)
        if self._track is not None and job == _DESTROY:
            self._track.changed(self)

    def end_job(self) -> int:
        """Ends any sync job, a nested one included."""
        with self._lock:
            self._check_alive()
            if self._active == _NONE:
                raise OperationInvalid("no job is active on the domain")
            tracked = self._track is not None and self._active == _DESTROY
            self._release_sync_locked()
            left = self._unref_locked()
        if tracked:
            self._track.changed(self)
        return left

    def begin_async_job(self, async_job: AsyncJob | int, api: str | None = None,
                        timeout: float | None = None) -> None:
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob, "async job")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        self._begin(_ASYNC_SLOT, async_job, api, seconds)
        if self._track is not None:
            self._track.changed(self)

    def end_async_job(self) -> int:
        with self._lock:
            self._check_alive()
            if self._async_job == _NONE:
                raise OperationInvalid("no job is active on the domain")
            self._release_async_locked()
            left = self._unref_locked()
        if self._track is not None:
            self._track.changed(self)
        return left

    def set_async_job_mask(self, mask: int) -> None:
        mask = _args.mask(mask, "an int")
        with self._lock:
            self._check_alive()
            if self._async_job != _NONE:
                self._mask = mask | _DESTROY_BIT
                self._dispatch()            # a wider mask lets waiters in

    def begin_nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                         timeout: float | None = None) -> None:
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob, "async job")
        self._begin(_NESTED_SLOT, async_job, api, seconds)

    def end_nested_job(self) -> int:
        with self._lock:
            self._check_alive()
            if self._active != _NESTED:
                raise OperationInvalid("no nested job is active on the domain")
            self._release_sync_locked()
            return self._unref_locked()

    # ---- the seed's migration helpers --------------------------------------

    def migration_job_start(self, async_job: AsyncJob | int, mask: int | None = None,
                            api: str | None = None, timeout: float | None = None) -> None:
        """qemuMigrationJobStart: the async job and, with its grant, the
        mask (MIGRATION_IN: DESTROY only; other kinds: the outgoing one) and
        job info UNBOUNDED."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        if mask is not None:
            mask = _args.mask(mask, "an int or None")
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob, "async job")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        if mask is None:
            mask = 0 if async_job == _MIGRATION_IN else T.MJ_MIGRATION_OUT_JOB_MASK
        self._begin(_ASYNC_SLOT, async_job, api, seconds, True, mask, _INFO_UNBOUNDED)
        if self._track is not None:
            self._track.changed(self)

    def _set_phase(self, phase: int, api: str | None, take_ref: bool) -> bool:
        """qemuMigrationJobSetPhase (StartPhase first takes a reference)."""
        with self._lock:
            self._check_alive()
            if take_ref:
                self._check_ref_room_locked()
                self._refs += 1             # this API's own, even if refused
            if self._async_job == _NONE:
                return False
            if phase >= self._phase:
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
        try:
            return self._set_phase(phase, api, False)
        finally:
            if self._track is not None:
                self._track.changed(self)

    def migration_job_start_phase(self, phase: int, api: str | None = None) -> bool:
        _args.kind_type(phase, Phase, "phase")
        api = _args.api(api)
        phase = _kind_range(phase, _PHASE_LAST, Phase, "migration phase")
        try:
            return self._set_phase(phase, api, True)
        finally:
            if self._track is not None:
                self._track.changed(self)

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
        if self._track is not None:
            self._track.changed(self)
        return True

    def _job_fields(self) -> tuple[int, int, int, str | None]:
        """(active job, async job, phase, owner API of the async job if any,
        else of the sync job), read at one instant."""
        with self._lock:
            self._check_alive()
            owner = self._async_owner_api if self._async_job else self._owner_api
            return self._active, self._async_job, self._phase, owner

    def migration_job_continue(self) -> int:
        """qemuMigrationJobContinue: parks the job (no owner thread; the
        owner API stays) and gives back a reference."""
        with self._lock:
            self._async_owner = 0
            left = self._unref_locked()
        if left < 0:
            raise self._dead()
        if self._track is not None:
            self._track.parked(self)
        return left

    def migration_job_is_active(self, async_job: AsyncJob | int) -> bool:
        """Never raises: anything but an AsyncJob or a plain int (a member of
        another enum included) is not an active async job."""
        if async_job.__class__ is not int and async_job.__class__ is not AsyncJob and (
                isinstance(async_job, bool) or not isinstance(async_job, int)
                or isinstance(async_job, Enum)):
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

    def migration_job_finish(self) -> int:
        return self.end_async_job()

    # ---- persistence --------------------------------------------------------

    def job_status(self) -> JobStatus:
        """The job state libvirt persists (pymigjob.status.JobStatus)."""
        return status_of(self)

    # ---- abort ------------------------------------------------------------

    def abort_job(self, api: str | None = None, timeout: float | None = None) -> None:
        """virDomainAbortJob: take an ABORT job, flag the async job, end it.
        The abort is applied as soon as the ABORT job is granted, so the
        caller never holds it, interrupted or not."""
        api = _args.api(api)
        seconds = self._timeout(timeout)
        self._begin(_SYNC, _ABORT, api, seconds, then_abort=True)

    def _apply_abort_locked(self, w: _Waiter) -> None:
        """The body of AbortJob, holding the ABORT job granted to `w`: flag
        the async job, then end the ABORT job whatever the outcome."""
        if self._refs <= 0:  # pragma: no cover - the job holds a reference
            raise self._dead()
        if self._active != _ABORT:  # pragma: no cover - somebody ended it for us
            raise OperationInvalid("no abort job is held on the domain")
        err: Error | None = None
        if self._async_job == _NONE:
            err = OperationInvalid("no job is active on the domain")
        elif self._async_job == _MIGRATION_IN:
            err = OperationInvalid("cannot abort incoming migration; use virDomainDestroy instead")
        else:
            self._abort_requested = True
        # end the ABORT job in one statement; then only the reference is left
        self._active, self._owner, self._owner_api, self._jobs_queued, w.state = (
            _NONE, 0, None, self._jobs_queued - 1, _FAILED)
        self._dispatch()
        self._unref_locked()
        w.state = _GONE
        if err is not None:
            raise err

    def check_abort(self) -> None:
        with self._lock:
            self._check_alive()
            if self._async_job != _NONE and self._abort_requested:
                raise OperationAborted(
                    f"{T.ASYNC_JOB_LABELS[self._async_job]}: canceled by client")

    # ---- for the driver -----------------------------------------------------

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

    # ---- context managers ---------------------------------------------------

    def _check_api(self, api: object) -> None:
        """The TypeError / ValueError a call would give for this api (for a
        guard that checks its arguments before any call touches state)."""
        _args.api(api)

    def job(self, job: Job | int, api: str | None = None,
            timeout: float | None = None) -> JobGuard:
        return JobGuard(self, job, api, timeout)  # type: ignore[arg-type]

    def nested_job(self, async_job: AsyncJob | int, api: str | None = None,
                   timeout: float | None = None) -> NestedJobGuard:
        return NestedJobGuard(self, async_job, api, timeout)  # type: ignore[arg-type]

    def migration(self, async_job: AsyncJob | int, phase: int, api: str | None = None,
                  timeout: float | None = None, mask: int | None = None) -> MigrationGuard:
        """The first API of a migration: start + set phase; continue on exit."""
        return MigrationGuard(self, async_job, phase, api, True, timeout,  # type: ignore[arg-type]
                              mask)

    def migration_phase(self, async_job: AsyncJob | int, phase: int,
                        api: str | None = None) -> MigrationGuard:
        """A later API: check active + start phase; continue (or finish) on exit."""
        return MigrationGuard(self, async_job, phase, api, False, None,  # type: ignore[arg-type]
                              None)

    # ---- waiting from asyncio -----------------------------------------------

    async def begin_job_async(self, job: Job | int, api: str | None = None,
                              timeout: float | None = None) -> None:
        """begin_job for a coroutine: waits in the same FIFO queue without
        blocking the event loop or using a thread.  Cancelled, it holds nothing.
        Arguments are checked when awaited."""
        api = _args.api(api)
        seconds = self._timeout(timeout)
        job = _kind(job, _JOB_LAST, Job, "job", "job")
        if job == _NONE or job >= _ASYNC:
            raise InternalError("Attempt to start invalid job")
        await self._begin_async(_SYNC, job, api, seconds)
        if self._track is not None and job == _DESTROY:
            self._track.changed(self)  # blocking: the record is durable on return

    async def begin_async_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                                    timeout: float | None = None) -> None:
        """begin_async_job for a coroutine (see begin_job_async)."""
        api = _args.api(api)
        seconds = self._timeout(timeout)
        async_job = _kind(async_job, _ASYNC_LAST, AsyncJob, "async_job", "async job")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        await self._begin_async(_ASYNC_SLOT, async_job, api, seconds)
        if self._track is not None:
            self._track.changed(self)

    async def begin_nested_job_async(self, async_job: AsyncJob | int, api: str | None = None,
                                     timeout: float | None = None) -> None:
        """begin_nested_job for a coroutine (see begin_job_async)."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob, "async job")
        await self._begin_async(_NESTED_SLOT, async_job, api, seconds)

    async def migration_job_start_async(self, async_job: AsyncJob | int,
                                        mask: int | None = None, api: str | None = None,
                                        timeout: float | None = None) -> None:
        """migration_job_start for a coroutine (see begin_job_async)."""
        _args.kind_type(async_job, AsyncJob, "async_job")
        api = _args.api(api)
        seconds = self._timeout(timeout)
        if mask is not None:
            mask = _args.mask(mask, "an int or None")
        async_job = _kind_range(async_job, _ASYNC_LAST, AsyncJob, "async job")
        if async_job == _NONE:
            raise InternalError("Attempt to start invalid job")
        if mask is None:
            mask = 0 if async_job == _MIGRATION_IN else T.MJ_MIGRATION_OUT_JOB_MASK
        await self._begin_async(_ASYNC_SLOT, async_job, api, seconds, True, mask,
                                _INFO_UNBOUNDED)
        if self._track is not None:
            self._track.changed(self)

    async def abort_job_async(self, api: str | None = None,
                              timeout: float | None = None) -> None:
        """abort_job for a coroutine (see begin_job_async)."""
        api = _args.api(api)
        seconds = self._timeout(timeout)
        await self._begin_async(_SYNC, _ABORT, api, seconds, then_abort=True)

    def job_async(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None) -> JobAsyncGuard:
        """`async with dom.job_async(Job.MODIFY):` -- begin_job_async ... end_job."""
        return JobAsyncGuard(self, job, api, timeout)
