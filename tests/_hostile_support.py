"""The hostile-input tests' material (core/test_hostile.py and
core/test_hostile_pinned.py): hostile and plausible values, the calls and
their documented results, the domain states and their snapshots, and the
watchdog that ends an example whose begin would block."""

from __future__ import annotations

import math
import os
import threading
import time

from hypothesis import strategies as st

import pymigjob as mj
from pymigjob._c.binding import lib

J = mj.Job
A = mj.AsyncJob
P = mj.Phase
EXAMPLES = int(os.environ.get("MJ_HOSTILE_EXAMPLES", "300"))
WATCHDOG = 0.25


HUGE = [2**31 - 1, 2**31, -(2**31) - 1, 2**32, 2**63 - 1, 2**63, -(2**63) - 1,
        2**64 - 1, 2**64, -(2**64), 10**100, -(10**100), 2**1000]
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e-300, 5e-324, 1e300,
          1.7976931348623157e308, -1e-9, 0.5, 1.0]


class Weird:
    """An object whose conversions all misbehave (but has no __int__: see
    BUG 3 below for objects that have one)."""

    def __index__(self):
        raise RuntimeError("__index__ called")

    def __float__(self):
        raise RuntimeError("__float__ called")

    def __str__(self):
        raise RuntimeError("__str__ called")

    def __hash__(self):
        return 1

    def __eq__(self, other):
        raise RuntimeError("__eq__ called")


class WeirdInt:
    """Has an __int__ that raises."""

    def __int__(self):
        raise RuntimeError("__int__ called")


class IntLike:
    """Has __index__ but is not an int."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


HOSTILE = st.one_of(
    st.integers(),
    st.sampled_from(HUGE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(FLOATS),
    st.text(max_size=12),
    st.sampled_from(["", "\0", "vm\0", "a" * 1024, "a" * 1025, "é" * 513, "query",
                     "migration out", "perform2", "preform2", "vm1", "vm2", "\ud800"]),
    st.binary(max_size=8),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.sampled_from([object(), Weird(), IntLike(1), IntLike(2**70), 1 + 2j, b"\0",
                     bytearray(b"x"), memoryview(b"x"), float, int, Ellipsis]),
    st.sampled_from(list(J) + list(A) + list(P) + list(mj.JobType) + list(mj.AgentJob)
                    + list(mj.JobState) + list(mj.JobOperation)),
)
PLAUSIBLE = st.one_of(st.integers(-2, 11), st.sampled_from(list(J) + list(A) + list(P)),
                      st.none(), st.sampled_from(["api", "vm1", "x"]),
                      st.sampled_from([0.0, 0.001, 0.02]))
ARG = st.one_of(PLAUSIBLE, HOSTILE)

#: method: (positional parameter names, keyword-only-ish optional names)
DOMAIN_CALLS = {
    "ref": ((), ()),
    "unref": ((), ()),
    "begin_job": (("job",), ("api", "timeout", "nowait")),
    "end_job": ((), ()),
    "begin_async_job": (("async_job",), ("api", "timeout", "flags", "operation")),
    "end_async_job": ((), ("error",)),
    "set_async_job_mask": (("mask",), ()),
    "begin_nested_job": (("async_job",), ("api", "timeout")),
    "end_nested_job": ((), ()),
    "begin_agent_job": (("agent_job",), ("api", "timeout", "nowait")),
    "end_agent_job": ((), ()),
    "migration_job_start": (("async_job",), ("mask", "api", "timeout", "flags")),
    "migration_job_set_phase": (("phase",), ("api",)),
    "migration_job_start_phase": (("phase",), ("api",)),
    "migration_job_continue": ((), ("cleanup",)),
    "migration_job_is_active": (("async_job",), ()),
    "check_migration_job": (("async_job",), ()),
    "migration_job_finish": ((), ("error",)),
    # libvirt 11 (run_cleanups is left out: it runs the callables registered,
    # which here are whatever hypothesis passed as a cleanup)
    "migration_job_is_allowed": ((), ()),
    "release_async_job": ((), ()),
    "discard_async_job": ((), ()),
    "restore_async_job": (("async_job", "phase"), ("mask", "flags", "api", "started")),
    "mark_postcopy_failed": ((), ()),
    "clear_postcopy_failed": ((), ()),
    "migration_can_resume": (("async_job", "expected_phase"),
                             ("postcopy", "change_protection")),
    "set_job_state": (("state",), ("error", "stopped", "delta")),
    "job_stats": ((), ("completed", "keep_completed")),
    "remove_cleanup": (("cleanup",), ()),
    "abort_job": ((), ("api", "timeout")),
    "check_abort": ((), ()),
    "job": (("job",), ("api", "timeout")),
    "nested_job": (("async_job",), ("api", "timeout")),
    "migration": (("async_job", "phase"), ("api", "timeout", "mask")),
    "migration_phase": (("async_job", "phase"), ("api",)),
    "agent": (("agent_job",), ("api", "timeout")),
}
GUARDS = {"job", "nested_job", "migration", "migration_phase", "agent"}
INT_RESULTS = {"ref", "unref", "end_job", "end_async_job", "end_nested_job",
               "migration_job_continue", "migration_job_finish", "end_agent_job",
               "discard_async_job"}
BOOL_RESULTS = {"migration_job_set_phase", "migration_job_start_phase",
                "migration_job_is_active", "begin_job", "begin_async_job",
                "begin_nested_job", "migration_job_start", "begin_agent_job",
                "remove_cleanup"}
DRIVER_CALLS = {
    "add_domain": ("name",),
    "lookup": ("name",),
    "remove_domain": ("name",),
    "cancel_waiters": ("reason",),
    "__contains__": ("name",),
}
SNAPSHOT = ("active_job", "async_job", "phase", "mask", "jobs_queued", "owner_api",
            "async_owner_api", "owner_thread", "async_owner_thread", "abort_requested",
            "agent_job", "agent_owner_api", "agent_owner_thread",
            "api_flags", "async_paused", "postcopy")


def job_data_state(dom, **kw):
    """A job data record without its clock (elapsed)."""
    try:
        data = dom.job_stats(**kw)
    except mj.OperationUnsupported:  # a destination's current record
        return "unsupported"
    if data is None:
        return None
    return (data.state, data.operation, data.started, data.stopped, data.delta, data.error)


def dom_state(dom) -> tuple:
    base = (dom.name, dom.refs, dom.alive)
    if not dom.alive:
        return base
    return base + tuple(getattr(dom, p) for p in SNAPSHOT) + (
        dom.job_info.type, job_data_state(dom),
        job_data_state(dom, completed=True, keep_completed=True))


def expect_one_more_ref(state: tuple, handles) -> tuple:
    doms = list(state[1])
    doms[0] = doms[0][:1] + (doms[0][1] + 1,) + doms[0][2:]
    return (state[0], tuple(doms), state[2])


def expect_cancelled(state: tuple) -> tuple:
    doms = list(state[1])
    first = list(doms[0])
    at = 3 + len(SNAPSHOT)                          # job_info.type, then the record
    first[at] = mj.JobType.CANCELLED
    if isinstance(first[at + 1], tuple):
        first[at + 1] = (mj.JobState.CANCELED,) + first[at + 1][1:]
    doms[0] = tuple(first)
    return (state[0], tuple(doms), state[2])


def full_state(drivers, handles) -> tuple:
    return (tuple(tuple(d.domains()) for d in drivers),
            tuple(dom_state(h) for h in handles),
            lib.mj_pending_count())


class Watchdog:
    """Cancels a driver's waiters when a call has blocked for too long."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.target = None
        self.deadline = 0.0
        self.fired = False
        self.closed = False
        self.thread = threading.Thread(target=self.run, daemon=True, name="watchdog")
        self.thread.start()

    def run(self) -> None:
        with self.cond:
            while not self.closed:
                if self.target is None:
                    self.cond.wait()
                    continue
                left = self.deadline - time.monotonic()
                if left > 0:
                    self.cond.wait(left)
                    continue
                for drv in self.target:
                    drv.cancel_waiters("watchdog")
                self.fired = True
                self.target = None

    def arm(self, drivers) -> None:
        with self.cond:
            self.fired = False
            self.target = drivers
            self.deadline = time.monotonic() + WATCHDOG
            self.cond.notify()

    def disarm(self) -> bool:
        with self.cond:
            self.target = None
            return self.fired

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join()


def setup_state(state: str):
    """A driver with vm1 (the target) and vm2 in the given state."""
    drv = mj.Driver(job_wait_timeout=0.01,
                    strict_phases=state == "strict",
                    max_queued=1 if state == "max_queued" else 0)
    dom = drv.add_domain("vm1")
    other = drv.add_domain("vm2")
    if state == "sync":
        dom.begin_job(J.QUERY, api="q")
    elif state == "async":
        dom.begin_async_job(A.SAVE, api="save")
    elif state in ("migration", "strict"):
        with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3"):
            pass
        if state == "strict":
            dom.migration_job_start_phase(P.PERFORM3, api="perform3")
    elif state == "in_phase":
        with dom.migration(A.MIGRATION_IN, P.PREPARE, api="prepare"):
            pass
        dom.migration_job_start_phase(P.FINISH2, api="finish2")
    elif state == "nested":
        dom.migration_job_start(A.MIGRATION_OUT, api="perform3")
        dom.begin_nested_job(A.MIGRATION_OUT, api="monitor")
    elif state == "max_queued":
        dom.begin_async_job(A.DUMP)
    elif state == "aborted":
        dom.begin_async_job(A.SAVE)
        dom.abort_job()
    elif state == "removed":
        dom.begin_job(J.MODIFY, api="m")
        drv.remove_domain("vm1")
    elif state == "dead":
        dom.unref()
    elif state == "agent":
        dom.begin_agent_job(mj.AgentJob.MODIFY, api="ga")
    return drv, dom, other


STATES = ["idle", "sync", "async", "migration", "in_phase", "nested", "max_queued",
          "aborted", "removed", "dead", "strict", "agent"]
