"""libvirt 0.9.4's restart decisions (qemu_process.c), written out
independently of pymigjob.recovery's table, the way qemuProcessRecoverJob and
qemuProcessRecoverMigration read: a switch on the async job, then one on the
phase.  Shared by test_recovery and test_crash."""

from __future__ import annotations

import pymigjob as mj

A, P, J = mj.AsyncJob, mj.Phase, mj.Job


def expected_async(async_job: int, phase: int) -> tuple[str, tuple[str, ...]]:
    """(action label, pause reasons that allow a resume)."""
    if async_job == A.MIGRATION_IN:
        if phase == P.PREPARE:
            return "kill", ()
        if phase == P.FINISH2:
            return "resume", ()
        if phase == P.FINISH3:
            return "kill", ()
        return "nothing", ()          # NONE and every source phase: n/a for incoming
    if async_job == A.MIGRATION_OUT:
        if phase in (P.PERFORM2, P.PERFORM3):
            return "cancel-and-resume-if-paused", ("migration", "unknown")
        if phase == P.PERFORM3_DONE:
            return "leave-paused", ()
        if phase == P.CONFIRM3_CANCELLED:
            return "resume-if-paused", ("migration", "unknown")
        if phase == P.CONFIRM3:
            return "kill", ()
        return "nothing", ()          # BEGIN3, NONE and every destination phase
    if async_job == A.SAVE:
        return "cancel-and-resume-if-paused", ("save", "unknown")
    if async_job == A.DUMP:
        return "cancel-and-resume-if-paused", ("dump", "unknown")
    return "nothing", ()


def expected_kill(job: int, async_job: int, phase: int) -> bool:
    """The domain is killed: by the async decision or because the sync job
    was DESTROY (every other sync job is forgotten)."""
    return expected_async(async_job, phase)[0] == "kill" or job == J.DESTROY


# ---- libvirt 11 ------------------------------------------------------------------

OUT_RESTORED, IN_RESTORED, BACKUP_MASK = 0x73, 0x42, 0x1F


def _in_11(phase, postcopy, running):
    # qemuProcessRecoverMigrationIn
    if phase == P.PREPARE:
        return "kill"
    if phase == P.FINISH2:
        return "resume"
    if phase == P.FINISH3:
        if postcopy:
            return "restore"
        return "nothing" if running else "kill"
    if phase in (P.POSTCOPY_FAILED, P.PREPARE_RESUME, P.FINISH_RESUME):
        return "restore"
    return "nothing"


def _out_11(phase, postcopy, migration):
    # qemuProcessRecoverMigrationOut
    if phase in (P.PERFORM2, P.PERFORM3):
        return "cancel-and-resume-if-paused"
    if phase == P.PERFORM3_DONE:
        return "restore" if postcopy else "leave-paused"
    if phase == P.CONFIRM3_CANCELLED:
        return "restore" if postcopy else "resume-if-paused"
    if phase == P.CONFIRM3:
        return "kill"
    if phase == P.CONFIRM_RESUME:
        return "kill" if migration == "completed" else "restore"
    if phase in (P.POSTCOPY_FAILED, P.BEGIN_RESUME, P.PERFORM_RESUME):
        return "restore"
    return "nothing"                  # BEGIN3, NONE and every destination phase


def expected_11(async_job, phase, postcopy=None, running=False, migration="other",
                starting_up=False, async_paused=False):
    """libvirt 11: (action, pause reasons, restore), restore being None or
    (phase, mask, async_paused) of the job brought back."""
    if postcopy is None:
        postcopy = async_paused
    if async_job in (A.MIGRATION_IN, A.MIGRATION_OUT):
        out = async_job == A.MIGRATION_OUT
        action = _out_11(phase, postcopy, migration) if out else _in_11(phase, postcopy, running)
        if action == "restore":   # qemuProcessRestoreMigrationJob, then by migStatus
            if migration == "completed":
                return ("kill" if out else "resume"), (), None
            return "restore", (), (P.POSTCOPY_FAILED, OUT_RESTORED if out else IN_RESTORED,
                                   migration != "postcopy")
        reasons = ("migration", "unknown") if action in (
            "cancel-and-resume-if-paused", "resume-if-paused") else ()
        return action, reasons, None
    if async_job == A.SAVE:
        return "cancel-and-resume-if-paused", ("save", "unknown"), None
    if async_job == A.DUMP:
        return "cancel-and-resume-if-paused", ("dump", "unknown"), None
    if async_job == A.SNAPSHOT:
        return "cancel-and-resume-if-paused", ("snapshot", "migration", "unknown"), None
    if async_job == A.START:
        return ("kill" if starting_up else "nothing"), (), None
    if async_job == A.BACKUP:
        return "restore", (), (P.NONE, BACKUP_MASK, False)
    return "nothing", (), None


def expected_kill_11(job, async_job, phase, **facts) -> bool:
    return expected_11(async_job, phase, **facts)[0] == "kill" or job == J.DESTROY
