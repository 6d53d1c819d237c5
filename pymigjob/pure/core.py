"""The pure twin's core: one domain's job state and the rules that change
it, in Python, as csrc/job.c has them in C (pymigjob/pure/domain.py puts the
public methods on it, pymigjob/pure/waiter.py a begin's waiter and its wait,
pymigjob/pure/aio.py its waits from asyncio).

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

import threading
import time

from .. import _args
from .. import _constants as T
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
from .waiter import (
    _AGENT_SLOT,
    _ASYNC_SLOT,
    _FAILED,
    _GONE,
    _GRANTED,
    _NESTED_SLOT,
    _NOBODY,
    _QUEUED,
    _SYNC,
    Waits,
    _Waiter,
    _get_ident,
    _monotonic,
    _wake_future,
)


# the numbers, as plain ints (faster to compare than enum members)
_NONE = 0
_DESTROY = T.MJ_JOB_DESTROY
_ABORT = T.MJ_JOB_ABORT
_ASYNC = T.MJ_JOB_ASYNC
_NESTED = T.MJ_JOB_ASYNC_NESTED
_MIGRATION_IN = T.MJ_ASYNC_JOB_MIGRATION_IN
_DESTROY_BIT = T.JOB_BITS[T.MJ_JOB_DESTROY]
_DEFAULT_MASK = T.MJ_DEFAULT_JOB_MASK
_INFO_NONE = T.MJ_JOB_INFO_NONE
_INFO_UNBOUNDED = T.MJ_JOB_INFO_UNBOUNDED
_JOB_LAST = T.MJ_JOB_LAST
_ASYNC_LAST = T.MJ_ASYNC_JOB_LAST
_PHASE_LAST = T.MJ_PHASE_LAST
_AGENT_LAST = T.MJ_AGENT_JOB_LAST
_JOB_BITS = T.JOB_BITS


def _lock_text(cls: type[Error], who: str, api: str | None, suffix: str) -> Error:
    """libvirt's "cannot acquire state change lock", naming the blocker as
    "monitor=" or "agent=" (`who`); bare when no API is known."""
    if api is not None:
        return cls(f"cannot acquire state change lock (held by {who}={api}){suffix}")
    return cls(f"cannot acquire state change lock{suffix}")


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


class Record:
    """One job data record (C's mj_job_record): the async job's state,
    operation, wall clock start (ms) and stop, the monotonic origin of its
    elapsed time, its end (0 while running) and error."""

    __slots__ = ("operation", "state", "started", "stopped", "origin", "ended", "error",
                 "delta")

    def __init__(self, operation: int, state: int, started: int, origin: float) -> None:
        self.operation = operation
        self.state = state
        self.started = started if started > 0 else time.time_ns() // 1_000_000
        self.stopped = 0
        self.origin = origin
        self.ended = 0.0
        self.error: str | None = None
        self.delta: float | None = None


class Core(Waits):
    """One domain's job state (the twin of C's struct mj_domain) and the
    locked steps that change it.  Methods ending in _locked expect the
    caller to hold ``_lock``."""

    __slots__ = (
        "_lock", "_name", "_default_timeout", "_max_queued", "_strict",
        "_refs", "_removed", "_cancel_reason",
        "_active", "_owner", "_owner_api", "_sync_grant",
        "_async_job", "_async_owner", "_async_owner_api", "_async_grant", "_phase", "_mask",
        "_async_started", "_info_type", "_abort_requested",
        "_agent", "_agent_owner", "_agent_owner_api", "_agent_grant", "_uuid",
        "_jobs_queued", "_queue", "__weakref__",
        # libvirt 11 (pymigjob/pure/asyncjob.py)
        "_api_flags", "_async_paused", "_current", "_completed",
    )

    def __init__(self, name: str, default_timeout: float = 30.0, max_queued: int = 0,
                 strict_phases: bool = False, uuid: str | None = None) -> None:
        self._lock = threading.Lock()
        self._name = name
        self._uuid = uuid                   # checked by the driver (_args.uuid)
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
        self._agent = _NONE                 # the agent slot
        self._agent_owner = 0
        self._agent_owner_api: str | None = None
        self._agent_grant: _Waiter | None = None
        self._jobs_queued = 0               # holders and waiters
        # the FIFO queue: a dict used as an ordered set of waiters
        self._queue: dict[_Waiter, None] = {}
        self._api_flags = 0                 # the async job's apiFlags
        self._async_paused = False          # post-copy failed
        self._current: Record | None = None     # job data while an async job runs
        self._completed: Record | None = None   # the last ended async job's

    def _timeout(self, timeout: object) -> float:
        return self._default_timeout if timeout is None else _args.timeout(timeout)

    def _dead(self) -> NoDomain:
        if self._uuid is not None:
            return NoDomain(f"no domain with matching uuid '{self._uuid}' ({self._name})")
        return NoDomain(f"no domain with matching name '{self._name}'")

    def _check_alive(self) -> None:
        if self._refs <= 0:
            raise self._dead()

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

    def _mask_allows(self, job: int) -> bool:
        return self._async_job == _NONE or bool(self._mask & _JOB_BITS[job])

    def _may_start(self, slot: int, job: int) -> bool:
        """Each request waits only for the slot it needs: an agent job
        neither for the sync slot nor for the mask."""
        if slot == _AGENT_SLOT:
            return self._agent == _NONE
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
        if slot == _AGENT_SLOT:
            return _lock_text(cls, "agent", self._agent_owner_api, suffix)
        by_async = ((slot == _SYNC and not self._mask_allows(job))
                    or (slot == _ASYNC_SLOT and self._async_job != _NONE))
        api = self._async_owner_api if by_async else self._owner_api
        return _lock_text(cls, "monitor", api, suffix)

    def _take_locked(self, slot: int, job: int, thread: int, api: str | None,
                     set_mask: bool, mask: int, info_type: int, w: _Waiter, add: int,
                     api_flags: int = 0, operation: int = -1) -> None:
        """Hand the job to a begin, in one assignment statement together with
        w's state (see _enqueue_locked); `add` is 1 when the begin's reference
        and place in jobs_queued are counted here, 0 when it had them queued."""
        if slot == _AGENT_SLOT:
            (self._refs, self._jobs_queued, self._agent, self._agent_owner,
             self._agent_owner_api, self._agent_grant, w.state) = (
                self._refs + add, self._jobs_queued + add, job, thread, api, w, _GRANTED)
        elif slot == _ASYNC_SLOT:
            mask = mask | _DESTROY_BIT if set_mask else _DEFAULT_MASK
            now = _monotonic()
            record = Record(operation if operation >= 0 else T.OPERATION_OF_ASYNC_JOB[job],
                            T.MJ_JOB_STATE_ACTIVE, 0, now)
            (self._refs, self._jobs_queued, self._async_job, self._async_owner,
             self._async_owner_api, self._phase, self._mask, self._async_started,
             self._info_type, self._abort_requested, self._async_grant,
             self._api_flags, self._async_paused, self._current, w.state) = (
                self._refs + add, self._jobs_queued + add, job, thread, api, _NONE, mask,
                now, info_type, False, w, api_flags, False, record, _GRANTED)
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

    def _dispatch(self, ended_api: str | None = None, ended_agent: bool = False) -> None:
        """Hand freed slots to the oldest queued waiters that may start.  A
        waiter whose deadline has passed fails with its timeout instead (its
        owner may not be looking: a busy loop, a thread between two waits);
        the timeout names `ended_api`, the job whose end freed the slot, when
        that is the slot it waited for (agent or not: `ended_agent`)."""
        queue = self._queue
        if not queue or (self._active != _NONE and self._agent != _NONE):
            return
        now = _monotonic()
        for w in list(queue):
            if self._active != _NONE and self._agent != _NONE:
                break                       # nobody starts while both slots are taken
            if w.state != _QUEUED or not self._may_start(w.slot, w.job):
                continue
            if now >= w.deadline:
                agent = w.slot == _AGENT_SLOT
                if ended_api is not None and agent == ended_agent:
                    text = (f"cannot acquire state change lock (held by "
                            f"{'agent' if agent else 'monitor'}={ended_api})")
                else:
                    text = str(self._lock_error(w.slot, w.job, JobTimeout, "").message)
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
                              w.info_type, w, 0, w.api_flags, w.operation)

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

    def _release_agent_locked(self) -> None:
        api = self._agent_owner_api
        self._agent = _NONE
        self._agent_owner = 0
        self._agent_owner_api = None
        self._agent_grant = None
        self._jobs_queued -= 1
        self._dispatch(api, True)

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
        self._api_flags = 0
        self._async_paused = False
        self._current = None
        self._jobs_queued -= 1
        self._dispatch(api)

    def _admit_locked(self, slot: int, job: int, migration_start: bool = False) -> None:
        """Whatever refuses a begin before it takes anything."""
        if self._refs <= 0:
            raise self._dead()
        if self._removed:
            raise self._dead()
        if self._cancel_reason is not None:
            raise OperationAborted(f"job wait cancelled: {self._cancel_reason}")
        if migration_start:
            self._migration_allowed_locked()
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
            self._admit_locked(w.slot, w.job, w.migration_start)
        if self._may_start(w.slot, w.job):
            self._take_locked(w.slot, w.job, w.thread, w.api, w.set_mask, w.mask,
                              w.info_type, w, 1, w.api_flags, w.operation)
            return True
        self._refs, self._jobs_queued, self._queue[w], w.state = (
            self._refs + 1, self._jobs_queued + 1, None, _QUEUED)
        return False

    def _begin(self, slot: int, job: int, api: str | None, timeout: float,
               set_mask: bool = False, mask: int = 0, info_type: int = _INFO_NONE,
               then_abort: bool = False, nowait: bool = False, api_flags: int = 0,
               operation: int = -1, migration_start: bool = False) -> bool:
        """Begin and, if need be, wait (in slices) until held (True), failed
        or timed out; with `nowait`, False instead of waiting (nothing
        changed).  `then_abort`: an AbortJob's ABORT job, applied and ended
        the moment this thread sees it granted (the caller never holds it).
        `api_flags`, `operation` (-1: the kind's) and `migration_start` (a
        migration start, refused while a migration runs): libvirt 11's.
        Whatever interrupts it (Ctrl-C), it holds nothing afterwards."""
        with self._lock:
            if not then_abort:
                # uncontended: no waiter needed (an interrupt after the take
                # is one just after the call returned)
                self._admit_locked(slot, job, migration_start)
                if self._may_start(slot, job):
                    self._take_locked(slot, job, _get_ident(), api, set_mask, mask, info_type,
                                      _NOBODY, 1, api_flags, operation)
                    return True
                if nowait:
                    return False
            self._wait_locked(_Waiter(slot, job, api, set_mask, mask, info_type,
                                      _monotonic() + timeout, api_flags, operation,
                                      migration_start), then_abort, not then_abort)
        return True

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

    def _cancel_waiters(self, reason: str) -> None:
        with self._lock:
            if self._cancel_reason is None:
                self._cancel_reason = reason
            self._fail_waiters_locked(T.MJ_ERR_OPERATION_ABORTED)

    def _migration_allowed_locked(self) -> None:
        """qemuMigrationJobIsAllowed (asyncjob.c's)."""
        if self._async_job in T.MIGRATION_JOBS:
            raise OperationInvalid(
                f"another migration job is already running for domain '{self._name}'")
