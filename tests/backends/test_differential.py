"""Differential tests: the C-backed implementation against the pure twin.

A hypothesis state machine drives a C-backed Driver (pymigjob.driver) and a
pure one (pymigjob.pure) with the same random sequence of every public call,
good arguments and bad ones (kinds out of range, wrong types, None, unknown
strings, over-long and NUL-bearing names), single-threaded.  After every step
the two must agree on the result or on the exception (type, str, args), on
what was logged on logger ``pymigjob``, and on the full observable state of
every handle and of the drivers.  Blocked begins never block for long: the
drivers' default wait is 0 or 1 ms and per-call timeouts are at most 2 ms.

Deterministic by default (derandomize, no example database, 200 examples of up
to 50 steps): about 12 s on an idle machine.
``PYMIGJOB_DIFF_EXAMPLES=<n>`` runs more examples (and random ones when
``PYMIGJOB_DIFF_RANDOM=1``).

Inputs on which the two once differed are pinned by the tests at the end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import pymigjob.pure as pure  # noqa: E402
from pymigjob import enums  # noqa: E402

try:
    from pymigjob._c.driver import Driver as CDriver  # noqa: E402
except ImportError as exc:  # pragma: no cover - without the C core
    pytest.skip(f"the C core is not available: {exc}", allow_module_level=True)

Job, AsyncJob, Phase, JobType, ErrorCode = (enums.Job, enums.AsyncJob, enums.Phase,
                                            enums.JobType, enums.ErrorCode)
AgentJob = enums.AgentJob
JobState, JobOperation = enums.JobState, enums.JobOperation
PDriver = pure.Driver

EXAMPLES = int(os.environ.get("PYMIGJOB_DIFF_EXAMPLES", "0") or 0)
RANDOM = os.environ.get("PYMIGJOB_DIFF_RANDOM", "") not in ("", "0")

# ---- the state machine ----------------------------------------------------------

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


class DifferentialMachine(RuleBasedStateMachine):
    """One C-backed and one pure driver, driven in lockstep."""

    def __init__(self) -> None:
        super().__init__()
        self.c_drv: Any = None
        self.p_drv: Any = None
        self.handles: list[tuple[Any, Any]] = []   # every handle ever returned
        self.loop = asyncio.new_event_loop()

    def teardown(self) -> None:
        self.loop.close()

    def same(self, c_fn: Callable[[], Any], p_fn: Callable[[], Any]) -> tuple:
        c_out, p_out = run(c_fn), run(p_fn)
        assert p_out == c_out, f"\n   C: {c_out!r}\npure: {p_out!r}"
        return c_out

    @initialize(timeout=driver_timeouts, max_queued=st.sampled_from([0, 0, 1, 2, 3]),
                strict=st.booleans())
    def make_drivers(self, timeout, max_queued, strict):
        self.c_drv = CDriver(job_wait_timeout=timeout, max_queued=max_queued,
                             strict_phases=strict)
        self.p_drv = PDriver(job_wait_timeout=timeout, max_queued=max_queued,
                             strict_phases=strict)
        for name in NAMES[:2]:
            self._add_domain(name)

    # ---- the driver ----------------------------------------------------------

    @rule(timeout=st.one_of(driver_timeouts, st.sampled_from(
              [-1, float("nan"), "1", True, None, float("inf")])),
          max_queued=st.sampled_from([0, 1, 2**31 - 1, 2**31, -1, 1.0, True, None]),
          strict=st.sampled_from([False, True, 0, 1, None]))
    def construct_driver(self, timeout, max_queued, strict):
        """Constructor checks (the new drivers are not kept)."""
        self.same(lambda: CDriver(timeout, max_queued, strict),
                  lambda: PDriver(timeout, max_queued, strict))

    @rule(name=dom_names, uuid=uuids)
    def add_domain(self, name, uuid):
        self._add_domain(name, uuid)

    def _add_domain(self, name, uuid=None):
        c_out = self.same(lambda: self.c_drv.add_domain(name, uuid=uuid),
                          lambda: self.p_drv.add_domain(name, uuid=uuid))
        if c_out[0] == "ok":
            self.handles.append((self.c_drv.lookup(name), self.p_drv.lookup(name)))

    @rule(name=lookup_names)
    def lookup(self, name):
        c_out = self.same(lambda: self.c_drv.lookup(name), lambda: self.p_drv.lookup(name))
        if c_out[0] == "ok":
            c_dom, p_dom = self.c_drv.lookup(name), self.p_drv.lookup(name)
            # the same handle object each time, and the one add_domain gave
            assert c_dom is self.c_drv.lookup(name) and p_dom is self.p_drv.lookup(name)
            assert [c for c, _ in self.handles if c is c_dom] \
                and [p for _, p in self.handles if p is p_dom]

    @rule(data=st.data(), what=st.sampled_from(["remove_domain", "cancel_waiters", "unref"]))
    def destroy(self, data, what):
        """The calls that end a domain's useful life, one rule for the three so
        that the machine does not spend most runs on dead domains."""
        if what == "remove_domain":
            name = data.draw(lookup_names, label="name")
            self.same(lambda: self.c_drv.remove_domain(name),
                      lambda: self.p_drv.remove_domain(name))
        elif what == "cancel_waiters":
            reason = data.draw(reasons, label="reason")
            if reason is None:
                self.same(self.c_drv.cancel_waiters, self.p_drv.cancel_waiters)
            else:
                self.same(lambda: self.c_drv.cancel_waiters(reason),
                          lambda: self.p_drv.cancel_waiters(reason))
        elif self.handles:
            self.both(data, lambda d: d.unref())

    # ---- a handle ----------------------------------------------------------------

    def pick(self, data) -> tuple[Any, Any]:
        """A handle: mostly one of a domain still on the list."""
        listed = [h for h in self.handles
                  if h[0].alive and self.c_drv._domains.get(h[0].name) is h[0]]
        if listed and data.draw(st.integers(0, 4), label="listed") > 0:
            return data.draw(st.sampled_from(listed), label="handle")
        return data.draw(st.sampled_from(self.handles), label="handle")

    def both(self, data, call: Callable[[Any], Any]) -> tuple:
        c_dom, p_dom = self.pick(data)
        return self.same(lambda: call(c_dom), lambda: call(p_dom))

    has_handles = precondition(lambda self: bool(self.handles))

    @has_handles
    @rule(data=st.data())
    def ref(self, data):
        self.both(data, lambda d: d.ref())

    @has_handles
    @rule(data=st.data(), job=sync_jobs, api=api_names, timeout=timeouts)
    def begin_job(self, data, job, api, timeout):
        self.both(data, lambda d: d.begin_job(job, api=api, timeout=timeout))

    @has_handles
    @rule(data=st.data(), job=sync_jobs, api=api_names, timeout=timeouts)
    def begin_job_positional(self, data, job, api, timeout):
        self.both(data, lambda d: d.begin_job(job, api, timeout))

    @has_handles
    @rule(data=st.data(), job=sync_jobs, api=api_names, nowait=nowaits)
    def begin_job_nowait(self, data, job, api, nowait):
        self.both(data, lambda d: d.begin_job(job, api=api, nowait=nowait))

    @has_handles
    @rule(data=st.data())
    def end_job(self, data):
        self.both(data, lambda d: d.end_job())

    # ---- agent jobs ------------------------------------------------------------------

    @has_handles
    @rule(data=st.data(), kind=agent_jobs, api=api_names, timeout=timeouts, nowait=nowaits)
    def begin_agent_job(self, data, kind, api, timeout, nowait):
        self.both(data, lambda d: d.begin_agent_job(kind, api=api, timeout=timeout,
                                                    nowait=nowait))

    @has_handles
    @rule(data=st.data(), kind=agent_jobs, api=api_names, timeout=timeouts)
    def begin_agent_job_positional(self, data, kind, api, timeout):
        self.both(data, lambda d: d.begin_agent_job(kind, api, timeout))

    @has_handles
    @rule(data=st.data())
    def end_agent_job(self, data):
        self.both(data, lambda d: d.end_agent_job())

    @has_handles
    @rule(data=st.data(), kind=agent_jobs, api=api_names, timeout=timeouts)
    def begin_agent_job_async(self, data, kind, api, timeout):
        self.both(data, lambda d: self.loop.run_until_complete(
            d.begin_agent_job_async(kind, api=api, timeout=timeout)))

    @has_handles
    @rule(data=st.data(), kind=agent_jobs, api=api_names, timeout=timeouts, boom=st.booleans())
    def agent_block(self, data, kind, api, timeout, boom):
        def body(d):
            with d.agent(kind, api=api, timeout=timeout) as held:
                inside = state_of(held)
                if boom:
                    raise Boom("in the block")
            return inside
        self.both(data, body)

    @has_handles
    @rule(data=st.data(), kind=async_jobs, api=api_names, timeout=timeouts)
    def begin_async_job(self, data, kind, api, timeout):
        self.both(data, lambda d: d.begin_async_job(kind, api=api, timeout=timeout))

    @has_handles
    @rule(data=st.data(), kind=st.sampled_from(list(AsyncJob)[1:]),
          mask=st.one_of(st.none(), st.sampled_from(MASKS)),
          api=st.sampled_from([None, "begin3", "prepare"]),
          how=st.sampled_from(["begin_async_job", "migration_job_start"]))
    def start_async_job(self, data, kind, mask, api, how):
        """Good arguments only: the async states are where most rules matter."""
        if how == "begin_async_job":
            self.both(data, lambda d: d.begin_async_job(kind, api=api))
        else:
            self.both(data, lambda d: d.migration_job_start(kind, mask=mask, api=api))

    @has_handles
    @rule(data=st.data())
    def end_async_job(self, data):
        self.both(data, lambda d: d.end_async_job())

    @has_handles
    @rule(data=st.data(), mask=masks)
    def set_async_job_mask(self, data, mask):
        self.both(data, lambda d: d.set_async_job_mask(mask))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, api=api_names, timeout=timeouts)
    def begin_nested_job(self, data, kind, api, timeout):
        self.both(data, lambda d: d.begin_nested_job(kind, api=api, timeout=timeout))

    @has_handles
    @rule(data=st.data())
    def end_nested_job(self, data):
        self.both(data, lambda d: d.end_nested_job())

    @has_handles
    @rule(data=st.data(), kind=async_jobs, mask=masks, api=api_names, timeout=timeouts)
    def migration_job_start(self, data, kind, mask, api, timeout):
        self.both(data, lambda d: d.migration_job_start(kind, mask=mask, api=api,
                                                        timeout=timeout))

    @has_handles
    @rule(data=st.data(), phase=phases, api=api_names)
    def migration_job_set_phase(self, data, phase, api):
        self.both(data, lambda d: d.migration_job_set_phase(phase, api=api))

    @has_handles
    @rule(data=st.data(), phase=phases, api=api_names)
    def migration_job_start_phase(self, data, phase, api):
        self.both(data, lambda d: d.migration_job_start_phase(phase, api=api))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, new_phase=phases, api=api_names)
    def migration_job_claim_parked(self, data, kind, phase, new_phase, api):
        self.both(data, lambda d: d.migration_job_claim_parked(kind, phase, new_phase, api=api))

    @has_handles
    @rule(data=st.data())
    def migration_job_continue(self, data):
        self.both(data, lambda d: d.migration_job_continue())

    @has_handles
    @rule(data=st.data(), kind=async_jobs)
    def migration_job_is_active(self, data, kind):
        self.both(data, lambda d: d.migration_job_is_active(kind))

    @has_handles
    @rule(data=st.data(), kind=async_jobs)
    def check_migration_job(self, data, kind):
        self.both(data, lambda d: d.check_migration_job(kind))

    @has_handles
    @rule(data=st.data())
    def migration_job_finish(self, data):
        self.both(data, lambda d: d.migration_job_finish())

    @has_handles
    @rule(data=st.data(), api=api_names, timeout=timeouts)
    def abort_job(self, data, api, timeout):
        self.both(data, lambda d: d.abort_job(api=api, timeout=timeout))

    @has_handles
    @rule(data=st.data())
    def check_abort(self, data):
        self.both(data, lambda d: d.check_abort())

    # ---- libvirt 11: the async job's life, post-copy, job data --------------------

    @has_handles
    @rule(data=st.data(), kind=async_jobs, api=api_names, flags=api_flags, op=operations)
    def begin_async_job_flags(self, data, kind, api, flags, op):
        self.both(data, lambda d: d.begin_async_job(kind, api, 0, flags, operation=op))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, mask=masks, flags=api_flags)
    def migration_job_start_flags(self, data, kind, mask, flags):
        self.both(data, lambda d: d.migration_job_start(kind, mask, None, 0, flags))

    @has_handles
    @rule(data=st.data(), kind=aio_async_jobs, api=api_names, timeout=timeouts,
          mask=masks, flags=api_flags, start=st.booleans())
    def async_begins_flags(self, data, kind, api, timeout, mask, flags, start):
        if start:
            self.both(data, lambda d: self.loop.run_until_complete(
                d.migration_job_start_async(kind, mask, api, timeout, flags)))
        else:
            self.both(data, lambda d: self.loop.run_until_complete(
                d.begin_async_job_async(kind, api, timeout, flags)))

    @has_handles
    @rule(data=st.data(), how=st.sampled_from(["is_allowed", "release", "discard", "mark",
                                                "clear", "run_cleanups", "remove_cleanup"]))
    def async_life(self, data, how):
        calls = {"is_allowed": lambda d: d.migration_job_is_allowed(),
                 "release": lambda d: d.release_async_job(),
                 "discard": lambda d: d.discard_async_job(),
                 "mark": lambda d: d.mark_postcopy_failed(),
                 "clear": lambda d: d.clear_postcopy_failed(),
                 "run_cleanups": lambda d: d.run_cleanups(),
                 "remove_cleanup": lambda d: d.remove_cleanup(_cleanup_a)}
        self.both(data, calls[how])

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, mask=masks, flags=api_flags,
          api=api_names, started=starts)
    def restore_async_job(self, data, kind, phase, mask, flags, api, started):
        self.both(data, lambda d: d.restore_async_job(kind, phase, mask=mask, flags=flags,
                                                      api=api, started=started))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, postcopy=yes_no, cp=yes_no)
    def migration_can_resume(self, data, kind, phase, postcopy, cp):
        self.both(data, lambda d: d.migration_can_resume(kind, phase, postcopy=postcopy,
                                                         change_protection=cp))

    @has_handles
    @rule(data=st.data(), state=job_states, error=errors, stopped=yes_no,
          delta=mostly(st.one_of(st.none(), st.sampled_from([0.0, -1.5, 0.25, 3])),
                       st.sampled_from([float("nan"), float("inf"), "1", True, 10**400])))
    def set_job_state(self, data, state, error, stopped, delta):
        self.both(data, lambda d: d.set_job_state(state, error, stopped=stopped,
                                                  delta=delta))

    @has_handles
    @rule(data=st.data(), completed=yes_no, keep=yes_no)
    def job_stats(self, data, completed, keep):
        self.both(data, lambda d: d.job_stats(completed, keep))

    @has_handles
    @rule(data=st.data(), error=errors, finish=st.booleans())
    def end_async_job_error(self, data, error, finish):
        if finish:
            self.both(data, lambda d: d.migration_job_finish(error))
        else:
            self.both(data, lambda d: d.end_async_job(error=error))

    @has_handles
    @rule(data=st.data(), which=st.sampled_from(["same", "fails", "new", "bad"]))
    def migration_job_continue_cleanup(self, data, which):
        cleanup = {"same": _cleanup_a, "fails": _cleanup_fails, "new": lambda d: None,
                   "bad": 5}[which]
        self.both(data, lambda d: d.migration_job_continue(cleanup))

    # ---- asyncio begins ---------------------------------------------------------

    @has_handles
    @rule(data=st.data(), job=aio_sync_jobs, api=api_names, timeout=timeouts)
    def begin_job_async(self, data, job, api, timeout):
        self.both(data, lambda d: self.loop.run_until_complete(
            d.begin_job_async(job, api=api, timeout=timeout)))

    @has_handles
    @rule(data=st.data(), kind=aio_async_jobs, api=api_names, timeout=timeouts)
    def begin_async_job_async(self, data, kind, api, timeout):
        self.both(data, lambda d: self.loop.run_until_complete(
            d.begin_async_job_async(kind, api=api, timeout=timeout)))

    @has_handles
    @rule(data=st.data(), job=aio_sync_jobs, api=api_names, boom=st.booleans())
    def job_async_block(self, data, job, api, boom):
        async def body(d):
            async with d.job_async(job, api=api, timeout=0) as held:
                inside = state_of(held)
                if boom:
                    raise Boom("in the block")
                return inside
        self.both(data, lambda d: self.loop.run_until_complete(body(d)))

    # ---- context managers ---------------------------------------------------------

    @has_handles
    @rule(data=st.data(), job=sync_jobs, api=api_names, timeout=timeouts, boom=st.booleans())
    def job_block(self, data, job, api, timeout, boom):
        def body(d):
            with d.job(job, api=api, timeout=timeout) as held:
                inside = state_of(held)
                if boom:
                    raise Boom("in the block")
            return inside
        self.both(data, body)

    @has_handles
    @rule(data=st.data(), kind=async_jobs, api=api_names, timeout=timeouts, boom=st.booleans())
    def nested_job_block(self, data, kind, api, timeout, boom):
        def body(d):
            with d.nested_job(kind, api=api, timeout=timeout) as held:
                inside = state_of(held)
                if boom:
                    raise Boom("in the block")
            return inside
        self.both(data, body)

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, api=api_names, timeout=timeouts,
          mask=masks, then=phases,
          how=st.sampled_from(["continue", "finish", "boom", "finish_twice", "set_phase"]))
    def migration_block(self, data, kind, phase, api, timeout, mask, then, how):
        def body(d):
            with d.migration(kind, phase, api=api, timeout=timeout, mask=mask) as mig:
                return self.block_body(d, mig, then, how)
        self.both(data, body)

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, api=api_names, then=phases,
          how=st.sampled_from(["continue", "finish", "boom", "finish_twice", "set_phase"]))
    def migration_phase_block(self, data, kind, phase, api, then, how):
        def body(d):
            with d.migration_phase(kind, phase, api=api) as mig:
                return self.block_body(d, mig, then, how)
        self.both(data, body)

    @staticmethod
    def block_body(d, mig, then, how):
        inside = [state_of(d), mig.phase, mig.domain.name]
        if how == "set_phase":
            inside.append(mig.set_phase(then, api="inside"))
        elif how == "finish":
            inside.append(mig.finish())
        elif how == "finish_twice":
            inside.append(mig.finish())
            mig.finish()
        elif how == "boom":
            raise Boom("in the migration block")
        return inside

    # ---- the observable state, after every step -----------------------------------

    @invariant()
    def same_state(self):
        if self.c_drv is None:
            return
        c_drv, p_drv = self.c_drv, self.p_drv
        assert p_drv.domains() == c_drv.domains()
        assert len(p_drv) == len(c_drv)
        for name in NAMES + ["", "nope"]:
            assert (name in p_drv) == (name in c_drv)
        assert (p_drv.job_wait_timeout, p_drv.max_queued, p_drv.strict_phases) == \
            (c_drv.job_wait_timeout, c_drv.max_queued, c_drv.strict_phases)
        for c_dom, p_dom in self.handles:
            c_state, p_state = state_of(c_dom), state_of(p_dom)
            assert p_state == c_state, f"\n   C: {c_state!r}\npure: {p_state!r}"


def _settings() -> settings:
    return settings(
        max_examples=EXAMPLES or 200,
        stateful_step_count=50,
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


DifferentialMachine.TestCase.settings = _settings()
TestDifferential = DifferentialMachine.TestCase


# ---- inputs on which the C-backed side once broke the contract ----------------------

def _both_drivers():
    c_dom = CDriver(job_wait_timeout=0).add_domain("vm1")
    p_dom = PDriver(job_wait_timeout=0).add_domain("vm1")
    return c_dom, p_dom


@pytest.mark.parametrize("kind", INT_LIKE, ids=repr)
@pytest.mark.parametrize("method", ["begin_job_async", "begin_async_job_async"])
def test_known_aio_int_like_kinds(method, kind):
    c_dom, p_dom = _both_drivers()

    def call(d):
        asyncio.run(getattr(d, method)(kind))

    assert run(lambda: call(p_dom)) == run(lambda: call(c_dom))
    assert state_of(p_dom) == state_of(c_dom)


def test_known_job_status_empty_api():
    c_dom, p_dom = _both_drivers()
    for d in (c_dom, p_dom):
        d.begin_async_job(AsyncJob.MIGRATION_OUT, api="")
    assert c_dom.async_owner_api == p_dom.async_owner_api == ""
    assert c_dom.job_status().owner_api == p_dom.job_status().owner_api


def test_known_driver_timeout_overflow():
    assert run(lambda: PDriver(10**400)) == run(lambda: CDriver(10**400))
