"""The hand-off when the async mask widens (DECISIONS.md: libvirt 11 leaves
such a waiter to time out): a queued waiter the new mask lets through gets
the job at once, in FIFO order, and one it still forbids keeps waiting.
Both backends."""

from __future__ import annotations

import time

import pytest

import pymigjob
import pymigjob.pure as pure
from _mjhelpers import DEADLINE, started, wait_queued


@pytest.fixture(params=["c", "pure"])
def M(request):
    if request.param == "pure":
        return pure
    if "c_core" not in pymigjob.backend_features:
        pytest.skip("the C core is not the chosen backend")
    return pymigjob


def test_wider_mask_hands_the_job_over_at_once(M):
    J = M.Job
    dom = M.Driver(job_wait_timeout=DEADLINE).add_domain("vm1")
    # a snapshot allows nothing but DESTROY, then its memory phase 0x37
    dom.migration_job_start(M.AsyncJob.SNAPSHOT, mask=0x02, api="snapshot")
    order = []

    def begin(job, tag):
        dom.begin_job(job, api=tag, timeout=DEADLINE)
        order.append(tag)
        time.sleep(0.01)
        dom.end_job()

    modify = started(begin, J.MODIFY, "modify")     # still forbidden by 0x37
    wait_queued(dom, 2)
    suspend = started(begin, J.SUSPEND, "suspend")
    wait_queued(dom, 3)
    query = started(begin, J.QUERY, "query")
    wait_queued(dom, 4)
    t0 = time.monotonic()
    dom.set_async_job_mask(M.job_mask(J.QUERY, J.SUSPEND, J.ABORT, J.MIGRATION_OP))
    suspend.join_ok()
    query.join_ok()
    assert time.monotonic() - t0 < DEADLINE / 2      # not left to time out
    assert order == ["suspend", "query"]             # first come, first served
    assert modify.is_alive()
    dom.set_async_job_mask(0x1F)                     # now MODIFY too
    modify.join_ok()
    assert order == ["suspend", "query", "modify"]
    assert dom.end_async_job() == 1
    assert dom.jobs_queued == 0


def test_narrower_mask_lets_nobody_in(M):
    J = M.Job
    dom = M.Driver(job_wait_timeout=DEADLINE).add_domain("vm1")
    dom.begin_async_job(M.AsyncJob.BACKUP)
    waiter = started(dom.begin_job, J.MODIFY, timeout=0.3)
    wait_queued(dom, 2)
    dom.set_async_job_mask(0)
    assert isinstance(waiter.join_exc(), M.JobTimeout)
    dom.end_async_job()
