"""Stores: DirectoryStore on disk, the Store protocol, the driver's store
arguments (what the driver writes and when: test_tracking.py)."""

from __future__ import annotations

import os

import pytest

import pymigjob as mj
from pymigjob.persist.status import JobStatus
from pymigjob.store import DirectoryStore, MemoryStore, Store, format_record, record_filename

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


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
