"""What the differential machine (backends/test_differential.py) compares
and draws: a call's outcome and a handle's state in a comparable form, and
the input strategies, good arguments and bad ones."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

from hypothesis import strategies as st
from hypothesis.stateful import precondition

import pymigjob.pure as pure
from pymigjob import enums
from pymigjob._c.driver import Driver as CDriver

Job, AsyncJob, Phase = enums.Job, enums.AsyncJob, enums.Phase
AgentJob = enums.AgentJob
JobState, JobOperation = enums.JobState, enums.JobOperation
PDriver = pure.Driver


class Boom(Exception):
    """Raised inside a `with` block by the machine."""


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


_log = logging.getLogger("pymigjob")


def norm(value: Any) -> Any:
    """A result in a form that compares across the two implementations."""
    if isinstance(value, (CDriver, PDriver)):
        return ("Driver",)
    if type(value).__name__ == "Domain":
        return ("Domain", value.name)
    if type(value).__name__ == "JobInfo":
        return ("JobInfo", value.type, type(value.type).__name__, value.elapsed == 0.0,
                value.elapsed >= 0.0)
    if isinstance(value, pure.JobStatus):
        return ("JobStatus", value.job, value.async_job, value.phase, value.owner_api,
                value.started is None)
    if isinstance(value, pure.JobData):
        # the wall clock start of a job begun in each backend differs by a
        # few ms; one restored with a start keeps it exactly
        now_ms = time.time_ns() // 1_000_000
        started = "now" if abs(value.started - now_ms) < 600_000 else value.started
        stopped = "now" if abs(value.stopped - now_ms) < 600_000 else value.stopped
        return ("JobData", value.state, value.operation, started, stopped,
                value.elapsed >= 0.0, value.delta, value.error)
    if isinstance(value, pure.MigrationGuard):
        return ("MigrationGuard", value.async_job)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(norm(v) for v in value)
    return (type(value).__name__, value)


def run(fn: Callable[[], Any]) -> tuple:
    """Call fn; its result or exception, and what it logged, comparably."""
    handler = _Capture()
    _log.addHandler(handler)
    old_level = _log.level
    _log.setLevel(logging.DEBUG)
    try:
        try:
            result: tuple = ("ok", norm(fn()))
        except Exception as exc:  # noqa: BLE001 - compared, not handled
            args = tuple(a if isinstance(a, (str, int, float, type(None))) else repr(a)
                         for a in exc.args)
            result = ("raise", type(exc), str(exc), args,
                      tuple(getattr(exc, "__notes__", ())),
                      tuple(norm(v) for v in getattr(exc, "kinds", {}).items()))
    finally:
        _log.removeHandler(handler)
        _log.setLevel(old_level)
    return result + (tuple(handler.records),)


PROPS = ("active_job", "async_job", "phase", "mask", "jobs_queued", "owner_api",
         "async_owner_api", "owner_thread", "async_owner_thread", "abort_requested",
         "job_info", "agent_job", "agent_owner_api", "agent_owner_thread", "uuid",
         "api_flags", "async_paused", "postcopy")


def state_of(dom: Any) -> dict[str, Any]:
    """Every observable property of a handle (each read as a call: a dead
    handle's NoDomain is part of its state)."""
    snap: dict[str, Any] = {"name": norm(dom.name), "refs": norm(dom.refs),
                            "alive": norm(dom.alive), "repr": repr(dom)}
    for prop in PROPS:
        snap[prop] = run(lambda: getattr(dom, prop))
    snap["job_status"] = run(dom.job_status)
    snap["job_stats"] = run(dom.job_stats)
    snap["completed"] = run(lambda: dom.job_stats(completed=True, keep_completed=True))
    return snap


# -- argument strategies: good values most of the time, every kind of bad one too

BIG_INTS = [2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 2**64, -(2**64)]
class IntSub(int):
    """An int subclass: a valid kind like any int."""


NOT_INTS = [None, 1.0, "1", b"\x01", [1], object, True, False, Decimal("4.9"),
            Fraction(3, 1), IntSub(1), IntSub(99)]


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Good values about five times in six: a bad argument changes nothing,
    so the machine needs good ones to get anywhere."""
    return st.integers(0, 5).flatmap(lambda n: bad if n == 0 else good)


#: kinds cffi alone would take as ints (pinned at the end)
INT_LIKE = [True, False, Decimal("4.9"), Fraction(3, 1)]


def kinds(enum: type) -> st.SearchStrategy:
    # members of the other enums too: they compare equal to this one's
    # members, and are refused (TypeError) all the same
    foreign = [m for e in (Job, AsyncJob, Phase, AgentJob) if e is not enum for m in e]
    return mostly(st.sampled_from(list(enum)),
                  st.one_of(st.integers(-2, len(enum) + 2),
                            st.sampled_from(BIG_INTS + NOT_INTS + INT_LIKE + foreign)))


sync_jobs = kinds(Job)
async_jobs = kinds(AsyncJob)
aio_sync_jobs = kinds(Job)
aio_async_jobs = kinds(AsyncJob)
phases = kinds(Phase)
agent_jobs = kinds(AgentJob)
nowaits = mostly(st.booleans(), st.sampled_from([0, 1, None, "yes", 1.0]))
UUID = "0ac1d5d2-36c4-4e39-8f5a-6bb2a0b1c3d4"
uuids = mostly(st.sampled_from([None, UUID, UUID.upper()]),
               st.sampled_from(["", UUID[:-1], UUID.replace("-", ""), 5, b"u", UUID + " "]))
api_names = mostly(
    st.one_of(st.none(), st.sampled_from(["begin3", "perform3", "stats", "", "é", "x" * 1024])),
    st.sampled_from(["x" * 1025, "é" * 513, "nul\0", "\ud800", 7, b"api", ["a"]]),
)
timeouts = mostly(
    st.sampled_from([None, None, 0, 0.0, -0.0, 0.001, 0.002, 1e-9, Fraction(1, 1000)]),
    st.sampled_from([-1, -0.5, float("nan"), float("-inf"), 10**400, -(10**400), True,
                     "0", b"0", [0], Fraction(-1, 2), Fraction(10**400), Decimal("0.001")]),
)
#: masks: the interesting ones by name (with and without DESTROY), then any
MASKS = [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x11, 0x13, 0x35, 0x37, 0x42, 0x77,
         2**64 - 1, 2**64 - 3]
masks = mostly(
    st.one_of(st.none(), st.sampled_from(MASKS), st.integers(0, 0x1FF)),
    st.sampled_from([2**64, -1, -(2**64), 1.0, "0x13", b"1", [1]]),
)
NAMES = ["vm1", "vm2", "é"]
dom_names = mostly(
    st.sampled_from(NAMES),
    st.sampled_from(["", "x" * 1025, "a\0b", "\udcff", 1, None, b"vm1"]),
)
lookup_names = st.one_of(dom_names, st.sampled_from([["vm1"], 1.5, ("vm1",)]))
reasons = mostly(st.sampled_from([None, "shutdown", "", "é", "x" * 1024]),
                 st.sampled_from(["x" * 1025, "a\0", 3, b"r"]))
driver_timeouts = st.sampled_from([0, 0.0, 0.001])
# libvirt 11: apiFlags, job data, restore's start, the yes/no arguments
api_flags = mostly(st.sampled_from([0, 0, 1, 0x8101, 2**32 - 1]),
                   st.sampled_from([-1, 2**32, True, 1.0, "1", None]))
job_states = kinds(JobState)
operations = mostly(st.one_of(st.none(), st.sampled_from(list(JobOperation))),
                    st.sampled_from([-1, 11, 2**40, 1.0, "save", Job.QUERY, JobState.ACTIVE]))
errors = mostly(st.one_of(st.none(), st.sampled_from(["disk full", "", "é" * 10])),
                st.sampled_from(["x" * 1025, "a\0", 3, b"e"]))
starts = mostly(st.sampled_from([None, 0, 1_715_000_000_000, 4_000_000_000_000]),
                st.sampled_from([-1, 2**63, 1.5, True, "0"]))
yes_no = mostly(st.booleans(), st.sampled_from([0, 1, None, "yes"]))


def _cleanup_a(dom):
    """A cleanup registered again and again: once only."""


class _Failing(Exception):
    pass


def _cleanup_fails(dom):
    raise _Failing("cleanup failed")


#: a rule of the machine that needs a domain handle
has_handles = precondition(lambda self: bool(self.handles))
