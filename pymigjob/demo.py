"""``python -m pymigjob demo``: concurrent v3 migrations with change protection.

One process plays both hosts.  A *source* and a *destination* :class:`Driver`
each hold the same domain names.  The demo migrates every source domain once
with libvirt's v3 protocol and change protection (MIGRATION.txt, table 4.2 of
the reference notes)::

    Begin3 (src)    dom.migration(MIGRATION_OUT, BEGIN3)        start; continue
    Prepare3 (dst)  dom.migration(MIGRATION_IN, PREPARE)        start; continue
    Perform3 (src)  dom.migration_phase(MIGRATION_OUT, PERFORM3) ... PERFORM3_DONE; continue
    Finish3 (dst)   dom.migration_phase(MIGRATION_IN, FINISH3)   finish
    Confirm3 (src)  dom.migration_phase(MIGRATION_OUT, CONFIRM3 | CONFIRM3_CANCELLED)  finish

Each of these API calls runs on a worker thread taken from one shared pool, and
never on the thread that ran the previous call of the same migration, the way
libvirtd's RPC workers pick up separate API calls.  Between calls the async job
is *parked*: no thread owns it, but it still keeps other changes out.

Perform3 pretends to drive QEMU: a ``migrate`` monitor command, then a poll
loop of ``query-migrate`` commands (each inside a nested job, so other allowed
jobs can slip in between), with the abort checkpoint (``check_abort``) before
every poll, like libvirt's qemuMigrationWaitForCompletion.

Meanwhile other threads hammer the same domains:

* query clients take QUERY jobs (allowed during a migration out) and, now and
  then, a MIGRATION_OP job (``migrateSetMaxSpeed``: allowed by the mask, but
  refused with "not being migrated" when no migration runs);
* modify clients take MODIFY jobs with a short ``--timeout``: the migration's
  mask keeps them out until it ends, so some wait and some give up, and the
  timeout names the API that holds the lock;
* a destination monitor queries the incoming domains; MIGRATION_IN allows
  nothing but DESTROY, so these mostly time out (a well-known libvirt pain);
* an aborter calls ``abort_job`` on some domains (the checkpoint in Perform3
  then cancels the migration: the destination finishes and removes its domain,
  the source confirms with CONFIRM3_CANCELLED) and once too late (after
  PERFORM3_DONE, when nothing checks the flag any more);
* a destroyer kills a domain's pretend QEMU process and takes a DESTROY job,
  which the mask always allows; Perform3's next monitor call then finds the
  domain gone and the migration is cancelled the same way.

A cancelled Perform3 here leaves the async job parked for Confirm3 to finish
with CONFIRM3_CANCELLED, as the brief of this demo asks (libvirt 0.9.4's
Perform3 error path ends the job itself; its p2p flow confirms as cancelled).

At the end every domain must be idle with ``refs == 1`` (the domain list's
reference), every cancelled incoming domain removed and freed, no job leaked.
The demo checks these invariants (and a few along the way) and exits 1 if any
fails, 2 if the run hangs, 0 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import queue
import random
import re
import sys
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

import pymigjob as mj

OUT = mj.AsyncJob.MIGRATION_OUT
IN = mj.AsyncJob.MIGRATION_IN
Phase = mj.Phase
Job = mj.Job

# ---- timing (seconds); small enough that the defaults run well under 2 s --

JOB_WAIT_TIMEOUT = 5.0          # drivers' default: nothing legitimate waits that long
RPC_LATENCY = (0.0005, 0.002)   # the client's round trip before each API call
WORK = (0.002, 0.005)           # the body of begin3/prepare3/finish3/confirm3
MONITOR = (0.001, 0.003)        # one pretend monitor command
POLL = (0.020, 0.035)           # Perform3's sleep between query-migrate polls
PROGRESS = (10, 22)             # percent transferred per poll
STAGGER = 0.040                 # between migration starts
QUERY_HOLD = (0.0002, 0.001)
QUERY_GAP = (0.001, 0.004)
MODIFY_HOLD = (0.0005, 0.0015)
MODIFY_GAP = (0.004, 0.020)
DST_QUERY_GAP = (0.004, 0.012)
WAITED = 0.005                  # a wait at least this long counts as "waited"
MIGOP_SHARE = 0.08              # share of MIGRATION_OP jobs among query-client jobs

QUERY_APIS = ("getJobInfo", "blockStats", "getInfo", "memoryStats", "interfaceStats")
MODIFY_APIS = ("setMemory", "attachDevice", "setVcpus", "updateDevice")

DEFAULT_DOMAINS = 8
DEFAULT_THREADS = 8
DEFAULT_TIMEOUT = 0.1
QUERY_CLIENTS = 2
MODIFY_CLIENTS = 2

HELD_BY = re.compile(r"\(held by (.+?)\)")


class DomainNotRunning(Exception):
    """libvirt's 'domain is no longer running' after a monitor call (the demo's own)."""


def _sleep(rng: random.Random, span: Tuple[float, float]) -> None:
    time.sleep(rng.uniform(*span))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def phase_label(async_job: int, phase: int) -> str:
    """The phase as libvirt writes it in the status XML; "-" without an async job."""
    if async_job == mj.AsyncJob.NONE:
        return "-"
    return mj.phase_to_string(async_job, phase) or f"phase {phase}"


def fmt_mask(mask: int) -> str:
    names = [j.label for j in Job if j != Job.NONE and mask & mj.job_mask(j)]
    return f"0x{mask:02x} ({'|'.join(names) or 'nothing'})"


def holder_of(err: mj.Error) -> str:
    m = HELD_BY.search(err.message)
    return m.group(1) if m else "(nobody named)"


# ---- records -----------------------------------------------------------------


@dataclasses.dataclass
class Event:
    t: float
    thread: str
    domain: str
    side: str
    phase: str
    kind: str
    text: str
    data: Dict[str, Any]


@dataclasses.dataclass
class Fate:
    kind: str           # "complete" | "abort" | "destroy"
    trigger: str = ""   # "begin3" | "perform3" | "perform3_done"

    def describe(self) -> str:
        if self.kind == "complete":
            return "completes"
        where = {
            "begin3": "while parked after begin3",
            "perform3": "during perform3",
            "perform3_done": "after perform3_done (too late)",
        }[self.trigger]
        return f"{self.kind} {where}"


class VMState:
    """What the pretend hypervisor knows: is the QEMU process still there?"""

    def __init__(self) -> None:
        self.running = True


@dataclasses.dataclass
class DemoResult:
    exit_code: int
    seed: int
    elapsed: float
    outcomes: Dict[str, str]
    completed: int
    aborted: int
    destroyed: int
    queries: int
    queries_during_migration: int
    modifies: Dict[str, int]
    timeouts: Dict[str, int]
    final_refs: Dict[str, int]
    checks: int
    failures: List[str]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


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


class Migration:
    def __init__(self, demo: "Demo", index: int, name: str, fate: Fate) -> None:
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
            self.check(d.mask == mj.job_mask(Job.QUERY, Job.DESTROY, Job.SUSPEND,
                                             Job.ABORT, Job.MIGRATION_OP),
                       f"begin3: migration-out mask is 0x37, got 0x{d.mask:x}")
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
            self.check(dd.mask == mj.job_mask(Job.DESTROY),
                       f"prepare3: migration-in mask is destroy only, got 0x{dd.mask:x}")
            self.log("dst", "prepare", f"incoming domain defined (refs {defined}); migration-in "
                                       f"job started: mask {fmt_mask(dd.mask)}, refs {dd.refs}; "
                                       f"monitor: QEMU -incoming")
            self.monitor(dd, IN, "prepare3")
        self.parked(dd, "dst", IN, "prepare3")
        return self.perform3

    def perform3(self):
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
            refs = mig.finish()
        self.check(d.async_job == mj.AsyncJob.NONE, "confirm3: migration-out job ended")
        self.check(not d.abort_requested, "confirm3: abort flag cleared with the async job")
        self.outcome = self.cancel[0] if self.cancel else "completed"
        if not self.cancel:
            self.vm.running = False     # the guest lives on the destination now
        self.log("src", label, f"{what}; job finished: {self.outcome}, refs {refs}")
        return None


# ---- the whole demo ------------------------------------------------------------


def make_plan(names: Sequence[str], rng: random.Random) -> Dict[str, Fate]:
    n = len(names)
    order = list(names)
    rng.shuffle(order)
    n_abort = n // 4 if n >= 4 else (1 if n >= 2 else 0)
    n_destroy = max(1, n // 8) if n >= 3 else 0
    n_late = 1 if n >= 6 else 0
    plan = {name: Fate("complete") for name in names}
    it = iter(order)
    for _ in range(n_abort):
        plan[next(it)] = Fate("abort", rng.choice(("begin3", "perform3")))
    for _ in range(n_destroy):
        plan[next(it)] = Fate("destroy", rng.choice(("begin3", "perform3")))
    for _ in range(n_late):
        plan[next(it)] = Fate("abort", "perform3_done")
    return plan


class Demo:
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

    # -- recording

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

    # -- clients

    def _client(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        def body() -> None:
            try:
                fn(*args)
            except BaseException:
                self.problem(f"client thread {name} crashed:\n" + traceback.format_exc())
        t = threading.Thread(target=body, name=name, daemon=True)
        self.clients.append(t)

    def query_client(self, idx: int) -> None:
        rng = random.Random(f"{self.seed}/query/{idx}")
        while not self.stop.is_set():
            name = rng.choice(self.names)
            d = self.handles[name]
            migop = rng.random() < MIGOP_SHARE
            job = Job.MIGRATION_OP if migop else Job.QUERY
            api = "migrateSetMaxSpeed" if migop else rng.choice(QUERY_APIS)
            t0 = time.perf_counter()
            try:
                with d.job(job, api=api):
                    granted = time.perf_counter()
                    waited = granted - t0
                    aj, ph = d.async_job, d.phase
                    result = "served"
                    if migop:
                        try:
                            d.check_migration_job(OUT)
                            result = "applied"
                        except mj.OperationInvalid as e:
                            result = "refused"
                            self.check(e.message == f"domain '{name}' is not being migrated",
                                       f"{api} on {name}: refusal text, got {e.message!r}")
                    else:
                        d.job_info
                    _sleep(rng, QUERY_HOLD)
                label = phase_label(aj, ph)
                self.log("migop" if migop else "query", name, "src", label,
                         f"{api}: {result}" + (f" (waited {_ms(waited)})" if waited >= WAITED else ""),
                         when=granted, api=api, waited=waited, during=aj == OUT, result=result)
            except mj.Error as e:
                # QUERY and MIGRATION_OP are allowed during a migration out:
                # they must never fail here.
                self.problem(f"{api} on {name} failed: {e}")
                self.log("error", name, "src", "", f"{api} FAILED: {e}")
            _sleep(rng, QUERY_GAP)

    def modify_client(self, idx: int) -> None:
        rng = random.Random(f"{self.seed}/modify/{idx}")
        timeout = self.args.timeout
        while not self.stop.is_set():
            name = rng.choice(self.names)
            d = self.handles[name]
            api = rng.choice(MODIFY_APIS)
            asked = phase_label(d.async_job, d.phase)
            t0 = time.perf_counter()
            try:
                with d.job(Job.MODIFY, api=api, timeout=timeout):
                    waited = time.perf_counter() - t0
                    self.check(d.async_job == mj.AsyncJob.NONE,
                               f"{api} on {name}: MODIFY runs only without an async job")
                    _sleep(rng, MODIFY_HOLD)
                if waited >= WAITED:
                    self.log("modify", name, "src", asked,
                             f"{api}: waited {_ms(waited)} (asked during {asked}), then ran",
                             api=api, waited=waited, result="waited")
                else:
                    self.log("modify", name, "src", asked, f"{api}: ran at once",
                             api=api, waited=waited, result="ran")
            except mj.JobTimeout as e:
                waited = time.perf_counter() - t0
                at = phase_label(d.async_job, d.phase)
                self.check(e.code == mj.ErrorCode.OPERATION_TIMEOUT,
                           f"{api} on {name}: timeout code is OPERATION_TIMEOUT")
                self.log("modify", name, "src", at,
                         f"{api}: gave up after {_ms(waited)}: {e}",
                         api=api, waited=waited, result="timeout", holder=holder_of(e),
                         asked=asked, at=at)
            except mj.Error as e:
                self.problem(f"{api} on {name} failed: {e!r}")
                self.log("error", name, "src", "", f"{api} FAILED: {e}")
            _sleep(rng, MODIFY_GAP)

    def dst_query_client(self) -> None:
        rng = random.Random(f"{self.seed}/dstquery")
        timeout = self.args.timeout
        while not self.stop.is_set():
            name = rng.choice(self.names)
            try:
                dd = self.dst.lookup(name)
            except mj.NoDomain:
                self.log("dstquery", name, "dst", "-", "getJobInfo: no such domain here",
                         result="absent")
                _sleep(rng, DST_QUERY_GAP)
                continue
            t0 = time.perf_counter()
            try:
                with dd.job(Job.QUERY, api="getJobInfo", timeout=timeout):
                    granted = time.perf_counter()
                    waited = granted - t0
                    aj, ph = dd.async_job, dd.phase
                    _sleep(rng, QUERY_HOLD)
                self.log("dstquery", name, "dst", phase_label(aj, ph),
                         f"getJobInfo: served after {_ms(waited)}", when=granted, result="served",
                         waited=waited)
            except mj.JobTimeout as e:
                try:
                    at = phase_label(dd.async_job, dd.phase)
                except mj.NoDomain:
                    at = "-"
                self.log("dstquery", name, "dst", at, f"getJobInfo: {e}",
                         result="timeout", holder=holder_of(e))
            except mj.NoDomain as e:
                self.log("dstquery", name, "dst", "-", f"getJobInfo: {e} (removed meanwhile)",
                         result="removed")
            except mj.Error as e:
                self.problem(f"destination getJobInfo on {name} failed: {e!r}")
            _sleep(rng, DST_QUERY_GAP)

    def _disruptor(self, q: "queue.Queue[Tuple[str, str]]", act: Callable[[str, str], None]) -> None:
        while True:
            try:
                name, point = q.get(timeout=0.02)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            act(name, point)

    def do_abort(self, name: str, point: str) -> None:
        d = self.handles[name]
        asked = phase_label(d.async_job, d.phase)
        t0 = time.perf_counter()
        try:
            d.abort_job(api="abortJob")
            waited = time.perf_counter() - t0
            self.log("abort", name, "src", asked,
                     f"abortJob: ABORT job granted after {_ms(waited)}, abort flag raised",
                     result="flagged", point=point)
        except mj.OperationInvalid as e:
            self.log("abort", name, "src", asked, f"abortJob refused: {e}",
                     result="refused", point=point)
        except mj.Error as e:
            self.problem(f"abortJob on {name} failed: {e!r}")

    def do_destroy(self, name: str, point: str) -> None:
        d = self.handles[name]
        self.vmstate[name].running = False   # libvirt kills QEMU first, then takes the job
        asked = phase_label(d.async_job, d.phase)
        self.log("destroy", name, "src", asked, "destroy: QEMU process killed; "
                                                "taking the DESTROY job")
        t0 = time.perf_counter()
        try:
            with d.job(Job.DESTROY, api="destroy"):
                waited = time.perf_counter() - t0
                aj, ph = d.async_job, d.phase
                _sleep(random.Random(f"{self.seed}/destroy/{name}"), MODIFY_HOLD)
            self.log("destroy", name, "src", phase_label(aj, ph),
                     f"destroy: DESTROY job held after {_ms(waited)} (the mask always "
                     f"allows it), domain shut off", result="destroyed", point=point)
        except mj.Error as e:
            self.problem(f"destroy on {name} failed: {e!r}")

    # -- run

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

    # -- final checks

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
            if mig.outcome == "completed":
                completed.add(name)
                self.check(mig.src_phases == ["begin3", "perform3", "perform3_done", "confirm3"],
                           f"{name}: source phases {mig.src_phases}")
            elif mig.outcome in ("aborted", "destroyed"):
                self.check(mig.src_phases == ["begin3", "perform3", "confirm3_cancelled"],
                           f"{name}: source phases {mig.src_phases}")
            if mig.outcome:
                self.check(mig.dst_phases == ["prepare", "finish3"],
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

    # -- output

    def p(self, line: str = "") -> None:
        print(line, file=self.out)

    def header(self) -> None:
        a = self.args
        if a.quiet:
            return
        self.p(f"pymigjob demo: {a.domains} domains, {a.threads} migration workers, "
               f"{QUERY_CLIENTS} query + {MODIFY_CLIENTS} modify + 1 destination-query "
               f"+ aborter + destroyer threads; MODIFY timeout {a.timeout:g} s; seed {self.seed}")
        self.p("v3 migration with change protection: begin3 -> prepare3 -> perform3 -> "
               "finish3 -> confirm3, each call on another pool worker")
        fates = collections.defaultdict(list)
        for name in self.names:
            fates[self.plan[name].describe()].append(name)
        self.p("plan: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in fates.items()))

    def shown_domains(self) -> List[str]:
        a = self.args
        if a.verbose or a.show >= len(self.names):
            return list(self.names)
        if a.show > 0:
            return self.names[: a.show]
        shown, seen = [], set()
        for name in self.names:              # one domain per planned fate
            key = self.plan[name].describe()
            if key not in seen:
                seen.add(key)
                shown.append(name)
        return shown

    def timeline(self) -> None:
        shown = self.shown_domains()
        every_query = self.args.verbose >= 2
        self.p()
        more = "" if len(shown) == len(self.names) else \
            "; --show N or --verbose for more domains"
        self.p(f"timeline of {', '.join(shown)} (seconds since start; "
               f"{'every query listed' if every_query else 'runs of queries summarised'}{more})")
        self.p("refs = the domain list's 1 + one per job or phase held or waited for, "
               "other threads' queries included")
        self.p(f"{'time':>8}  {'thread':<10} {'domain':<6} {'where':<22} event")
        def collapsible(e: Event) -> bool:
            if e.kind in ("query", "migop", "dstquery"):
                return True
            return e.kind == "modify" and e.data.get("result") == "ran"

        rows: List[Tuple[float, int, str]] = []
        buckets: Dict[Tuple[str, str], List[Event]] = {}

        def row(t: float, thread: str, dom: str, where: str, text: str) -> None:
            rows.append((t, len(rows),
                         f"{t:8.3f}  {thread:<10} {dom:<6} {where:<22} {text}"))

        def flush(key: Tuple[str, str]) -> None:
            evs = buckets.pop(key, None)
            if not evs:
                return
            first = evs[0]
            if len(evs) == 1:
                e = first
                row(e.t, e.thread, e.domain, f"{e.side}/{e.phase}", e.text)
                return
            nthreads = len({e.thread for e in evs})
            row(first.t, f"{nthreads} thread{'s' if nthreads > 1 else ''}", first.domain,
                f"{first.side}/{_span([e.phase for e in evs])}",
                _summarise(evs, evs[-1].t - first.t))

        shown_set = set(shown)
        for e in sorted(self.events, key=lambda e: e.t):
            if e.domain not in shown_set:
                continue
            if collapsible(e) and not every_query:
                key = (e.domain, e.side)
                buckets.setdefault(key, []).append(e)
                continue
            for key in [k for k in buckets if k[0] == e.domain]:
                flush(key)
            where = f"{e.side}/{e.phase}" if e.side else e.phase
            row(e.t, e.thread, e.domain, where, e.text)
        for key in list(buckets):
            flush(key)
        for _, _, line in sorted(rows):
            self.p(line)

    def result(self, elapsed: float, hung: bool) -> DemoResult:
        outcomes = {n: m.outcome or "unfinished" for n, m in self.migrations.items()}
        count = collections.Counter(outcomes.values())
        queries = [e for e in self.events if e.kind == "query"]
        modifies = collections.Counter(e.data["result"] for e in self.events if e.kind == "modify")
        timeouts = collections.Counter(
            e.data["holder"] for e in self.events if e.data.get("result") == "timeout")
        final_refs = {}
        if not hung:
            final_refs = {f"src:{n}": self.handles[n].refs for n in self.names}
            for n, m in self.migrations.items():
                if m.dst is not None:
                    final_refs[f"dst:{n}"] = m.dst.refs
        exit_code = 2 if hung else (1 if self.failures else 0)
        return DemoResult(
            exit_code=exit_code, seed=self.seed, elapsed=elapsed, outcomes=outcomes,
            completed=count["completed"], aborted=count["aborted"],
            destroyed=count["destroyed"], queries=len(queries),
            queries_during_migration=sum(1 for e in queries if e.data["during"]),
            modifies=dict(modifies), timeouts=dict(timeouts), final_refs=final_refs,
            checks=self.checks, failures=list(self.failures))

    def summary(self, r: DemoResult) -> None:
        a = self.args
        ev = self.events
        p = self.p
        p()
        p(f"summary ({r.elapsed:.2f} s, seed {self.seed}; rerun with --seed {self.seed})")

        def line(label: str, text: str) -> None:
            p(f"  {label:<15} {text}")

        def more(text: str) -> None:
            p(f"  {'':<15} {text}")

        n = len(self.names)
        crashed = [k for k, v in r.outcomes.items() if v not in ("completed", "aborted", "destroyed")]
        line("migrations", f"{n} started: {r.completed} completed, {r.aborted} aborted, "
                           f"{r.destroyed} failed (domain destroyed)"
                           + (f", {len(crashed)} did not end cleanly: {', '.join(crashed)}"
                              if crashed else ""))
        for name, mig in self.migrations.items():
            if mig.outcome in ("aborted", "destroyed"):
                more(f"{name}: {mig.cancel[1] if mig.cancel else ''} -> confirm3_cancelled, "
                     f"incoming domain removed")
        late = [e for e in ev if e.kind == "abort" and e.data.get("point") == "perform3_done"]
        for e in late:
            mig = self.migrations[e.domain]
            if e.data["result"] == "flagged":
                more(f"{e.domain}: abort came after perform3_done; flag raised, nothing "
                     f"checked it, migration {mig.outcome}, flag cleared with the job")
            else:
                more(f"{e.domain}: abort came after the migration ended: {e.text.split(': ', 1)[1]}")
        calls = sum(len(m.calls) for m in self.migrations.values())
        workers = len({t for m in self.migrations.values() for _, t in m.calls})
        line("API calls", f"{calls} on {workers} of {a.threads} pool workers"
                          + ("; each one on another thread than the call before"
                             if a.threads > 1 else " (one worker: no thread hand-over)"))
        nested = sum(m.nested for m in self.migrations.values())
        nmax = max((m.nested_max_wait for m in self.migrations.values()), default=0.0)
        line("nested jobs", f"{nested} pretend monitor calls; longest wait for the sync "
                            f"slot {_ms(nmax)}")
        q = [e for e in ev if e.kind == "query"]
        during = collections.Counter(e.phase for e in q if e.data["during"])
        qmax = max((e.data["waited"] for e in q), default=0.0)
        line("queries", f"{len(q)} served, {r.queries_during_migration} of them during a "
                        f"migration out ({_counts(during)}); longest wait {_ms(qmax)}")
        mo = [e for e in ev if e.kind == "migop"]
        line("migration ops", f"{len(mo)} migrateSetMaxSpeed: "
                              f"{sum(e.data['result'] == 'applied' for e in mo)} applied during a "
                              f"migration, {sum(e.data['result'] == 'refused' for e in mo)} refused "
                              f"(not being migrated)")
        m = [e for e in ev if e.kind == "modify"]
        mw = [e.data["waited"] for e in m if e.data["result"] == "waited"]
        line("modifies", f"{len(m)} MODIFY jobs: {r.modifies.get('ran', 0)} ran at once, "
                         f"{len(mw)} waited for a migration to end and ran"
                         + (f" (avg {_ms(sum(mw) / len(mw))}, max {_ms(max(mw))})" if mw else "")
                         + f", {r.modifies.get('timeout', 0)} gave up after {a.timeout:g} s")
        dq = collections.Counter(e.data["result"] for e in ev if e.kind == "dstquery")
        line("dest queries", f"{sum(dq.values())} getJobInfo on the destination: "
                             f"{dq.get('served', 0)} served, {dq.get('timeout', 0)} timed out "
                             f"(MIGRATION_IN allows only DESTROY), {dq.get('absent', 0)} found no "
                             f"domain, {dq.get('removed', 0)} saw it removed while waiting")
        to = [e for e in ev if e.data.get("result") == "timeout"]
        if to:
            by = collections.defaultdict(collections.Counter)
            for e in to:
                by[e.data["holder"]][f"{'modify' if e.kind == 'modify' else 'dest query'}"
                                     f" during {e.phase}"] += 1
            line("timeouts", f"{len(to)} jobs gave up; who held the lock:")
            for holder, c in sorted(by.items(), key=lambda kv: -sum(kv[1].values())):
                more(f"held by {holder}: {sum(c.values())} ({_counts(c)})")
        else:
            line("timeouts", "no job timed out")
        ab = [e for e in ev if e.kind == "abort"]
        line("aborts", f"{len(ab)} abortJob calls: {sum(e.data['result'] == 'flagged' for e in ab)} "
                       f"raised the flag, {sum(e.data['result'] == 'refused' for e in ab)} refused; "
                       f"{r.aborted} migrations cancelled at the Perform3 checkpoint")
        de = [e for e in ev if e.kind == "destroy" and e.data.get("result") == "destroyed"]
        line("destroys", f"{_n(len(de), 'DESTROY job')} during migrations"
                         + (": " + ", ".join(f"{e.domain} ({e.phase})" for e in de) if de else ""))
        if r.final_refs:
            kept = [n for n in self.names
                    if r.outcomes[n] == "completed" and f"dst:{n}" in r.final_refs]
            gone = [n for n in self.names if r.outcomes[n] in ("aborted", "destroyed")]
            line("final refs", "source " + _refs(r.final_refs, "src", self.names))
            more("destination " + _refs(r.final_refs, "dst", kept)
                 + ("; removed and freed: " + _refs(r.final_refs, "dst", gone) if gone else ""))
        if r.failures:
            line("invariants", f"{len(r.failures)} of {r.checks} checks FAILED:")
            shown = r.failures[:20]
            for f in shown:
                more("- " + f)
            if len(r.failures) > len(shown):
                more(f"... and {len(r.failures) - len(shown)} more")
            for prob in self.problems[:3]:
                p(prob)
        else:
            line("invariants", f"all {r.checks} checks passed")
        p("result: " + ("OK" if r.exit_code == 0 else
                        "HUNG" if r.exit_code == 2 else "FAILED") + f" (exit {r.exit_code})")


def _span(phases: Sequence[str]) -> str:
    seen: List[str] = []
    for ph in phases:
        if not seen or seen[-1] != ph:
            seen.append(ph)
    if len(seen) > 3:
        seen = [seen[0], "..", seen[-1]]
    return "->".join(seen)


def _refs(final: Dict[str, int], side: str, names: Sequence[str]) -> str:
    """vm1=1 vm2=1 ... for a few domains; grouped by value for many."""
    if not names:
        return "-"
    if len(names) <= 12:
        return " ".join(f"{n}={final.get(f'{side}:{n}', '?')}" for n in names)
    by = collections.defaultdict(list)
    for n in names:
        by[final.get(f"{side}:{n}", "?")].append(n)
    return "; ".join(f"refs {v}: {len(ns)} domains" + (f" ({', '.join(ns)})" if len(ns) <= 5 else "")
                     for v, ns in sorted(by.items(), key=lambda kv: str(kv[0])))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _counts(c: Dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"


def _summarise(evs: Sequence[Event], span: float) -> str:
    kinds = collections.Counter(e.kind for e in evs)
    if kinds.get("dstquery"):
        res = collections.Counter(e.data["result"] for e in evs)
        holders = collections.Counter(e.data["holder"] for e in evs if "holder" in e.data)
        text = f"{len(evs)} destination getJobInfo: {_counts(res).replace('absent', 'no domain')}"
        if holders:
            text += f" (held by {', '.join(holders)})"
        return text + f" over {_ms(span)}"
    q = [e for e in evs if e.kind == "query"]
    mo = [e for e in evs if e.kind == "migop"]
    md = [e for e in evs if e.kind == "modify"]
    parts = []
    if q:
        during = sum(1 for e in q if e.data["during"])
        parts.append(f"{len(q)} queries" + (f" ({during} during the migration)" if during else ""))
    if mo:
        parts.append(f"{len(mo)} migrateSetMaxSpeed "
                     f"({_counts(collections.Counter(e.data['result'] for e in mo))})")
    if md:
        parts.append(f"{len(md)} MODIFY ran at once")
    wmax = max(e.data["waited"] for e in evs)
    return f"{', '.join(parts)} over {_ms(span)}; longest wait {_ms(wmax)}"


# ---- command line ---------------------------------------------------------------


def _positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pymigjob demo",
        description="Concurrent libvirt-style v3 migrations with change protection between "
                    "two drivers in one process, while other threads query, modify, abort "
                    "and destroy the same domains. Prints a timeline and a summary, checks "
                    "that no job or reference leaks; exits 0 when every invariant holds.")
    ap.add_argument("--domains", type=_positive_int, default=DEFAULT_DOMAINS,
                    help=f"domains to migrate concurrently (default {DEFAULT_DOMAINS})")
    ap.add_argument("--threads", type=_positive_int, default=DEFAULT_THREADS,
                    help=f"migration worker threads in the pool (default {DEFAULT_THREADS})")
    ap.add_argument("--seed", type=int, default=None,
                    help="random seed for the plan, durations and client choices "
                         "(default: a new one, printed)")
    ap.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT,
                    help="seconds MODIFY jobs and destination queries wait for the state "
                         f"change lock before giving up (default {DEFAULT_TIMEOUT:g})")
    ap.add_argument("--show", type=int, default=0, metavar="N",
                    help="timeline for the first N domains (default: one domain per "
                         "planned outcome)")
    ap.add_argument("--watchdog", type=_positive_float, default=60.0,
                    help="give up (exit 2) if the migrations take longer (default 60 s)")
    ap.add_argument("--crash-recover", action="store_true",
                    help="run the demo in a child process that keeps its job status in "
                         "state directories, kill it with SIGKILL mid-run, then recover "
                         "both drivers and print libvirt's restart decisions")
    ap.add_argument("--state-dir", default=None, help=argparse.SUPPRESS)
    noise = ap.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    noise.add_argument("-v", "--verbose", action="count", default=0,
                       help="timeline of every domain; -vv also lists every query")
    return ap


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 100000)
    return args


def run_demo(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None) -> DemoResult:
    """Run the demo and return its result (for tests and other callers)."""
    args = parse_args(argv)
    return Demo(args, out if out is not None else sys.stdout).run()


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = parse_args(argv)
        if args.crash_recover:
            from pymigjob.crashdemo import crash_and_recover
            return crash_and_recover(args, sys.stdout)
        return Demo(args, sys.stdout).run().exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
