"""libvirt 11's job data over both backends (C-backed and pure, each test
run against both): job_stats and its rules, the outcomes an end records,
set_job_state's stopped and delta, bad arguments changing nothing."""

from __future__ import annotations

import time

import pytest
from _async_job_support import dom, mj, wall_ms  # noqa: F401 - fixtures


# ---- job data ------------------------------------------------------------------------

def test_job_stats_rules(mj, dom):
    assert dom.job_stats() is None and dom.job_stats(completed=True) is None
    with pytest.raises(mj.OperationInvalid, match="no job is active on the domain"):
        dom.set_job_state(mj.JobState.MIGRATING)
    before = wall_ms()
    dom.begin_async_job(mj.AsyncJob.SAVE, api="save")
    data = dom.job_stats()
    assert isinstance(data, mj.JobData)
    assert (data.state, data.operation, data.stopped, data.delta, data.error) == (
        mj.JobState.ACTIVE, mj.JobOperation.SAVE, 0, None, None)
    assert before <= data.started <= wall_ms() and data.elapsed >= 0
    assert dom.job_info.type == mj.JobType.UNBOUNDED
    assert dom.job_stats(completed=True) is None     # none while a job runs
    for state, info in ((mj.JobState.NONE, mj.JobType.NONE),
                        (mj.JobState.POSTCOPY_RECOVER, mj.JobType.UNBOUNDED),
                        (mj.JobState.COMPLETED, mj.JobType.COMPLETED),
                        (mj.JobState.CANCELED, mj.JobType.CANCELLED),
                        (mj.JobState.MIGRATING, mj.JobType.UNBOUNDED)):
        dom.set_job_state(state, error="note")
        assert dom.job_info.type == info
        # libvirt: a record in state NONE is reported as no job at all
        assert (dom.job_stats() is None if state == mj.JobState.NONE
                else dom.job_stats().error == "note")
    dom.set_job_state(mj.JobState.MIGRATING)
    assert dom.job_stats().error is None
    time.sleep(0.02)
    dom.end_async_job()
    assert dom.job_stats() is None and dom.job_info.type == mj.JobType.NONE
    assert dom.job_stats(keep_completed=True) is None  # KEEP alone does nothing
    kept = dom.job_stats(completed=True, keep_completed=True)
    assert kept.state == mj.JobState.COMPLETED and kept.elapsed >= 0.02
    time.sleep(0.01)
    again = dom.job_stats(completed=True)
    assert again == kept                               # frozen at the end
    assert dom.job_stats(completed=True) is None       # read: deleted
    with pytest.raises(dataclass_frozen_error()):
        kept.state = mj.JobState.NONE


def dataclass_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


def test_job_stats_outcomes(mj, dom):
    dom.begin_async_job(mj.AsyncJob.DUMP)
    dom.end_async_job(error="disk full")
    data = dom.job_stats(completed=True)
    assert (data.state, data.error) == (mj.JobState.FAILED, "disk full")
    dom.begin_async_job(mj.AsyncJob.DUMP)
    dom.set_job_state(mj.JobState.FAILED, "qemu said no")
    dom.end_async_job()
    assert dom.job_stats(completed=True).error == "qemu said no"
    dom.migration_job_start(mj.AsyncJob.MIGRATION_IN)
    with pytest.raises(mj.OperationUnsupported, match="available only on the source host"):
        dom.job_stats()
    dom.migration_job_finish(error="x")
    assert dom.job_stats(completed=True).operation == mj.JobOperation.MIGRATION_IN


@pytest.mark.parametrize("call, exc", [
    (lambda d, mj: d.job_stats(completed=1), TypeError),
    (lambda d, mj: d.job_stats(keep_completed=None), TypeError),
    (lambda d, mj: d.set_job_state(11), ValueError),
    (lambda d, mj: d.set_job_state(-1), ValueError),
    (lambda d, mj: d.set_job_state(mj.Job.QUERY), TypeError),
    (lambda d, mj: d.set_job_state(mj.JobState.ACTIVE, error=3), TypeError),
    (lambda d, mj: d.set_job_state(mj.JobState.ACTIVE, error="x" * 1025), ValueError),
    (lambda d, mj: d.end_async_job(error=b"x"), TypeError),
    (lambda d, mj: d.migration_job_finish(error="a\0"), ValueError),
    (lambda d, mj: d.begin_async_job(mj.AsyncJob.SAVE, operation=11), ValueError),
    (lambda d, mj: d.begin_async_job(mj.AsyncJob.SAVE, operation=mj.JobState.ACTIVE),
     TypeError),
    (lambda d, mj: d.migration_job_continue(cleanup=5), TypeError),
])
def test_bad_job_data_arguments_change_nothing(mj, dom, call, exc):
    dom.begin_async_job(mj.AsyncJob.SAVE, api="save")
    before = (dom.refs, dom.jobs_queued, dom.async_job, dom.job_stats().state,
              dom.job_stats().error, dom.async_owner_thread)
    with pytest.raises(exc):
        call(dom, mj)
    assert (dom.refs, dom.jobs_queued, dom.async_job, dom.job_stats().state,
            dom.job_stats().error, dom.async_owner_thread) == before


def test_job_data_stopped_and_delta(mj, dom):
    dom.migration_job_start(mj.AsyncJob.MIGRATION_OUT)
    before = wall_ms()
    dom.set_job_state(mj.JobState.PAUSED, stopped=True, delta=-0.25)
    data = dom.job_stats()
    assert before <= data.stopped <= wall_ms() and data.delta == -0.25
    dom.set_job_state(mj.JobState.MIGRATING)          # both stay
    assert dom.job_stats().stopped == data.stopped and dom.job_stats().delta == -0.25
    for kw, exc in (({"delta": float("nan")}, ValueError), ({"delta": "1"}, TypeError),
                    ({"delta": True}, TypeError), ({"stopped": 1}, TypeError),
                    ({"delta": 10**400}, ValueError)):
        with pytest.raises(exc):
            dom.set_job_state(mj.JobState.FAILED, **kw)
        assert dom.job_stats().state == mj.JobState.MIGRATING
    dom.migration_job_finish()
    done = dom.job_stats(completed=True)
    assert (done.stopped, done.delta) == (data.stopped, -0.25)
