"""Restart recovery: libvirt 11's decision (the default) and 0.9.4's (a named
table) per (side, phase, facts), and the demo's --crash-recover.  What
Driver.recover() does to the driver and the store is test_driver_recover.py's;
the crash tests of every row are in test_recovery_crash.py."""

from __future__ import annotations

import itertools
import re
import time

import pytest

import pymigjob as mj
from pymigjob import recovery
from pymigjob.recovery import (ANY, LIBVIRT_0_9_4, LIBVIRT_11, RECOVERY_TABLE, Action, Facts,
                               MigrationStatus, decide)
from pymigjob.persist.status import JobStatus
from pymigjob.store import MemoryStore

from _recovery_expect import expected_11, expected_async, expected_kill

V094 = LIBVIRT_0_9_4

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


def _status(job, async_job, phase):
    return JobStatus(job, async_job, phase if async_job != A.NONE else P.NONE)


PAIRS = [(a, p) for a, p in itertools.product(A, P) if not (a == A.NONE and p)]


@pytest.mark.parametrize("async_job, phase", PAIRS)
def test_every_side_and_phase(async_job, phase):
    """Every (async job, phase) pair, mismatched ones included (a source phase
    under MIGRATION_IN, a destination phase under MIGRATION_OUT, any phase
    under SAVE/DUMP), against the independently written expectation."""
    want_action, want_reasons = expected_async(async_job, phase)
    for job in J:
        rec = decide("vm1", _status(job, async_job, phase), table=V094)
        assert (str(rec.action), rec.paused_by) == (want_action, want_reasons), \
            (job, async_job, phase)
        assert rec.destroy == (job == J.DESTROY)
        assert rec.kill == expected_kill(job, async_job, phase)
        assert rec.job_after == ("gone" if rec.kill else
                                 "none" if rec.status.idle else "cleared")


def test_the_table_is_the_only_source():
    # every key is a real pair, every side has its wildcard row, and the
    # decisions come from the table object (patching it changes them)
    for (async_job, phase) in RECOVERY_TABLE:
        assert isinstance(async_job, A) and (phase is ANY or isinstance(phase, P))
    for async_job in A:
        assert (async_job, ANY) in RECOVERY_TABLE
    saved = RECOVERY_TABLE[(OUT, P.BEGIN3)]
    try:
        RECOVERY_TABLE[(OUT, P.BEGIN3)] = recovery.Decision(Action.KILL, "patched")
        assert decide("vm1", JobStatus(J.NONE, OUT, P.BEGIN3), table=V094).action == Action.KILL
        assert decide("vm1", JobStatus(J.NONE, OUT, P.BEGIN3)).action == Action.NOTHING
    finally:
        RECOVERY_TABLE[(OUT, P.BEGIN3)] = saved


def test_sync_destroy_rule():
    for job, table in itertools.product(J, (V094, LIBVIRT_11)):
        rec = decide("vm1", JobStatus(job), table=table)
        assert rec.action == Action.NOTHING
        assert rec.kill == (job == J.DESTROY), job
    # DESTROY wins over a resume decision
    rec = decide("vm1", JobStatus(J.DESTROY, IN, P.FINISH2))
    assert rec.action == Action.RESUME and rec.destroy and rec.kill
    assert "then kill" in str(rec)


def test_action_labels():
    assert [a.value for a in Action] == [
        "nothing", "kill", "resume", "resume-if-paused", "cancel-and-resume-if-paused",
        "leave-paused", "restore"]
    rec = decide("vm1", JobStatus(J.NONE, OUT, P.PERFORM3), table=V094)
    assert str(rec) == ("vm1: job=none async=migration out phase=perform3 -> "
                        "cancel-and-resume-if-paused (paused by migration/unknown): "
                        "cancel the migration in QEMU")
    rec = decide("vm1", JobStatus(J.NONE, OUT, P.PERFORM_RESUME, async_paused=True))
    assert str(rec) == ("vm1: job=none async=migration out phase=perform_resume paused -> "
                        "restore: a failed post-copy migration, or its resume: keep the "
                        "job for a resume [restored parked in postcopy_failed, mask 0x73, "
                        "paused]")


# ---- libvirt 11 (the default) ---------------------------------------------------------

FACTS = [dict(postcopy=pc, running=run, migration=mig, starting_up=su)
         for pc, run, mig, su in itertools.product(
             (None, False, True), (False, True), ("postcopy", "completed", "other"),
             (False, True))]


@pytest.mark.parametrize("async_job, phase", PAIRS)
@pytest.mark.parametrize("async_paused", [False, True])
def test_libvirt_11_every_side_phase_and_fact(async_job, phase, async_paused):
    """Every (async job, phase) pair under every combination of facts,
    against the independent reading of libvirt 11 (_recovery_expect)."""
    if async_job == A.NONE:
        if async_paused:
            return
        status = JobStatus(J.NONE, async_job, phase, "api")
    else:
        status = JobStatus(J.NONE, async_job, phase, "api", 1234, 0x8101, async_paused,
                           ("<disk dev='vda' migrating='no'/>",))
    for facts in FACTS:
        rec = decide("vm1", status, Facts(**facts))
        want, reasons, restore = expected_11(async_job, phase, async_paused=async_paused,
                                             **facts)
        assert (str(rec.action), rec.paused_by) == (want, reasons), (facts, rec)
        if restore is None:
            assert rec.restore is None
            assert rec.job_after in ("gone", "cleared", "none")
            continue
        r = rec.restore
        assert (r.phase, r.mask, r.async_paused) == restore, facts
        assert (r.async_job, r.flags, r.api, r.started) == (async_job, 0x8101, "init-vm1", 1234)
        assert rec.job_after == "restored" and not rec.kill


def test_libvirt_11_defaults_are_documented():
    f = Facts()
    assert (f.postcopy, f.running, f.migration, f.starting_up) == (
        None, False, MigrationStatus.OTHER, False)
    # the record's async_paused stands for post-copy when the daemon does not say
    st = JobStatus(J.NONE, OUT, P.PERFORM3_DONE, async_paused=True)
    assert decide("vm1", st).action == Action.RESTORE
    assert decide("vm1", st, Facts(postcopy=False)).action == Action.LEAVE_PAUSED
    # Finish3 without post-copy: 0.9.4's kill unless the daemon says it runs
    st = JobStatus(J.NONE, IN, P.FINISH3)
    assert decide("vm1", st).kill and not decide("vm1", st, Facts(running=True)).kill
    # Confirm of a resume: restored (nothing destroyed) unless QEMU completed it
    st = JobStatus(J.NONE, OUT, P.CONFIRM_RESUME)
    assert decide("vm1", st).action == Action.RESTORE
    assert decide("vm1", st, Facts(migration="completed")).kill


def test_destroy_wins_over_a_restore():
    rec = decide("vm1", JobStatus(J.DESTROY, A.BACKUP))
    assert rec.action == Action.RESTORE and rec.kill and rec.restore is None
    assert rec.job_after == "gone"


def test_facts_are_typed():
    with pytest.raises(TypeError):
        Facts(running=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Facts(postcopy="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Facts(migration="sideways")  # type: ignore[arg-type]
    assert Facts(migration="postcopy").migration is MigrationStatus.POSTCOPY
    with pytest.raises(TypeError):
        decide("vm1", JobStatus(), {"running": True})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        recovery.When("weather", LIBVIRT_11[(OUT, P.CONFIRM3)], LIBVIRT_11[(OUT, P.CONFIRM3)])


def test_the_tables_cover_every_async_job():
    for table in (V094, LIBVIRT_11):
        for async_job in A:
            assert (async_job, ANY) in table
    assert RECOVERY_TABLE is V094
    assert recovery.LIBVIRT_11 is LIBVIRT_11


def test_facts_are_asked_only_when_a_row_needs_them():
    store = MemoryStore()
    store.save("cancel", JobStatus(J.NONE, OUT, P.PERFORM3, "p", 1))       # no fact
    store.save("finish3", JobStatus(J.NONE, IN, P.FINISH3, "f", 1))        # postcopy, running
    store.save("save", JobStatus(J.NONE, A.SAVE, P.NONE, "s", 1))          # no fact
    asked = []

    def facts(name, record):
        asked.append((name, record.phase))
        return Facts(running=True) if name == "finish3" else None

    result = mj.Driver(store=store).recover(facts=facts)
    assert asked == [("finish3", P.FINISH3)]  # once per domain, only for that row
    assert not result["finish3"].kill and result["finish3"].facts == Facts(running=True)
    assert result["cancel"].facts is None
    # a mapping works the same; a name it lacks gets Facts()
    store.save("finish3", JobStatus(J.NONE, IN, P.FINISH3, "f", 1))
    store.save("other", JobStatus(J.NONE, IN, P.FINISH3, "f", 1))
    result = mj.Driver(store=store).recover(facts={"finish3": Facts(running=True)})
    assert not result["finish3"].kill and result["other"].kill


def test_recover_checks_its_arguments():
    d = mj.Driver(store=MemoryStore())
    with pytest.raises(TypeError):
        d.recover(table=[1, 2])
    with pytest.raises(TypeError):
        d.recover(facts=5)
    store = MemoryStore()
    store.save("vm1", JobStatus(J.NONE, IN, P.FINISH3, "f", 1))
    with pytest.raises(TypeError):
        mj.Driver(store=store).recover(facts=lambda name, rec: "running")
    assert "vm1" in store.load_all()  # nothing done


# ---- the demo's --crash-recover --------------------------------------------------------

def test_demo_crash_recover(capsys):
    from pymigjob.cli import demo

    assert demo.main(["--crash-recover", "--seed", "3", "--domains", "4", "--threads", "3"]) == 0
    out = capsys.readouterr().out
    assert "killed pid" in out and "(exit status -9)" in out
    assert "recovery of the source driver" in out
    assert "recovery of the destination driver" in out
    assert "summary:" in out


def _crash_report(out: str):
    """(the jobs the demo lists as in flight, the non-idle records each
    recovery table shows), both as {"source vm1": "job=... async=..."}."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if "in flight" in line and line.endswith(":"))
    listed = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        listed[line[2:20].strip()] = line[21:].strip()
    recovered = {}
    side = None
    for line in lines:
        m = re.match(r"recovery of the (source|destination) driver", line)
        if m:
            side = m.group(1)
            continue
        if side is None or not line.startswith("  ") or line.startswith("  domain") \
                or line.startswith("  driver now"):
            if line.startswith("  driver now"):
                side = None
            continue
        name, record = line[2:10].strip(), line[11:61].strip()
        if record != "job=none async=none":
            recovered[f"{side} {name}"] = record
    return listed, recovered


class _LateKill:
    """crashdemo's `time`, with the pause between "enough jobs seen in flight"
    and the kill stretched (the child keeps changing its records meanwhile)."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds):
        time.sleep(seconds if seconds == 0.002 else seconds + 0.15)


@pytest.mark.parametrize("seed", [3, 5])
def test_demo_crash_recover_lists_what_recovery_reads(capsys, monkeypatch, seed):
    """The jobs shown "in flight" are the records durable at the kill, read
    after it: the same records the recovery tables show (a look taken
    before the kill could differ)."""
    from pymigjob.cli import demo
    from pymigjob.cli.demo import crash as crashdemo

    monkeypatch.setattr(crashdemo, "time", _LateKill())
    assert demo.main(["--crash-recover", "--seed", str(seed), "--domains", "4",
                      "--threads", "3"]) == 0
    out = capsys.readouterr().out
    listed, recovered = _crash_report(out)
    assert listed == recovered, out
    assert "in flight at the kill (the records on disk after it" in out
