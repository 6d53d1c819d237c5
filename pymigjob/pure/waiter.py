"""A begin of the pure twin's core, as csrc/waiter.c's mj_waiter: what it
asks for (its slot and job), until when, how far it got, and how to wake it
while it is queued (its Condition, or its coroutine's future); and the
core's side of a blocking wait (Waits, a mixin of pymigjob.pure.core.Core):
settling a begin, its sliced wait, giving it up.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Any

from .. import _constants as T
from ..errors import JobTimeout

#: how long one wait may block before Python gets to run signal handlers
WAIT_SLICE = T.MJ_WAIT_SLICE

# what a begin asks for
_SYNC, _NESTED_SLOT, _ASYNC_SLOT, _AGENT_SLOT = 0, 1, 2, 3
# a begin's state: NEW (nothing counted yet), QUEUED, GRANTED (the job is its,
# not yet taken over by its caller), FAILED (out of the queue, its reference
# still to give back), GONE (resolved and accounted for)
_NEW, _QUEUED, _GRANTED, _FAILED, _GONE = 4, 0, 1, 2, 3

_get_ident = threading.get_ident
_monotonic = time.monotonic


class _Waiter:
    """One begin: what it asks for, until when, how far it got (state), and
    how to wake it while it is queued."""

    __slots__ = ("slot", "job", "api", "thread", "set_mask", "mask", "info_type",
                 "deadline", "state", "fail_code", "fail_text", "cond", "loop", "fut",
                 "api_flags", "operation", "migration_start")

    def __init__(self, slot: int, job: int, api: str | None, set_mask: bool, mask: int,
                 info_type: int, deadline: float, api_flags: int = 0, operation: int = -1,
                 migration_start: bool = False) -> None:
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
        # libvirt 11 (pymigjob/pure/asyncjob.py): apiFlags and the job data
        # operation on grant (-1: the kind's); a migration start is refused
        # while a migration runs
        self.api_flags = api_flags
        self.operation = operation
        self.migration_start = migration_start


#: the waiter of a begin that takes its job at once: _take_locked writes its
#: state, which nobody reads (so threads may share it)
_NOBODY = _Waiter(_SYNC, 0, None, False, 0, T.MJ_JOB_INFO_NONE, 0.0)


def _wake_future(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Waits:
    """A begin's wait on the core's state (needs a Core's)."""

    __slots__ = ()
    _lock: Any
    _queue: Any
    _jobs_queued: int
    _agent_grant: Any
    _async_grant: Any
    _sync_grant: Any

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
            if w.slot == _AGENT_SLOT:
                if self._agent_grant is not w:
                    return
                self._release_agent_locked()
            elif w.slot == _ASYNC_SLOT and self._async_grant is w:
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
