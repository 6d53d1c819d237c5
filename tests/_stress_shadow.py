"""The stress test's shadow of each domain and its checker: what the
worker threads of test_stress.py record around their calls, and every
invariant a violation is recorded for (listed in test_stress.py's
docstring), with the run's size and tolerances."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import pymigjob as mj

SANITIZER = os.environ.get("MJ_SANITIZER", "")
THREADS = int(os.environ.get("MJ_STRESS_THREADS", "128"))
SECONDS = float(os.environ.get("MJ_STRESS_SECONDS", "3.0"))
TOLERANCE = float(os.environ.get("MJ_STRESS_TOLERANCE", "5.0" if SANITIZER else "2.0"))
HANG = 30.0
DEFAULT_WAIT = 0.3  # each driver's job_wait_timeout
EPS = 0.002         # a timeout may not fire earlier than this before its deadline


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
    # post-copy fails in Perform3 (set there), then the resume phases
    (A.MIGRATION_OUT, P.BEGIN3, [P.PERFORM3, P.POSTCOPY_FAILED, P.BEGIN_RESUME,
                                 P.PERFORM_RESUME], P.CONFIRM_RESUME),
    (A.MIGRATION_IN, P.PREPARE, [P.POSTCOPY_FAILED, P.PREPARE_RESUME], P.FINISH_RESUME),
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
