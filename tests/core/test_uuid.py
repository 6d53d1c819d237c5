"""Domain uuids (api.md Revision 0.2): Driver.add_domain(name, uuid=None),
Domain.uuid, and the NoDomain text that names the uuid.  Both backends."""

from __future__ import annotations

import uuid as uuidlib

import pytest

import pymigjob
import pymigjob.pure as pure
from _mjhelpers import DEADLINE, started, wait_queued

U = "0ac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d4"


@pytest.fixture(params=["c", "pure"])
def M(request):
    if request.param == "pure":
        return pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


def test_uuid_property(M):
    drv = M.Driver()
    assert drv.add_domain("a").uuid is None
    assert drv.add_domain("b", uuid=U).uuid == U
    assert drv.add_domain("c", uuid=U.upper()).uuid == U          # printed lower case
    assert drv.add_domain("d", uuid=uuidlib.UUID(U)).uuid == U


@pytest.mark.parametrize("bad, exc", [
    ("", ValueError), (U[:-1], ValueError), (U + "0", ValueError), (U.replace("-", ""), ValueError),
    (" " + U[1:], ValueError), (U.replace("-", "+"), ValueError), ("g" + U[1:], ValueError),
    (U[:8] + "-" + U[9:13] + U[14:] + "-", ValueError), ("é" * 36, ValueError),
    (5, TypeError), (b"x" * 36, TypeError), ([U], TypeError), (True, TypeError),
])
def test_bad_uuid_adds_nothing(M, bad, exc):
    drv = M.Driver()
    with pytest.raises(exc):
        drv.add_domain("vm1", uuid=bad)
    assert drv.domains() == []
    assert drv.add_domain("vm1").uuid is None


def test_waiter_failed_by_removal_names_the_uuid(M):
    drv = M.Driver(job_wait_timeout=DEADLINE)
    dom = drv.add_domain("vm1", uuid=U)
    dom.begin_job(M.Job.MODIFY, api="holder")
    waiter = started(dom.begin_job, M.Job.QUERY)
    agent_holder = dom.begin_agent_job(M.AgentJob.MODIFY)
    agent_waiter = started(dom.begin_agent_job, M.AgentJob.QUERY)
    wait_queued(dom, 4)
    assert drv.remove_domain("vm1") == 4    # the jobs and the waiters, until they fail
    text = f"no domain with matching uuid '{U}' (vm1)"
    for w in (waiter, agent_waiter):
        e = w.join_exc()
        assert isinstance(e, M.NoDomain) and e.message == text
    with pytest.raises(M.NoDomain) as e:
        dom.begin_job(M.Job.QUERY, nowait=True)
    assert e.value.message == text
    assert agent_holder is True
    dom.end_agent_job()
    assert dom.end_job() == 0
    with pytest.raises(M.NoDomain) as e:       # dead: the same text
        dom.active_job
    assert e.value.message == text
    with pytest.raises(M.NoDomain) as e:       # the list knows names only
        drv.lookup("vm1")
    assert e.value.message == "no domain with matching name 'vm1'"


def test_without_uuid_the_name_text(M):
    drv = M.Driver(job_wait_timeout=DEADLINE)
    dom = drv.add_domain("vm1")
    dom.begin_job(M.Job.MODIFY)
    waiter = started(dom.begin_job, M.Job.QUERY)
    wait_queued(dom, 2)
    drv.remove_domain("vm1")
    assert waiter.join_exc().message == "no domain with matching name 'vm1'"
    dom.end_job()
