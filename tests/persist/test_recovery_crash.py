"""Every row of libvirt 11's restart table, through a real crash.

For each row a worker process (forked from tests/_recovery_crash_child.py,
a zygote, so each costs milliseconds) makes the daemon's calls up to the
row's state on a domain of a Driver with a state directory, and is killed
with SIGKILL.  This process then opens a new Driver on the directory, runs
``recover()`` with the row's facts, and checks:

* the record on disk at the kill is the row's (async job, phase);
* the decision is the row's, as the independent reading of libvirt 11 in
  _recovery_expect.py gives it, and the one the row names;
* the state after it: a killed domain is gone, list and record; a dropped
  job leaves the domain idle (refs 1, jobs_queued 0) and its record
  rewritten idle; a restored job is back parked -- owner thread 0, owner API
  ``init-<name>``, POSTCOPY_FAILED for a migration, the table's mask, the
  recorded apiFlags and start, async_paused by QEMU's migration status --
  holding a reference and a place in jobs_queued, and its record rewritten
  so;
* a second restart on the same directory decides the same for a restored
  job (recovery is idempotent).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import pymigjob as mj
from pymigjob.persist.status import JobStatus
from pymigjob.recovery import Facts
from pymigjob.store import DirectoryStore

from _recovery_expect import expected_11

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = int(A.MIGRATION_OUT), int(A.MIGRATION_IN)
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
CHILD = os.path.join(HERE, "_recovery_crash_child.py")
POSTCOPY_FLAGS = 0x8101          # VIR_MIGRATE_POSTCOPY | PEER2PEER | LIVE-ish
RESUME_FLAGS = 0x88101           # ... | POSTCOPY_RESUME


def call(method, *args, **kwargs):
    return [method, [int(a) for a in args], kwargs]


CONT = call("migration_job_continue")
MARK = call("mark_postcopy_failed")


def out(*phases, flags=POSTCOPY_FLAGS):
    """The source's calls up to `phases` (Begin3, Perform3, ... as the v3
    protocol runs them: each phase API starts its phase, parks at its end)."""
    steps = [call("migration_job_start", OUT, api="begin3", flags=flags),
             call("migration_job_set_phase", P.BEGIN3), CONT]
    for ph in phases:
        if ph == "park":
            steps.append(CONT)
        elif ph == "park_done":  # Perform3 ends: PERFORM3_DONE, parked
            steps += [call("migration_job_set_phase", P.PERFORM3_DONE), CONT]
        elif ph == "postcopy-failed":
            steps.append(MARK)
        else:
            steps.append(call("migration_job_start_phase", ph, api=P(ph).label))
    return steps


def dst(*phases, flags=POSTCOPY_FLAGS):
    steps = [call("migration_job_start", IN, api="prepare3", flags=flags),
             call("migration_job_set_phase", P.PREPARE), CONT]
    for ph in phases:
        if ph == "park":
            steps.append(CONT)
        elif ph == "postcopy-failed":
            steps.append(MARK)
        else:
            steps.append(call("migration_job_start_phase", ph, api=P(ph).label))
    return steps


def job(kind, flags=0):
    return [call("begin_async_job", kind, api=A(kind).label, flags=flags)]


PF = "postcopy-failed"
#: (row id, the calls up to the crash, (async job, phase) recorded, facts,
#: what the row says: (action, job after))
ROWS = [
    ("in-prepare-kill", dst(), (IN, P.PREPARE), {}, ("kill", "gone")),
    ("in-finish2-resume", dst(P.FINISH2), (IN, P.FINISH2), {}, ("resume", "cleared")),
    ("in-finish3-postcopy-restore", dst(P.FINISH3), (IN, P.FINISH3),
     dict(postcopy=True), ("restore", "restored")),
    ("in-finish3-not-running-kill", dst(P.FINISH3), (IN, P.FINISH3),
     dict(postcopy=False, running=False), ("kill", "gone")),
    ("in-finish3-running-keep", dst(P.FINISH3), (IN, P.FINISH3),
     dict(postcopy=False, running=True), ("nothing", "cleared")),
    ("in-postcopy-failed-restore", dst(P.FINISH3, PF), (IN, P.POSTCOPY_FAILED), {},
     ("restore", "restored")),
    ("in-prepare-resume-restore", dst(P.FINISH3, PF, P.PREPARE_RESUME),
     (IN, P.PREPARE_RESUME), {}, ("restore", "restored")),
    ("in-finish-resume-restore", dst(P.FINISH3, PF, P.PREPARE_RESUME, "park",
                                     P.FINISH_RESUME),
     (IN, P.FINISH_RESUME), {}, ("restore", "restored")),
    ("in-phase-none-drop", [call("migration_job_start", IN, api="prepare3")], (IN, P.NONE),
     {}, ("nothing", "cleared")),
    ("in-source-phase-drop", [call("migration_job_start", IN, api="prepare3"),
                              call("migration_job_set_phase", P.PERFORM3)],
     (IN, P.PERFORM3), {}, ("nothing", "cleared")),
    ("out-begin3-drop", out(), (OUT, P.BEGIN3), {}, ("nothing", "cleared")),
    ("out-perform2-cancel", [call("migration_job_start", OUT, api="perform2"),
                             call("migration_job_set_phase", P.PERFORM2)],
     (OUT, P.PERFORM2), {}, ("cancel-and-resume-if-paused", "cleared")),
    ("out-perform3-cancel", out(P.PERFORM3), (OUT, P.PERFORM3), {},
     ("cancel-and-resume-if-paused", "cleared")),
    ("out-perform3-postcopy-cancel", out(P.PERFORM3), (OUT, P.PERFORM3),
     dict(postcopy=True), ("cancel-and-resume-if-paused", "cleared")),
    ("out-perform3-done-postcopy-restore",
     out(P.PERFORM3, "park_done"), (OUT, P.PERFORM3_DONE), dict(postcopy=True),
     ("restore", "restored")),
    ("out-perform3-done-leave-paused", out(P.PERFORM3, "park_done"),
     (OUT, P.PERFORM3_DONE), dict(postcopy=False), ("leave-paused", "cleared")),
    ("out-confirm3-cancelled-postcopy-restore",
     out(P.PERFORM3, "park_done", P.CONFIRM3_CANCELLED), (OUT, P.CONFIRM3_CANCELLED),
     dict(postcopy=True), ("restore", "restored")),
    ("out-confirm3-cancelled-resume",
     out(P.PERFORM3, "park_done", P.CONFIRM3_CANCELLED), (OUT, P.CONFIRM3_CANCELLED),
     {}, ("resume-if-paused", "cleared")),
    ("out-confirm3-kill", out(P.PERFORM3, "park_done", P.CONFIRM3), (OUT, P.CONFIRM3),
     {}, ("kill", "gone")),
    ("out-confirm-resume-completed-kill",
     out(P.PERFORM3, PF, P.BEGIN_RESUME, "park", P.PERFORM_RESUME, "park",
         P.CONFIRM_RESUME, flags=RESUME_FLAGS),
     (OUT, P.CONFIRM_RESUME), dict(migration="completed"), ("kill", "gone")),
    ("out-confirm-resume-restore",
     out(P.PERFORM3, PF, P.BEGIN_RESUME, "park", P.PERFORM_RESUME, "park",
         P.CONFIRM_RESUME, flags=RESUME_FLAGS),
     (OUT, P.CONFIRM_RESUME), dict(migration="other"), ("restore", "restored")),
    ("out-postcopy-failed-restore", out(P.PERFORM3, PF), (OUT, P.POSTCOPY_FAILED), {},
     ("restore", "restored")),
    ("out-begin-resume-restore", out(P.PERFORM3, PF, P.BEGIN_RESUME, "park"),
     (OUT, P.BEGIN_RESUME), {}, ("restore", "restored")),
    ("out-perform-resume-restore",
     out(P.PERFORM3, PF, P.BEGIN_RESUME, "park", P.PERFORM_RESUME),
     (OUT, P.PERFORM_RESUME), {}, ("restore", "restored")),
    ("save-cancel", job(A.SAVE, 1), (A.SAVE, P.NONE), {},
     ("cancel-and-resume-if-paused", "cleared")),
    ("dump-cancel", job(A.DUMP, 0x10), (A.DUMP, P.NONE), {},
     ("cancel-and-resume-if-paused", "cleared")),
    ("snapshot-cancel", job(A.SNAPSHOT), (A.SNAPSHOT, P.NONE), {},
     ("cancel-and-resume-if-paused", "cleared")),
    ("start-starting-up-kill", job(A.START), (A.START, P.NONE), dict(starting_up=True),
     ("kill", "gone")),
    ("start-finished-drop", job(A.START), (A.START, P.NONE), {}, ("nothing", "cleared")),
    ("backup-keep", job(A.BACKUP, 0x1), (A.BACKUP, P.NONE), {}, ("restore", "restored")),
    ("destroy-kill", [call("begin_job", J.DESTROY, api="destroy")], (A.NONE, P.NONE), {},
     ("nothing", "gone")),
    ("destroy-during-backup-kill", job(A.BACKUP) + [call("begin_job", J.DESTROY,
                                                         api="destroy")],
     (A.BACKUP, P.NONE), {}, ("restore", "gone")),
    # the restore's second step, by QEMU's migration status
    ("restore-qemu-postcopy-running", out(P.PERFORM3, PF), (OUT, P.POSTCOPY_FAILED),
     dict(migration="postcopy"), ("restore", "restored")),
    ("restore-qemu-completed-out-kill", out(P.PERFORM3, PF), (OUT, P.POSTCOPY_FAILED),
     dict(migration="completed"), ("kill", "gone")),
    ("restore-qemu-completed-in-resume", dst(P.FINISH3, PF), (IN, P.POSTCOPY_FAILED),
     dict(migration="completed"), ("resume", "cleared")),
]

class Zygote:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, CHILD], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def _line(self) -> list[str]:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the zygote died (exit {self.proc.wait()})")
        return line.split(" ", 2)

    def crash(self, state_dir: str, name: str, steps: list) -> None:
        """Run `steps` in a worker, wait until it has made them, SIGKILL it."""
        self.proc.stdin.write(f"run {state_dir} {name} {json.dumps(steps)}\n")
        self.proc.stdin.flush()
        pid = ready = None
        while pid is None or ready is None:
            what, who, *rest = self._line()
            if what == "failed":
                raise AssertionError(f"the worker failed: {json.loads(rest[0])}")
            if what == "pid":
                pid = who.strip()
            elif what == "ready":
                ready = who.strip()
        assert pid == ready
        os.kill(int(pid), signal.SIGKILL)
        what, dead, status = self._line()
        assert what == "exit" and dead == pid
        assert os.WIFSIGNALED(int(status)) and os.WTERMSIG(int(status)) == signal.SIGKILL

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
        except OSError:
            pass
        self.proc.wait(10)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


def test_every_row_is_here():
    names = [r[0] for r in ROWS]
    assert len(names) == len(set(names)) == 35
    # every restart-table row of the reference: (side or kind, phase) pairs
    covered = {(r[2][0], r[2][1]) for r in ROWS}
    for pair in [(IN, P.PREPARE), (IN, P.FINISH2), (IN, P.FINISH3), (IN, P.POSTCOPY_FAILED),
                 (IN, P.PREPARE_RESUME), (IN, P.FINISH_RESUME), (IN, P.NONE),
                 (OUT, P.BEGIN3), (OUT, P.PERFORM2), (OUT, P.PERFORM3),
                 (OUT, P.PERFORM3_DONE), (OUT, P.CONFIRM3_CANCELLED), (OUT, P.CONFIRM3),
                 (OUT, P.CONFIRM_RESUME), (OUT, P.POSTCOPY_FAILED), (OUT, P.BEGIN_RESUME),
                 (OUT, P.PERFORM_RESUME), (A.SAVE, P.NONE), (A.DUMP, P.NONE),
                 (A.SNAPSHOT, P.NONE), (A.START, P.NONE), (A.BACKUP, P.NONE),
                 (A.NONE, P.NONE)]:
        assert pair in covered, pair


@pytest.mark.parametrize("row, steps, recorded, facts, says", ROWS, ids=[r[0] for r in ROWS])
def test_crash_then_recover(zygote, tmp_path, row, steps, recorded, facts, says):
    state_dir = str(tmp_path)
    name = "vm1"
    zygote.crash(state_dir, name, steps)

    store = DirectoryStore(state_dir)
    record = store.load_all()[name]
    store.close()
    assert (record.async_job, record.phase) == recorded, record
    destroy = record.job == J.DESTROY

    drv = mj.Driver(state_dir=state_dir)
    try:
        rec = drv.recover(facts={name: Facts(**facts)})[name]
        want, reasons, restore = expected_11(record.async_job, record.phase,
                                             async_paused=record.async_paused, **facts)
        assert (str(rec.action), rec.paused_by) == (want, reasons)
        assert (str(rec.action), rec.job_after) == says
        after = drv.store.load_all()
        if rec.kill:
            assert name not in drv and name not in after
            return
        dom = drv.lookup(name)
        if rec.job_after == "cleared":
            assert destroy is False and restore is None
            assert (dom.async_job, dom.active_job, dom.refs, dom.jobs_queued) == (
                A.NONE, J.NONE, 1, 0)
            assert after == {name: JobStatus()}
            return
        # restored, parked
        phase, mask, paused = restore
        assert (dom.async_job, dom.phase, dom.mask) == (record.async_job, phase, mask)
        assert (dom.async_owner_thread, dom.async_owner_api) == (0, f"init-{name}")
        assert (dom.refs, dom.jobs_queued, dom.active_job) == (2, 1, J.NONE)
        assert (dom.api_flags, dom.async_paused) == (record.flags, paused)
        assert record.flags in (0x1, POSTCOPY_FLAGS, RESUME_FLAGS)
        want_record = JobStatus(J.NONE, record.async_job, phase, f"init-{name}",
                                record.started, record.flags, paused, record.private)
        assert dom.job_status() == want_record
        assert after == {name: want_record}
        # the next restart restores it again, the same way
        drv.close()
        drv = mj.Driver(state_dir=state_dir)
        again = drv.recover(facts={name: Facts(**facts)})[name]
        assert again.restore == rec.restore
        assert drv.store.load_all() == {name: want_record}
    finally:
        drv.close()
