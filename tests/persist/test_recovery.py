"""Restart recovery: libvirt 11's decision (the default) and 0.9.4's (a named
table) per (side, phase, facts), and what Driver.recover() does to the
driver and the store.  The crash tests of every row are in
test_recovery_crash.py."""

from __future__ import annotations

import dataclasses
import itertools
import re
import time

import pytest

import pymigjob as mj
from pymigjob import recovery
from pymigjob.recovery import (ANY, LIBVIRT_0_9_4, LIBVIRT_11, RECOVERY_TABLE, Action, Facts,
                               MigrationStatus, decide)
from pymigjob.persist.status import JobStatus
from pymigjob.store import DirectoryStore, MemoryStore

from _recovery_expect import expected_11, expected_async, expected_kill, expected_kill_11

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


# ---- Driver.recover() ----------------------------------------------------------------

def _crash_state(d: mj.Driver) -> dict[str, JobStatus]:
    """Leave domains in a spread of states, as a crashed daemon would."""
    def out(name, *phases, api="api"):
        dom = d.add_domain(name)
        dom.migration_job_start(OUT, api=api)
        for ph in phases:
            dom.migration_job_set_phase(ph)
        return dom

    out("src-begin", P.BEGIN3)
    out("src-perform", P.BEGIN3, P.PERFORM3)
    out("src-done", P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE)
    out("src-cancelled", P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE, P.CONFIRM3_CANCELLED)
    out("src-confirm", P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE, P.CONFIRM3)
    out("src-v2", P.PERFORM2)
    dst = d.add_domain("dst-prepare")
    dst.migration_job_start(IN)
    dst.migration_job_set_phase(P.PREPARE)
    dst = d.add_domain("dst-finish2")
    dst.migration_job_start(IN)
    dst.migration_job_set_phase(P.FINISH2)
    dst = d.add_domain("dst-finish3")
    dst.migration_job_start(IN)
    dst.migration_job_set_phase(P.FINISH3)
    d.add_domain("saving").begin_async_job(A.SAVE, api="save")
    d.add_domain("dumping").begin_async_job(A.DUMP, api="dump")
    d.add_domain("destroying").begin_job(J.DESTROY, api="destroy")
    resume = d.add_domain("destroy-while-finish2")
    resume.migration_job_start(IN)
    resume.migration_job_set_phase(P.FINISH2)
    resume.begin_job(J.DESTROY)
    idle = d.add_domain("idle")
    idle.begin_async_job(A.SAVE)
    idle.end_async_job()
    d.add_domain("never-had-a-job")
    return {name: d.lookup(name).job_status() for name in d.domains()}


def test_recover_after_a_restart(tmp_path):
    before = mj.Driver(state_dir=tmp_path)
    states = _crash_state(before)
    # (the crashed daemon is simply forgotten; a new one starts on the directory)
    d = mj.Driver(state_dir=tmp_path)
    assert d.domains() == []
    result = d.recover()
    assert "never-had-a-job" not in result  # no tracked change, no record
    assert set(result) == set(states) - {"never-had-a-job"}
    for name, rec in result.items():
        st = states[name]
        assert rec.status == st
        assert str(rec.action) == expected_11(st.async_job, st.phase)[0]
        assert rec.kill == expected_kill_11(st.job, st.async_job, st.phase)
    gone = {n for n, r in result.items() if r.kill}
    assert gone == {"src-confirm", "dst-prepare", "dst-finish3", "destroying",
                    "destroy-while-finish2"}
    assert sorted(d.domains()) == sorted(set(result) - gone)
    for name in d.domains():
        dom = d.lookup(name)
        assert dom.job_status() == JobStatus() and dom.refs == 1
        with dom.job(J.MODIFY):  # usable again
            pass
    # the store now says what the driver has: idle records, none for the dead
    assert DirectoryStore(tmp_path).load_all() == {n: JobStatus() for n in d.domains()}
    # a second restart has nothing left to do
    again = mj.Driver(state_dir=tmp_path).recover()
    assert {str(r.action) for r in again.values()} == {"nothing"}
    assert not any(r.kill for r in again.values())
    before.close()
    d.close()


def test_recover_with_a_domain_already_on_the_list():
    store = MemoryStore()
    store.save("vm1", JobStatus(J.NONE, OUT, P.PERFORM3, "perform3", 1))
    store.save("vm2", JobStatus(J.NONE, OUT, P.CONFIRM3, "confirm3", 1))
    d = mj.Driver(store=store)
    vm1, vm2 = d.add_domain("vm1"), d.add_domain("vm2")
    result = d.recover()
    assert result["vm1"].action == Action.CANCEL and not result["vm1"].kill
    assert d.lookup("vm1") is vm1
    assert result["vm2"].kill and "vm2" not in d and not vm2.alive
    assert store.load_all() == {"vm1": JobStatus()}


def test_act_runs_before_each_record_changes():
    store = MemoryStore()
    store.save("a", JobStatus(J.NONE, IN, P.PREPARE))      # kill
    store.save("b", JobStatus(J.NONE, OUT, P.PERFORM3))    # cancel
    store.save("c", JobStatus(J.NONE, IN, P.FINISH2))      # resume
    seen = []

    def act(rec):
        # the record is still the crashed one while the daemon acts
        seen.append((rec.name, str(rec.action), store.load_all()[rec.name] == rec.status))

    d = mj.Driver(store=store)
    result = d.recover(act)
    assert seen == [("a", "kill", True), ("b", "cancel-and-resume-if-paused", True),
                    ("c", "resume", True)]
    assert set(result) == {"a", "b", "c"}


def test_a_failing_act_leaves_the_rest_for_the_next_restart():
    store = MemoryStore()
    for name in ("a", "b", "c"):
        store.save(name, JobStatus(J.NONE, OUT, P.CONFIRM3))  # kill

    def act(rec):
        if rec.name == "b":
            raise RuntimeError("could not kill b")

    with pytest.raises(RuntimeError, match="could not kill b"):
        mj.Driver(store=store).recover(act)
    assert sorted(store.load_all()) == ["b", "c"]  # a done; b and c still to do
    again = mj.Driver(store=store).recover()
    assert sorted(again) == ["b", "c"] and all(r.kill for r in again.values())
    assert store.load_all() == {}


def test_recover_empty_store(tmp_path):
    d = mj.Driver(state_dir=tmp_path)
    assert d.recover() == {}
    assert d.domains() == []


def test_recover_needs_a_store(drv):
    with pytest.raises(mj.OperationInvalid, match="no job status store"):
        drv.recover()
    with pytest.raises(mj.OperationInvalid):
        mj.Driver(park_timeout=5).recover()


def test_recover_is_loud_about_a_bad_record(tmp_path):
    (tmp_path / "vm1.xml").write_text("<domstatus name='vm1'><job type='bogus'/></domstatus>")
    with pytest.raises(mj.InternalError, match="Unknown job type bogus"):
        mj.Driver(state_dir=tmp_path).recover()


def test_recovered_records_written_once(tmp_path):
    """An idle record is not rewritten; a cleared one is, once."""
    store = MemoryStore()
    store.save("idle", JobStatus())
    store.save("busy", JobStatus(J.NONE, A.SAVE, P.NONE, "save", 1))
    d = mj.Driver(store=store)
    n = store.saves
    d.recover()
    assert store.saves == n + 1
    assert store.load_all() == {"idle": JobStatus(), "busy": JobStatus()}


def test_every_pair_through_recover():
    """decide() and recover() agree for every pair (recover() uses decide())."""
    pairs = [(j, a, p) for j, a, p in itertools.product((J.NONE, J.DESTROY, J.MODIFY), A, P)
             if not (a == A.NONE and p)]
    store = MemoryStore()
    for i, (j, a, p) in enumerate(pairs):
        store.save(f"d{i}", JobStatus(j, a, p))
    d = mj.Driver(store=store)
    result = d.recover(table=V094)
    for i, (j, a, p) in enumerate(pairs):
        rec = result[f"d{i}"]
        assert rec.kill == expected_kill(j, a, p)
        assert (f"d{i}" in d) == (not rec.kill)


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


# ---- restored jobs (libvirt 11) --------------------------------------------------------

def test_a_restored_job_keeps_its_children_while_it_lasts():
    store = MemoryStore()
    children = ("<disk dev='vda' migrating='no'/>",
                "<migParams><param name='max-bandwidth' value='1'/></migParams>")
    store.save("vm1", JobStatus(J.NONE, OUT, P.PERFORM_RESUME, "performResume", 1700000000000,
                                0x88101, True, children))
    d = mj.Driver(store=store)
    rec = d.recover()["vm1"]
    assert rec.job_after == "restored"
    written = store.load_all()["vm1"]
    want = JobStatus(J.NONE, OUT, P.POSTCOPY_FAILED, "init-vm1", 1700000000000, 0x88101,
                     True, children)
    # job_status() is the domain's own, without children (the tracker adds them)
    assert written == want and d.lookup("vm1").job_status() == dataclasses.replace(want,
                                                                                  private=())
    dom = d.lookup("vm1")
    # a resume runs phases on it: the children stay in every record of that job
    assert dom.migration_job_start_phase(P.BEGIN_RESUME, api="beginResume")
    assert store.load_all()["vm1"].private == want.private
    dom.migration_job_finish()
    assert store.load_all()["vm1"] == JobStatus()
    # the next async job of the domain has none
    dom.begin_async_job(A.SAVE, api="save")
    assert store.load_all()["vm1"].private == ()
    dom.end_async_job()


def test_restored_jobs_count_and_park():
    store = MemoryStore()
    store.save("bk", JobStatus(J.NONE, A.BACKUP, P.NONE, "backup", 5, 0x1))
    store.save("in", JobStatus(J.NONE, IN, P.FINISH3, "finish3", 6, 0x8000))
    d = mj.Driver(store=store, max_queued=1)
    result = d.recover(facts={"in": Facts(postcopy=True, migration="postcopy")})
    bk, dst = d.lookup("bk"), d.lookup("in")
    assert (bk.mask, bk.phase, bk.async_paused, bk.api_flags) == (0x1F, P.NONE, False, 1)
    assert (dst.mask, dst.phase, dst.async_paused) == (0x42, P.POSTCOPY_FAILED, False)
    for dom in (bk, dst):
        assert (dom.refs, dom.jobs_queued, dom.async_owner_thread) == (2, 1, 0)
        assert dom.async_owner_api == f"init-{dom.name}"
    assert str(result["in"].restore) == "restored parked in postcopy_failed, mask 0x42"
    # the restored job holds its queue place: max_queued=1 is full for a QUERY
    with pytest.raises(mj.QueueFull):
        bk.begin_job(J.QUERY, timeout=0)


def test_a_later_job_of_the_same_kind_has_no_children():
    """The restored job ends and another backup begins before any record
    shows the end: the kept children are the first job's only."""
    store = MemoryStore()
    store.save("vm1", JobStatus(J.NONE, A.BACKUP, P.NONE, "backup", 1700000000000, 1,
                                private=("<x/>",)))
    d = mj.Driver(store=store)
    d.recover()
    dom = d.lookup("vm1")
    assert store.load_all()["vm1"].private == ("<x />",)
    from pymigjob._base import Tracked

    untracked = super(Tracked, dom)  # the backend's calls, without the write-through
    untracked.discard_async_job()
    time.sleep(0.002)
    untracked.begin_async_job(A.BACKUP, api="backup")
    # the late write of the first job's end sees the second job
    d._tracker.changed(dom)
    assert store.load_all()["vm1"].private == ()
    dom.end_async_job()
