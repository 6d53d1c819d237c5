"""Restart recovery: what libvirt does with each recorded job when the
daemon comes back (qemuProcessReconnect -> qemuProcessRecoverJob, qemu_process.c).

pymigjob runs no QEMU, so it cannot kill, cancel or resume anything itself:
for each domain in the store, ``Driver.recover()`` returns a
:class:`Recovery` saying what libvirt does -- the daemon carries it out --
and brings the driver in line with it: a domain libvirt kills is gone (not
on the list, its record deleted); a job libvirt keeps is restored, parked
(owner thread 0, owner API ``init-<name>``, counted in ``jobs_queued``);
every other recorded domain is back on the list with no job.  Its record
is rewritten so.

The decisions come from a table (pymigjob.persist.recovery_tables):
:data:`LIBVIRT_11` by default, :data:`LIBVIRT_0_9_4` on request
(``recover(table=LIBVIRT_0_9_4)``).  Where libvirt 11 asks the running
domain (post-copy?  running?  what does QEMU say of the migration?), the
daemon answers through `facts`: a mapping from domain name to
:class:`Facts`, or a callable ``facts(name, record) -> Facts | None``,
asked only for the records whose row needs it; a domain it says nothing
about gets ``Facts()``, whose defaults are documented there.

Calling ``recover()`` before any job runs on the recorded domains is the
daemon's business (libvirt recovers before it serves any API): a tracked
change on such a domain before that overwrites its record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Protocol, Union

from ..enums import AsyncJob, Job, Phase
from ..errors import OperationInvalid
from .recovery_tables import (ANY, DESTROY_RULE, FACT_NAMES, LIBVIRT_0_9_4, LIBVIRT_11, Action,
                              Decision, Facts, MigrationStatus, Rule, When)
from .status import JobStatus, remember_start

__all__ = ["Action", "Decision", "When", "Facts", "MigrationStatus", "Restore", "Recovery",
           "LIBVIRT_11", "LIBVIRT_0_9_4", "RECOVERY_TABLE", "DESTROY_RULE", "ANY",
           "FACT_NAMES", "decide", "recover"]

#: 0.1's name of the 0.9.4 table (the same object)
RECOVERY_TABLE = LIBVIRT_0_9_4

Table = Mapping[tuple[AsyncJob, Optional[Phase]], Rule]
FactsSource = Union[Mapping[str, Facts], Callable[[str, JobStatus], Optional[Facts]]]

_MIGRATIONS = (AsyncJob.MIGRATION_IN, AsyncJob.MIGRATION_OUT)
_QEMU_COMPLETED = {
    AsyncJob.MIGRATION_OUT: Decision(Action.KILL, "QEMU completed the post-copy migration "
                                     "while the daemon was down: the guest runs on the "
                                     "destination (migrated)"),
    AsyncJob.MIGRATION_IN: Decision(Action.RESUME, "QEMU completed the post-copy migration "
                                    "while the daemon was down: complete it here and end "
                                    "the job"),
}


@dataclass(frozen=True, slots=True)
class Restore:
    """How a kept async job comes back (Domain.restore_async_job's arguments,
    then ``mark_postcopy_failed()`` when `async_paused`)."""

    async_job: AsyncJob
    phase: Phase           # POSTCOPY_FAILED for migrations (libvirt sets it)
    mask: int              # libvirt does not persist masks: the table's
    flags: int             # the record's apiFlags
    api: str               # init-<name>, libvirt's reconnect thread
    started: Optional[int]  # the record's start (libvirt loses it: see DECISIONS)
    async_paused: bool     # post-copy failed (QEMU does not report post-copy running)

    def __str__(self) -> str:
        text = f"restored parked in {self.phase.label}, mask {self.mask:#x}"
        return text + (", paused" if self.async_paused else "")


def _pick(rule: Rule, facts: Callable[[], Facts], async_paused: bool) -> Decision:
    while isinstance(rule, When):
        rule = rule.yes if facts().get(rule.fact, async_paused) else rule.no
    return rule


def _async_decision(status: JobStatus, table: Table,
                    facts: Callable[[], Facts]) -> Decision:
    rule = table.get((status.async_job, status.phase))  # type: ignore[arg-type]
    if rule is None:
        rule = table[(status.async_job, ANY)]
    decision = _pick(rule, facts, status.async_paused)
    if decision.action == Action.RESTORE and status.async_job in _MIGRATIONS \
            and facts().migration == MigrationStatus.COMPLETED:
        return _QEMU_COMPLETED[status.async_job]
    return decision


@dataclass(frozen=True)
class Recovery:
    """libvirt's decision for one recorded domain."""

    name: str
    status: JobStatus            # the record found in the store
    action: Action               # for the async job
    why: str
    paused_by: tuple[str, ...]   # see Decision
    destroy: bool                # the sync job was DESTROY: kill
    restore: Optional[Restore] = None   # the job kept (None when dropped or killed)
    facts: Optional[Facts] = None       # what the daemon said, when it was asked

    @property
    def kill(self) -> bool:
        """The domain is killed (by the async rule or the DESTROY rule)."""
        return self.action == Action.KILL or self.destroy

    @property
    def job_after(self) -> str:
        """"gone" (killed), "restored" (the async job kept), "cleared" (a
        job was recorded and dropped) or "none"."""
        if self.kill:
            return "gone"
        if self.restore is not None:
            return "restored"
        return "none" if self.status.idle else "cleared"

    def __str__(self) -> str:
        text = f"{self.name}: {self.status} -> {self.action}"
        if self.paused_by:
            text += f" (paused by {'/'.join(self.paused_by)})"
        text += f": {self.why}"
        if self.restore is not None:
            text += f" [{self.restore}]"
        if self.destroy:
            text += f"; then kill: {DESTROY_RULE.why}"
        return text


def _decide(name: str, status: JobStatus, table: Table,
            ask: Callable[[], Facts]) -> Recovery:
    asked: list[Facts] = []

    def facts() -> Facts:
        if not asked:
            asked.append(ask())
        return asked[0]

    decision = _async_decision(status, table, facts)
    destroy = status.job == Job.DESTROY
    restore = None
    if decision.action == Action.RESTORE and not destroy:
        migration = status.async_job in _MIGRATIONS
        mask = decision.mask
        if mask is None:
            raise ValueError(f"a RESTORE decision needs a mask ({status})")
        restore = Restore(status.async_job, Phase.POSTCOPY_FAILED if migration else Phase.NONE,
                          mask, status.flags, f"init-{name}", status.started,
                          migration and facts().migration != MigrationStatus.POSTCOPY)
    return Recovery(name, status, decision.action, decision.why, decision.paused_by, destroy,
                    restore, asked[0] if asked else None)


def decide(name: str, status: JobStatus, facts: Optional[Facts] = None,
           table: Table = LIBVIRT_11) -> Recovery:
    """The decision for one record (pure; no driver needed)."""
    if facts is not None and not isinstance(facts, Facts):
        raise TypeError(f"facts must be a Facts or None, not {type(facts).__name__}")
    return _decide(name, status, table, lambda: facts if facts is not None else Facts())


def _asker(source: Optional[FactsSource], name: str,
           status: JobStatus) -> Callable[[], Facts]:
    def ask() -> Facts:
        if source is None:
            return Facts()
        got = source.get(name) if isinstance(source, Mapping) else source(name, status)
        if got is None:
            return Facts()
        if not isinstance(got, Facts):
            raise TypeError(f"facts for {name!r} must be a Facts or None, "
                            f"not {type(got).__name__}")
        return got
    return ask


class Driver(Protocol):
    """What recovery uses of a driver (either backend's): public methods."""

    def __contains__(self, name: object) -> bool: ...

    def lookup(self, name: str) -> Any: ...

    def add_domain(self, name: str) -> Any: ...

    def remove_domain(self, name: str) -> int: ...


def recover(driver: Driver, tracker: Any,
            act: Optional[Callable[[Recovery], None]] = None, *,
            table: Table = LIBVIRT_11,
            facts: Optional[FactsSource] = None) -> dict[str, Recovery]:
    """Read the store, decide per domain, and bring the driver in line.

    With `act`, ``act(recovery)`` runs for each domain *before* its record is
    cleared, deleted or restored -- the place for the daemon to kill, cancel
    or resume -- so a crash during recovery leaves the records not yet acted
    on for the next restart.  An exception from `act` stops the recovery
    there and propagates (that domain's record and the ones after it are
    untouched); so does one from `facts`, which is asked before `act`.
    `tracker` is the driver's (pymigjob.persist.tracker.Tracker),
    or None; `table` and `facts` as in the module's text."""
    if tracker is None or tracker.store is None:
        raise OperationInvalid("the driver has no job status store to recover from")
    if not isinstance(table, Mapping):
        raise TypeError("table must be a mapping (see pymigjob.recovery.LIBVIRT_11)")
    if facts is not None and not isinstance(facts, Mapping) and not callable(facts):
        raise TypeError("facts must be a mapping of names to Facts, or a callable")
    records = tracker.store.load_all()
    leftovers = getattr(tracker.store, "remove_leftovers", None)
    if leftovers is not None:
        leftovers()  # a writer that died mid-write left its temporary file
    result: dict[str, Recovery] = {}
    for name in sorted(records):
        status = records[name]
        rec = _decide(name, status, table, _asker(facts, name, status))
        if act is not None:
            act(rec)
        result[name] = rec
        if rec.kill:
            if name in driver:
                driver.remove_domain(name)  # deletes the record
            else:
                tracker.forget(name)
            continue
        dom = driver.lookup(name) if name in driver else driver.add_domain(name)
        if rec.restore is not None:
            _restore(dom, rec.restore, status, tracker)
        tracker.sync(dom, status)  # the job is cleared or restored: rewrite the record
    return result


def _restore(dom: Any, how: Restore, status: JobStatus, tracker: Any) -> None:
    """Bring the job back parked; its record keeps the recorded children
    (the job's private data, which libvirt swaps back in)."""
    tracker.keep_private(dom.name, how.async_job, how.started, status.private)
    if how.started is not None:
        remember_start(dom, how.async_job, how.started)
    dom.restore_async_job(how.async_job, how.phase, mask=how.mask, flags=how.flags,
                          api=how.api, started=how.started)
    if how.async_paused:
        dom.mark_postcopy_failed()
