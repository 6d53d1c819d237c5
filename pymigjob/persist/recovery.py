"""Restart recovery: what libvirt 0.9.4 does with each recorded job
(qemuProcessReconnect -> qemuProcessRecoverJob / qemuProcessRecoverMigration,
qemu_process.c).

pymigjob runs no QEMU, so it cannot kill or resume anything itself: for each
domain in the store, ``Driver.recover()`` returns a :class:`Recovery` saying
what libvirt does -- the daemon carries it out -- and brings the driver in
line with it: a domain libvirt kills is gone (not on the list, its record
deleted); every other recorded domain is back on the list with no job (libvirt
0.9.4 never keeps an async job across a restart), its record rewritten so.

The decision for the async job is :data:`RECOVERY_TABLE`, one table keyed by
(async job, phase) with ``ANY`` rows for "whatever the phase"; a phase of the
other side (a source phase under MIGRATION_IN, ...) falls to the side's ANY
row: nothing.  After the async part, libvirt looks at the sync job: DESTROY
means the domain should already have been destroyed, so it is killed
(:data:`DESTROY_RULE`); every other sync job is forgotten.

Calling ``recover()`` before any job runs on the recorded domains is the
daemon's business (libvirt recovers before it serves any API): a tracked
change on such a domain before that overwrites its record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

from ..enums import AsyncJob, Job, Phase
from ..errors import OperationInvalid
from .status import JobStatus

__all__ = ["Action", "Decision", "Recovery", "RECOVERY_TABLE", "DESTROY_RULE", "ANY",
           "decide", "recover"]


class Action(str, enum.Enum):
    """What the daemon does to the domain (its QEMU process)."""

    NOTHING = "nothing"
    KILL = "kill"
    RESUME = "resume"                                 # start the vCPUs, whatever the state
    RESUME_IF_PAUSED = "resume-if-paused"             # only if paused for `paused_by`
    CANCEL = "cancel-and-resume-if-paused"            # migrate_cancel, then the same
    LEAVE_PAUSED = "leave-paused"                     # a third party has to decide

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Decision:
    action: Action
    why: str
    #: pause reasons (libvirt's VIR_DOMAIN_PAUSED_*, lower case) under which
    #: the domain is resumed; empty unless the action resumes conditionally
    paused_by: tuple[str, ...] = ()


#: the phase column's wildcard
ANY = None

_BY_MIGRATION = ("migration", "unknown")
_IN, _OUT = AsyncJob.MIGRATION_IN, AsyncJob.MIGRATION_OUT

#: libvirt 0.9.4 (identical in 0.10.2), per (async job, phase)
RECOVERY_TABLE: dict[tuple[AsyncJob, Optional[Phase]], Decision] = {
    (AsyncJob.NONE, ANY): Decision(Action.NOTHING, "no async job"),
    # destination
    (_IN, Phase.PREPARE): Decision(Action.KILL, "unfinished incoming migration"),
    (_IN, Phase.FINISH2): Decision(Action.RESUME, "the source is already gone; resume "
                                   "the vCPUs (running, unpaused)"),
    (_IN, Phase.FINISH3): Decision(Action.KILL, "we may have started resuming but did "
                                   "not confirm"),
    (_IN, ANY): Decision(Action.NOTHING, "not a phase of an incoming migration"),
    # source
    (_OUT, Phase.BEGIN3): Decision(Action.NOTHING, "forget about the migration"),
    (_OUT, Phase.PERFORM2): Decision(Action.CANCEL, "cancel the migration in QEMU",
                                     _BY_MIGRATION),
    (_OUT, Phase.PERFORM3): Decision(Action.CANCEL, "cancel the migration in QEMU",
                                     _BY_MIGRATION),
    (_OUT, Phase.PERFORM3_DONE): Decision(Action.LEAVE_PAUSED, "the outcome of Finish3 "
                                          "is unknown; a third party has to decide"),
    (_OUT, Phase.CONFIRM3_CANCELLED): Decision(Action.RESUME_IF_PAUSED, "the migration "
                                               "was cancelled", _BY_MIGRATION),
    (_OUT, Phase.CONFIRM3): Decision(Action.KILL, "the migration completed"),
    (_OUT, ANY): Decision(Action.NOTHING, "not a phase of an outgoing migration"),
    # other async jobs, whatever the phase
    (AsyncJob.SAVE, ANY): Decision(Action.CANCEL, "cancel the save", ("save", "unknown")),
    (AsyncJob.DUMP, ANY): Decision(Action.CANCEL, "cancel the dump", ("dump", "unknown")),
}

#: the sync job's rule, applied after the async one
DESTROY_RULE = Decision(Action.KILL, "the domain should have already been destroyed")


def _async_decision(status: JobStatus) -> Decision:
    key = (status.async_job, status.phase)
    decision = RECOVERY_TABLE.get(key)  # type: ignore[arg-type]
    if decision is None:
        decision = RECOVERY_TABLE[(status.async_job, ANY)]
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

    @property
    def kill(self) -> bool:
        """The domain is killed (by the async rule or the DESTROY rule)."""
        return self.action == Action.KILL or self.destroy

    @property
    def job_after(self) -> str:
        """"gone" (killed), "cleared" (a job was recorded) or "none"."""
        if self.kill:
            return "gone"
        return "none" if self.status.idle else "cleared"

    def __str__(self) -> str:
        text = f"{self.name}: {self.status} -> {self.action}"
        if self.paused_by:
            text += f" (paused by {'/'.join(self.paused_by)})"
        text += f": {self.why}"
        if self.destroy:
            text += f"; then kill: {DESTROY_RULE.why}"
        return text


def decide(name: str, status: JobStatus) -> Recovery:
    """The decision for one record (pure; no driver needed)."""
    decision = _async_decision(status)
    return Recovery(name, status, decision.action, decision.why, decision.paused_by,
                    status.job == Job.DESTROY)


class Driver(Protocol):
    """What recovery uses of a driver (either backend's): public methods."""

    def __contains__(self, name: object) -> bool: ...

    def lookup(self, name: str) -> Any: ...

    def add_domain(self, name: str) -> Any: ...

    def remove_domain(self, name: str) -> int: ...


def recover(driver: Driver, tracker: Any,
            act: Optional[Callable[[Recovery], None]] = None) -> dict[str, Recovery]:
    """Read the store, decide per domain, and bring the driver in line.

    With `act`, ``act(recovery)`` runs for each domain *before* its record is
    cleared or deleted -- the place for the daemon to kill, cancel or resume
    -- so a crash during recovery leaves the records not yet acted on for the
    next restart.  An exception from `act` stops the recovery there and
    propagates (that domain's record and the ones after it are untouched).
    `tracker` is the driver's (pymigjob.persist.tracker.Tracker), or None."""
    if tracker is None or tracker.store is None:
        raise OperationInvalid("the driver has no job status store to recover from")
    records = tracker.store.load_all()
    leftovers = getattr(tracker.store, "remove_leftovers", None)
    if leftovers is not None:
        leftovers()  # a writer that died mid-write left its temporary file
    result: dict[str, Recovery] = {}
    for name in sorted(records):
        status = records[name]
        rec = decide(name, status)
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
        tracker.sync(dom, status)  # the job is cleared: rewrite the record
    return result
