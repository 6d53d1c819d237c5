"""Restart decision tables, as data: what libvirt does with each recorded job
when the daemon comes back (qemu_process.c: qemuProcessRecoverJob and
qemuProcessRecoverMigration{In,Out}).

A table maps ``(async job, phase)`` -- or ``(async job, ANY)`` for "whatever
the phase", the row a phase without its own row falls to -- to a
:class:`Decision`, or to a :class:`When` when libvirt's answer depends on a
fact about the running domain that only the daemon knows (:class:`Facts`).

* :data:`LIBVIRT_11`, the default: libvirt 11, which keeps a post-copy
  migration's job (and a backup's) across the restart, restored parked;
* :data:`LIBVIRT_0_9_4`: libvirt 0.9.4 (and 0.10.2), where no async job
  survives a restart.

After the async job's row, libvirt looks at the sync job: a DESTROY job
means kill (:data:`DESTROY_RULE`), in either table; any other is forgotten.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Union

from .. import _constants as K
from ..enums import AsyncJob, Phase

__all__ = ["Action", "Decision", "When", "Facts", "MigrationStatus", "Rule", "ANY",
           "LIBVIRT_0_9_4", "LIBVIRT_11", "DESTROY_RULE", "FACT_NAMES"]


class Action(str, enum.Enum):
    """What the daemon does to the domain (its QEMU process)."""

    NOTHING = "nothing"
    KILL = "kill"
    RESUME = "resume"                                 # start the vCPUs, whatever the state
    RESUME_IF_PAUSED = "resume-if-paused"             # only if paused for `paused_by`
    CANCEL = "cancel-and-resume-if-paused"            # migrate_cancel, then the same
    LEAVE_PAUSED = "leave-paused"                     # a third party has to decide
    RESTORE = "restore"                               # keep the job, parked; QEMU as it is

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    why: str
    #: pause reasons (libvirt's VIR_DOMAIN_PAUSED_*, lower case) under which
    #: the domain is resumed; empty unless the action resumes conditionally
    paused_by: tuple[str, ...] = ()
    #: RESTORE: the mask the job gets back (libvirt does not persist masks)
    mask: Optional[int] = None


class MigrationStatus(str, enum.Enum):
    """What QEMU says of the migration at reconnect (libvirt's migStatus,
    as far as recovery tells the values apart)."""

    POSTCOPY = "postcopy"      # still migrating, in post-copy
    COMPLETED = "completed"    # HYPERVISOR_COMPLETED: QEMU finished it
    OTHER = "other"            # anything else (failed, paused, none, unknown)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Facts:
    """What the daemon knows of one domain's guest at restart, and libvirt
    reads before it decides.  The defaults are what a daemon that says
    nothing gets; each is the answer that destroys nothing on a guess, or
    libvirt 0.9.4's where that is the question:

    * ``postcopy`` (the migration was in post-copy): ``None`` takes it from
      the record (``async_paused``: post-copy had failed), else False -- a
      pre-copy migration, 0.9.4's case;
    * ``running`` (the domain's state is RUNNING): False, so an incoming
      migration caught in Finish3 is killed, as 0.9.4 did;
    * ``migration`` (QEMU's migration status): OTHER, so a post-copy job is
      restored and waits for a resume -- never killed as completed on a guess;
    * ``starting_up`` (shut off, or paused while starting up: libvirt's
      reconnect kills such a domain before it looks at jobs): False.
    """

    postcopy: Optional[bool] = None
    running: bool = False
    migration: MigrationStatus = MigrationStatus.OTHER
    starting_up: bool = False

    def __post_init__(self) -> None:
        if self.postcopy is not None and not isinstance(self.postcopy, bool):
            raise TypeError("postcopy must be a bool or None")
        for name in ("running", "starting_up"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        if not isinstance(self.migration, MigrationStatus):
            try:
                object.__setattr__(self, "migration", MigrationStatus(self.migration))
            except ValueError:
                raise ValueError(f"migration must be one of "
                                 f"{[m.value for m in MigrationStatus]}, not "
                                 f"{self.migration!r}") from None

    def get(self, name: str, async_paused: bool = False) -> bool:
        """A boolean fact by name (FACT_NAMES); `async_paused` is the
        record's, the default of ``postcopy``."""
        if name == "postcopy":
            return async_paused if self.postcopy is None else self.postcopy
        if name == "completed":
            return self.migration == MigrationStatus.COMPLETED
        if name in ("running", "starting_up"):
            return bool(getattr(self, name))
        raise ValueError(f"unknown fact {name!r}; facts are {FACT_NAMES}")


#: the facts a When may ask for
FACT_NAMES = ("postcopy", "running", "completed", "starting_up")


@dataclass(frozen=True, slots=True)
class When:
    """A row decided by one fact: `yes` if it holds, else `no` (either may
    ask another fact)."""

    fact: str
    yes: "Rule"
    no: "Rule"

    def __post_init__(self) -> None:
        if self.fact not in FACT_NAMES:
            raise ValueError(f"unknown fact {self.fact!r}; facts are {FACT_NAMES}")


Rule = Union[Decision, When]

#: the phase column's wildcard
ANY = None

_BY_MIGRATION = ("migration", "unknown")
_IN, _OUT = AsyncJob.MIGRATION_IN, AsyncJob.MIGRATION_OUT

#: libvirt 0.9.4 (identical in 0.10.2), per (async job, phase); the async
#: kinds 0.9.4 did not have are forgotten
LIBVIRT_0_9_4: dict[tuple[AsyncJob, Optional[Phase]], Rule] = {
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
    (AsyncJob.SNAPSHOT, ANY): Decision(Action.NOTHING, "not an async job of 0.9.4"),
    (AsyncJob.START, ANY): Decision(Action.NOTHING, "not an async job of 0.9.4"),
    (AsyncJob.BACKUP, ANY): Decision(Action.NOTHING, "not an async job of 0.9.4"),
}

_OUT_RESTORED = K.MJ_MIGRATION_OUT_RESTORED_JOB_MASK
_IN_RESTORED = K.MJ_MIGRATION_IN_JOB_MASK
_RESTORE_OUT = Decision(Action.RESTORE, "post-copy: the guest runs on the destination "
                        "with pages still here; keep the job for a resume", mask=_OUT_RESTORED)
_RESTORE_IN = Decision(Action.RESTORE, "post-copy: the guest runs here with pages still "
                       "on the source; keep the job for a resume", mask=_IN_RESTORED)
_RESUMING_OUT = Decision(Action.RESTORE, "a failed post-copy migration, or its resume: "
                         "keep the job for a resume", mask=_OUT_RESTORED)
_RESUMING_IN = Decision(Action.RESTORE, "a failed post-copy migration, or its resume: "
                        "keep the job for a resume", mask=_IN_RESTORED)

#: libvirt 11, per (async job, phase)
LIBVIRT_11: dict[tuple[AsyncJob, Optional[Phase]], Rule] = {
    (AsyncJob.NONE, ANY): Decision(Action.NOTHING, "no async job"),
    # destination
    (_IN, Phase.PREPARE): Decision(Action.KILL, "unfinished incoming migration"),
    (_IN, Phase.FINISH2): Decision(Action.RESUME, "the source is already gone; resume "
                                   "the vCPUs (running, migrated)"),
    (_IN, Phase.FINISH3): When(
        "postcopy", _RESTORE_IN,
        When("running",
             Decision(Action.NOTHING, "the guest already runs here: keep it, drop the job"),
             Decision(Action.KILL, "we may have started resuming but did not confirm"))),
    (_IN, Phase.POSTCOPY_FAILED): _RESUMING_IN,
    (_IN, Phase.PREPARE_RESUME): _RESUMING_IN,
    (_IN, Phase.FINISH_RESUME): _RESUMING_IN,
    (_IN, ANY): Decision(Action.NOTHING, "not a phase of an incoming migration"),
    # source
    (_OUT, Phase.BEGIN3): Decision(Action.NOTHING, "forget about the migration"),
    (_OUT, Phase.PERFORM2): Decision(Action.CANCEL, "cancel the migration in QEMU "
                                     "(post-copy or not)", _BY_MIGRATION),
    (_OUT, Phase.PERFORM3): Decision(Action.CANCEL, "cancel the migration in QEMU "
                                     "(post-copy or not)", _BY_MIGRATION),
    (_OUT, Phase.PERFORM3_DONE): When(
        "postcopy", _RESTORE_OUT,
        Decision(Action.LEAVE_PAUSED, "the outcome of Finish3 is unknown; a third party "
                 "has to decide")),
    (_OUT, Phase.CONFIRM3_CANCELLED): When(
        "postcopy", _RESTORE_OUT,
        Decision(Action.RESUME_IF_PAUSED, "the migration was cancelled", _BY_MIGRATION)),
    (_OUT, Phase.CONFIRM3): Decision(Action.KILL, "the migration completed"),
    (_OUT, Phase.CONFIRM_RESUME): When(
        "completed", Decision(Action.KILL, "QEMU completed the resumed migration: the "
                              "guest runs on the destination (migrated)"),
        _RESUMING_OUT),
    (_OUT, Phase.POSTCOPY_FAILED): _RESUMING_OUT,
    (_OUT, Phase.BEGIN_RESUME): _RESUMING_OUT,
    (_OUT, Phase.PERFORM_RESUME): _RESUMING_OUT,
    (_OUT, ANY): Decision(Action.NOTHING, "not a phase of an outgoing migration"),
    # other async jobs, whatever the phase
    (AsyncJob.SAVE, ANY): Decision(Action.CANCEL, "cancel the save", ("save", "unknown")),
    (AsyncJob.DUMP, ANY): Decision(Action.CANCEL, "cancel the dump", ("dump", "unknown")),
    (AsyncJob.SNAPSHOT, ANY): Decision(Action.CANCEL, "cancel the snapshot's memory "
                                       "transfer (and any snapshot-delete block commit)",
                                       ("snapshot", "migration", "unknown")),
    (AsyncJob.START, ANY): When(
        "starting_up", Decision(Action.KILL, "the start did not finish (shut off, or "
                                "paused while starting up)"),
        Decision(Action.NOTHING, "the start finished; forget the job")),
    (AsyncJob.BACKUP, ANY): Decision(Action.RESTORE, "a backup survives the restart: "
                                     "keep its job", mask=K.MJ_BACKUP_JOB_MASK),
}

#: the sync job's rule, applied after the async one
DESTROY_RULE = Decision(Action.KILL, "the domain should have already been destroyed")
