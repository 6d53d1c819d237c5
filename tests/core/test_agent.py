"""The agent slot (libvirt 11, api.md Revision 0.2): begin/end, the guard,
independence from the sync slot and the mask, FIFO across slots,
jobs_queued and max_queued, the blockers' texts, bad input.  Each test runs
over both backends (the C-backed one when it is built, and the twin)."""

from __future__ import annotations

import threading
import time

import pytest

import pymigjob
import pymigjob.pure as pure
from _mjhelpers import DEADLINE, snapshot, started, wait_queued


@pytest.fixture(params=["c", "pure"])
def M(request):
    """The backend's package: pymigjob over the C core, or the twin."""
    if request.param == "pure":
        return pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


@pytest.fixture
def d(M):
    return M.Driver(job_wait_timeout=5.0).add_domain("vm1")


def lock_text(who, api):
    return f"cannot acquire state change lock (held by {who}={api})"


def test_begin_end_agent_job(M, d):
    assert d.agent_job == M.AgentJob.NONE and isinstance(d.agent_job, M.AgentJob)
    assert d.begin_agent_job(M.AgentJob.QUERY, api="guestPing") is True
    assert d.agent_job == M.AgentJob.QUERY
    assert d.agent_owner_api == "guestPing"
    assert d.agent_owner_thread == threading.get_ident()
    assert (d.refs, d.jobs_queued) == (2, 1)
    assert d.active_job == M.Job.NONE and d.owner_api is None
    assert d.end_agent_job() == 1
    assert (d.agent_job, d.agent_owner_api, d.agent_owner_thread, d.jobs_queued) == (
        M.AgentJob.NONE, None, 0, 0)
    with pytest.raises(M.OperationInvalid, match="no agent job is active on the domain"):
        d.end_agent_job()


def test_agent_guard(M, d):
    with d.agent(M.AgentJob.MODIFY, api="fsFreeze") as dom:
        assert dom is d
        assert (d.agent_job, d.agent_owner_api, d.refs) == (M.AgentJob.MODIFY, "fsFreeze", 2)
    assert (d.agent_job, d.refs) == (M.AgentJob.NONE, 1)
    with pytest.raises(KeyError):
        with d.agent(M.AgentJob.QUERY):
            raise KeyError("body")
    assert (d.agent_job, d.refs) == (M.AgentJob.NONE, 1)
    assert isinstance(d.agent(M.AgentJob.QUERY), M.AgentJobGuard)


def test_agent_and_sync_slots_are_independent(M, d):
    d.begin_job(M.Job.MODIFY, api="setMemory")
    t0 = time.monotonic()
    assert d.begin_agent_job(M.AgentJob.MODIFY, api="setTime", timeout=2) is True
    d.end_job()
    d.begin_job(M.Job.MODIFY, api="setVcpus", timeout=2)
    assert time.monotonic() - t0 < 1.0
    assert (d.refs, d.jobs_queued) == (3, 2)
    assert d.end_job() == 2
    assert d.end_agent_job() == 1


def test_agent_ignores_the_async_mask(M, d):
    d.migration_job_start(M.AsyncJob.MIGRATION_IN, api="prepare3")   # mask 0x42
    assert d.begin_agent_job(M.AgentJob.QUERY, api="ga", timeout=1) is True
    with pytest.raises(M.JobTimeout) as e:
        d.begin_job(M.Job.QUERY, timeout=0.05)
    assert e.value.message == lock_text("monitor", "prepare3")
    d.end_agent_job()
    d.end_async_job()
    assert (d.refs, d.jobs_queued) == (1, 0)


def test_agent_timeout_names_the_agent_owner(M, d):
    d.begin_agent_job(M.AgentJob.MODIFY, api="fsFreeze")
    d.begin_job(M.Job.QUERY, api="stats")         # never named for an agent wait
    before = snapshot(d)
    with pytest.raises(M.JobTimeout) as e:
        d.begin_agent_job(M.AgentJob.QUERY, api="ping", timeout=0.05)
    assert e.value.message == lock_text("agent", "fsFreeze")
    assert str(e.value) == "Timed out during operation: " + lock_text("agent", "fsFreeze")
    assert snapshot(d) == before
    d.end_agent_job()
    d.begin_agent_job(M.AgentJob.MODIFY)          # no API: the bare text
    with pytest.raises(M.JobTimeout) as e:
        d.begin_agent_job(M.AgentJob.QUERY, timeout=0)
    assert e.value.message == "cannot acquire state change lock"
    d.end_agent_job()
    d.end_job()


def test_fifo_across_slots(M, d):
    """An agent waiter is not held up by an older sync waiter (nor the other
    way round); among agent waiters, first come first served."""
    d.begin_job(M.Job.MODIFY, api="mon")
    d.begin_agent_job(M.AgentJob.MODIFY, api="ga")
    order = []

    def take(begin, kind, tag):
        begin(kind, api=tag, timeout=DEADLINE)
        order.append(tag)

    sync_waiter = started(take, d.begin_job, M.Job.QUERY, "s1")
    wait_queued(d, 3)
    agents = []
    for i in range(3):
        agents.append(started(take, d.begin_agent_job, M.AgentJob.QUERY, f"a{i}"))
        wait_queued(d, 4 + i)
    d.end_agent_job()
    agents[0].join_ok()
    assert order == ["a0"] and d.active_job == M.Job.MODIFY
    for i in (1, 2):
        d.end_agent_job()          # from this thread: any thread may end it
        agents[i].join_ok()
    assert order == ["a0", "a1", "a2"]
    assert sync_waiter.is_alive()
    d.end_job()
    sync_waiter.join_ok()
    assert order[-1] == "s1"
    d.end_job()
    d.end_agent_job()
    assert (d.refs, d.jobs_queued) == (1, 0)


def test_sync_waiter_not_held_up_by_agent_waiters(M, d):
    d.begin_job(M.Job.MODIFY, api="mon")
    d.begin_agent_job(M.AgentJob.MODIFY, api="ga")
    agent_waiter = started(d.begin_agent_job, M.AgentJob.QUERY, timeout=DEADLINE)
    wait_queued(d, 3)
    sync_waiter = started(d.begin_job, M.Job.QUERY, timeout=DEADLINE)
    wait_queued(d, 4)
    d.end_job()
    assert sync_waiter.join_ok() is True
    assert agent_waiter.is_alive()
    d.end_agent_job()
    assert agent_waiter.join_ok() is True
    d.end_job()
    d.end_agent_job()


def test_agent_counts_in_max_queued(M):
    drv = M.Driver(job_wait_timeout=5.0, max_queued=2)
    d = drv.add_domain("vm1")
    d.begin_agent_job(M.AgentJob.QUERY, api="a1")
    d.begin_job(M.Job.QUERY, api="q1")
    before = snapshot(d)
    with pytest.raises(M.QueueFull) as e:
        d.begin_agent_job(M.AgentJob.QUERY, api="a2")
    assert e.value.message == lock_text("agent", "a1") + " due to max_queued limit"
    with pytest.raises(M.QueueFull) as e:
        d.begin_job(M.Job.MODIFY, nowait=True)
    assert e.value.message == lock_text("monitor", "q1") + " due to max_queued limit"
    assert snapshot(d) == before
    d.end_job()
    d.begin_job(M.Job.DESTROY)                    # exempt, as are async jobs
    assert d.jobs_queued == 2
    d.end_job()
    d.begin_async_job(M.AsyncJob.SAVE)
    assert d.jobs_queued == 2
    with pytest.raises(M.QueueFull):              # nested jobs count
        d.begin_nested_job(M.AsyncJob.SAVE)
    d.end_async_job()
    d.end_agent_job()
    assert (d.refs, d.jobs_queued) == (1, 0)


@pytest.mark.parametrize("bad, exc", [
    (0, "InternalError"), (3, "InvalidArgument"), (-1, "InvalidArgument"),
    (2**40, ValueError), ("query", TypeError), (1.0, TypeError), (None, TypeError),
    (True, TypeError), ("Job.QUERY", TypeError),
])
def test_bad_agent_kinds_change_nothing(M, d, bad, exc):
    if bad == "Job.QUERY":
        bad = M.Job.QUERY                         # another enum's member
    if isinstance(exc, str):
        exc = getattr(M, exc)
    d.begin_agent_job(M.AgentJob.QUERY, api="held")
    before = snapshot(d)
    for nowait in (False, True):
        with pytest.raises(exc):
            d.begin_agent_job(bad, nowait=nowait)
    with pytest.raises(exc):
        with d.agent(bad):
            pass
    assert snapshot(d) == before
    d.end_agent_job()


@pytest.mark.parametrize("kw, exc", [
    ({"api": 5}, TypeError), ({"timeout": -1}, ValueError), ({"timeout": "1"}, TypeError),
    ({"nowait": 1}, TypeError), ({"nowait": None}, TypeError),
])
def test_bad_agent_arguments_change_nothing(M, d, kw, exc):
    before = snapshot(d)
    with pytest.raises(exc):
        d.begin_agent_job(M.AgentJob.QUERY, **kw)
    assert snapshot(d) == before


def test_agent_end_never_saves_status(M, tmp_path):
    drv = M.Driver(state_dir=str(tmp_path))
    d = drv.add_domain("vm1")
    saves = drv.store
    d.begin_agent_job(M.AgentJob.MODIFY, api="ga")
    d.end_agent_job()
    assert list(tmp_path.iterdir()) == []         # nothing written for agent jobs
    assert saves is not None
