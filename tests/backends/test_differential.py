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
import os
from typing import Any, Callable

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import pymigjob.pure as pure  # noqa: E402
from pymigjob import enums  # noqa: E402

try:
    from pymigjob._c.driver import Driver as CDriver  # noqa: E402
except ImportError as exc:  # pragma: no cover - without the C core
    pytest.skip(f"the C core is not available: {exc}", allow_module_level=True)

from _differential_support import (  # noqa: E402
    agent_jobs,
    aio_async_jobs,
    aio_sync_jobs,
    api_names,
    async_jobs,
    Boom,
    dom_names,
    driver_timeouts,
    has_handles,
    INT_LIKE,
    lookup_names,
    MASKS,
    masks,
    NAMES,
    nowaits,
    phases,
    reasons,
    run,
    state_of,
    sync_jobs,
    timeouts,
    uuids,
)
from _differential_libvirt11 import Libvirt11Rules  # noqa: E402

AsyncJob = enums.AsyncJob
PDriver = pure.Driver

EXAMPLES = int(os.environ.get("PYMIGJOB_DIFF_EXAMPLES", "0") or 0)
RANDOM = os.environ.get("PYMIGJOB_DIFF_RANDOM", "") not in ("", "0")

# ---- the state machine ----------------------------------------------------------

class DifferentialMachine(Libvirt11Rules, RuleBasedStateMachine):
    """One C-backed and one pure driver, driven in lockstep (libvirt 11's
    async job calls: tests/_differential_libvirt11.py)."""

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
