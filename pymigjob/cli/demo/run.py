"""Demo: both drivers, the plan, the pool, the clients, and the checks of
every invariant along the way and at the end."""

from __future__ import annotations

import argparse
import queue
import random
import threading
import time
from typing import Any, List, Optional, TextIO, Tuple

import pymigjob as mj

from .clients import Clients
from .migration import Migration, Pool
from .plan import (
    JOB_WAIT_TIMEOUT,
    MODIFY_CLIENTS,
    OUT,
    QUERY_CLIENTS,
    STAGGER,
    DemoResult,
    Event,
    Job,
    VMState,
    make_plan,
)
from .report import Report


class Demo(Clients, Report):
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.seed: int = args.seed
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()
        self.events: List[Event] = []
        self.problems: List[str] = []
        self.checks = 0
        self.failures: List[str] = []

        state = getattr(args, "state_dir", None)  # --crash-recover's child persists jobs
        self.src = mj.Driver(job_wait_timeout=JOB_WAIT_TIMEOUT,
                             state_dir=state and f"{state}/src")
        self.dst = mj.Driver(job_wait_timeout=JOB_WAIT_TIMEOUT,
                             state_dir=state and f"{state}/dst")
        self.names = [f"vm{i + 1}" for i in range(args.domains)]
        for name in self.names:
            self.src.add_domain(name)
        self.handles = {name: self.src.lookup(name) for name in self.names}
        self.vmstate = {name: VMState() for name in self.names}
        rng = random.Random(f"{self.seed}/plan")
        self.plan = make_plan(self.names, rng)
        self.migrations = {name: Migration(self, i, name, self.plan[name])
                           for i, name in enumerate(self.names)}
        for i, name in enumerate(self.names):
            self.migrations[name].start_at = i * STAGGER + rng.uniform(0, STAGGER / 2)

        self.pool = Pool(args.threads, self._pool_crash)
        self.stop = threading.Event()
        self.all_done = threading.Event()
        self.pending = len(self.names)
        self.abort_q: "queue.Queue[Tuple[str, str]]" = queue.Queue()
        self.destroy_q: "queue.Queue[Tuple[str, str]]" = queue.Queue()
        self.clients: List[threading.Thread] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def log(self, kind: str, domain: str, side: str, phase: str, text: str,
            when: Optional[float] = None, **data: Any) -> None:
        """Record an event; `when` is a perf_counter() reading when the event
        happened earlier than now (a job granted before it was reported)."""
        t = (when - self.t0) if when is not None else self.now()
        ev = Event(t, threading.current_thread().name, domain, side, phase, kind, text, data)
        with self.lock:
            self.events.append(ev)

    def check(self, ok: bool, what: str) -> bool:
        with self.lock:
            self.checks += 1
            if not ok:
                self.failures.append(what)
        return ok

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def _pool_crash(self, tb: str) -> None:
        self.problem("a worker task crashed:\n" + tb)

    def migration_done(self, mig: Migration) -> None:
        with self.lock:
            self.pending -= 1
            if self.pending == 0:
                self.all_done.set()

    def trigger(self, mig: Migration, point: str) -> None:
        fate = mig.fate
        if fate.trigger != point:
            return
        if fate.kind == "abort":
            self.abort_q.put((mig.name, point))
        elif fate.kind == "destroy":
            self.destroy_q.put((mig.name, point))

    def preflight(self) -> None:
        """What the library says about a domain nobody migrates yet."""
        name = self.names[0]
        d = self.handles[name]
        try:
            d.abort_job(api="abortJob")
            self.check(False, f"preflight: abortJob on idle {name} must be refused")
        except mj.OperationInvalid as e:
            self.check(e.message == "no job is active on the domain",
                       f"preflight: abortJob message, got {e.message!r}")
            self.log("note", name, "src", "-", f"preflight abortJob: {e}")
        try:
            d.check_migration_job(OUT)
            self.check(False, f"preflight: {name} must not be migrating")
        except mj.OperationInvalid as e:
            self.check(str(e) == f"Requested operation is not valid: domain '{name}' "
                                 f"is not being migrated",
                       f"preflight: check_migration_job text, got {str(e)!r}")
            self.log("note", name, "src", "-", f"preflight check_migration_job: {e}")
        with d.job(Job.MODIFY, api="setMemory"):
            # the agent slot does not wait for the monitor: a nowait begin gets it
            got = d.begin_agent_job(mj.AgentJob.QUERY, api="getTime", nowait=True)
            self.check(got is True, "preflight: an agent job starts beside a MODIFY job")
            self.log("note", name, "src", "-", "preflight: getTime's agent job started at once "
                     "while setMemory held the monitor (sync) job")
            d.end_agent_job()
            self.check(d.begin_job(Job.QUERY, nowait=True) is False,
                       "preflight: a nowait QUERY beside MODIFY returns False")
        try:
            self.dst.lookup(name)
            self.check(False, f"preflight: {name} must not exist on the destination")
        except mj.NoDomain as e:
            self.log("note", name, "dst", "-", f"preflight lookup: {e}")
            self.check(True, "preflight: destination lookup fails")

    def run(self) -> DemoResult:
        a = self.args
        self.t0 = time.perf_counter()
        self.preflight()
        for i in range(QUERY_CLIENTS):
            self._client(f"query-{i}", self.query_client, i)
        for i in range(MODIFY_CLIENTS):
            self._client(f"modify-{i}", self.modify_client, i)
        self._client("dst-query", self.dst_query_client)
        self._client("agent", self.agent_client)
        self._client("aborter", self._disruptor, self.abort_q, self.do_abort)
        self._client("destroyer", self._disruptor, self.destroy_q, self.do_destroy)
        self.header()
        for t in self.clients:
            t.start()
        self.pool.start()
        base = self.now()
        for name in self.names:            # the migration client (virsh migrate ...)
            mig = self.migrations[name]
            delay = base + mig.start_at - self.now()
            if delay > 0:
                time.sleep(delay)
            self.pool.submit(mig.start)
        hung = not self.all_done.wait(a.watchdog)
        self.stop.set()
        self.pool.close()
        for t in self.clients + self.pool.threads:
            t.join(timeout=JOB_WAIT_TIMEOUT + 1 if not hung else 1.0)
        stuck = [t.name for t in self.clients + self.pool.threads if t.is_alive()]
        elapsed = self.now()
        if hung or stuck:
            self.check(False, f"run finished within {a.watchdog:.0f} s "
                              f"(threads still running: {', '.join(stuck) or '-'})")
        self.final_checks(skip_states=bool(stuck))
        for p in self.problems:
            self.check(False, "unexpected error: " + p.splitlines()[0])
        result = self.result(elapsed, hung or bool(stuck))
        if not a.quiet:
            self.timeline()
        self.summary(result)
        return result

    def idle_checks(self, d: mj.Domain, where: str) -> None:
        self.check(d.refs == 1, f"{where}: refs back to 1, got {d.refs}")
        self.check(d.active_job == Job.NONE, f"{where}: no sync job, got {d.active_job!r}")
        self.check(d.async_job == mj.AsyncJob.NONE, f"{where}: no async job, got {d.async_job!r}")
        self.check(d.phase == 0, f"{where}: phase reset, got {d.phase}")
        self.check(d.jobs_queued == 0, f"{where}: jobs_queued 0, got {d.jobs_queued}")
        self.check(d.mask == mj.DEFAULT_JOB_MASK,
                   f"{where}: mask reset to DEFAULT_JOB_MASK, got 0x{d.mask:x}")
        self.check(d.owner_api is None and d.async_owner_api is None,
                   f"{where}: owner APIs cleared, got {d.owner_api!r}/{d.async_owner_api!r}")
        self.check(d.owner_thread == 0 and d.async_owner_thread == 0,
                   f"{where}: owner threads cleared")
        self.check(not d.abort_requested, f"{where}: abort flag clear")
        self.check(d.job_info.type == mj.JobType.NONE,
                   f"{where}: job info type NONE, got {d.job_info.type!r}")

    def final_checks(self, skip_states: bool) -> None:
        if skip_states:
            return
        multi = self.args.threads > 1
        completed = set()
        for name, mig in self.migrations.items():
            self.check(mig.outcome in ("completed", "aborted", "destroyed"),
                       f"{name}: migration ended (outcome {mig.outcome or 'none'})")
            resumed = mig.fate.kind == "postcopy"
            if mig.outcome == "completed":
                completed.add(name)
            if resumed:
                src = ["begin3", "perform3", "postcopy_failed", "begin_resume",
                       "perform_resume", "confirm_resume"]
                dst = ["prepare", "finish3", "postcopy_failed", "prepare_resume",
                       "finish_resume"]
            elif mig.outcome == "completed":
                src, dst = ["begin3", "perform3", "perform3_done", "confirm3"], ["prepare",
                                                                                "finish3"]
            else:
                src, dst = ["begin3", "perform3", "confirm3_cancelled"], ["prepare", "finish3"]
            if mig.outcome:
                self.check(mig.src_phases == src, f"{name}: source phases {mig.src_phases}")
                self.check(mig.dst_phases == dst,
                           f"{name}: destination phases {mig.dst_phases}")
            if multi:
                threads = [t for _, t in mig.calls]
                self.check(all(a != b for a, b in zip(threads, threads[1:])),
                           f"{name}: consecutive API calls on different threads {mig.calls}")
            self.idle_checks(self.handles[name], f"source {name}")
            if mig.dst is None:
                continue
            if name in completed:
                self.idle_checks(mig.dst, f"destination {name}")
            else:
                self.check(mig.dst.refs == 0 and not mig.dst.alive,
                           f"destination {name}: removed and freed (refs {mig.dst.refs})")
                try:
                    self.dst.lookup(name)
                    self.check(False, f"destination {name}: lookup after removal must fail")
                except mj.NoDomain:
                    self.check(True, "")
        self.check(sorted(self.src.domains()) == sorted(self.names),
                   "source driver still lists every domain")
        self.check(sorted(self.dst.domains()) == sorted(completed),
                   f"destination lists exactly the migrated domains, got {sorted(self.dst.domains())}")
        for ev in self.events:
            if ev.data.get("result") == "timeout":
                self.check(ev.data.get("holder") != "(nobody named)",
                           f"timeout on {ev.domain} names who held the lock: {ev.text}")
