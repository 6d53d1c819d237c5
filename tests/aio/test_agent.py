"""begin_agent_job_async in both backends: uncontended without suspending,
never waiting for the sync slot, FIFO with the threads' agent waiters, a
cancelled waiter holding nothing."""

from __future__ import annotations

import asyncio

import pytest

import pymigjob
import pymigjob.pure as pure


@pytest.fixture(params=["c", "pure"])
def M(request):
    if request.param == "pure":
        return pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


def test_agent_job_async(M):
    dom = M.Driver(job_wait_timeout=5.0).add_domain("vm1")
    AG = M.AgentJob

    async def main():
        dom.begin_job(M.Job.MODIFY, api="mon")          # never waited for
        assert await dom.begin_agent_job_async(AG.QUERY, api="ga") is True
        assert (dom.agent_job, dom.agent_owner_api) == (AG.QUERY, "ga")
        waiting = asyncio.ensure_future(dom.begin_agent_job_async(AG.MODIFY, api="gm"))
        await asyncio.sleep(0.02)
        assert not waiting.done() and dom.jobs_queued == 3
        dom.end_agent_job()
        assert await asyncio.wait_for(waiting, 5) is True
        assert dom.agent_owner_api == "gm"
        cancelled = asyncio.ensure_future(dom.begin_agent_job_async(AG.QUERY))
        await asyncio.sleep(0.02)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert dom.jobs_queued == 2
        with pytest.raises(M.JobTimeout) as e:
            await dom.begin_agent_job_async(AG.QUERY, timeout=0.05)
        assert e.value.message == "cannot acquire state change lock (held by agent=gm)"
        with pytest.raises(TypeError):
            await dom.begin_agent_job_async(M.Job.QUERY)
        dom.end_agent_job()
        dom.end_job()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert (dom.refs, dom.jobs_queued) == (1, 0)
