"""The migrations: the worker pool that runs every API call, and one v3
migration with change protection (Begin3, Prepare3, Perform3, Finish3,
Confirm3), each call a step on the pool."""

from __future__ import annotations

import collections
import random
import threading
import time
import traceback
from typing import Any, Callable, List, Optional, Tuple

import pymigjob as mj

from .plan import (
    IN,
    MONITOR,
    OUT,
    POLL,
    PROGRESS,
    RPC_LATENCY,
    WORK,
    DomainNotRunning,
    Fate,
    Job,
    Phase,
    _ms,
    _n,
    _sleep,
    fmt_mask,
    phase_label,
)
from .resume import PostcopyResume, StreamBroken

# ---- worker pool ---------------------------------------------------------------


class Pool:
    """One shared queue of API calls and N workers.  A call may name the
    worker it must avoid (the one that ran the previous call of the same
    migration); any other idle worker takes it."""

    def __init__(self, n: int, on_crash: Callable[[str], None]) -> None:
        self.n = n
        self.cv = threading.Condition()
        self.tasks: collections.deque = collections.deque()
        self.closed = False
        self.on_crash = on_crash
        self.threads = [
            threading.Thread(target=self._run, name=f"mig-{i}", daemon=True)
            for i in range(n)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def submit(self, fn: Callable[[], None], avoid: Optional[str] = None) -> None:
        with self.cv:
            self.tasks.append((fn, avoid))
            self.cv.notify_all()

    def close(self) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()

    def _take(self, me: str):
        with self.cv:
            while True:
                for k, (fn, avoid) in enumerate(self.tasks):
                    if avoid != me or self.n == 1:
                        del self.tasks[k]
                        return fn
                if self.closed and not self.tasks:
                    return None
                self.cv.wait(0.1)

    def _run(self) -> None:
        me = threading.current_thread().name
        while True:
            fn = self._take(me)
            if fn is None:
                return
            try:
                fn()
            except BaseException:  # a bug in the demo itself; keep the worker
                self.on_crash(traceback.format_exc())


# ---- one migration ---------------------------------------------------------------


class Migration(PostcopyResume):
    def __init__(self, demo: Any, index: int, name: str, fate: Fate) -> None:
        self.demo = demo
        self.index = index
        self.name = name
        self.fate = fate
        self.rng = random.Random(f"{demo.seed}/migration/{name}")
        self.src = demo.src.lookup(name)
        self.dst: Optional[mj.Domain] = None
        self.vm = demo.vmstate[name]
        self.calls: List[Tuple[str, str]] = []        # (api, thread)
        self.src_phases: List[str] = []
        self.dst_phases: List[str] = []
        self.cancel: Optional[Tuple[str, str]] = None  # (why, message)
        self.outcome = ""                              # completed|aborted|destroyed|crashed
        self.late_abort = False
        self.nested = 0
        self.nested_max_wait = 0.0
        self.start_at = 0.0

    # -- plumbing

    def log(self, side: str, phase: str, text: str, **data: Any) -> None:
        self.demo.log("mig", self.name, side, phase, text, **data)

    def check(self, ok: bool, what: str) -> bool:
        return self.demo.check(ok, f"{self.name}: {what}")

    def start(self) -> None:
        self._step(self.begin3)

    def _step(self, fn: Callable[[], Optional[Callable]]) -> None:
        me = threading.current_thread().name
        self.calls.append((fn.__name__, me))
        _sleep(self.rng, RPC_LATENCY)
        try:
            nxt = fn()
        except Exception as e:
            self.demo.problem(
                f"{self.name}: {fn.__name__} failed unexpectedly: {e!r}\n"
                + traceback.format_exc())
            self.outcome = "crashed"
            self.log("", fn.__name__, f"CRASHED: {e!r}")
            self.demo.migration_done(self)
            return
        if nxt is None:
            self.demo.migration_done(self)
        else:
            self.demo.pool.submit(lambda: self._step(nxt), avoid=me)

    def monitor(self, dom: mj.Domain, async_job: int, api: str,
                check_running: bool = False) -> float:
        """One pretend monitor command inside a nested job; returns the wait."""
        t0 = time.perf_counter()
        with dom.nested_job(async_job, api=api):
            waited = time.perf_counter() - t0
            self.nested += 1
            self.nested_max_wait = max(self.nested_max_wait, waited)
            if check_running and not self.vm.running:
                raise DomainNotRunning("domain is no longer running")
            _sleep(self.rng, MONITOR)
        return waited

    def in_phase(self, dom: mj.Domain, async_job: int, api: str) -> None:
        """Checks every phase makes while it runs."""
        self.check(dom.async_job == async_job, f"{api}: async job is {async_job.label}")
        self.check(dom.refs >= 2, f"{api}: refs >= 2 while an API works (list + phase), got {dom.refs}")
        self.check(dom.job_info.type == mj.JobType.UNBOUNDED,
                   f"{api}: job info type is UNBOUNDED, got {dom.job_info.type!r}")
        self.check(dom.async_owner_api == api,
                   f"{api}: async owner API is {api!r}, got {dom.async_owner_api!r}")

    def parked(self, dom: mj.Domain, side: str, async_job: int, api: str) -> None:
        """After continue: the job stays, nobody owns it, the API name stays."""
        ph = phase_label(dom.async_job, dom.phase)
        self.check(dom.async_job == async_job, f"after {api}: async job still {async_job.label}")
        self.check(dom.async_owner_thread == 0,
                   f"after {api}: async owner thread released, got {dom.async_owner_thread}")
        self.check(dom.async_owner_api == api,
                   f"after {api}: async owner API still {api!r}, got {dom.async_owner_api!r}")
        self.log(side, ph, f"continue: job parked, no owner thread, "
                           f"async owner API {dom.async_owner_api!r}, refs {dom.refs}")

    # -- the five API calls

    def begin3(self):
        d = self.src
        with d.migration(OUT, Phase.BEGIN3, api="begin3"):
            self.src_phases.append(phase_label(d.async_job, d.phase))
            self.in_phase(d, OUT, "begin3")
            self.check(d.mask == mj.job_mask(Job.QUERY, Job.DESTROY, Job.SUSPEND, Job.ABORT,
                                             Job.MIGRATION_OP, Job.MODIFY_MIGRATION_SAFE),
                       f"begin3: migration-out mask is 0x77, got 0x{d.mask:x}")
            self.log("src", "begin3", f"migration job started: mask {fmt_mask(d.mask)}, "
                                      f"refs {d.refs}")
            _sleep(self.rng, WORK)      # format the domain XML and the cookie
        self.parked(d, "src", OUT, "begin3")
        self.demo.trigger(self, "begin3")
        return self.prepare3

    def prepare3(self):
        dd = self.dst = self.demo.dst.add_domain(self.name)
        defined = dd.refs
        with dd.migration(IN, Phase.PREPARE, api="prepare3"):
            self.dst_phases.append(phase_label(dd.async_job, dd.phase))
            self.in_phase(dd, IN, "prepare3")
            self.check(dd.mask == mj.job_mask(Job.DESTROY, Job.MODIFY_MIGRATION_SAFE),
                       f"prepare3: migration-in mask is 0x42, got 0x{dd.mask:x}")
            self.log("dst", "prepare", f"incoming domain defined (refs {defined}); migration-in "
                                       f"job started: mask {fmt_mask(dd.mask)}, refs {dd.refs}; "
                                       f"monitor: QEMU -incoming")
            self.monitor(dd, IN, "prepare3")
        self.parked(dd, "dst", IN, "prepare3")
        return self.perform3

    def perform3(self):
        try:
            return self._perform3()
        except StreamBroken as e:
            self.log("src", "perform3", f"{e}")
            self.src_phases.append(phase_label(OUT, self.src.phase))
            self.after_postcopy_failure(self.src, "src", OUT, "perform3")
            return self.finish3_postcopy_failed

    def _perform3(self):
        d = self.src
        with d.migration_phase(OUT, Phase.PERFORM3, api="perform3") as mig:
            self.src_phases.append(phase_label(d.async_job, d.phase))
            self.in_phase(d, OUT, "perform3")
            self.log("src", "perform3", f"phase started (refs {d.refs}); monitor: migrate")
            self.demo.trigger(self, "perform3")
            polls: List[float] = []
            try:
                self.monitor(d, OUT, "perform3", check_running=True)
                progress = 0
                while progress < 100:
                    d.check_abort()                 # the async job's checkpoint
                    _sleep(self.rng, POLL)
                    polls.append(self.monitor(d, OUT, "perform3", check_running=True))
                    progress += self.rng.randint(*PROGRESS)
                    if self.fate.kind == "postcopy" and progress >= 50:
                        self.postcopy_breaks(d)
                done = mig.set_phase(Phase.PERFORM3_DONE)
                self.check(done is True, "perform3: PERFORM3_DONE accepted")
                self.src_phases.append(phase_label(d.async_job, d.phase))
                self.log("src", "perform3_done",
                         f"{_n(len(polls), 'query-migrate poll')} in nested jobs (max wait "
                         f"{_ms(max(polls))}); QEMU sent everything: phase perform3_done")
            except mj.OperationAborted as e:
                self.cancel = ("aborted", str(e))
                self.check(e.code == mj.ErrorCode.OPERATION_ABORTED,
                           "perform3: abort error code is OPERATION_ABORTED")
                self.check(e.message == "migration out: canceled by client",
                           f"perform3: abort message, got {e.message!r}")
                self.log("src", "perform3", f"checkpoint after {_n(len(polls), 'poll')}: {e}; "
                                            f"monitor: migrate_cancel")
                self.monitor(d, OUT, "perform3")
            except DomainNotRunning as e:
                self.cancel = ("destroyed", str(e))
                self.log("src", "perform3", f"monitor call after {_n(len(polls), 'poll')}: "
                                            f"{e}; migration failed")
        self.parked(d, "src", OUT, "perform3")
        if not self.cancel:
            self.demo.trigger(self, "perform3_done")
        return self.finish3

    def finish3(self):
        dd = self.dst
        assert dd is not None
        with dd.migration_phase(IN, Phase.FINISH3, api="finish3") as mig:
            self.dst_phases.append(phase_label(dd.async_job, dd.phase))
            self.in_phase(dd, IN, "finish3")
            if not self.cancel:
                self.monitor(dd, IN, "finish3")
            refs = mig.finish()
        self.check(dd.async_job == mj.AsyncJob.NONE, "finish3: migration-in job ended")
        if self.cancel:
            left = self.demo.dst.remove_domain(self.name)
            self.log("dst", "finish3", f"migration cancelled: incoming QEMU killed, migration-in "
                                       f"job finished (refs {refs}), domain removed (refs {left})")
        else:
            self.log("dst", "finish3", f"monitor: cont, the guest runs here now; migration-in "
                                       f"job finished, refs {refs}")
        return self.confirm3

    def confirm3(self):
        d = self.src
        phase = Phase.CONFIRM3_CANCELLED if self.cancel else Phase.CONFIRM3
        label = phase_label(OUT, phase)
        with d.migration_phase(OUT, phase, api="confirm3") as mig:
            self.src_phases.append(phase_label(d.async_job, d.phase))
            self.in_phase(d, OUT, "confirm3")
            if self.cancel and self.vm.running:
                what = "migration cancelled; monitor: cont, the guest keeps running here"
                self.monitor(d, OUT, "confirm3")
            elif self.cancel:
                what = "migration cancelled; the domain was destroyed"
            else:
                what = "migration confirmed; source QEMU stopped"
                if d.abort_requested:
                    self.late_abort = True
                    what += " (abort_requested is set, but nothing checks it after perform3_done)"
                _sleep(self.rng, WORK)
            refs = mig.finish(self.cancel[1] if self.cancel else None)
        self.check(d.async_job == mj.AsyncJob.NONE, "confirm3: migration-out job ended")
        # the completed job record: COMPLETED, FAILED, or CANCELED after an abort
        want = {None: mj.JobState.COMPLETED, "aborted": mj.JobState.CANCELED,
                "destroyed": mj.JobState.FAILED}[self.cancel[0] if self.cancel else None]
        stats = d.job_stats(completed=True)
        self.check(stats is not None and stats.state == want,
                   f"confirm3: completed job record {want.name}, got {stats}")
        self.check(not d.abort_requested, "confirm3: abort flag cleared with the async job")
        self.outcome = self.cancel[0] if self.cancel else "completed"
        if not self.cancel:
            self.vm.running = False     # the guest lives on the destination now
        self.log("src", label, f"{what}; job finished: {self.outcome}, refs {refs}")
        return None


# ---- the whole demo ------------------------------------------------------------
