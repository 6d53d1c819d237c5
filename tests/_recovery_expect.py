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
