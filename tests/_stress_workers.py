"""The stress test's threads (tests/concurrency/test_stress.py): a Worker
doing random mixes of every operation, recording them in the shadows and
the checker of tests/_stress_shadow.py around its calls; an AioWorker doing
the same from asyncio; and the finish of the migrations still parked after
the stop."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import traceback

import pymigjob as mj
from _stress_shadow import (
    A,
    AG,
    Checker,
    DEFAULT_WAIT,
    DESTROY_BIT,
    EPS,
    J,
    Migration,
    P,
    PROTOCOLS,
    SYNC_JOBS,
    TIMEOUTS,
    expected_mask,
)


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
        kind = self.rng.choice([A.SAVE, A.DUMP, A.SNAPSHOT, A.START, A.BACKUP,
                                A.MIGRATION_OUT, A.MIGRATION_IN])
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
        # a seed phase below the current one (the resume range is entered from anywhere)
        back = self.rng.randrange(0, min(before, P.POSTCOPY_FAILED))
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
