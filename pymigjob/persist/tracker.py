"""The driver's side of persistence: write-through of job status records and
the timeout on parked migrations.

A driver built with a store (``state_dir=`` or ``store=``) or a
``park_timeout`` owns one :class:`Tracker`.  It is told everything through
its own methods and reads the driver and its domains through their public
methods only:

* the driver calls ``added(name, dom)`` and ``removed(name, dom)`` as its
  list changes (the tracker keeps its own view of who is listed);
* the driver's domains (``pymigjob._base.Tracked``) call ``changed(dom)``
  after every tracked change -- async job begin and end, a phase set or
  started, a DESTROY job begun or ended -- and ``parked(dom)`` after
  ``migration_job_continue``;
* the tracker reads ``dom.name`` and ``dom.job_status()``, and, for a parked
  migration that timed out, ``driver.lookup(name)``.

``changed`` writes the domain's record before the call returns.  Per domain,
one lock covers "read the current state, write it", so concurrent changes
of one domain can never leave an older state on disk than the newest: the
last writer reads after every change that came before it.  A record equal to
the last one written is not written again.  A failed write is logged
(libvirt's ``Failed to save status on vm %s``) and does not undo the change.

Domains of a driver without a tracker pay nothing: they are the backend's
plain Domain, without the hooks.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Optional, Protocol

from .. import _args
from ..enums import Job
from ..errors import NoDomain
from .abandon import Abandoned, abandon
from .status import JobStatus
from .store import DirectoryStore, Store

log = logging.getLogger("pymigjob")


class Domain(Protocol):
    """What the tracker reads of a domain (either backend's)."""

    @property
    def name(self) -> str: ...

    def job_status(self) -> JobStatus: ...


class Driver(Protocol):
    """What the tracker reads of its driver (either backend's)."""

    def lookup(self, name: str) -> Any: ...


class Tracker:
    __slots__ = ("_driver", "store", "park_timeout", "on_abandon", "_locks", "_last",
                 "_listed", "_cond", "_parked", "_heap", "_timer", "_closed", "saves",
                 "_saves_lock", "destroying", "_private", "__weakref__")

    def __init__(self, driver: Driver, state_dir: Optional[str | os.PathLike[str]] = None,
                 store: Optional[Store] = None, park_timeout: Optional[float] = None,
                 on_abandon: Optional[Callable[[Abandoned], None]] = None) -> None:
        if state_dir is not None and store is not None:
            raise ValueError("give state_dir or store, not both")
        if store is not None and not isinstance(store, Store):
            raise TypeError("store must have save(name, status), load_all() and delete(name)")
        park_timeout = _args.park_timeout(park_timeout)
        if on_abandon is not None and not callable(on_abandon):
            raise TypeError("on_abandon must be callable")
        self._driver = driver
        self.store: Optional[Store] = DirectoryStore(state_dir) if state_dir is not None \
            else store
        self.park_timeout = park_timeout
        self.on_abandon = on_abandon
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, JobStatus] = {}
        #: the driver's list as the driver told it (added / removed)
        self._listed: dict[str, Domain] = {}
        self._cond = threading.Condition(threading.Lock())
        self._parked: dict[str, tuple[float, object]] = {}  # name -> (deadline, token)
        self._heap: list[tuple[float, int, str, object]] = []
        self._timer: Optional[threading.Thread] = None
        self._closed = False
        self.saves = 0
        # saves is counted under per-domain locks, i.e. from several threads
        # at once: its own lock (`+=` is a read and a write; without the GIL,
        # and rarely with it, two of them lose one)
        self._saves_lock = threading.Lock()
        #: domains whose last recorded state holds a DESTROY job: end_job asks
        #: this set (cheaper than asking the core) whether its end is tracked
        self.destroying: set[Domain] = set()
        #: per domain: (async job, its start, children) of a job recovery
        #: restored, kept in its records while that async job lasts (libvirt
        #: swaps the job's private data back in; the library itself has none)
        self._private: dict[str, tuple[int, Optional[int], tuple[str, ...]]] = {}

    # ---- write-through ----------------------------------------------------

    def _lock_for(self, name: str) -> threading.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks.setdefault(name, threading.Lock())
        return lock

    def added(self, name: str, dom: Domain) -> None:
        """The driver listed `dom` under `name` (add_domain; writes nothing:
        a record appears with the domain's first tracked change)."""
        with self._lock_for(name):
            self._listed[name] = dom

    def changed(self, dom: Domain) -> None:
        """After a tracked change of `dom`: its record is durable on return."""
        name = dom.name
        if self._parked:
            self._unpark(name)
        if self.store is None:
            return
        with self._lock_for(name):
            if self._listed.get(name) is not dom:
                return  # removed: remove_domain deleted (or rewrote) the record
            try:
                status = self._status(name, dom)
            except NoDomain:
                return
            if status.job == Job.DESTROY:
                self.destroying.add(dom)
            else:
                self.destroying.discard(dom)
            self._write(name, status)

    def _status(self, name: str, dom: Domain) -> JobStatus:
        """`dom`'s record: its job status, with the children recovery kept
        while the restored async job lasts (with the domain's lock held)."""
        status = dom.job_status()
        kept = self._private.get(name)
        if kept is None:
            return status
        async_job, started, private = kept
        # the start tells that job from a later one of the same kind (begun
        # before this write could see the first one end)
        if status.async_job != async_job or (started is not None and status.started != started):
            del self._private[name]  # that job ended: so did its private data
            return status
        return dataclasses.replace(status, private=private)

    def keep_private(self, name: str, async_job: int, started: Optional[int],
                     private: tuple[str, ...]) -> None:
        """Recovery restores `name`'s `async_job` (begun at `started`, ms):
        its records keep `private`."""
        with self._lock_for(name):
            if private:
                self._private[name] = (async_job, started, private)
            else:
                self._private.pop(name, None)

    def _write(self, name: str, status: JobStatus) -> None:
        """With the domain's lock held."""
        if self._last.get(name) == status:
            return
        try:
            self.store.save(name, status)  # type: ignore[union-attr]
        except Exception:
            self._last.pop(name, None)
            log.warning("Failed to save status on vm %s", name, exc_info=True)
            return
        self._last[name] = status
        with self._saves_lock:
            self.saves += 1

    def removed(self, name: str, dom: Domain) -> None:
        """The driver took `dom` off its list (remove_domain, or add_domain
        over a dead domain's name): its record goes with it."""
        if self._parked:
            self._unpark(name)
        with self._lock_for(name):
            if self._listed.get(name) is dom:
                del self._listed[name]
            if self.store is None:
                return
            self._last.pop(name, None)
            self._private.pop(name, None)
            # a copy: other domains' changes add to and discard from the set
            # meanwhile (under their own locks), and iterating a set that
            # changes size raises RuntimeError
            for gone in [d for d in self.destroying.copy() if d.name == name]:
                self.destroying.discard(gone)
            again = self._listed.get(name)
            if again is None:
                try:
                    self.store.delete(name)
                except Exception:
                    log.warning("Failed to remove status of vm %s", name, exc_info=True)
            else:  # a new domain of that name was added meanwhile: the record is its
                try:
                    self._write(name, again.job_status())
                except NoDomain:
                    pass

    def forget(self, name: str) -> None:
        """Delete a record of a domain that is not on the list (recovery)."""
        if self.store is None:
            return
        with self._lock_for(name):
            if self._listed.get(name) is None:
                self._last.pop(name, None)
                self.store.delete(name)

    def sync(self, dom: Domain, recorded: Optional[JobStatus]) -> None:
        """Write `dom`'s current state unless `recorded` (what the store holds)
        already says the same (recovery)."""
        if self.store is None:
            return
        with self._lock_for(dom.name):
            if recorded is not None:
                self._last[dom.name] = recorded
            if self._listed.get(dom.name) is dom:
                self._write(dom.name, self._status(dom.name, dom))

    # ---- parked migrations --------------------------------------------------

    def parked(self, dom: Domain) -> None:
        """After migration_job_continue: start the park clock."""
        if self.park_timeout is None:
            return
        deadline = time.monotonic() + self.park_timeout
        token = object()
        with self._cond:
            if self._closed:
                return
            self._parked[dom.name] = (deadline, token)
            heapq.heappush(self._heap, (deadline, id(token), dom.name, token))
            if self._timer is None:
                self._timer = threading.Thread(target=_timer_main, args=(weakref.ref(self),),
                                               name="pymigjob-park-timer", daemon=True)
                self._timer.start()
            else:
                self._cond.notify()

    def _unpark(self, name: str) -> None:
        with self._cond:
            self._parked.pop(name, None)

    def still_parked(self, name: str, token: object) -> bool:
        with self._cond:
            entry = self._parked.get(name)
            return entry is not None and entry[1] is token

    def parked_names(self) -> list[str]:
        with self._cond:
            return list(self._parked)

    def _next_expired(self) -> tuple[Optional[tuple[str, object]], float]:
        """With _cond held: an expired (name, token), or how long to sleep
        (-1 when nothing is parked: the timer thread ends)."""
        now = time.monotonic()
        while self._heap:
            deadline, _, name, token = self._heap[0]
            entry = self._parked.get(name)
            if entry is None or entry[1] is not token:
                heapq.heappop(self._heap)  # stale
                continue
            if deadline <= now:
                heapq.heappop(self._heap)
                return (name, token), 0.0
            return None, deadline - now
        return None, -1.0

    def _fire(self, name: str, token: object) -> None:
        entry = self._parked.get(name)
        if entry is None:
            return
        try:
            dom = self._driver.lookup(name)
            status = dom.job_status()
            abandon(dom, "timeout", expect=(status.async_job, status.phase, token),
                    callback=self.on_abandon, still_parked=self.still_parked)
        except NoDomain:
            pass
        except Exception:
            log.exception("abandoning the parked migration of domain %s failed", name)
        finally:
            with self._cond:
                entry = self._parked.get(name)
                if entry is not None and entry[1] is token:
                    del self._parked[name]

    def close(self) -> None:
        """Stop the park timer (parked jobs are left alone); idempotent."""
        with self._cond:
            self._closed = True
            self._parked.clear()
            self._heap.clear()
            timer = self._timer
            self._cond.notify_all()
        if timer is not None and timer is not threading.current_thread():
            timer.join()
        store = self.store
        if isinstance(store, DirectoryStore):
            store.close()


def _timer_main(ref: weakref.ReferenceType[Tracker]) -> None:
    while True:
        tracker = ref()
        if tracker is None:
            return
        with tracker._cond:
            due, wait = tracker._next_expired()
            if due is None:
                if wait < 0 or tracker._closed:
                    tracker._timer = None
                    return
                tracker._cond.wait(min(wait, 1.0))
                continue
        tracker._fire(*due)
        del tracker
