"""begin_job(..., nowait=True) and begin_agent_job(..., nowait=True)
(libvirt's virDomainObjBeginJobNowait): False instead of waiting, no error,
nothing changed; every begin returns True once the job is held.  Both
backends."""

from __future__ import annotations

import pytest

import pymigjob
import pymigjob.pure as pure
from _mjhelpers import DEADLINE, snapshot, started, wait_queued


@pytest.fixture(params=["c", "pure"])
def M(request):
    if request.param == "pure":
        return pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


@pytest.fixture
def d(M):
    return M.Driver(job_wait_timeout=5.0).add_domain("vm1")


def test_nowait_granted_when_free(M, d):
    assert d.begin_job(M.Job.MODIFY, api="set", nowait=True) is True
    assert (d.active_job, d.owner_api, d.refs, d.jobs_queued) == (M.Job.MODIFY, "set", 2, 1)
    d.end_job()
    assert d.begin_agent_job(M.AgentJob.QUERY, nowait=True) is True
    d.end_agent_job()


def test_nowait_busy_changes_nothing(M, d):
    d.begin_job(M.Job.MODIFY, api="holder")
    d.begin_agent_job(M.AgentJob.MODIFY, api="ga")
    before = snapshot(d)
    assert d.begin_job(M.Job.QUERY, api="x", timeout=30, nowait=True) is False
    assert d.begin_agent_job(M.AgentJob.QUERY, api="y", nowait=True) is False
    assert snapshot(d) == before
    d.end_job()
    d.end_agent_job()
    assert (d.refs, d.jobs_queued) == (1, 0)


def test_nowait_mask_blocked(M, d):
    d.migration_job_start(M.AsyncJob.MIGRATION_OUT, api="begin3")
    assert d.begin_job(M.Job.MODIFY, nowait=True) is False       # not in 0x77
    assert d.begin_job(M.Job.QUERY, nowait=True) is True
    d.end_job()
    d.end_async_job()


def test_nowait_does_not_overtake_a_waiter(M, d):
    """A free slot with nobody queued for it is taken; a nowait begin never
    jumps a waiter: at rest no queued waiter could start."""
    d.begin_job(M.Job.MODIFY)
    waiter = started(d.begin_job, M.Job.QUERY, timeout=DEADLINE)
    wait_queued(d, 2)
    assert d.begin_job(M.Job.QUERY, nowait=True) is False
    d.end_job()
    assert waiter.join_ok() is True
    assert d.begin_job(M.Job.QUERY, nowait=True) is False
    d.end_job()


def test_nowait_errors_stay_errors(M, d):
    with pytest.raises(M.InternalError):
        d.begin_job(M.Job.ASYNC, nowait=True)
    with pytest.raises(TypeError):
        d.begin_job(M.Job.QUERY, nowait="yes")
    drv = M.Driver()
    e = drv.add_domain("gone")
    e.begin_job(M.Job.QUERY)
    drv.remove_domain("gone")
    with pytest.raises(M.NoDomain):
        e.begin_job(M.Job.QUERY, nowait=True)
    e.end_job()


def test_every_begin_returns_true(M, d):
    assert d.begin_async_job(M.AsyncJob.SAVE) is True
    assert d.begin_nested_job(M.AsyncJob.SAVE) is True
    d.end_nested_job()
    d.end_async_job()
    assert d.migration_job_start(M.AsyncJob.MIGRATION_OUT) is True
    d.migration_job_finish()
    assert d.begin_job(M.Job.QUERY) is True and d.begin_job(M.Job.QUERY, nowait=True) is False
    d.end_job()
    assert d.begin_agent_job(M.AgentJob.QUERY) is True
    d.end_agent_job()
