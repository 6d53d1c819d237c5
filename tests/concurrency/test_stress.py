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

import asyncio
import os
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

import pytest

import pymigjob as mj

SANITIZER = os.environ.get("MJ_SANITIZER", "")
THREADS = int(os.environ.get("MJ_STRESS_THREADS", "128"))
SECONDS = float(os.environ.get("MJ_STRESS_SECONDS", "3.0"))
TOLERANCE = float(os.environ.get("MJ_STRESS_TOLERANCE", "5.0" if SANITIZER else "2.0"))
HANG = 30.0
DEFAULT_WAIT = 0.3  # each driver's job_wait_timeout
EPS = 0.002         # a timeout may not fire earlier than this before its deadline

pytestmark = [pytest.mark.concurrency, pytest.mark.timeout(SECONDS + 3 * HANG + 60)]

J = mj.Job
A = mj.AsyncJob
P = mj.Phase
AG = mj.AgentJob
SYNC_JOBS = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP]
DESTROY_BIT = mj.job_mask(J.DESTROY)
MIGRATION_OUT_MASK = mj.job_mask(J.QUERY, J.DESTROY, J.ABORT, J.SUSPEND, J.MIGRATION_OP,
                                 J.MODIFY_MIGRATION_SAFE)
MIGRATION_IN_MASK = mj.job_mask(J.DESTROY, J.MODIFY_MIGRATION_SAFE)
#: the protocol each migration walks: (kind, first phase, later phases, last)
PROTOCOLS = [
    (A.MIGRATION_OUT, P.BEGIN3, [P.PERFORM3, P.PERFORM3_DONE], P.CONFIRM3),
    (A.MIGRATION_OUT, P.PERFORM2, [], P.PERFORM2),
    (A.MIGRATION_IN, P.PREPARE, [], P.FINISH3),
    (A.MIGRATION_IN, P.PREPARE, [P.FINISH2], P.FINISH2),
]
TIMEOUTS = [0.0, 0.001, 0.01, 0.05, 0.1, 0.2, None]


@dataclass
class Migration:
    """A parked migration waiting for its next API on any thread."""

    kind: A
    later: list
    last: P
    epoch: int


@dataclass
class Shadow:
    name: str
    max_queued: int = 0
    strict: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    sync_holder: tuple | None = None   # (thread ident, job)
    agent_holder: tuple | None = None  # (thread ident, agent job)
    epoch: int = 0                      # odd while an async job is known active
    async_kind: int = 0
    mask: int = 0
    phases: set = field(default_factory=set)   # phases set (or attempted) this epoch
    parked: list = field(default_factory=list)


class Checker:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.violations: list[str] = []
        self.counts: dict[str, int] = {}
        self.max_late = 0.0
        self.max_late_what = ""
        self.cancelling = False
        self.cancel_time: float | None = None

    def fail(self, msg: str) -> None:
        with self.lock:
            if len(self.violations) < 50:
                self.violations.append(f"[{threading.current_thread().name}] {msg}")

    def count(self, what: str) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    # ---- the begin's deadline ------------------------------------------------

    def timed(self, sh: Shadow, what: str, limit_s, call, *args, **kw):
        """Run a begin; check it returns by its deadline + TOLERANCE and that
        a timeout is not early.  Returns True when granted, False when it
        failed in an allowed way; re-raises anything else."""
        limit = DEFAULT_WAIT if limit_s is None else limit_s
        t0 = time.monotonic()
        cancelled_before = self.cancel_time is not None and self.cancel_time < t0
        try:
            call(*args, **kw)
        except mj.JobTimeout:
            took = time.monotonic() - t0
            if took < limit - EPS:
                self.fail(f"{what}: timed out after {took:.4f}s < timeout {limit}")
            self._late(what, took - limit)
            if cancelled_before:
                self.fail(f"{what}: begun after cancel_waiters but timed out")
            self.count("timeout")
            return False
        except mj.QueueFull:
            took = time.monotonic() - t0
            if not sh.max_queued:
                self.fail(f"{what}: QueueFull on a domain without max_queued")
            self._late(what, took)
            self.count("queue full")
            return False
        except mj.OperationInvalid as e:
            # libvirt 11: a second migration is refused at once, without a wait
            if not e.message.startswith("another migration job is already running"):
                raise
            self._late(what, time.monotonic() - t0)
            self.count("another migration")
            return False
        except mj.OperationAborted as e:
            if not self.cancelling or not e.message.startswith("job wait cancelled"):
                raise
            self._late(what, time.monotonic() - t0 - limit)
            self.count("cancelled")
            return False
        took = time.monotonic() - t0
        if cancelled_before:
            self.fail(f"{what}: granted although begun after cancel_waiters")
        self._late(what, took - limit)
        self.count("granted")
        return True

    def _late(self, what: str, late: float) -> None:
        with self.lock:
            if late > self.max_late:
                self.max_late, self.max_late_what = late, what
        if late > TOLERANCE:
            self.fail(f"{what}: returned {late:.3f}s after its deadline (tolerance {TOLERANCE}s)")

    # ---- the shadow ---------------------------------------------------------

    def sync_acquired(self, sh: Shadow, dom, job: int, nested: bool = False) -> None:
        me = threading.get_ident()
        with sh.lock:
            if sh.sync_holder is not None:
                self.fail(f"{sh.name}: {J(job)!r} granted while {sh.sync_holder} holds a job")
            sh.sync_holder = (me, job)
            if nested:
                if not sh.epoch % 2:
                    self.fail(f"{sh.name}: nested job without a known async job")
            elif sh.epoch % 2 and not sh.mask & mj.job_mask(job):
                self.fail(f"{sh.name}: {J(job)!r} granted although mask {sh.mask:#x} "
                          f"of {A(sh.async_kind)!r} forbids it")
        active = dom.active_job
        want = J.ASYNC_NESTED if nested else job
        if active != want:
            self.fail(f"{sh.name}: holding {J(want)!r} but active_job is {active!r}")
        if dom.owner_thread != me:
            self.fail(f"{sh.name}: holding {J(want)!r} but owner_thread is another thread")

    def agent_acquired(self, sh: Shadow, dom, kind: int) -> None:
        me = threading.get_ident()
        with sh.lock:
            if sh.agent_holder is not None:
                self.fail(f"{sh.name}: {AG(kind)!r} granted while {sh.agent_holder} "
                          f"holds an agent job")
            sh.agent_holder = (me, kind)
        if dom.agent_job != kind:
            self.fail(f"{sh.name}: holding {AG(kind)!r} but agent_job is {dom.agent_job!r}")
        if dom.agent_owner_thread != me:
            self.fail(f"{sh.name}: holding {AG(kind)!r} but agent_owner_thread is another")

    def agent_releasing(self, sh: Shadow) -> None:
        with sh.lock:
            if sh.agent_holder is None or sh.agent_holder[0] != threading.get_ident():
                self.fail(f"{sh.name}: releasing an agent job the shadow says is "
                          f"{sh.agent_holder}")
            sh.agent_holder = None

    def sync_releasing(self, sh: Shadow) -> None:
        with sh.lock:
            if sh.sync_holder is None or sh.sync_holder[0] != threading.get_ident():
                self.fail(f"{sh.name}: releasing a job the shadow says is {sh.sync_holder}")
            sh.sync_holder = None

    def async_acquired(self, sh: Shadow, dom, kind: int, mask: int, first_phase=None) -> None:
        with sh.lock:
            if sh.epoch % 2:
                self.fail(f"{sh.name}: {A(kind)!r} granted while {A(sh.async_kind)!r} is active")
            sh.epoch += 1 if sh.epoch % 2 == 0 else 2
            sh.async_kind = kind
            sh.mask = mask
            sh.phases = {0} if first_phase is None else {0, int(first_phase)}
            epoch = sh.epoch
        got = dom.mask
        if got != mask:
            self.fail(f"{sh.name}: {A(kind)!r} started with mask {got:#x}, expected {mask:#x}")
        if dom.async_job != kind:
            self.fail(f"{sh.name}: granted {A(kind)!r} but async_job is {dom.async_job!r}")
        return epoch

    def async_ending(self, sh: Shadow) -> None:
        with sh.lock:
            if not sh.epoch % 2:
                self.fail(f"{sh.name}: ending an async job the shadow does not know")
            sh.epoch += 1

    def observe(self, sh: Shadow, dom, seen: dict) -> None:
        """An observer's view of the phase: within one async job (same odd
        epoch before and after the read) it only moves forward, and only to
        phases that were set."""
        with sh.lock:
            e1 = sh.epoch
        phase = dom.phase
        with sh.lock:
            e2 = sh.epoch
            allowed = set(sh.phases)
        if e1 != e2 or not e1 % 2:
            return
        if phase not in allowed:
            self.fail(f"{sh.name}: observed phase {P(phase)!r}, never set (set: {allowed})")
        key = (sh.name, e1)
        if phase < seen.get(key, 0):
            self.fail(f"{sh.name}: phase went backwards {P(seen[key])!r} -> {P(phase)!r}")
        seen[key] = phase


def expected_mask(kind: int, mask: int | None, migration: bool) -> int:
    if not migration:
        return mj.DEFAULT_JOB_MASK
    if mask is not None:
        return mask | DESTROY_BIT
    return MIGRATION_IN_MASK if kind == A.MIGRATION_IN else MIGRATION_OUT_MASK


class Worker(threading.Thread):
    def __init__(self, idx: int, doms: list, shadows: list, chk: Checker,
                 stop: threading.Event) -> None:
        super().__init__(name=f"stress-{idx}", daemon=True)
        self.rng = random.Random(idx * 7919 + 1)
        self.doms, self.shadows, self.chk, self.stop = doms, shadows, chk, stop
        self.seen: dict = {}
        self.done = False
        self.ops = [
            (self.op_sync, 30), (self.op_guard, 10), (self.op_async, 8),
            (self.op_migration_start, 6), (self.op_migration_next, 12),
            (self.op_abort, 3), (self.op_refs, 6), (self.op_reads, 10),
            (self.op_observe, 8), (self.op_is_active, 4),
            (self.op_agent, 8), (self.op_agent_guard, 4), (self.op_nowait, 4),
        ]
        self.weights = [w for _, w in self.ops]

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                i = self.rng.randrange(len(self.doms))
                op = self.rng.choices(self.ops, self.weights)[0][0]
                op(self.doms[i], self.shadows[i])
        except BaseException:  # noqa: BLE001 - every surprise is a violation
            self.chk.fail("unexpected exception:\n" + traceback.format_exc())
        finally:
            self.done = True

    def pause(self) -> None:
        r = self.rng.random()
        if r < 0.5:
            return
        time.sleep(0 if r < 0.8 else self.rng.uniform(0, 0.003))

    def api(self) -> str:
        return f"{self.name}-api"

    # ---- sync jobs -----------------------------------------------------------

    def hold_sync(self, dom, sh, job) -> None:
        self.chk.sync_acquired(sh, dom, job)
        if dom.owner_api != self.api():
            self.chk.fail(f"{sh.name}: owner_api {dom.owner_api!r} != {self.api()!r}")
        self.pause()
        self.chk.sync_releasing(sh)

    def op_sync(self, dom, sh) -> None:
        job = self.rng.choice(SYNC_JOBS)
        timeout = self.rng.choice(TIMEOUTS)
        if self.chk.timed(sh, f"begin_job({job.name})", timeout, dom.begin_job, job,
                          api=self.api(), timeout=timeout):
            self.hold_sync(dom, sh, job)
            if dom.end_job() < 1:
                self.chk.fail(f"{sh.name}: end_job left refs < 1")

    def op_guard(self, dom, sh) -> None:
        job = self.rng.choice(SYNC_JOBS)
        timeout = self.rng.choice(TIMEOUTS)
        guard = dom.job(job, api=self.api(), timeout=timeout)
        if self.chk.timed(sh, f"job({job.name})", timeout, guard.__enter__):
            try:
                self.hold_sync(dom, sh, job)
            finally:
                guard.__exit__(None, None, None)

    def op_nowait(self, dom, sh) -> None:
        """A nowait begin, sync or agent: never waits; held or not."""
        agent = self.rng.random() < 0.4
        t0 = time.monotonic()
        try:
            if agent:
                kind = self.rng.choice([AG.QUERY, AG.MODIFY])
                held = dom.begin_agent_job(kind, api=self.api(), nowait=True)
            else:
                kind = self.rng.choice(SYNC_JOBS)
                held = dom.begin_job(kind, api=self.api(), nowait=True)
        except mj.QueueFull:
            if not sh.max_queued:
                self.chk.fail(f"{sh.name}: QueueFull on a domain without max_queued")
            return
        except mj.OperationAborted as e:
            if not self.chk.cancelling or not e.message.startswith("job wait cancelled"):
                raise
            return
        self.chk._late("nowait begin", time.monotonic() - t0)
        self.chk.count("nowait " + ("held" if held else "busy"))
        if not held:
            return
        if agent:
            self.chk.agent_acquired(sh, dom, kind)
            self.pause()
            self.chk.agent_releasing(sh)
            dom.end_agent_job()
        else:
            self.hold_sync(dom, sh, kind)
            dom.end_job()

    # ---- agent jobs ------------------------------------------------------------

    def hold_agent(self, dom, sh, kind) -> None:
        self.chk.agent_acquired(sh, dom, kind)
        if dom.agent_owner_api != self.api():
            self.chk.fail(f"{sh.name}: agent_owner_api {dom.agent_owner_api!r}")
        self.pause()
        self.chk.agent_releasing(sh)

    def op_agent(self, dom, sh) -> None:
        kind = self.rng.choice([AG.QUERY, AG.MODIFY])
        timeout = self.rng.choice(TIMEOUTS)
        if self.chk.timed(sh, f"begin_agent_job({kind.name})", timeout, dom.begin_agent_job,
                          kind, api=self.api(), timeout=timeout):
            self.hold_agent(dom, sh, kind)
            if dom.end_agent_job() < 1:
                self.chk.fail(f"{sh.name}: end_agent_job left refs < 1")

    def op_agent_guard(self, dom, sh) -> None:
        kind = self.rng.choice([AG.QUERY, AG.MODIFY])
        timeout = self.rng.choice(TIMEOUTS)
        guard = dom.agent(kind, api=self.api(), timeout=timeout)
        if self.chk.timed(sh, f"agent({kind.name})", timeout, guard.__enter__):
            try:
                self.hold_agent(dom, sh, kind)
            finally:
                guard.__exit__(None, None, None)

    # ---- async jobs (held by this thread) ------------------------------------

    def nested(self, dom, sh, kind) -> bool:
        """One nested job of the running async job (maybe changing the mask
        while holding it, as migration code does).  False when aborted."""
        if not self.chk.timed(sh, "begin_nested_job", 0.2, dom.begin_nested_job, kind,
                              api=self.api(), timeout=0.2):
            return True
        try:
            self.chk.sync_acquired(sh, dom, J.ASYNC_NESTED, nested=True)
            if self.rng.random() < 0.3:
                m = mj.job_mask(*self.rng.sample(SYNC_JOBS, self.rng.randrange(0, 4)))
                with sh.lock:
                    sh.mask = m | DESTROY_BIT
                dom.set_async_job_mask(m)
                if dom.mask != m | DESTROY_BIT:
                    self.chk.fail(f"{sh.name}: set_async_job_mask({m:#x}) gave {dom.mask:#x}")
            self.pause()
        finally:
            self.chk.sync_releasing(sh)
            dom.end_nested_job()
        try:
            dom.check_abort()
        except mj.OperationAborted as e:
            if not e.message.endswith(": canceled by client"):
                self.chk.fail(f"{sh.name}: check_abort said {e.message!r}")
            return False
        return True

    def op_async(self, dom, sh) -> None:
        kind = self.rng.choice([A.SAVE, A.DUMP, A.MIGRATION_OUT, A.MIGRATION_IN])
        via_start = self.rng.random() < 0.5
        mask = self.rng.choice([None, 0, mj.job_mask(J.QUERY, J.SUSPEND)]) if via_start else None
        timeout = self.rng.choice(TIMEOUTS)
        if via_start:
            ok = self.chk.timed(sh, f"migration_job_start({kind.name})", timeout,
                                dom.migration_job_start, kind, mask=mask, api=self.api(),
                                timeout=timeout)
        else:
            ok = self.chk.timed(sh, f"begin_async_job({kind.name})", timeout,
                                dom.begin_async_job, kind, api=self.api(), timeout=timeout)
        if not ok:
            return
        self.chk.async_acquired(sh, dom, kind, expected_mask(kind, mask, via_start))
        for _ in range(self.rng.randrange(0, 4)):
            if not self.nested(dom, sh, kind):
                break
        if dom.async_owner_thread != threading.get_ident():
            self.chk.fail(f"{sh.name}: async_owner_thread is not the owner")
        self.chk.async_ending(sh)
        left = dom.end_async_job() if not via_start else dom.migration_job_finish()
        if left < 1:
            self.chk.fail(f"{sh.name}: ending the async job left refs {left}")

    # ---- migrations, parked between APIs ---------------------------------------

    def set_phase(self, dom, sh, mig_or_guard, phase) -> None:
        with sh.lock:
            sh.phases.add(int(phase))
        before = dom.phase
        if not mig_or_guard.set_phase(phase, api=self.api()):
            self.chk.fail(f"{sh.name}: forward phase {before} -> {phase!r} refused")
        if dom.phase != phase:
            self.chk.fail(f"{sh.name}: set_phase({phase!r}) but phase is {dom.phase}")

    def try_backwards(self, dom, sh, guard) -> None:
        before = dom.phase
        if before <= 0:
            return
        back = self.rng.randrange(0, before)
        if sh.strict:
            try:
                guard.set_phase(back)
                self.chk.fail(f"{sh.name}: strict backwards phase accepted")
            except mj.InternalError as e:
                if "going backwards" not in e.message:
                    self.chk.fail(f"{sh.name}: strict backwards phase said {e.message!r}")
        elif guard.set_phase(back):
            self.chk.fail(f"{sh.name}: backwards phase {before} -> {back} accepted")
        if dom.phase != before:
            self.chk.fail(f"{sh.name}: refused backwards phase moved it {before} -> {dom.phase}")
        self.chk.count("backwards refused")

    def op_migration_start(self, dom, sh) -> None:
        kind, first, later, last = self.rng.choice(PROTOCOLS)
        timeout = self.rng.choice(TIMEOUTS)
        guard = dom.migration(kind, first, api=self.api(), timeout=timeout)
        if not self.chk.timed(sh, f"migration({kind.name})", timeout, guard.__enter__):
            return
        epoch = self.chk.async_acquired(sh, dom, kind, expected_mask(kind, None, True), first)
        if dom.phase != first:
            self.chk.fail(f"{sh.name}: migration() set phase {dom.phase}, expected {first!r}")
        if dom.job_info.type != mj.JobType.UNBOUNDED:
            self.chk.fail(f"{sh.name}: job_info.type after migration_job_start")
        if self.rng.random() < 0.3:
            self.nested(dom, sh, kind)
        # Continue first, then park it: the next API runs on whichever thread
        # picks it up, and that thread must not see this one still driving it
        guard.__exit__(None, None, None)
        with sh.lock:
            sh.parked.append(Migration(kind, list(later), last, epoch))

    def op_migration_next(self, dom, sh) -> None:
        with sh.lock:
            if not sh.parked:
                return
            mig = sh.parked.pop(self.rng.randrange(len(sh.parked)))
        self.drive(dom, sh, mig)

    def drive(self, dom, sh, mig: Migration) -> None:
        """One later API of a parked migration (the last one finishes it)."""
        final = not mig.later
        phase = mig.last if final else mig.later.pop(0)
        if not dom.migration_job_is_active(mig.kind):
            self.chk.fail(f"{sh.name}: parked {mig.kind!r} is not active")
        with sh.lock:
            sh.phases.add(int(phase))
        with dom.migration_phase(mig.kind, phase, api=self.api()) as guard:
            if dom.async_owner_thread != threading.get_ident():
                self.chk.fail(f"{sh.name}: start_phase did not make this thread the owner")
            if dom.phase != phase:
                self.chk.fail(f"{sh.name}: start_phase({phase!r}) left phase {dom.phase}")
            aborted = not self.nested(dom, sh, mig.kind) if self.rng.random() < 0.5 else False
            if not aborted and self.rng.random() < 0.2:
                self.try_backwards(dom, sh, guard)
            if not aborted and phase == P.PERFORM3 and mig.later:
                self.set_phase(dom, sh, guard, mig.later.pop(0))   # PERFORM3_DONE
            if aborted or final:
                self.chk.async_ending(sh)
                guard.finish()
                self.chk.count("migrations finished")
                return
        with sh.lock:
            sh.parked.append(mig)

    # ---- the rest --------------------------------------------------------------

    def op_abort(self, dom, sh) -> None:
        timeout = self.rng.choice([0.0, 0.01, 0.05])
        try:
            self.chk.timed(sh, "abort_job", timeout, dom.abort_job, api=self.api(),
                           timeout=timeout)
        except mj.OperationInvalid as e:
            if e.message not in ("no job is active on the domain",
                                 "cannot abort incoming migration; use virDomainDestroy instead"):
                self.chk.fail(f"{sh.name}: abort_job said {e.message!r}")

    def op_refs(self, dom, sh) -> None:
        r = dom.ref()
        if r < 2:
            self.chk.fail(f"{sh.name}: ref() returned {r}")
        self.pause()
        r = dom.unref()
        if r < 1:
            self.chk.fail(f"{sh.name}: unref() of our own ref returned {r}")

    def op_reads(self, dom, sh) -> None:
        if dom.refs < 1:
            self.chk.fail(f"{sh.name}: refs {dom.refs} < 1 while listed")
        if dom.jobs_queued < 0:
            self.chk.fail(f"{sh.name}: jobs_queued {dom.jobs_queued} < 0")
        assert isinstance(dom.active_job, mj.Job)
        assert isinstance(dom.async_job, mj.AsyncJob)
        assert 0 <= dom.phase < len(mj.Phase)
        assert 0 <= dom.mask < 2**64
        for api in (dom.owner_api, dom.async_owner_api):
            assert api is None or api.startswith("stress-"), api
        info = dom.job_info
        assert isinstance(info.type, mj.JobType) and info.elapsed >= 0.0
        assert isinstance(dom.abort_requested, bool)
        assert isinstance(dom.owner_thread, int) and isinstance(dom.async_owner_thread, int)
        assert dom.alive

    def op_observe(self, dom, sh) -> None:
        self.chk.observe(sh, dom, self.seen)

    def op_is_active(self, dom, sh) -> None:
        kind = self.rng.choice(list(A))
        active = dom.migration_job_is_active(kind)
        assert isinstance(active, bool)
        if kind == A.NONE:
            return
        try:
            dom.check_migration_job(kind)
        except mj.OperationInvalid as e:
            want = ("is not processing incoming migration" if kind == A.MIGRATION_IN
                    else "is not being migrated")
            if not e.message.endswith(want):
                self.chk.fail(f"{sh.name}: check_migration_job said {e.message!r}")


class AioWorker(threading.Thread):
    """An event loop whose coroutines wait for sync jobs next to the threads."""

    def __init__(self, idx, doms, shadows, chk, stop) -> None:
        super().__init__(name=f"stress-aio-{idx}", daemon=True)
        self.rng = random.Random(idx)
        self.doms, self.shadows, self.chk, self.stop = doms, shadows, chk, stop
        self.done = False

    def run(self) -> None:
        try:
            asyncio.run(self.main())
        except BaseException:  # noqa: BLE001
            self.chk.fail("unexpected exception in asyncio:\n" + traceback.format_exc())
        finally:
            self.done = True

    async def one(self, n: int) -> None:
        rng = random.Random(n)
        while not self.stop.is_set():
            i = rng.randrange(len(self.doms))
            dom, sh = self.doms[i], self.shadows[i]
            job = rng.choice([J.QUERY, J.MODIFY, J.DESTROY])
            timeout = rng.choice(TIMEOUTS)
            limit = DEFAULT_WAIT if timeout is None else timeout
            t0 = time.monotonic()
            try:
                await dom.begin_job_async(job, api=f"{self.name}-api", timeout=timeout)
            except (mj.JobTimeout, mj.QueueFull, mj.OperationAborted) as e:
                took = time.monotonic() - t0
                if isinstance(e, mj.JobTimeout) and took < limit - EPS:
                    self.chk.fail(f"begin_job_async timed out early: {took:.4f} < {limit}")
                if isinstance(e, mj.OperationAborted) and not self.chk.cancelling:
                    raise
                self.chk._late("begin_job_async", took - limit)
                continue
            self.chk._late("begin_job_async", time.monotonic() - t0 - limit)
            self.chk.count("granted (asyncio)")
            # no await while holding: the shadow's owner is this loop's thread
            self.chk.sync_acquired(sh, dom, job)
            self.chk.sync_releasing(sh)
            dom.end_job()
            await asyncio.sleep(0)

    async def main(self) -> None:
        await asyncio.gather(*(self.one(self.rng.randrange(10**9)) for _ in range(8)))


def finish_parked(doms, shadows, chk) -> None:
    """After the stop: finish the migrations still parked (later phases need
    no wait, so cancel_waiters does not stand in their way)."""
    for dom, sh in zip(doms, shadows):
        while sh.parked:
            mig = sh.parked.pop()
            phase = mig.last
            with dom.migration_phase(mig.kind, phase) as guard:
                chk.async_ending(sh)
                guard.finish()


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
