"""The demo's plan and its records: the timings, each domain's fate, what
the pretend hypervisor knows, the events and the result, and the helpers
that format them."""

from __future__ import annotations

import dataclasses
import random
import re
import time
from typing import Any, Dict, List, Sequence, Tuple

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
AGENT_QUERY_APIS = ("getHostname", "getTime", "interfaceAddresses", "fsInfo")
AGENT_MODIFY_APIS = ("setUserPassword", "setTime")
AGENT_HOLD = (0.001, 0.004)     # a guest agent answers slower than the monitor
AGENT_GAP = (0.002, 0.008)
AGENT_MODIFY_SHARE = 0.2
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


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


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
    kind: str           # "complete" | "abort" | "destroy" | "postcopy"
    trigger: str = ""   # "begin3" | "perform3" | "perform3_done"

    def describe(self) -> str:
        if self.kind == "complete":
            return "completes"
        if self.kind == "postcopy":
            return "post-copy fails in perform3, then resumes"
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



def make_plan(names: Sequence[str], rng: random.Random) -> Dict[str, Fate]:
    n = len(names)
    order = list(names)
    rng.shuffle(order)
    n_abort = n // 4 if n >= 4 else (1 if n >= 2 else 0)
    n_destroy = max(1, n // 8) if n >= 3 else 0
    n_late = 1 if n >= 6 else 0
    n_postcopy = 1 if n >= 4 else 0
    plan = {name: Fate("complete") for name in names}
    it = iter(order)
    for _ in range(n_abort):
        plan[next(it)] = Fate("abort", rng.choice(("begin3", "perform3")))
    for _ in range(n_destroy):
        plan[next(it)] = Fate("destroy", rng.choice(("begin3", "perform3")))
    for _ in range(n_late):
        plan[next(it)] = Fate("abort", "perform3_done")
    for _ in range(n_postcopy):
        plan[next(it)] = Fate("postcopy", "perform3")
    return plan

