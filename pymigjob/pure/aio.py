"""The pure twin's waits from asyncio (DECISIONS.md, "Waiting from asyncio"):
``begin``, a begin of the core awaited without a thread, in the same FIFO
queue as threads; and the waiters of each event loop: closing a loop gives up
every waiter it still has -- a queued one leaves the queue, one granted but
not yet seen by its coroutine has its job ended -- and a loop dropped without
close() gives them up when its abandoned coroutines are collected.

asyncio has no close callback, so, as the C-backed side does, the loop
instance's ``close`` is wrapped while the loop has waiters of the twin (and
unwrapped with its last one).  A waiter refers to its loop and future only
weakly, so a queued waiter never keeps a dropped loop alive.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Callable

from .core import _INFO_NONE, Core
from .waiter import _GONE, _NEW, _Waiter, _monotonic, _wake_future


class _LoopWaiters:
    __slots__ = ("waiters", "hook")

    def __init__(self) -> None:
        self.waiters: dict[_Waiter, Core] = {}
        self.hook: Callable[[], None] | None = None


_lock = threading.Lock()
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaiters] = \
    weakref.WeakKeyDictionary()


def register(loop: asyncio.AbstractEventLoop, dom: Core, w: _Waiter) -> None:
    """w (of dom) is queued for a coroutine of `loop`."""
    with _lock:
        entry = _loops.get(loop)
        if entry is None:
            entry = _loops[loop] = _LoopWaiters()
            entry.hook = _hook_close(loop)
        entry.waiters[w] = dom


def unregister(loop: asyncio.AbstractEventLoop | None, w: _Waiter) -> None:
    """w is resolved; the loop's close is unwrapped with its last waiter."""
    if loop is None:
        return
    with _lock:
        entry = _loops.get(loop)
        if entry is None or entry.waiters.pop(w, None) is None or entry.waiters:
            return
        del _loops[loop]
        _unhook(loop, entry)


def _hook_close(loop: asyncio.AbstractEventLoop) -> Callable[[], None] | None:
    try:
        original: Any = loop.close
    except AttributeError:  # pragma: no cover - not a real loop
        return None
    # the hook lives in the loop's __dict__ and in _loops' value for it: it
    # must not refer to the loop strongly (a WeakKeyDictionary's value that
    # does keeps its key alive forever)
    unbound = getattr(original, "__self__", None) is loop
    if unbound:
        original = original.__func__
    loop_ref = weakref.ref(loop)

    def close() -> None:
        target = loop_ref()
        if target is None:  # pragma: no cover - called while being collected
            return
        give_up(target)
        if unbound:
            original(target)
        else:
            original()

    try:
        loop.close = close  # type: ignore[method-assign]
    except (AttributeError, TypeError):  # pragma: no cover - e.g. loops in C
        return None
    return close


def _unhook(loop: asyncio.AbstractEventLoop, entry: _LoopWaiters) -> None:
    try:
        if entry.hook is not None and vars(loop).get("close") is entry.hook:
            del loop.close  # type: ignore[method-assign]
    except TypeError:  # pragma: no cover - no __dict__
        pass


def give_up(loop: asyncio.AbstractEventLoop) -> None:
    """The loop is closing: every waiter of the twin it still has holds
    nothing afterwards, and its coroutine is cancelled."""
    with _lock:
        entry = _loops.pop(loop, None)
    if entry is None:
        return
    _unhook(loop, entry)
    for w, dom in list(entry.waiters.items()):
        with dom._lock:
            dom._abandon_locked(w)
        fut = w.fut() if w.fut is not None else None
        if fut is not None and not fut.done():
            try:
                fut.cancel()
            except RuntimeError:  # pragma: no cover - the loop is already closed
                pass


def later(cleanup: Callable[[], Any]) -> None:
    """Run `cleanup` in a short-lived thread: for a coroutine closed by the
    garbage collector while this thread holds a lock the cleanup needs."""
    threading.Thread(target=cleanup, name="pymigjob-pure-cleanup", daemon=True).start()


# ---- a begin from a coroutine -----------------------------------------------------


async def begin(core: Core, slot: int, job: int, api: str | None, timeout: float,
                set_mask: bool = False, mask: int = 0, info_type: int = _INFO_NONE,
                then_abort: bool = False, api_flags: int = 0, operation: int = -1,
                migration_start: bool = False) -> bool:
    """core._begin for a coroutine: the same queue, awaited without a thread.
    Cancelled (or closed, or interrupted) anywhere, it holds nothing; so
    does a waiter whose loop closes or is dropped (see give_up)."""
    loop = asyncio.get_running_loop()
    w = _Waiter(slot, job, api, set_mask, mask, info_type, _monotonic() + timeout,
                api_flags, operation, migration_start)
    w.loop = weakref.ref(loop)
    registered = False
    try:
        while True:
            fut = loop.create_future()
            with core._lock:
                if w.state == _NEW:
                    core._enqueue_locked(w)
                if core._settle_locked(w):
                    if then_abort:
                        core._apply_abort_locked(w)
                    else:
                        w.state = _GONE  # held: the caller's from here on
                    break
                w.fut = weakref.ref(fut)
            if not registered:
                register(loop, core, w)
                registered = True
            timer = loop.call_later(max(0.0, w.deadline - _monotonic()), _wake_future, fut)
            try:
                await fut
            finally:
                timer.cancel()
    except GeneratorExit:
        # an abandoned coroutine, closed by the garbage collector: perhaps
        # while this very thread holds one of the locks the cleanup takes
        _abandon_soon(core, w, loop if registered else None)
        raise
    except BaseException:
        with core._lock:
            core._abandon_locked(w)
        if registered:
            unregister(loop, w)
        raise
    if registered:
        unregister(loop, w)
    return True


def _abandon_soon(core: Core, w: _Waiter, loop: asyncio.AbstractEventLoop | None) -> None:
    def cleanup() -> None:
        with core._lock:
            core._abandon_locked(w)
        unregister(loop, w)

    if core._lock.acquire(blocking=False):
        try:
            core._abandon_locked(w)
        finally:
            core._lock.release()
        if loop is None or _lock.acquire(blocking=False):
            if loop is not None:
                _lock.release()
            unregister(loop, w)
            return
    later(cleanup)
