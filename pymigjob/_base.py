"""What both backends share.

* ``JobInfo``;
* ``DomainBase``: what a Domain is whatever its backend -- its repr, the
  context managers (pymigjob.guards), ``job_status()``;
* ``Tracked``: the persistence hooks, put in front of a backend's Domain for
  the domains of a driver with a tracker (``TrackedDomain``), so that a
  domain of a driver without one pays nothing for them, not even a check;
* ``DriverBase``: the domain list -- settings, add/lookup/remove, shutdown,
  persistence.  Each backend's Driver says only how a name is checked and
  how a domain is made, removed and cancelled.

Backend-neutral: no cffi here, and nothing of either backend is imported.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Generic, Protocol, TypeVar

from . import _args
from .cleanups import cleanups_of
from .cleanups import run as _run_cleanups
from .enums import AgentJob, Job, JobType
from .errors import NoDomain, OperationFailed
from .guards import AgentJobGuard, JobAsyncGuard, JobGuard, MigrationGuard, NestedJobGuard
from .persist.abandon import Abandoned, abandon
from .persist.recovery import LIBVIRT_11, Recovery, recover
from .persist.status import JobStatus, status_of
from .persist.tracker import Tracker

_DESTROY = Job.DESTROY


@dataclass(frozen=True, slots=True)
class JobInfo:
    """virDomainGetJobInfo's essentials."""

    type: JobType
    elapsed: float  # seconds since the async job began


class DomainBase:
    """What every Domain has, written once.  A backend's Domain provides the
    primitives (api.md's methods and properties) and ``_name``."""

    __slots__ = ()
    _name: str
    refs: int

    def __repr__(self) -> str:
        return f"<pymigjob.Domain {self._name!r} refs={self.refs}>"

    @property
    def name(self) -> str:
        return self._name

    #: each backend's Domain: (active job, async job, phase, owner API of the
    #: async job if any, else of the sync job), read at one instant
    _job_fields: Callable[[], tuple[int, int, int, str | None]]

    def job_status(self) -> JobStatus:
        """The job state libvirt persists (pymigjob.persist.status.JobStatus)."""
        return status_of(self, self._job_fields())

    # ---- cleanups (pymigjob.cleanups): each backend's Domain has the slot -----

    def _register_cleanup(self, cleanup: Any) -> Any:
        """migration_job_continue's `cleanup` (checked by the caller), before
        the job is parked, as libvirt does; returns what to give to
        _unregister_cleanup if the park fails (None: nothing was added)."""
        if cleanup is not None and cleanups_of(self, True).add(cleanup):  # type: ignore[union-attr]
            return cleanup
        return None

    def _unregister_cleanup(self, added: Any) -> None:
        """The park failed (a dead domain): an error changes nothing."""
        if added is not None:
            cleanups_of(self, True).discard(added)  # type: ignore[union-attr]

    def remove_cleanup(self, cleanup: Any) -> bool:
        """qemuDomainCleanupRemove: unregister `cleanup` (a migration API
        does so on entry, so that a step it replaces cannot run); True when
        it was registered."""
        _args.cleanup(cleanup)
        found = cleanups_of(self, False)
        return found is not None and cleanup is not None and found.discard(cleanup, True)

    def run_cleanups(self) -> int:
        """The guest stopped: run every cleanup registered by
        migration_job_continue, newest first, each once, with this domain
        as argument; one that raises does not stop the others (see
        pymigjob.cleanups.run).  Returns how many ran."""
        found = cleanups_of(self, False)
        return _run_cleanups(self, [] if found is None else found.take())

    # ---- context managers ---------------------------------------------------

    def job(self, job: Job | int, api: str | None = None,
            timeout: float | None = None) -> Any:
        """`with dom.job(Job.MODIFY):` -- begin_job ... end_job."""
        return JobGuard(self, job, api, timeout)  # type: ignore[arg-type]

    def nested_job(self, async_job: int, api: str | None = None,
                   timeout: float | None = None) -> NestedJobGuard:
        """`with dom.nested_job(AsyncJob.MIGRATION_OUT):` around a monitor call."""
        return NestedJobGuard(self, async_job, api, timeout)  # type: ignore[arg-type]

    def migration(self, async_job: int, phase: int, api: str | None = None,
                  timeout: float | None = None, mask: int | None = None) -> MigrationGuard:
        """The first API of a migration: start + set phase; continue on exit."""
        return MigrationGuard(self, async_job, phase, api, True,  # type: ignore[arg-type]
                              timeout, mask)

    def migration_phase(self, async_job: int, phase: int,
                        api: str | None = None) -> MigrationGuard:
        """A later API: check active + start phase; continue (or finish) on exit."""
        return MigrationGuard(self, async_job, phase, api, False,  # type: ignore[arg-type]
                              None, None)

    def job_async(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None) -> JobAsyncGuard:
        """`async with dom.job_async(Job.MODIFY):` -- begin_job_async ... end_job."""
        return JobAsyncGuard(self, job, api, timeout)  # type: ignore[arg-type]

    def agent(self, agent_job: AgentJob | int, api: str | None = None,
              timeout: float | None = None) -> AgentJobGuard:
        """`with dom.agent(AgentJob.QUERY):` -- begin_agent_job ... end_agent_job."""
        return AgentJobGuard(self, agent_job, api, timeout)  # type: ignore[arg-type]


class Tracked:
    """The persistence hooks of a domain whose driver has a tracker
    (pymigjob.persist): after every tracked change -- async job begin and
    end, a phase set or started, a DESTROY job begun or ended -- the
    tracker's ``changed(dom)`` writes the domain's record before the call
    returns; after ``migration_job_continue`` its ``parked(dom)`` starts the
    park clock.  Each backend puts it in front of its Domain
    (``class TrackedDomain(Tracked, Domain)``) and gives it the ``_track``
    slot.  A call refused for its arguments (TypeError, ValueError) changed
    nothing and writes nothing."""

    __slots__ = ()
    _track: Any

    def __init__(self, *args: Any, tracker: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)  # type: ignore[call-arg]
        self._track = tracker

    def job(self, job: Job | int, api: str | None = None,
            timeout: float | None = None) -> JobGuard:
        # always through begin_job/end_job below (no backend shortcut)
        return JobGuard(self, job, api, timeout)  # type: ignore[arg-type]

    def begin_job(self, job: Job | int, api: str | None = None,
                  timeout: float | None = None, nowait: bool = False) -> bool:
        held: bool = super().begin_job(job, api, timeout, nowait)  # type: ignore[misc]
        if held and job == _DESTROY:
            self._track.changed(self)
        return held

    def end_job(self) -> int:
        # the domain's last record holds a DESTROY job: its end is tracked
        tracked = self in self._track.destroying
        refs: int = super().end_job()  # type: ignore[misc]
        if tracked:
            self._track.changed(self)
        return refs

    def begin_async_job(self, async_job: int, api: str | None = None,
                        timeout: float | None = None, flags: int = 0, *,
                        operation: int | None = None) -> bool:
        super().begin_async_job(async_job, api, timeout, flags,  # type: ignore[misc]
                                operation=operation)
        self._track.changed(self)
        return True

    def end_async_job(self, error: str | None = None) -> int:
        refs: int = super().end_async_job(error)  # type: ignore[misc]
        self._track.changed(self)
        return refs

    def migration_job_start(self, async_job: int, mask: int | None = None,
                            api: str | None = None, timeout: float | None = None,
                            flags: int = 0) -> bool:
        super().migration_job_start(async_job, mask, api, timeout, flags)  # type: ignore[misc]
        self._track.changed(self)
        return True

    def migration_job_set_phase(self, phase: int, api: str | None = None) -> bool:
        return self._phase_call(super().migration_job_set_phase, phase, api)  # type: ignore[misc]

    def migration_job_start_phase(self, phase: int, api: str | None = None) -> bool:
        return self._phase_call(super().migration_job_start_phase, phase, api)  # type: ignore[misc]

    def _phase_call(self, call: Any, phase: int, api: str | None) -> bool:
        """A phase set or started is tracked whatever its result, a refusal
        or an error included (StartPhase took its reference)."""
        try:
            done: bool = call(phase, api)
        except (TypeError, ValueError):
            raise
        except BaseException:
            self._track.changed(self)
            raise
        self._track.changed(self)
        return done

    def migration_job_claim_parked(self, async_job: int, phase: int, new_phase: int,
                                   api: str | None = None) -> bool:
        claimed: bool = super().migration_job_claim_parked(  # type: ignore[misc]
            async_job, phase, new_phase, api)
        if claimed:
            self._track.changed(self)
        return claimed

    def migration_job_continue(self, cleanup: Any = None) -> int:
        refs: int = super().migration_job_continue(cleanup)  # type: ignore[misc]
        self._track.parked(self)
        return refs

    def migration_job_finish(self, error: str | None = None) -> int:
        refs: int = super().migration_job_finish(error)  # type: ignore[misc]
        self._track.changed(self)
        return refs

    # libvirt 11: restore, discard and the post-copy marks are saved (as
    # libvirt saves status there); release parks

    def restore_async_job(self, async_job: int, phase: int, **kw: Any) -> None:
        super().restore_async_job(async_job, phase, **kw)  # type: ignore[misc]
        self._track.changed(self)

    def discard_async_job(self) -> int:
        refs: int = super().discard_async_job()  # type: ignore[misc]
        self._track.changed(self)
        return refs

    def release_async_job(self) -> None:
        super().release_async_job()  # type: ignore[misc]
        self._track.parked(self)

    def mark_postcopy_failed(self) -> None:
        super().mark_postcopy_failed()  # type: ignore[misc]
        self._track.changed(self)  # no park clock: the job waits for a resume

    def clear_postcopy_failed(self) -> None:
        super().clear_postcopy_failed()  # type: ignore[misc]
        self._track.changed(self)

    async def begin_job_async(self, job: Job | int, api: str | None = None,
                              timeout: float | None = None) -> bool:
        await super().begin_job_async(job, api, timeout)  # type: ignore[misc]
        if job == _DESTROY:
            self._track.changed(self)  # blocking: the record is durable on return
        return True

    async def begin_async_job_async(self, async_job: int, api: str | None = None,
                                    timeout: float | None = None, flags: int = 0) -> bool:
        await super().begin_async_job_async(async_job, api, timeout, flags)  # type: ignore[misc]
        self._track.changed(self)
        return True

    async def migration_job_start_async(self, async_job: int, mask: int | None = None,
                                        api: str | None = None,
                                        timeout: float | None = None,
                                        flags: int = 0) -> bool:
        await super().migration_job_start_async(  # type: ignore[misc]
            async_job, mask, api, timeout, flags)
        self._track.changed(self)
        return True


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
        timeout, max_queued, strict_phases = _args.driver_settings(
            job_wait_timeout, max_queued, strict_phases)
        self._lock = threading.Lock()
        self._domains: dict[str, D] = {}
        self._timeout = timeout
        self._max_queued = max_queued
        self._strict = strict_phases
        # persistence and parked-migration timeouts: None = off, and free
        # (the domains are the backend's plain Domain, without the hooks)
        self._tracker: Tracker | None = None
        if state_dir is not None or store is not None or park_timeout is not None \
                or on_abandon is not None:
            self._tracker = Tracker(self, state_dir, store, park_timeout, on_abandon)

    # ---- what each implementation provides ----------------------------------

    @abstractmethod
    def _check_name(self, name: object, what: str) -> Any:
        """`name` checked (TypeError / ValueError), in the form _new_domain
        and _cancel take it; empty if it is empty."""

    @abstractmethod
    def _new_domain(self, name: str, checked: Any, uuid: str | None = None) -> D:
        """A new domain with this driver's settings (refs 1); `uuid` is
        checked (_args.uuid)."""

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

    def add_domain(self, name: str, uuid: str | None = None) -> D:
        """Create a domain (refs 1: the list's reference).  With a `uuid`
        (libvirt's textual form), the NoDomain errors the domain raises once
        removed or dead name it: "no domain with matching uuid '<uuid>'
        (<name>)"."""
        checked = self._check_name(name, "name")
        if not checked:
            raise ValueError("a domain needs a non-empty name")
        uuid = _args.uuid(uuid)
        with self._lock:
            if self._listed(name) is not None:
                raise OperationFailed(f"domain '{name}' already exists")
            dead = self._domains.get(name)
            if dead is not None and self._tracker is not None:
                self._tracker.removed(name, dead)  # a dead one's record goes with it
            dom = self._new_domain(name, checked, uuid)
            self._domains[name] = dom
            if self._tracker is not None:
                self._tracker.added(name, dom)
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
            self._tracker.removed(name, dom)
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

    # ---- persistence, recovery, abandoned migrations ------------------------

    @property
    def store(self) -> Any:
        """The job status store (None without one)."""
        return None if self._tracker is None else self._tracker.store

    def recover(self, act: Any = None, *, table: Any = LIBVIRT_11,
                facts: Any = None) -> dict[str, Recovery]:
        """After a restart: libvirt's decision for every recorded domain (see
        pymigjob.recovery; `table` LIBVIRT_11 or LIBVIRT_0_9_4, `facts` what
        the daemon knows of its guests); restores or clears each job
        accordingly; act(recovery), if given, runs for each domain before
        its record changes."""
        return recover(self, self._tracker, act, table=table, facts=facts)

    def abandon(self, name: str) -> Abandoned | None:
        """The client of domain `name`'s parked migration went away: run the
        close-callback rule (see pymigjob.persist.abandon)."""
        return abandon(self.lookup(name), "explicit", None,
                       None if self._tracker is None else self._tracker.on_abandon)

    def close(self) -> None:
        """Stop the park timer and close the store; jobs are left as they are."""
        if self._tracker is not None:
            self._tracker.close()
