"""What both backends share: JobInfo, and the domain list (DriverBase:
settings, add/lookup/remove, shutdown and the persistence hooks).
Backend-neutral (no cffi here): each Driver says only how a name is checked
and how a domain is made, removed and cancelled."""

from __future__ import annotations

import threading
from numbers import Real
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from dataclasses import dataclass

from .enums import JobType
from .errors import NoDomain, OperationFailed


@dataclass(frozen=True, slots=True)
class JobInfo:
    """virDomainGetJobInfo's essentials."""

    type: JobType
    elapsed: float  # seconds since the async job began


class _Listed(Protocol):
    @property
    def alive(self) -> bool: ...


D = TypeVar("D", bound=_Listed)


class DriverBase(ABC, Generic[D]):
    """A set of named domains sharing job_wait_timeout, max_queued and
    strict_phases.  The list holds one reference on each domain."""

    __slots__ = ("_lock", "_domains", "_timeout", "_max_queued", "_strict", "_tracker",
                 "__weakref__")

    def __init__(self, job_wait_timeout: float = 30.0, max_queued: int = 0,
                 strict_phases: bool = False, *, state_dir: str | None = None,
                 store: Any = None, park_timeout: float | None = None,
                 on_abandon: Any = None) -> None:
        # any real number (numbers.Real: Fraction too), as every timeout
        if isinstance(job_wait_timeout, bool) or not isinstance(job_wait_timeout, Real):
            raise TypeError("job_wait_timeout must be a number of seconds")
        if not job_wait_timeout >= 0:
            raise ValueError(f"job_wait_timeout must be >= 0, not {job_wait_timeout!r}")
        try:
            timeout = float(job_wait_timeout)
        except OverflowError:
            raise ValueError(f"job_wait_timeout {job_wait_timeout!r} is too large") from None
        if isinstance(max_queued, bool) or not isinstance(max_queued, int):
            raise TypeError("max_queued must be an int")
        if not 0 <= max_queued < 2**31:
            raise ValueError(f"max_queued must be in [0, 2**31), not {max_queued!r}")
        if not isinstance(strict_phases, bool):
            raise TypeError("strict_phases must be a bool")
        self._lock = threading.Lock()
        self._domains: dict[str, D] = {}
        self._timeout = timeout
        self._max_queued = int(max_queued)
        self._strict = strict_phases
        # persistence and parked-migration timeouts (issue 5): None = off, free
        self._tracker = None
        if state_dir is not None or store is not None or park_timeout is not None \
                or on_abandon is not None:
            from .persist import Tracker
            self._tracker = Tracker(self, state_dir, store, park_timeout, on_abandon)

    # ---- what each implementation provides ----------------------------------

    @abstractmethod
    def _check_name(self, name: object, what: str) -> Any:
        """`name` checked (TypeError / ValueError), in the form _new_domain
        and _cancel take it; empty if it is empty."""

    @abstractmethod
    def _new_domain(self, name: str, checked: Any) -> D:
        """A new domain with this driver's settings (refs 1)."""

    @abstractmethod
    def _remove(self, dom: D) -> int:
        """Drop the list's reference; the refs left."""

    @abstractmethod
    def _cancel(self, dom: D, checked_reason: Any) -> None:
        """Fail every queued and later begin on `dom` (cancel_waiters)."""

    # ---- the list ---------------------------------------------------------------

    @property
    def job_wait_timeout(self) -> float:
        return self._timeout

    @property
    def max_queued(self) -> int:
        return self._max_queued

    @property
    def strict_phases(self) -> bool:
        return self._strict

    def add_domain(self, name: str) -> D:
        """Create a domain (refs 1: the list's reference)."""
        checked = self._check_name(name, "name")
        if not checked:
            raise ValueError("a domain needs a non-empty name")
        with self._lock:
            if self._listed(name) is not None:
                raise OperationFailed(f"domain '{name}' already exists")
            if name in self._domains and self._tracker is not None:
                self._tracker.removed(name)  # a dead one's record goes with it
            dom = self._new_domain(name, checked)
            self._domains[name] = dom
        return dom

    def _listed(self, name: object) -> D | None:
        """The live domain listed under `name`.  A domain unref'd to 0 while
        listed is gone: invisible here, replaced by the next add_domain."""
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        dom = self._domains.get(name)
        return dom if dom is not None and dom.alive else None

    def lookup(self, name: str) -> D:
        """The domain's handle; takes no reference."""
        with self._lock:
            dom = self._listed(name)
        if dom is None:
            raise NoDomain(f"no domain with matching name '{name}'")
        return dom

    def remove_domain(self, name: str) -> int:
        """Drop the list's reference; waiters fail with NoDomain.  Refs left."""
        with self._lock:
            dom = self._listed(name)
            if dom is not None:
                del self._domains[name]
        if dom is None:
            raise NoDomain(f"no domain with matching name '{name}'")
        if self._tracker is not None:
            self._tracker.removed(name)
        return self._remove(dom)

    def domains(self) -> list[str]:
        with self._lock:
            return [name for name, dom in self._domains.items() if dom.alive]

    def cancel_waiters(self, reason: str = "driver shutdown") -> None:
        """For daemon shutdown: every queued and later begin on every domain
        fails with OperationAborted "job wait cancelled: <reason>"."""
        checked = self._check_name(reason, "reason")
        with self._lock:
            doms = list(self._domains.values())
        for dom in doms:
            self._cancel(dom, checked)

    def __len__(self) -> int:
        return len(self.domains())

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return isinstance(name, str) and self._listed(name) is not None

    # ---- persistence, recovery, abandoned migrations (issue 5) -------------

    @property
    def store(self) -> Any:
        """The job status store (None without one)."""
        return None if self._tracker is None else self._tracker.store

    def recover(self, act: Any = None) -> Any:
        """After a restart: libvirt's decision for every recorded domain (see
        pymigjob.recovery); restores or clears each job accordingly; act(recovery), if given,
        runs for each domain before its record changes."""
        from .recovery import recover
        return recover(self, act)

    def abandon(self, name: str) -> Any:
        """The client of domain `name`'s parked migration went away: run the
        close-callback rule (see pymigjob.abandon)."""
        from .abandon import abandon
        return abandon(self, name, "explicit", None,
                       None if self._tracker is None else self._tracker.on_abandon)

    def close(self) -> None:
        """Stop the park timer and close the store; jobs are left as they are."""
        if self._tracker is not None:
            self._tracker.close()
