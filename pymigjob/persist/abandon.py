"""Abandoned migrations: the client went away while the async job was parked.

Modern libvirt registers a close callback while a migration is parked between
two APIs (qemuMigrationAnyConnectionClosed, qemu_migration.c) and, when
the client's connection closes, cleans up by phase:

* MIGRATION_OUT parked after BEGIN3: forget the migration -- start phase
  CONFIRM3_CANCELLED and finish the job;
* MIGRATION_OUT parked after PERFORM3_DONE: the same, with a warning that the
  outcome on the destination is unknown (higher levels decide);
* MIGRATION_IN parked after PREPARE: nothing here; the incoming domain is
  auto-destroyed by whoever owns it (the callback is told);
* any other parked phase: nothing (libvirt cannot see a job parked there).

``Driver.abandon(name)`` runs this rule now (the daemon saw the connection
close); ``Driver(park_timeout=S)`` runs it for any migration that stays parked
S seconds.  Both then call ``on_abandon(outcome)`` -- outside every lock --
when a parked migration was found.

The claim is one locked step in the core
(``Domain.migration_job_claim_parked``): a phase API that resumes the
migration first wins, and the cleanup then does nothing.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from ..enums import AsyncJob, Phase
from .status import JobStatus

__all__ = ["AbandonAction", "Abandoned", "ABANDON_RULES", "abandon"]

log = logging.getLogger("pymigjob")

#: the owner API recorded for the cancelling phase
ABANDON_API = "migration abandoned"

UNKNOWN_OUTCOME = ("Migration of domain %s finished but we don't know if the domain "
                   "was successfully started on destination or not")
CONNECTION_CLOSED = "The connection which controls migration of domain %s was closed"


class AbandonAction(str, enum.Enum):
    CANCELLED = "cancelled"  # CONFIRM3_CANCELLED started, then the job finished
    NOTHING = "nothing"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Rule:
    action: AbandonAction
    why: str
    warning: Optional[str] = None


#: (async job, parked phase) -> what happens; anything else: _UNREACHABLE
ABANDON_RULES: dict[tuple[AsyncJob, Phase], _Rule] = {
    (AsyncJob.MIGRATION_OUT, Phase.BEGIN3):
        _Rule(AbandonAction.CANCELLED, "forget we were about to migrate"),
    (AsyncJob.MIGRATION_OUT, Phase.PERFORM3_DONE):
        _Rule(AbandonAction.CANCELLED, "clear the job and let higher levels decide",
              UNKNOWN_OUTCOME),
    (AsyncJob.MIGRATION_IN, Phase.PREPARE):
        _Rule(AbandonAction.NOTHING,
              "incoming migration: the domain is to be auto-destroyed by its owner"),
}
_UNREACHABLE = _Rule(AbandonAction.NOTHING,
                     "libvirt never leaves a migration parked in this phase; left alone")


@dataclass(frozen=True)
class Abandoned:
    """What an abandon did."""

    name: str
    status: JobStatus          # the job as found
    action: AbandonAction
    why: str
    reason: str                # "explicit" or "timeout"
    parked: bool               # a parked migration job was found (the rule ran)
    warning: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.name}: {self.status} -> {self.action} ({self.why})"


class Domain(Protocol):
    """What an abandon uses of a domain (either backend's): public methods."""

    @property
    def name(self) -> str: ...

    @property
    def async_owner_thread(self) -> int: ...

    def job_status(self) -> JobStatus: ...

    def migration_job_claim_parked(self, async_job: int, phase: int, new_phase: int,
                                   api: Optional[str] = ...) -> bool: ...

    def migration_job_finish(self) -> int: ...


_MIGRATIONS = (AsyncJob.MIGRATION_OUT, AsyncJob.MIGRATION_IN)
#: one abandon at a time (they are rare; nothing here waits for a job)
_LOCK = threading.Lock()


def abandon(dom: Domain, reason: str = "explicit",
            expect: Optional[tuple[int, int, object]] = None,
            callback: Optional[Callable[[Abandoned], None]] = None,
            still_parked: Optional[Callable[[str, object], bool]] = None) -> Optional[Abandoned]:
    """Run the close-callback rule on `dom`.  With `expect` (async job,
    phase, park token; the timeout's case) nothing happens unless the job is
    still parked exactly as it was then -- and, with `still_parked(name,
    token)`, still on the clock that fired; returns None in that case."""
    name = dom.name
    with _LOCK:
        status = dom.job_status()
        parked = status.async_job in _MIGRATIONS and dom.async_owner_thread == 0
        if expect is not None:
            if not parked or (status.async_job, status.phase) != expect[:2] or \
                    (still_parked is not None and not still_parked(name, expect[2])):
                return None
        if not parked:
            why = ("the migration job is being driven by an API"
                   if status.async_job in _MIGRATIONS else "no migration job")
            return Abandoned(name, status, AbandonAction.NOTHING, why, reason, False)
        rule = ABANDON_RULES.get((status.async_job, status.phase), _UNREACHABLE)
        warning = rule.warning % name if rule.warning else None
        if status.async_job == AsyncJob.MIGRATION_OUT:
            log.warning(CONNECTION_CLOSED, name)
        if warning:
            log.warning("%s", warning)
        if rule.action == AbandonAction.CANCELLED:
            # claim it only if still parked as seen: an API arriving since wins
            if not dom.migration_job_claim_parked(status.async_job, status.phase,
                                                  Phase.CONFIRM3_CANCELLED, api=ABANDON_API):
                return None if expect is not None else Abandoned(
                    name, status, AbandonAction.NOTHING,
                    "an API resumed the migration meanwhile", reason, False)
            dom.migration_job_finish()
        outcome = Abandoned(name, status, rule.action, rule.why, reason, True, warning)
    if callback is not None:
        callback(outcome)
    return outcome
