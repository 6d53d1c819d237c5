"""Carrying out ``Driver.recover()``'s decisions on real QEMU processes.

After a restart the library decides, per recorded domain, what libvirt does
(kill, resume, cancel, leave paused, nothing); this module does it to the
QEMU that outlived the daemon.  As in libvirt's reconnect, the domain's
QEMU state is read first (``query-status``, ``query-migrate``) under a
MODIFY job, and the conditional actions look at it:

* ``resume-if-paused``: `cont` only when QEMU is paused for one of the
  decision's reasons (a guest the user paused stays paused);
* ``cancel-and-resume-if-paused``: `migrate_cancel` when QEMU still migrates,
  wait for the migration to stop, then the same conditional `cont`;
* ``resume``: `cont` unless it already runs;
* ``kill``: the process goes, and so does the domain (the library drops it);
* ``restore``: QEMU is left as it is (libvirt sends it nothing either): the
  library brings the job back parked, for a post-copy resume or a backup.

A domain whose QEMU is already gone has nothing to act on.

libvirt 11's table asks the running domain a few things before it decides
(:func:`facts_of`, read under a QUERY job when ``Driver.recover()`` asks):
whether the guest runs (an incoming migration caught in Finish3 is kept only
then), whether the migration is in post-copy and what QEMU says of it
(``query-migrate``), and whether QEMU is gone or still starting up.  This
daemon migrates pre-copy only, so QEMU never reports post-copy and its
records never say post-copy failed: the rows that keep a job (post-copy,
the resume phases, BACKUP) cannot come from its own crashes.  A record
written by another daemon could still ask for one; the job is then restored
parked and QEMU left alone -- this daemon has no resume or backup route, so
the job stays until the domain is removed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Optional

import pymigjob as mj
from pymigjob.recovery import Facts, MigrationStatus

from .vm import Vm, paused_reason

__all__ = ["Recovered", "carry_out", "facts_of", "MIGRATING"]

#: query-migrate statuses of a migration still in progress
MIGRATING = frozenset({"setup", "active", "device", "pre-switchover", "cancelling",
                       "wait-unplug", "postcopy-active"})


@dataclass(frozen=True)
class Recovered:
    """What recovery found and did for one domain."""

    name: str
    record: str             # the job record read after the restart
    decision: str           # the library's action
    why: str
    qemu_before: Optional[str]   # QEMU's run state before (None: no QEMU)
    migration_before: Optional[str]
    done: str               # what was done to QEMU
    qemu_after: Optional[str]

    def __str__(self) -> str:
        return (f"{self.name}: [{self.record}] -> {self.decision}: {self.done} "
                f"(QEMU {self.qemu_before or 'gone'} -> {self.qemu_after or 'gone'})")


#: query-migrate statuses of a post-copy migration
POSTCOPY = frozenset({"postcopy-active", "postcopy-paused", "postcopy-recover",
                      "postcopy-recover-setup"})


async def facts_of(vm: Vm) -> Facts:
    """What libvirt 11's restart table asks of `vm` (pymigjob.recovery.Facts),
    read from its QEMU under a QUERY job; a QEMU that is gone is shut off."""
    async with vm.job(mj.Job.QUERY, api="reconnect"):
        if not vm.running:
            return Facts(postcopy=False, running=False, starting_up=True)
        status = await _status(vm)
        migration = str((await vm.qmp("query-migrate")).get("status", "none"))
    return Facts(
        postcopy=migration in POSTCOPY,
        running=status.get("status") == "running",
        migration=(MigrationStatus.POSTCOPY if migration == "postcopy-active" else
                   MigrationStatus.COMPLETED if migration == "completed" else
                   MigrationStatus.OTHER),
        starting_up=status.get("status") == "prelaunch")


async def _status(vm: Vm) -> dict[str, Any]:
    return await vm.qmp("query-status")


async def _wait_migration_stopped(vm: Vm, timeout: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = str((await vm.qmp("query-migrate")).get("status", "none"))
        if status not in MIGRATING or loop.time() > deadline:
            return status
        await asyncio.sleep(0.01)


async def carry_out(vm: Vm, rec: Any) -> Recovered:
    """Do `rec` (a pymigjob Recovery) to `vm`'s QEMU, holding a MODIFY job."""
    action = str(rec.action)
    base = dict(name=vm.name, record=str(rec.status), decision=action, why=rec.why)
    async with vm.job(mj.Job.MODIFY, api="recover"):
        if not vm.running:
            await vm.stop()
            return Recovered(**base, qemu_before=None, migration_before=None,
                             done="nothing: QEMU is gone", qemu_after=None)
        before = await _status(vm)
        migration = str((await vm.qmp("query-migrate")).get("status", "none"))
        done = "nothing"
        if rec.kill:
            await vm.stop()
            done = "killed" + (" (the domain was being destroyed)" if rec.destroy else "")
            return Recovered(**base, qemu_before=before["status"],
                             migration_before=migration, done=done, qemu_after=None)
        reasons = tuple(rec.paused_by)
        if action == "cancel-and-resume-if-paused":
            if migration in MIGRATING:
                await vm.qmp("migrate_cancel")
                done = f"migrate_cancel ({migration} -> {await _wait_migration_stopped(vm)})"
            else:
                done = f"no migration to cancel ({migration})"
        if action in ("resume-if-paused", "cancel-and-resume-if-paused"):
            reason = paused_reason(await _status(vm))
            if reason is not None and reason in reasons:
                await vm.qmp("cont")
                done += f"; cont (was paused: {reason})"
            else:
                done += f"; left {'running' if reason is None else 'paused: ' + reason}"
        elif action == "resume":
            if paused_reason(await _status(vm)) is not None:
                await vm.qmp("cont")
                done = "cont"
        elif action == "leave-paused":
            done = "left as it is (a third party decides)"
        elif action == "restore":
            done = "left as it is (the job is kept, parked)"
        after = await _status(vm)
        vm.note_status(after)
        return Recovered(**base, qemu_before=before["status"], migration_before=migration,
                         done=done.lstrip("; "), qemu_after=after["status"])
