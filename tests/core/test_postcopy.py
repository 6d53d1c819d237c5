"""libvirt 11's async job life over both backends (C-backed and pure, each
test run against both): one migration at a time, apiFlags, release /
discard / restore, post-copy failure and its resume checks, the guards'
failure paths, a tracked domain's saves, the coroutine begins' flags (the
job data: test_jobdata.py; the cleanups of migration_job_continue:
test_cleanups.py)."""

from __future__ import annotations

import threading
import time

import pytest
from _async_job_support import dom, mj, wall_ms  # noqa: F401 - fixtures


# ---- one migration at a time ----------------------------------------------------

def test_second_migration_fails_at_once(mj, dom):
    dom.migration_job_is_allowed()
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT, api="begin3")
    text = "another migration job is already running for domain 'vm1'"
    with pytest.raises(mj.OperationInvalid, match=text) as info:
        dom.migration_job_is_allowed()
    assert str(info.value) == f"Requested operation is not valid: {text}"
    for kind in (mj.AsyncJob.MIGRATION_OUT, mj.AsyncJob.MIGRATION_IN):
        t0 = time.monotonic()
        with pytest.raises(mj.OperationInvalid, match=text):
            dom.migration_job_start(kind, timeout=30)
        assert time.monotonic() - t0 < 2.0          # no wait
    assert (dom.refs, dom.jobs_queued) == (2, 1)
    # any other async kind still waits, and times out naming the holder
    with pytest.raises(mj.JobTimeout, match="held by monitor=begin3"):
        dom.migration_job_start(mj.AsyncJob.SAVE, timeout=0.01)
    dom.migration_job_finish()
    dom.begin_async_job(mj.AsyncJob.BACKUP)
    dom.migration_job_is_allowed()                   # a backup is no migration
    dom.end_async_job()


def test_second_migration_from_asyncio(mj, dom):
    import asyncio

    dom.migration_job_start(mj.AsyncJob.MIGRATION_IN)
    with pytest.raises(mj.OperationInvalid, match="another migration job"):
        asyncio.run(dom.migration_job_start_async(mj.AsyncJob.MIGRATION_OUT, timeout=30))
    assert dom.refs == 2


# ---- apiFlags ------------------------------------------------------------------------

def test_api_flags(mj, dom):
    assert dom.api_flags == 0
    dom.begin_async_job(mj.AsyncJob.DUMP, "dump", None, 2**32 - 1)
    assert dom.api_flags == 2**32 - 1
    dom.end_async_job()
    assert dom.api_flags == 0
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT, flags=0x8101)
    assert dom.api_flags == 0x8101
    dom.migration_job_finish()
    assert dom.api_flags == 0


@pytest.mark.parametrize("flags, exc", [(-1, ValueError), (2**32, ValueError),
                                        (True, TypeError), (1.0, TypeError),
                                        ("1", TypeError), (None, TypeError)])
def test_bad_flags_change_nothing(mj, dom, flags, exc):
    for call in (lambda: dom.begin_async_job(mj.AsyncJob.SAVE, flags=flags),
                 lambda: dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT, flags=flags),
                 lambda: dom.restore_async_job(mj.AsyncJob.SAVE, 0, flags=flags)):
        with pytest.raises(exc, match="flags"):
            call()
        assert (dom.refs, dom.jobs_queued, dom.async_job) == (1, 0, mj.AsyncJob.NONE)


# ---- release, discard, restore ----------------------------------------------------

def test_release_parks_and_keeps_the_api(mj, dom):
    with pytest.raises(mj.OperationInvalid, match="no job is active on the domain"):
        dom.release_async_job()
    dom.begin_async_job(mj.AsyncJob.SAVE, api="save")
    assert dom.async_owner_thread == threading.get_ident()
    dom.release_async_job()
    assert (dom.async_owner_thread, dom.async_owner_api, dom.refs) == (0, "save", 2)


def test_discard_gives_everything_back(mj, dom):
    with pytest.raises(mj.OperationInvalid, match="no job is active on the domain"):
        dom.discard_async_job()
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT, api="perform3")
    dom.begin_nested_job(mj.AsyncJob.MIGRATION_OUT, api="monitor")
    assert (dom.refs, dom.jobs_queued) == (3, 2)
    assert dom.discard_async_job() == 1
    # libvirt's DiscardAsyncJob leaves jobs_queued raised; we do not
    assert (dom.refs, dom.jobs_queued, dom.active_job, dom.async_job) == (
        1, 0, mj.Job.NONE, mj.AsyncJob.NONE)
    assert dom.job_stats(completed=True) is None     # a discarded job did not end


def test_discard_serves_the_waiters(mj, dom):
    dom.begin_async_job(mj.AsyncJob.SAVE)
    dom.set_async_job_mask(0)
    got = []

    def waiter():
        dom.begin_job(mj.Job.MODIFY, api="m", timeout=10)
        got.append(time.monotonic())
        dom.end_job()

    t = threading.Thread(target=waiter)
    t.start()
    while dom.jobs_queued < 2:
        time.sleep(0.002)
    t0 = time.monotonic()
    dom.discard_async_job()
    t.join(10)
    assert got and got[0] - t0 < 2.0
    assert (dom.refs, dom.jobs_queued) == (1, 0)


def test_restore(mj, dom):
    started = wall_ms() - 5000
    dom.restore_async_job(mj.AsyncJob.MIGRATION_OUT, mj.Phase.POSTCOPY_FAILED,
                          flags=0x8101, started=started)
    assert (dom.refs, dom.jobs_queued, dom.async_owner_thread) == (2, 1, 0)
    assert dom.async_owner_api == "init-vm1"
    assert dom.mask == 0x73 and dom.phase == mj.Phase.POSTCOPY_FAILED
    assert dom.api_flags == 0x8101
    data = dom.job_stats()
    assert (data.state, data.operation, data.started) == (
        mj.JobState.PAUSED, mj.JobOperation.MIGRATION_OUT, started)
    assert 4.5 < data.elapsed < 8 and 4.5 < dom.job_info.elapsed < 8
    assert dom.job_status().started is not None
    with pytest.raises(mj.OperationInvalid, match="cannot restore async job save: "
                       "async job migration out is active on the domain"):
        dom.restore_async_job(mj.AsyncJob.SAVE, 0)
    assert dom.refs == 2
    # a resume takes it over, and its end is an ordinary end
    assert dom.migration_job_start_phase(mj.Phase.BEGIN_RESUME, api="begin")
    assert dom.migration_job_continue() == 2
    assert dom.migration_job_finish() == 1
    assert dom.jobs_queued == 0
    # the other kinds' masks; an explicit one gains DESTROY
    for kind, mask in ((mj.AsyncJob.MIGRATION_IN, 0x42), (mj.AsyncJob.BACKUP, 0x1f),
                       (mj.AsyncJob.SAVE, 0x13), (mj.AsyncJob.START, 0x13)):
        dom.restore_async_job(kind, 0, api="x")
        assert (dom.mask, dom.async_owner_api) == (mask, "x")
        if kind != mj.AsyncJob.MIGRATION_IN:  # (no statistics on a destination)
            assert dom.job_stats().state == mj.JobState.ACTIVE
        dom.discard_async_job()
    dom.restore_async_job(mj.AsyncJob.SAVE, 0, mask=0)
    assert dom.mask == 0x02
    dom.discard_async_job()


def test_restore_in_the_future_counts_from_now(mj, dom):
    dom.restore_async_job(mj.AsyncJob.BACKUP, 0, started=wall_ms() + 3_600_000)
    assert dom.job_stats().elapsed < 2.0


@pytest.mark.parametrize("kw, exc", [
    ({"started": -1}, ValueError), ({"started": 2**63}, ValueError),
    ({"started": 1.5}, TypeError), ({"started": True}, TypeError),
    ({"mask": -1}, ValueError), ({"api": 5}, TypeError), ({"api": "a\0"}, ValueError),
])
def test_restore_bad_arguments(mj, dom, kw, exc):
    with pytest.raises(exc):
        dom.restore_async_job(mj.AsyncJob.SAVE, 0, **kw)
    assert (dom.refs, dom.jobs_queued, dom.async_job) == (1, 0, mj.AsyncJob.NONE)


def test_restore_bad_kinds(mj, dom):
    with pytest.raises(mj.InternalError, match="Attempt to start invalid job"):
        dom.restore_async_job(mj.AsyncJob.NONE, 0)
    with pytest.raises(mj.InvalidArgument, match="invalid migration phase 16"):
        dom.restore_async_job(mj.AsyncJob.SAVE, 16)
    with pytest.raises(TypeError, match="async_job must be an AsyncJob, not Job.QUERY"):
        dom.restore_async_job(mj.Job.QUERY, 0)
    with pytest.raises(TypeError):
        dom.restore_async_job(mj.AsyncJob.SAVE, 0, 0)     # keyword-only
    assert dom.refs == 1


def test_restore_on_a_removed_domain(mj):
    drv = mj.Driver()
    dom = drv.add_domain("vm1")
    dom.ref()
    drv.remove_domain("vm1")
    with pytest.raises(mj.NoDomain):
        dom.restore_async_job(mj.AsyncJob.SAVE, 0)
    assert dom.refs == 1


# ---- post-copy ---------------------------------------------------------------------

def test_postcopy_failed_and_resume(mj, dom):
    OUT, P = mj.AsyncJob.MIGRATION_OUT, mj.Phase
    assert not dom.async_paused and not dom.postcopy
    with pytest.raises(mj.OperationInvalid, match="no job is active"):
        dom.mark_postcopy_failed()
    dom.clear_postcopy_failed()                      # nothing to clear: fine
    dom.begin_async_job(mj.AsyncJob.SAVE)
    with pytest.raises(mj.OperationInvalid, match="domain 'vm1' is not being migrated"):
        dom.mark_postcopy_failed()
    dom.end_async_job()

    with dom.migration(OUT, P.PERFORM3, api="perform3"):
        pass
    with pytest.raises(mj.OperationInvalid,
                       match="migration of domain vm1 is not in post-copy phase$"):
        dom.migration_can_resume(OUT, P.POSTCOPY_FAILED)
    dom.set_job_state(mj.JobState.POSTCOPY)
    assert dom.postcopy
    with pytest.raises(mj.OperationInvalid,
                       match="post-copy migration of domain vm1 has not failed$"):
        dom.migration_can_resume(OUT, P.POSTCOPY_FAILED)
    dom.migration_job_start_phase(P.PERFORM3_DONE)
    dom.mark_postcopy_failed()
    assert (dom.phase, dom.async_paused, dom.async_owner_thread, dom.async_owner_api,
            dom.refs) == (P.POSTCOPY_FAILED, True, 0, "perform3", 2)
    dom.migration_job_continue()
    dom.migration_can_resume(OUT, P.POSTCOPY_FAILED)

    # driven by another thread
    t = threading.Thread(target=lambda: dom.migration_job_start_phase(P.POSTCOPY_FAILED))
    t.start()
    t.join()
    with pytest.raises(mj.OperationInvalid, match="migration of domain vm1 is being "
                       "actively monitored by another thread$"):
        dom.migration_can_resume(OUT, P.POSTCOPY_FAILED)
    dom.migration_job_continue()

    with dom.migration_phase(OUT, P.BEGIN_RESUME, api="begin") as mig:
        dom.migration_can_resume(OUT, P.BEGIN_RESUME)
        with pytest.raises(mj.OperationInvalid, match="already in progress"):
            dom.migration_can_resume(OUT, P.POSTCOPY_FAILED)
        dom.clear_postcopy_failed()
        assert not dom.async_paused and dom.postcopy
    assert mig.phase == P.BEGIN_RESUME and dom.refs == 1
    with dom.migration_phase(OUT, P.PERFORM_RESUME) as mig:
        pass
    with dom.migration_phase(OUT, P.CONFIRM_RESUME) as mig:
        mig.finish()
    assert (dom.async_job, dom.async_paused, dom.postcopy, dom.refs) == (
        mj.AsyncJob.NONE, False, False, 1)
    assert dom.job_stats(completed=True).state == mj.JobState.COMPLETED


@pytest.mark.parametrize("kind, expected, kw, text", [
    ("MIGRATION_OUT", "POSTCOPY_FAILED", {"postcopy": False},
     "resuming failed post-copy migration requires post-copy to be enabled"),
    ("MIGRATION_IN", "POSTCOPY_FAILED", {"postcopy": False, "change_protection": False},
     "resuming failed post-copy migration requires post-copy to be enabled"),
    ("MIGRATION_OUT", "BEGIN_RESUME", {"change_protection": False},
     "resuming failed post-copy migration requires change protection"),
])
def test_can_resume_argument_checks_come_first(mj, dom, kind, expected, kw, text):
    with pytest.raises(mj.ArgumentUnsupported, match=f"{text}$") as info:
        dom.migration_can_resume(mj.AsyncJob[kind], mj.Phase[expected], **kw)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == f"argument unsupported: {text}"


def test_can_resume_not_active(mj, dom):
    # from PERFORM_RESUME on, no change protection is needed; then IsActive's texts
    with pytest.raises(mj.OperationInvalid, match="domain 'vm1' is not being migrated$"):
        dom.migration_can_resume(mj.AsyncJob.MIGRATION_OUT, mj.Phase.PERFORM_RESUME,
                                 change_protection=False)
    with pytest.raises(mj.OperationInvalid, match="not processing incoming migration"):
        dom.migration_can_resume(mj.AsyncJob.MIGRATION_IN, mj.Phase.PREPARE_RESUME,
                                 change_protection=False)
    with pytest.raises(TypeError, match="postcopy must be a bool"):
        dom.migration_can_resume(mj.AsyncJob.MIGRATION_IN, 10, postcopy=1)
    with pytest.raises(TypeError):
        dom.migration_can_resume(mj.AsyncJob.MIGRATION_IN, 10, True)  # keyword-only


def test_guard_parks_a_failed_postcopy_instead_of_finishing(mj, dom):
    OUT, P = mj.AsyncJob.MIGRATION_OUT, mj.Phase
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        pass
    with pytest.raises(RuntimeError):
        with dom.migration_phase(OUT, P.PERFORM3, api="perform3"):
            dom.set_job_state(mj.JobState.POSTCOPY)
            raise RuntimeError("connection lost")
    # the guest is split between the hosts: the job stays, parked, failed
    assert (dom.async_job, dom.phase, dom.async_paused, dom.async_owner_thread,
            dom.refs) == (OUT, P.POSTCOPY_FAILED, True, 0, 1)
    # a failing resume step goes back to POSTCOPY_FAILED
    with pytest.raises(RuntimeError):
        with dom.migration_phase(OUT, P.BEGIN_RESUME):
            dom.clear_postcopy_failed()
            raise RuntimeError("QEMU reports migration is still running")
    assert (dom.phase, dom.async_paused, dom.refs) == (P.POSTCOPY_FAILED, True, 1)
    dom.migration_job_start_phase(P.CONFIRM_RESUME)
    dom.migration_job_finish()
    assert dom.refs == 1


def test_guard_records_the_failure(mj, dom):
    with pytest.raises(ValueError):
        with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.BEGIN3):
            raise ValueError("bad cookie")
    data = dom.job_stats(completed=True)
    assert (data.state, data.error, data.operation) == (
        mj.JobState.FAILED, "bad cookie", mj.JobOperation.MIGRATION_OUT)
    # after an abort: CANCELED
    with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.BEGIN3):
        pass
    dom.abort_job()
    assert dom.job_info.type == mj.JobType.UNBOUNDED
    with pytest.raises(mj.OperationAborted):
        with dom.migration_phase(mj.AsyncJob.MIGRATION_OUT, mj.Phase.PERFORM3):
            try:
                dom.check_abort()
            finally:  # libvirt's checkpoint records the cancellation
                assert dom.job_info.type == mj.JobType.CANCELLED
                assert dom.job_stats().state == mj.JobState.CANCELED
    data = dom.job_stats(completed=True)
    assert (data.state, data.error) == (mj.JobState.CANCELED,
                                        "operation aborted: migration out: canceled by client")
    # a text longer than a name is cut, never refused
    with pytest.raises(RuntimeError):
        with dom.migration(mj.AsyncJob.MIGRATION_OUT, mj.Phase.BEGIN3):
            raise RuntimeError("é" * 2000 + "\0")
    assert len(dom.job_stats(completed=True).error.encode()) <= 1024
    assert dom.refs == 1


# ---- a driver with a store: the tracked changes -------------------------------------

def test_tracked_domain_saves_restore_and_discard(mj, tmp_path):
    drv = mj.Driver(state_dir=str(tmp_path), park_timeout=600)
    try:
        dom = drv.add_domain("vm1")
        dom.restore_async_job(mj.AsyncJob.MIGRATION_OUT, mj.Phase.POSTCOPY_FAILED,
                              flags=5, started=1_715_000_000_000)
        saved = drv.store.load_all()["vm1"]
        assert (saved.async_job, saved.phase, saved.started, saved.owner_api) == (
            mj.AsyncJob.MIGRATION_OUT, mj.Phase.POSTCOPY_FAILED, 1_715_000_000_000,
            "init-vm1")
        dom.mark_postcopy_failed()
        dom.clear_postcopy_failed()
        dom.release_async_job()
        assert dom.discard_async_job() == 1
        assert drv.store.load_all()["vm1"].async_job == mj.AsyncJob.NONE
        dom.begin_async_job(mj.AsyncJob.SAVE, "save", None, 3)
        dom.end_async_job(error="x")
        assert drv.store.load_all()["vm1"].async_job == mj.AsyncJob.NONE
    finally:
        drv.close()


def test_coroutine_begins_take_flags(mj, dom):
    import asyncio

    asyncio.run(dom.begin_async_job_async(mj.AsyncJob.SAVE, "save", None, 9))
    assert dom.api_flags == 9
    dom.end_async_job()
    asyncio.run(dom.migration_job_start_async(mj.AsyncJob.MIGRATION_OUT, flags=0x8101))
    assert (dom.api_flags, dom.mask) == (0x8101, 0x77)
    dom.migration_job_finish()
    # checked when awaited, in the blocking order: the kind's type first
    coro = dom.begin_async_job_async(mj.Job.QUERY, flags=-1)
    with pytest.raises(TypeError, match="async_job must be an AsyncJob"):
        asyncio.run(coro)
    with pytest.raises(ValueError, match="flags"):
        asyncio.run(dom.begin_async_job_async(99, flags=-1))
    with pytest.raises(ValueError, match="flags"):
        asyncio.run(dom.migration_job_start_async(mj.AsyncJob.SAVE, flags=2**32))
    assert (dom.refs, dom.jobs_queued) == (1, 0)
