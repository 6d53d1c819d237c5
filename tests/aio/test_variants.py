"""The asyncio variants of the other blocking begins -- nested jobs, the
migration start and AbortJob: the same queue, results, errors and
persistence as the blocking calls, and cancelled they hold nothing."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import pymigjob as mj
from pymigjob.store import DirectoryStore

J = mj.Job
A = mj.AsyncJob

pytestmark = pytest.mark.timeout(60)


def state(dom) -> tuple:
    return (dom.active_job, dom.async_job, dom.jobs_queued, dom.refs)


def end_later(dom, end, delay=0.1):
    t = threading.Timer(delay, end)
    t.start()
    return t


def test_nested_job_async_at_once_and_after_a_wait(drv):
    dom = drv.add_domain("vm1")
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")

    async def main():
        await dom.begin_nested_job_async(A.MIGRATION_OUT, api="monitor")
        assert dom.active_job == J.ASYNC_NESTED and dom.owner_api == "monitor"
        dom.end_nested_job()
        dom.begin_job(J.QUERY, api="query")            # holds the sync slot
        t = end_later(dom, dom.end_job)
        t0 = time.monotonic()
        await dom.begin_nested_job_async(A.MIGRATION_OUT)
        assert time.monotonic() - t0 >= 0.05
        assert dom.active_job == J.ASYNC_NESTED
        dom.end_nested_job()
        t.join()

    asyncio.run(main())
    assert state(dom) == (J.NONE, A.MIGRATION_OUT, 1, 2)
    dom.migration_job_finish()


def test_nested_job_async_errors_as_the_blocking_call(drv):
    dom = drv.add_domain("vm1")

    async def main():
        with pytest.raises(mj.InternalError) as ei:
            await dom.begin_nested_job_async(A.MIGRATION_OUT)
        assert ei.value.message == "unexpected async job 1 type expected 0"
        with pytest.raises(TypeError):
            await dom.begin_nested_job_async(J.QUERY)

    asyncio.run(main())
    assert state(dom) == (J.NONE, A.NONE, 0, 1)


def test_migration_job_start_async_sets_the_mask_and_is_persisted(tmp_path):
    drv = mj.Driver(job_wait_timeout=5.0, state_dir=str(tmp_path))
    dom = drv.add_domain("vm1")

    async def main():
        dom.begin_job(J.MODIFY, api="modify")
        t = end_later(dom, dom.end_job)
        await dom.migration_job_start_async(A.MIGRATION_OUT, api="begin3")
        t.join()

    asyncio.run(main())
    out_mask = mj.DEFAULT_JOB_MASK | mj.job_mask(J.SUSPEND, J.MIGRATION_OP, J.MODIFY_MIGRATION_SAFE)
    assert dom.async_job == A.MIGRATION_OUT and dom.mask == out_mask
    assert dom.job_info.type == mj.JobType.UNBOUNDED
    assert dom.job_status().async_job == A.MIGRATION_OUT
    assert DirectoryStore(str(tmp_path)).load_all()["vm1"].async_job == A.MIGRATION_OUT
    dom.migration_job_finish()


def test_migration_job_start_async_arguments(drv):
    dom = drv.add_domain("vm1")

    async def main():
        with pytest.raises(TypeError):
            await dom.migration_job_start_async(A.MIGRATION_IN, mask="x")
        with pytest.raises(ValueError):
            await dom.migration_job_start_async(A.MIGRATION_IN, mask=-1)
        with pytest.raises(mj.InternalError):
            await dom.migration_job_start_async(A.NONE)
        await dom.migration_job_start_async(A.MIGRATION_IN, mask=0)
        assert dom.mask == mj.job_mask(J.DESTROY)

    asyncio.run(main())
    dom.migration_job_finish()
    assert state(dom) == (J.NONE, A.NONE, 0, 1)


def test_abort_job_async_applies_the_abort_and_holds_nothing(drv):
    dom = drv.add_domain("vm1")
    dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.begin_nested_job(A.MIGRATION_OUT, api="monitor")    # the abort waits for it

    async def main():
        t = end_later(dom, dom.end_nested_job)
        await dom.abort_job_async(api="abort")
        t.join()
        assert dom.abort_requested and dom.active_job == J.NONE
        with pytest.raises(mj.OperationAborted):
            dom.check_abort()

    asyncio.run(main())
    assert state(dom) == (J.NONE, A.MIGRATION_OUT, 1, 2)
    dom.migration_job_finish()

    async def no_job():
        with pytest.raises(mj.OperationInvalid) as ei:
            await dom.abort_job_async()
        assert ei.value.message == "no job is active on the domain"

    asyncio.run(no_job())
    assert state(dom) == (J.NONE, A.NONE, 0, 1)


@pytest.mark.parametrize("kind", ["nested", "migration_start", "abort"])
def test_cancelled_variant_holds_nothing(drv, kind):
    dom = drv.add_domain("vm1")
    if kind != "migration_start":
        dom.migration_job_start(A.MIGRATION_OUT, api="begin3")
    dom.begin_job(J.QUERY, api="holder") if kind == "migration_start" else \
        dom.begin_nested_job(A.MIGRATION_OUT, api="holder")
    before = state(dom)
    begin = {
        "nested": lambda: dom.begin_nested_job_async(A.MIGRATION_OUT),
        "migration_start": lambda: dom.migration_job_start_async(A.MIGRATION_IN),
        "abort": lambda: dom.abort_job_async(),
    }[kind]

    async def main():
        task = asyncio.ensure_future(begin())
        while dom.jobs_queued == before[2]:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert state(dom) == before
    dom.end_job()
    assert not dom.abort_requested
    if kind != "migration_start":
        dom.migration_job_finish()
    assert state(dom) == (J.NONE, A.NONE, 0, 1)
