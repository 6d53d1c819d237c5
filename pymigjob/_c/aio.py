"""Waiting for jobs from asyncio: no thread per waiter, no polling.

A begin from a coroutine is the ordinary C begin with ``wait_for=0``: when the
job is free that one call takes it and the coroutine never suspends.  When it
is not, the C begin leaves a pending waiter in the domain's FIFO queue (the
same queue threads wait in, so threads and coroutines share one fairness
rule); ``mj_pending_detach`` hands that waiter to the event loop's *notifier*,
an eventfd the loop watches with ``add_reader``.  A job end that grants the
waiter (or a removal / ``cancel_waiters`` that fails it) lists it on the
notifier; the reader callback wakes the coroutine, which polls the waiter
once for the outcome (held, or the C error).  A ``call_later`` at the
waiter's deadline polls it for the timeout, with the blocking call's message.

One notifier per event loop, created with the loop's first waiter; the reader
is removed and the notifier freed once it has had no waiter for
``NOTIFIER_IDLE`` seconds (so a burst of waits reuses one eventfd instead of
creating and registering one per wait, about 15 us each), or when the loop
closes.

Cancellation: until the coroutine has polled a definitive outcome it owns the
C waiter, and every way out (``CancelledError`` at the await, ``wait_for`` /
``asyncio.timeout`` expiring, ``GeneratorExit`` when an abandoned coroutine is
closed) calls ``mj_waiter_cancel``, which leaves the queue or, when the grant
raced the cancel, ends the job it was just given.  A cancelled waiter holds
nothing.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Coroutine

from .binding import (
    KIND_OK,
    NULL,
    WAITING,
    abandon,
    c_api,
    c_args,
    c_timeout,
    last_error,
    lib,
    waiter_cell,
)

__all__ = ["NOTIFIER_IDLE", "Begin", "begin"]

#: what Domain.begin_job_async & co return: True once the job is held
Begin = Coroutine[Any, Any, bool]

#: seconds a loop keeps its notifier (one eventfd and its reader) after the
#: last waiter went; 0 releases it at once
NOTIFIER_IDLE = 1.0

_detach = lib.mj_pending_detach
_poll = lib.mj_waiter_poll
_remaining = lib.mj_waiter_remaining
_cancel = lib.mj_waiter_cancel
_take = lib.mj_notifier_take


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Wait:
    """One detached C waiter and the future its coroutine awaits.  The C
    calls keep ``cell[0]``: the waiter, NULL once it is resolved or
    cancelled (C has freed it) -- written inside the call, so an exception
    the instant a call returns never leaves a stale pointer.  ``dropped``:
    given up by the loop's shutdown, not resolved by its coroutine."""

    __slots__ = ("cell", "fut", "dropped")

    def __init__(self) -> None:
        self.cell: Any = waiter_cell()
        self.fut: asyncio.Future[None] | None = None
        self.dropped = False

    def drop(self) -> None:
        """Give the waiter up (leave the queue, or end a job granted meanwhile)."""
        self.dropped = True
        _cancel(self.cell)


def _cancel_waiter(w: Any) -> None:
    """Give up a waiter nobody awaits."""
    _cancel(waiter_cell(w))


#: id(loop) -> its notifier.  Weak: a notifier lives as long as its loop
#: watches it or a coroutine waits on it, so an abandoned loop is not kept.
_notifiers: weakref.WeakValueDictionary[int, _LoopNotifier] = weakref.WeakValueDictionary()
_notifiers_lock = threading.Lock()


class _LoopNotifier:
    """A loop's notifier: the C eventfd, its reader, and the detached waiters."""

    __slots__ = ("loop", "n", "fd", "waits", "closed", "_hook", "_idle_since",
                 "_idle_timer", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.closed = True  # until it is complete (see __del__)
        n = lib.mj_notifier_new()
        try:
            if n == NULL:
                raise last_error()
            self.loop = loop
            self.n = n
            self.fd: int = lib.mj_notifier_fd(n)
            self.waits: dict[Any, _Wait] = {}
            self._hook: Any = None
            self._idle_since = 0.0
            self._idle_timer: asyncio.TimerHandle | None = None
            loop.add_reader(self.fd, self._on_readable)
            self.closed = False
            self._hook_close()
        except BaseException:
            if n != NULL and self.closed:
                try:
                    loop.remove_reader(lib.mj_notifier_fd(n))
                finally:
                    lib.mj_notifier_free(n)
            raise

    # -- the loop's side ------------------------------------------------------

    def _on_readable(self) -> None:
        n, waits = self.n, self.waits
        try:
            while True:
                w = _take(n)
                if w == NULL:
                    return
                wait = waits.get(w)
                if wait is not None:
                    fut = wait.fut
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                else:
                    # nobody awaits it (an exception landed between two
                    # lines of begin): do not let it keep a job or a slot
                    _cancel_waiter(w)
        except BaseException:
            # a waiter taken off the list may not have been woken: wake
            # every one (a woken waiter that is still queued waits again)
            for wait in list(waits.values()):
                fut = wait.fut
                if fut is not None and not fut.done():
                    fut.set_result(None)
            raise

    def _hook_close(self) -> None:
        """Run shutdown() when the loop closes.  asyncio has no close
        callback, so the loop instance's close is wrapped (undone when this
        notifier goes); where that is impossible the waiters are still
        dropped when their abandoned coroutines are collected."""
        loop = self.loop
        try:
            original = loop.close
        except AttributeError:  # pragma: no cover - not a real loop
            return
        me = weakref.ref(self)

        def close() -> None:
            notifier = me()
            if notifier is not None:
                notifier.shutdown()
            original()

        try:
            loop.close = close  # type: ignore[method-assign]
        except (AttributeError, TypeError):  # pragma: no cover - e.g. C loops
            return
        self._hook = close

    def shutdown(self) -> None:
        """The loop is closing: give every waiter up, wake (cancel) the
        coroutines, release the reader and the notifier."""
        if self.closed:
            return
        for wait in list(self.waits.values()):
            wait.drop()
            fut = wait.fut
            if fut is not None and not fut.done():
                try:
                    fut.cancel()
                except RuntimeError:  # pragma: no cover - loop already closed
                    pass
        self.waits.clear()
        self._teardown()

    def _teardown(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = self.loop
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        try:
            loop.remove_reader(self.fd)
        except Exception:  # pragma: no cover - closed or foreign loop
            pass
        lib.mj_notifier_free(self.n)
        self.n = NULL
        try:
            if self._hook is not None and vars(loop).get("close") is self._hook:
                del loop.close
        except TypeError:  # pragma: no cover - no __dict__
            pass
        self._hook = None
        with _notifiers_lock:
            if _notifiers.get(id(loop)) is self:
                del _notifiers[id(loop)]

    def __del__(self) -> None:
        # only reached without shutdown(): the loop was dropped with
        # coroutines still waiting, all of it garbage now
        if not getattr(self, "closed", True):
            self.closed = True
            try:
                for wait in list(self.waits.values()):
                    wait.drop()
                self.waits.clear()
                lib.mj_notifier_free(self.n)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    # -- a waiter's side ---------------------------------------------------------

    def forget(self, wait: _Wait, key: Any) -> None:
        waits = self.waits
        if waits.get(key) is wait:
            del waits[key]
            if not waits:
                self._idle()

    def _idle(self) -> None:
        """The last waiter went: release the notifier, now or after
        NOTIFIER_IDLE seconds without a waiter."""
        loop = self.loop
        linger = NOTIFIER_IDLE
        if linger <= 0 or loop.is_closed():
            self._teardown()
            return
        self._idle_since = loop.time()
        if self._idle_timer is None:
            try:
                self._idle_timer = loop.call_later(linger, self._idle_check)
            except RuntimeError:  # pragma: no cover - a dying loop (debug mode)
                self._teardown()

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.closed or self.waits:
            return
        left = self._idle_since + NOTIFIER_IDLE - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._idle_check)
        else:
            self._teardown()


def _notifier_for(loop: asyncio.AbstractEventLoop) -> _LoopNotifier:
    notifier = _notifiers.get(id(loop))
    if notifier is not None and notifier.loop is loop and not notifier.closed:
        return notifier
    notifier = _LoopNotifier(loop)
    with _notifiers_lock:
        _notifiers[id(loop)] = notifier
    return notifier


async def begin(fn: Any, p: Any, kind: int, api: str | None, timeout: float | None,
                kind_cls: type | None, what: str, slot: int,
                tail: tuple[Any, ...] = ()) -> bool:
    """The body of Domain.begin_job_async & co: ``fn`` is the C begin on the
    domain ``p``, called as ``fn(p, kind, api, timeout, wait_for, *tail)``
    (without ``kind`` when ``kind_cls`` is None: AbortJob), which leaves its
    job in ``slot`` (binding's SYNC_SLOT, ASYNC_SLOT or AGENT_SLOT).  True
    once the job is held.

    Called with ``wait_for=0`` it either settles at once (held: the
    coroutine never suspends; or an error) or leaves a pending waiter, which
    is moved onto the loop's notifier and awaited.  Everything from the C
    call to the end of the wait is under one ``try``, so an exception at any
    point (a cancel at the await, a KeyboardInterrupt between two lines or
    the instant a C call returns) gives up whatever the begin left behind:
    the pending waiter, the detached waiter, or a job granted to it."""
    if kind_cls is None:
        args: tuple[Any, ...] = (c_api(api), c_timeout(timeout), 0.0)
    else:
        # checked as the blocking call checks them (cffi would take anything
        # with __int__, and refuse a kind beyond a C int after the try)
        api_arg, timeout_arg, _ = c_args(kind, KIND_OK[kind_cls], kind_cls, what, api,
                                          timeout)
        args = (kind, api_arg, timeout_arg, 0.0, *tail)
    wait: _Wait | None = None
    notifier: _LoopNotifier | None = None
    key: Any = None
    try:
        rc = fn(p, *args)
        if rc == WAITING:
            notifier = _notifier_for(asyncio.get_running_loop())
            wait = _Wait()
            cell = wait.cell
            if _detach(notifier.n, cell) < 0:  # pragma: no cover - the begin just left one
                raise last_error()
            key = cell[0]
            notifier.waits[key] = wait
            loop = notifier.loop
            while rc == WAITING:
                fut = wait.fut = loop.create_future()
                timer = loop.call_later(_remaining(cell[0]), _wake, fut)
                try:
                    await fut
                finally:
                    timer.cancel()
                if cell[0] == NULL:  # the loop closed under us and gave it up
                    raise asyncio.CancelledError()
                rc = _poll(cell)  # WAITING: the deadline timer fired a little early
        if rc < 0:
            raise last_error()
    except BaseException:
        if wait is None or (wait.cell[0] == NULL and not wait.dropped):
            # the begin or its last poll settled: give back what it left
            abandon(p, slot)
        else:
            wait.drop()
        raise
    finally:
        if wait is not None:
            wait.fut = None
            notifier.forget(wait, key)  # type: ignore[union-attr]
    return True
