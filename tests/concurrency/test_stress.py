"""Stress with invariants.

``THREADS`` threads (128 by default, 64-256 meaningful) do random mixes of
every operation -- sync jobs and their guard, async jobs, nested jobs, mask
changes, whole v2/v3 migrations whose later phases run on whichever thread
picks the parked job up, backwards phases, aborts and checkpoints, ref/unref,
every read-only property, the IsActive checks, asyncio waiters -- on four
domains (two plain, one with ``max_queued``, one with ``strict_phases``) for
``SECONDS`` seconds, then shut the drivers down with ``cancel_waiters``.

A checker keeps a *shadow* of each domain, updated by the threads around their
calls (set after a grant, cleared before a release, so the shadow never claims
more than the C core), and records a violation on:

* two sync (or nested) jobs held at once, or two agent jobs;
* an agent job whose grant the C state disagrees with (agent job, owner
  thread), or a nowait begin that waited;
* a sync job granted while the async job's mask forbids it;
* the C state disagreeing with a grant (active job, owner thread, the mask the
  async job starts with);
* a migration phase moving backwards, seen by the driving thread or by any
  observer, or a refused backwards phase that changed the phase;
* a refcount below 1 while the domain is listed, or not back to exactly 1
  (and ``jobs_queued`` to 0) once every thread is done;
* a begin that returns -- granted, timed out or failed -- later than its
  deadline plus ``TOLERANCE`` seconds (a timeout also must not come early),
  or a QueueFull that took longer than ``TOLERANCE``;
* a begin started after ``cancel_waiters`` that does not fail with
  ``OperationAborted``;
* any other exception, or a thread still running ``HANG`` seconds after the
  stop (pytest-timeout turns a hang of the whole test into a failure).

TOLERANCE (stated): 2.0 s on a plain build, 5.0 s under a sanitizer (set it
with MJ_STRESS_TOLERANCE); the worst seen on the 2-core machine is ~0.6 s,
under TSan ~0.7 s.  It is scheduling slack for 100+ runnable Python threads
sharing one GIL, not slack in the library's own deadline (a begin's deadline
is computed once, in C, on CLOCK_MONOTONIC).  MJ_STRESS_THREADS and
MJ_STRESS_SECONDS change the size of the run (default 128 threads, 3 s).
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

import pymigjob as mj
from _stress_shadow import (
    A,
    Checker,
    DEFAULT_WAIT,
    HANG,
    J,
    SECONDS,
    Shadow,
    THREADS,
)
from _stress_workers import AioWorker, Worker, finish_parked

pytestmark = [pytest.mark.concurrency, pytest.mark.timeout(SECONDS + 3 * HANG + 60)]


@pytest.fixture
def quiet_pymigjob_log():
    """Refused backwards phases log at ERROR; thousands of them are noise here."""
    import logging

    log = logging.getLogger("pymigjob")
    old = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(old)


def test_stress_with_invariants(quiet_pymigjob_log):
    chk = Checker()
    plain = mj.Driver(job_wait_timeout=DEFAULT_WAIT)
    queued = mj.Driver(job_wait_timeout=DEFAULT_WAIT, max_queued=6)
    strict = mj.Driver(job_wait_timeout=DEFAULT_WAIT, strict_phases=True)
    drivers = [plain, queued, strict]
    doms = [plain.add_domain("a"), plain.add_domain("b"), queued.add_domain("q"),
            strict.add_domain("s")]
    shadows = [Shadow("a"), Shadow("b"), Shadow("q", max_queued=6), Shadow("s", strict=True)]
    stop = threading.Event()
    n_aio = 2 if hasattr(mj.Domain, "begin_job_async") else 0
    workers = [Worker(i, doms, shadows, chk, stop) for i in range(THREADS - n_aio)]
    workers += [AioWorker(i, doms, shadows, chk, stop) for i in range(n_aio)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # more interleavings
    try:
        for w in workers:
            w.start()
        time.sleep(SECONDS * 0.85)
        # shutdown while everybody still runs: from now on no begin may succeed
        chk.cancelling = True      # OperationAborted is allowed from now on ...
        for drv in drivers:
            drv.cancel_waiters("stress over")
        chk.cancel_time = time.monotonic()   # ... and required for begins from now on
        time.sleep(SECONDS * 0.15)
        stop.set()
        deadline = time.monotonic() + HANG
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
    finally:
        sys.setswitchinterval(old_interval)
        stop.set()
    hung = [w.name for w in workers if w.is_alive()]
    if hung:
        import faulthandler
        faulthandler.dump_traceback(all_threads=True)
        pytest.fail(f"{len(hung)} threads still running {HANG}s after the stop: {hung[:5]}")
    finish_parked(doms, shadows, chk)
    print(f"\nstress: {THREADS} threads, {SECONDS}s: {chk.counts}; "
          f"latest return after a deadline {chk.max_late * 1000:.1f} ms ({chk.max_late_what})")
    assert not chk.violations, "\n".join(chk.violations)
    assert chk.counts.get("granted", 0) > 100, chk.counts
    assert chk.counts.get("timeout", 0) > 0, chk.counts
    for dom, sh in zip(doms, shadows):
        assert sh.sync_holder is None and sh.epoch % 2 == 0, sh
        assert dom.refs == 1, f"{dom.name}: refs {dom.refs} after the run"
        assert dom.jobs_queued == 0
        assert dom.active_job == J.NONE and dom.async_job == A.NONE
        assert dom.owner_thread == 0 and dom.async_owner_thread == 0
        assert dom.owner_api is None and dom.async_owner_api is None
        assert dom.abort_requested is False
        assert dom.job_info.type == mj.JobType.NONE
    for drv in drivers:
        for name in drv.domains():
            assert drv.remove_domain(name) == 0
