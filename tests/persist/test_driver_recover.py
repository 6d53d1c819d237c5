"""Restart recovery through the driver: what Driver.recover() does to the
driver and the store (its argument checks, a domain already listed, the act
before each record changes, a failing act, a bad record, every pair), and
the jobs it restores (libvirt 11).  The decision itself, table by table, is
test_recovery.py's."""

from __future__ import annotations

import dataclasses
import itertools
import time

import pytest

import pymigjob as mj
from pymigjob.recovery import LIBVIRT_0_9_4, Action, Facts
from pymigjob.persist.status import JobStatus
from pymigjob.store import DirectoryStore, MemoryStore

from _recovery_expect import expected_11, expected_kill, expected_kill_11

V094 = LIBVIRT_0_9_4

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


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
