"""The cleanups of migration_job_continue over both backends (C-backed and
pure, each test run against both): run once each, newest first, failures
not stopping the others, a dead domain registering nothing, many threads,
remove_cleanup."""

from __future__ import annotations

import sys
import threading

import pytest
from _async_job_support import dom, mj  # noqa: F401 - fixtures


# ---- cleanups ------------------------------------------------------------------------

class Stopper:
    def __init__(self, log):
        self.log = log

    def stop(self, dom):
        self.log.append(("stop", dom.name))


def test_cleanups_once_each_newest_first(mj, dom):
    log = []
    first = lambda d: log.append("first")  # noqa: E731
    stopper = Stopper(log)
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT)
    for cleanup in (first, stopper.stop, first, stopper.stop, log.append, log.append):
        dom.migration_job_start_phase(mj.Phase.PERFORM3)
        dom.migration_job_continue(cleanup)
    assert dom.run_cleanups() == 3
    assert log == [dom, ("stop", "vm1"), "first"]
    assert dom.run_cleanups() == 0                    # run once


def test_cleanups_failures_do_not_stop_the_others(mj, dom):
    ran = []

    def bad(d):
        ran.append("bad")
        raise KeyError("boom")

    def reentrant(d):          # may call the domain: no lock is held
        ran.append("reentrant")
        d.begin_job(mj.Job.QUERY)
        d.end_job()

    for cleanup in (bad, reentrant, lambda d: ran.append("last")):
        dom.migration_job_start(mj.AsyncJob.SAVE)
        dom.migration_job_continue(cleanup)
        dom.migration_job_start_phase(mj.Phase.NONE)
        dom.migration_job_finish()
    if sys.version_info >= (3, 11):
        with pytest.raises(ExceptionGroup) as info:  # noqa: F821
            dom.run_cleanups()
        assert [type(e) for e in info.value.exceptions] == [KeyError]
    else:
        with pytest.raises(KeyError):
            dom.run_cleanups()
    assert ran == ["last", "reentrant", "bad"]
    assert dom.refs == 1


def test_continue_on_a_dead_domain_registers_nothing(mj):
    drv = mj.Driver()
    dom = drv.add_domain("vm1")
    dom.unref()
    with pytest.raises(mj.NoDomain):
        dom.migration_job_continue(print)
    assert dom.run_cleanups() == 0


def test_cleanups_from_many_threads(mj, dom):
    hits = []
    lock = threading.Lock()

    def make(i):
        def cleanup(d):
            with lock:
                hits.append(i)
        return cleanup

    cleanups = [make(i) for i in range(50)]
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT)

    def worker(chunk):
        for c in chunk:
            dom.ref()
            dom.migration_job_continue(c)

    threads = [threading.Thread(target=worker, args=(cleanups[i::5] * 2,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dom.run_cleanups() == 50 and sorted(hits) == list(range(50))


def test_remove_cleanup(mj, dom):
    log = []
    stopper = Stopper(log)
    assert not dom.remove_cleanup(stopper.stop)
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT)
    dom.migration_job_continue(stopper.stop)
    dom.migration_job_start_phase(mj.Phase.PERFORM3)
    assert dom.remove_cleanup(stopper.stop)          # a new bound method: the same one
    assert not dom.remove_cleanup(stopper.stop)
    assert not dom.remove_cleanup(None)
    with pytest.raises(TypeError, match="cleanup must be callable"):
        dom.remove_cleanup(3)
    dom.migration_job_finish()
    assert dom.run_cleanups() == 0 and log == []
