"""Stores and the driver's write-through of job status records."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

import pymigjob as mj
from pymigjob.persist.status import JobStatus
from pymigjob.store import DirectoryStore, MemoryStore, Store, format_record, record_filename

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


class RecordingStore(MemoryStore):
    """A MemoryStore that also keeps every save, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, JobStatus]] = []

    def save(self, name, status):
        super().save(name, status)
        self.log.append((name, status))

    def history(self, name="vm1"):
        return [(s.job, s.async_job, s.phase) for n, s in self.log if n == name]


@pytest.fixture
def rec():
    return RecordingStore()


@pytest.fixture
def sdrv(rec):
    d = mj.Driver(job_wait_timeout=5.0, store=rec)
    yield d
    d.close()


# ---- DirectoryStore ---------------------------------------------------------------

def test_directory_store_round_trip(tmp_path):
    store = DirectoryStore(tmp_path / "state")
    assert store.load_all() == {}
    a = JobStatus(J.NONE, OUT, P.PERFORM3, "perform3", 12345)
    b = JobStatus(J.DESTROY, owner_api="destroy")
    store.save("vm1", a)
    store.save("vm2", b)
    assert store.load_all() == {"vm1": a, "vm2": b}
    store.save("vm1", JobStatus())
    assert store.load_all() == {"vm1": JobStatus(), "vm2": b}
    store.delete("vm2")
    store.delete("vm2")  # missing: fine
    assert store.load_all() == {"vm1": JobStatus()}
    assert sorted(os.listdir(store.path)) == ["vm1.xml"]
    store.close()
    store.close()
    with pytest.raises(ValueError):
        store.save("vm1", a)


def test_record_file_is_libvirts_element(tmp_path):
    store = DirectoryStore(tmp_path)
    store.save("vm1", JobStatus(J.NONE, IN, P.PREPARE))
    with open(store.filename("vm1")) as f:
        assert f.read() == ("<domstatus name='vm1'>\n"
                            "  <job type='none' async='migration in' phase='prepare' flags='0x0'/>\n"
                            "</domstatus>\n")


@pytest.mark.parametrize("name", ["a/b", ".", "..", ".hidden", "~x", "with space",
                                  "per%cent", "ünï☃", "x" * 1024, "é" * 300, "a\nb",
                                  "vm1.xml", ".tmp-1-2-x"])
def test_any_domain_name_is_a_safe_file(tmp_path, name):
    store = DirectoryStore(tmp_path)
    st = JobStatus(J.NONE, A.SAVE, owner_api=name, started=1)
    store.save(name, st)
    (entry,) = os.listdir(tmp_path)
    assert "/" not in entry and not entry.startswith(".") and len(entry.encode()) <= 255
    assert entry == record_filename(name)
    assert store.load_all() == {name: st}
    store.delete(name)
    assert os.listdir(tmp_path) == []


def test_a_name_cannot_take_a_long_names_file(tmp_path):
    import hashlib

    long = "x" * 500
    digest = "~" + hashlib.sha256(long.encode()).hexdigest()
    assert record_filename(long) == digest + ".xml"
    assert record_filename(digest) != record_filename(long)
    store = DirectoryStore(tmp_path)
    store.save(long, JobStatus(J.DESTROY))
    store.save(digest, JobStatus())
    assert store.load_all() == {long: JobStatus(J.DESTROY), digest: JobStatus()}


def test_save_is_temp_fsync_rename_fsync_dir(tmp_path, monkeypatch):
    store = DirectoryStore(tmp_path)
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", "dir" if fd == store._dir_fd else "file"))
        return real_fsync(fd)

    def replace(src, dst, **kw):
        events.append(("replace", src.startswith(".tmp-"), dst))
        return real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.save("vm1", JobStatus(J.DESTROY))
    assert events == [("fsync", "file"), ("replace", True, "vm1.xml"), ("fsync", "dir")]
    events.clear()
    store.delete("vm1")
    assert events == [("fsync", "dir")]


def test_failed_save_keeps_the_old_record_and_leaves_no_temp(tmp_path, monkeypatch):
    store = DirectoryStore(tmp_path)
    old = JobStatus(J.NONE, OUT, P.BEGIN3)
    store.save("vm1", old)

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        store.save("vm1", JobStatus())
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["vm1.xml"]
    assert store.load_all() == {"vm1": old}


def test_dead_writers_temp_files(tmp_path):
    store = DirectoryStore(tmp_path)
    store.save("vm1", JobStatus())
    stale = tmp_path / ".tmp-999999999-0-vm1.xml"
    stale.write_bytes(b"<domstatus name='vm1'><job type='destr")   # torn
    mine = tmp_path / f".tmp-{os.getpid()}-77-vm2.xml"
    mine.write_bytes(b"")                                          # a live writer's
    assert store.load_all() == {"vm1": JobStatus()}                # ignored, kept
    assert stale.exists() and mine.exists()
    assert store.remove_leftovers() == 1
    assert not stale.exists() and mine.exists()
    # recovery removes them
    stale.write_bytes(b"")
    d = mj.Driver(state_dir=tmp_path)
    d.recover()
    assert not stale.exists()
    d.close()


def test_a_record_deleted_while_listing_is_skipped(tmp_path, monkeypatch):
    store = DirectoryStore(tmp_path)
    store.save("vm1", JobStatus())
    store.save("vm2", JobStatus())
    real_listdir = os.listdir

    def listdir(fd):
        entries = real_listdir(fd)
        os.unlink(tmp_path / "vm1.xml")  # a writer deletes it meanwhile
        return entries

    monkeypatch.setattr(os, "listdir", listdir)
    assert store.load_all() == {"vm2": JobStatus()}


def test_unreadable_record_is_loud(tmp_path):
    store = DirectoryStore(tmp_path)
    (tmp_path / "vm1.xml").write_bytes(b"<domstatus name='vm1'><job type='destr")
    with pytest.raises(mj.InternalError, match="vm1.xml"):
        store.load_all()
    (tmp_path / "vm1.xml").write_bytes(format_record("vm1", JobStatus()).replace(
        b"async='none'", b"async='bogus'"))
    with pytest.raises(mj.InternalError, match="Unknown async job type bogus"):
        store.load_all()
    (tmp_path / "vm1.xml").write_bytes(format_record("vm2", JobStatus()))
    with pytest.raises(mj.InternalError, match="holds the record of domain 'vm2'"):
        store.load_all()
    (tmp_path / "vm1.xml").write_bytes(b"<other/>")
    with pytest.raises(mj.InternalError, match="not a domain status file"):
        store.load_all()


def test_unrelated_files_are_ignored(tmp_path):
    store = DirectoryStore(tmp_path)
    (tmp_path / "README").write_text("hello")
    (tmp_path / ".keep").write_text("")
    assert store.load_all() == {}


def test_store_protocol():
    assert isinstance(MemoryStore(), Store)
    assert isinstance(DirectoryStore.__new__(DirectoryStore), Store)
    assert not isinstance(object(), Store)


# ---- Driver configuration ---------------------------------------------------------

def test_no_store_costs_nothing(drv, dom):
    assert drv.store is None
    # the backend's plain Domain: no tracking hook on any path, not even a check
    assert type(dom) is mj.Domain and not hasattr(dom, "_track")
    drv.close()  # harmless


def test_driver_arguments(tmp_path):
    with pytest.raises(ValueError):
        mj.Driver(state_dir=tmp_path, store=MemoryStore())
    with pytest.raises(TypeError):
        mj.Driver(store=object())
    with pytest.raises(ValueError):
        mj.Driver(park_timeout=0)
    with pytest.raises(TypeError):
        mj.Driver(park_timeout="1")
    with pytest.raises(TypeError):
        mj.Driver(on_abandon=5)
    d = mj.Driver(state_dir=tmp_path / "new")
    assert isinstance(d.store, DirectoryStore) and os.path.isdir(tmp_path / "new")
    d.close()


# ---- what is written, and when ------------------------------------------------------

def test_v3_source_flow_writes_every_phase(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    assert rec.log == []  # adding a domain writes nothing
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        assert rec.load_all()["vm1"].phase == P.BEGIN3  # durable before the call returned
    with dom.migration_phase(OUT, P.PERFORM3, api="perform3") as mig:
        with dom.nested_job(OUT):
            pass
        mig.set_phase(P.PERFORM3_DONE)
    with dom.migration_phase(OUT, P.CONFIRM3, api="confirm3") as mig:
        mig.finish()
    assert rec.history() == [
        (J.NONE, OUT, P.NONE), (J.NONE, OUT, P.BEGIN3), (J.NONE, OUT, P.PERFORM3),
        (J.NONE, OUT, P.PERFORM3_DONE), (J.NONE, OUT, P.CONFIRM3), (J.NONE, A.NONE, P.NONE)]
    owners = [s.owner_api for _, s in rec.log]
    assert owners == ["begin3", "begin3", "perform3", "perform3", "confirm3", None]
    assert len({s.started for _, s in rec.log[:-1]}) == 1


def test_destination_and_other_async_jobs(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    with dom.migration(IN, P.PREPARE, api="prepare3"):
        pass
    with dom.migration_phase(IN, P.FINISH3, api="finish3") as mig:
        mig.finish()
    dom.begin_async_job(A.SAVE, api="save")
    dom.set_async_job_mask(mj.job_mask(J.QUERY))  # not tracked
    dom.end_async_job()
    assert rec.history() == [
        (J.NONE, IN, P.NONE), (J.NONE, IN, P.PREPARE), (J.NONE, IN, P.FINISH3),
        (J.NONE, A.NONE, P.NONE), (J.NONE, A.SAVE, P.NONE), (J.NONE, A.NONE, P.NONE)]


def test_only_destroy_sync_jobs_are_written(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    for job in (J.QUERY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP):
        with dom.job(job):
            pass
    assert rec.log == []
    with dom.job(J.DESTROY, api="destroy"):
        assert rec.load_all()["vm1"] == JobStatus(J.DESTROY, owner_api="destroy")
    assert rec.load_all()["vm1"] == JobStatus()
    assert len(rec.log) == 2


def test_destroy_during_a_parked_migration(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        pass
    dom.begin_job(J.DESTROY, api="destroy")
    assert rec.load_all()["vm1"].job == J.DESTROY
    assert rec.load_all()["vm1"].owner_api == "begin3"
    dom.end_job()
    assert rec.load_all()["vm1"] == dom.job_status()


def test_equal_states_are_not_rewritten(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    with dom.migration(OUT, P.BEGIN3, api="begin3") as mig:
        n = len(rec.log)
        mig.set_phase(P.BEGIN3)
        assert len(rec.log) == n
        assert not dom.migration_job_set_phase(P.NONE)  # backwards: refused
        assert len(rec.log) == n


def test_remove_domain_deletes_the_record(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    dom.migration_job_start(IN, api="prepare3")
    dom.migration_job_set_phase(P.PREPARE)
    assert "vm1" in rec.load_all()
    sdrv.remove_domain("vm1")
    assert "vm1" not in rec.load_all()
    # the held job may still go on and end on the removed domain: no record comes back
    dom.migration_job_set_phase(P.FINISH3)
    dom.migration_job_finish()
    assert "vm1" not in rec.load_all()


def test_a_new_domain_of_a_removed_name(sdrv, rec):
    old = sdrv.add_domain("vm1")
    old.begin_async_job(A.DUMP)
    sdrv.remove_domain("vm1")
    new = sdrv.add_domain("vm1")
    new.begin_job(J.DESTROY)
    old.end_async_job()  # the old domain's end does not clobber the new record
    assert rec.load_all()["vm1"] == JobStatus(J.DESTROY)
    new.end_job()


def test_failed_write_is_logged_and_the_call_succeeds(caplog):
    class Broken(MemoryStore):
        def save(self, name, status):
            raise OSError(28, "No space left on device")

    d = mj.Driver(store=Broken())
    dom = d.add_domain("vm1")
    with caplog.at_level(logging.WARNING, logger="pymigjob"):
        dom.begin_async_job(A.SAVE)
    assert dom.async_job == A.SAVE
    assert "Failed to save status on vm vm1" in caplog.text
    dom.end_async_job()


def test_directory_store_after_each_call(tmp_path):
    d = mj.Driver(state_dir=tmp_path)
    dom = d.add_domain("vm1")
    fresh = DirectoryStore(tmp_path)  # another reader of the directory
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        pass
    assert fresh.load_all()["vm1"] == dom.job_status()
    with dom.migration_phase(OUT, P.PERFORM3, api="perform3") as mig:
        assert fresh.load_all()["vm1"].phase == P.PERFORM3
        mig.set_phase(P.PERFORM3_DONE)
        assert fresh.load_all()["vm1"].phase == P.PERFORM3_DONE
    with dom.migration_phase(OUT, P.CONFIRM3_CANCELLED) as mig:
        mig.finish()
    assert fresh.load_all() == {"vm1": JobStatus()}
    assert [e for e in os.listdir(tmp_path) if e.startswith(".")] == []
    d.close()
    fresh.close()


# ---- concurrency -------------------------------------------------------------------

def test_a_slow_older_write_never_lands_after_a_newer_one():
    """Thread 1's write of S1 stalls; thread 2 changes the domain to S2 in the
    meantime.  The per-domain lock makes thread 2's hook wait and re-read, so
    the store ends with S2 (without it, S1 would land last)."""
    stall = threading.Event()
    in_save = threading.Event()

    class Slow(MemoryStore):
        def save(self, name, status):
            if status.async_job == A.SAVE and not in_save.is_set():
                in_save.set()
                stall.wait(5)
            super().save(name, status)

    store = Slow()
    d = mj.Driver(store=store)
    dom = d.add_domain("vm1")
    t = threading.Thread(target=dom.begin_async_job, args=(A.SAVE,))
    t.start()
    assert in_save.wait(5)
    # the async job is held; another thread takes a DESTROY job (always allowed)
    t2 = threading.Thread(target=dom.begin_job, args=(J.DESTROY,))
    t2.start()
    time.sleep(0.05)
    stall.set()
    t.join(5)
    t2.join(5)
    assert store.load_all()["vm1"] == dom.job_status()
    assert dom.job_status().job == J.DESTROY
    dom.end_job()
    dom.end_async_job()
    assert store.load_all()["vm1"] == JobStatus()


def test_many_threads_on_one_domain_leave_the_newest_state(tmp_path):
    d = mj.Driver(job_wait_timeout=10.0, state_dir=tmp_path)
    dom = d.add_domain("vm1")
    errors = []

    def destroyer():
        try:
            for _ in range(30):
                with dom.job(J.DESTROY):
                    pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def migrator():
        try:
            for _ in range(10):
                with dom.migration(OUT, P.BEGIN3, api="begin3"):
                    pass
                with dom.migration_phase(OUT, P.PERFORM3, api="perform3") as mig:
                    mig.set_phase(P.PERFORM3_DONE)
                with dom.migration_phase(OUT, P.CONFIRM3, api="confirm3") as mig:
                    mig.finish()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=f) for f in (destroyer, destroyer, migrator)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert DirectoryStore(tmp_path).load_all() == {"vm1": JobStatus()} == \
        {"vm1": dom.job_status()}
    d.close()


def test_different_domains_write_in_parallel():
    """One domain's slow write does not hold up another domain's."""
    gate = threading.Event()

    class Gate(MemoryStore):
        def save(self, name, status):
            if name == "slow":
                gate.wait(5)
            super().save(name, status)

    store = Gate()
    d = mj.Driver(store=store)
    slow, fast = d.add_domain("slow"), d.add_domain("fast")
    t = threading.Thread(target=slow.begin_async_job, args=(A.SAVE,))
    t.start()
    time.sleep(0.02)
    t0 = time.monotonic()
    fast.begin_async_job(A.DUMP)
    assert time.monotonic() - t0 < 1.0
    gate.set()
    t.join(5)
    assert store.load_all() == {"slow": slow.job_status(), "fast": fast.job_status()}


def test_asyncio_begins_write_too(sdrv, rec):
    import asyncio

    dom = sdrv.add_domain("vm1")

    async def main():
        await dom.begin_async_job_async(A.SAVE, api="save")
        assert rec.load_all()["vm1"].async_job == A.SAVE
        await dom.begin_job_async(J.DESTROY, api="destroy")
        assert rec.load_all()["vm1"].job == J.DESTROY
        dom.end_job()
        async with dom.job_async(J.QUERY):
            pass
        dom.end_async_job()

    asyncio.run(main())
    assert rec.history() == [(J.NONE, A.SAVE, P.NONE), (J.DESTROY, A.SAVE, P.NONE),
                             (J.NONE, A.SAVE, P.NONE), (J.NONE, A.NONE, P.NONE)]


def test_destroy_end_is_known_without_asking_the_core(sdrv, rec):
    dom = sdrv.add_domain("vm1")
    track = dom._track
    dom.begin_job(J.DESTROY)
    assert dom in track.destroying
    dom.end_job()
    assert dom not in track.destroying and rec.load_all()["vm1"] == JobStatus()
    with dom.job(J.MODIFY):
        assert dom not in track.destroying
    dom.begin_job(J.DESTROY)
    sdrv.remove_domain("vm1")  # removed while held: forgotten
    assert not track.destroying
    dom.end_job()


def test_a_dead_domains_record_goes_when_its_name_is_added_again():
    """A domain unref'd to 0 while listed is replaced by the next add_domain
    of its name; its record goes with it (0.1 left the dead domain's record,
    stale, until the new domain's first tracked change)."""
    store = MemoryStore()
    drv = mj.Driver(store=store)
    dom = drv.add_domain("vm1")
    dom.begin_async_job(A.SAVE, api="save")
    assert store.load_all()["vm1"].async_job == A.SAVE
    dom.unref()
    dom.unref()
    assert not dom.alive and drv.domains() == []
    again = drv.add_domain("vm1")
    assert "vm1" not in store.load_all()
    again.begin_async_job(A.DUMP)
    assert store.load_all()["vm1"].async_job == A.DUMP


def test_libvirt_11_fields_survive_the_directory_store(tmp_path):
    store = DirectoryStore(tmp_path)
    st = JobStatus(J.NONE, A.MIGRATION_OUT, mj.Phase.POSTCOPY_FAILED, "init-vm1", 17, 0x8101,
                   True, ("<disk dev='vda' migrating='no'><x a='&amp; ü'>t &lt; u</x></disk>",
                          "<snapshotDelete/>"))
    store.save("vm1", st)
    assert DirectoryStore(tmp_path).load_all() == {"vm1": st}
    store.close()
