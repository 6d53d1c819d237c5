"""The callables ``migration_job_continue(cleanup=...)`` registers and
``Domain.run_cleanups()`` runs (libvirt's qemuDomainCleanupAdd / Run: once
each, newest first, when the guest stops).

They live in Python, for both backends, and are never called under a lock:
the list is swapped out under a ``threading.Lock`` and run after it is
released, so a cleanup may call the domain (continue another migration,
register another cleanup) without deadlock, from any thread, with or
without the GIL.  "No duplicates" compares identity (a bound method by its
object and function), so no caller's ``__eq__`` runs under the lock.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import BuiltinMethodType, MethodType, ModuleType
from typing import Any, Callable

log = logging.getLogger("pymigjob")

#: creating a domain's list the first time (rare: one lock for all domains)
_CREATE = threading.Lock()


def _same(a: Any, b: Any) -> bool:
    """One callable: the same object, or the same method of the same object
    (``obj.method`` is a new object at each access)."""
    if a is b:
        return True
    if isinstance(a, MethodType) and isinstance(b, MethodType):
        return a.__self__ is b.__self__ and a.__func__ is b.__func__
    if isinstance(a, BuiltinMethodType) and isinstance(b, BuiltinMethodType):
        return (a.__self__ is b.__self__ and not isinstance(a.__self__, ModuleType)
                and a.__name__ == b.__name__)
    return False


class Cleanups:
    """One domain's registered cleanups, oldest first."""

    __slots__ = ("_lock", "_items")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Callable[[Any], object]] = []

    def add(self, cleanup: Callable[[Any], object]) -> bool:
        """Register `cleanup` unless it already is; True when added."""
        with self._lock:
            if any(_same(item, cleanup) for item in self._items):
                return False
            self._items.append(cleanup)
            return True

    def discard(self, cleanup: Callable[[Any], object], same: bool = False) -> bool:
        """Unregister `cleanup`: the very object add was given, or with
        `same` one that is the same callable (see _same); True if found."""
        with self._lock:
            for i, item in enumerate(self._items):
                if item is cleanup or (same and _same(item, cleanup)):
                    del self._items[i]
                    return True
        return False

    def take(self) -> list[Callable[[Any], object]]:
        """Every registered cleanup, oldest first; the list is empty after."""
        with self._lock:
            items, self._items = self._items, []
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def cleanups_of(holder: Any, create: bool) -> Cleanups | None:
    """`holder._cleanups`, made on first use when `create` (the slot starts
    unset: domains that never register one pay nothing)."""
    found: Cleanups | None = getattr(holder, "_cleanups", None)
    if found is None and create:
        with _CREATE:
            found = getattr(holder, "_cleanups", None)
            if found is None:
                found = holder._cleanups = Cleanups()
    return found


def run(dom: Any, items: list[Callable[[Any], object]]) -> int:
    """Call each of `items` with `dom`, newest first; one that raises does
    not stop the others.  After all ran, the failures are raised together:
    a BaseExceptionGroup (an ExceptionGroup when all are Exceptions) on
    Python 3.11+; on 3.10 the first, with the others logged.  Returns how
    many ran."""
    errors: list[BaseException] = []
    for cleanup in reversed(items):
        try:
            cleanup(dom)
        except BaseException as exc:  # noqa: B902 - each is reported below
            errors.append(exc)
    if errors:
        text = (f"pymigjob: {len(errors)} of {len(items)} cleanups of domain "
                f"'{dom.name}' failed")
        if sys.version_info >= (3, 11):
            raise BaseExceptionGroup(text, errors)  # noqa: F821 - 3.11+
        for other in errors[1:]:
            log.error("%s: %s: %s", text, type(other).__name__, other)
        raise errors[0]
    return len(items)
