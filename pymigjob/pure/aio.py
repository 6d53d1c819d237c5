"""The pure twin's waiters of each asyncio event loop (DECISIONS.md, "Waiting
from asyncio"): closing a loop gives up every waiter it still has -- a queued
one leaves the queue, one granted but not yet seen by its coroutine has its
job ended -- and a loop dropped without close() gives them up when its
abandoned coroutines are collected.

asyncio has no close callback, so, as the C-backed side does, the loop
instance's ``close`` is wrapped while the loop has waiters of the twin (and
unwrapped with its last one).  A waiter refers to its loop and future only
weakly, so a queued waiter never keeps a dropped loop alive.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .domain import Domain, _Waiter


class _LoopWaiters:
    __slots__ = ("waiters", "hook")

    def __init__(self) -> None:
        self.waiters: dict[_Waiter, Domain] = {}
        self.hook: Callable[[], None] | None = None


_lock = threading.Lock()
_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaiters] = \
    weakref.WeakKeyDictionary()


def register(loop: asyncio.AbstractEventLoop, dom: Domain, w: _Waiter) -> None:
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
