"""Hostile input: pinned examples with their documented outcomes (the
hypothesis search over every call is core/test_hostile.py)."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest

import pymigjob as mj
from _hostile_support import (
    A,
    dom_state,
    full_state,
    IntLike,
    J,
    P,
    setup_state,
    Weird,
    WeirdInt,
)


# ---- a few pinned examples (documented outcomes) ------------------------------------

@pytest.mark.parametrize("value, exc", [
    (2**64, ValueError), (-1, ValueError), (99, ValueError), (10**100, ValueError),
    (1.0, TypeError), ("1", TypeError), (None, TypeError),
    (b"\x01", TypeError), (IntLike(1), TypeError),
])
def test_begin_job_bad_kind_pinned(value, exc):
    drv, dom, _ = setup_state("idle")
    before = dom_state(dom)
    with pytest.raises(exc):
        dom.begin_job(value)
    assert dom_state(dom) == before


@pytest.mark.parametrize("call", [
    lambda d, v: d.begin_job(v), lambda d, v: d.begin_async_job(v),
    lambda d, v: d.migration_job_start(v), lambda d, v: d.check_migration_job(v),
], ids=["begin_job", "begin_async_job", "migration_job_start", "check_migration_job"])
@pytest.mark.parametrize("value", [True, Decimal("4.9"), Fraction(9, 2), WeirdInt()],
                         ids=["True", "Decimal", "Fraction", "raising __int__"])
def test_kind_with_dunder_int_is_type_error(call, value):
    drv, dom, _ = setup_state("idle")
    before = dom_state(dom)
    with pytest.raises(TypeError):
        call(dom, value)
    assert dom_state(dom) == before


@pytest.mark.parametrize("timeout, exc", [
    (math.nan, ValueError), (-1, ValueError), (-math.inf, ValueError),
    (10**400, ValueError), ("1", TypeError), (True, TypeError), (1j, TypeError),
])
def test_begin_job_bad_timeout_pinned(timeout, exc):
    drv, dom, _ = setup_state("idle")
    before = dom_state(dom)
    with pytest.raises(exc):
        dom.begin_job(J.QUERY, timeout=timeout)
    assert dom_state(dom) == before


@pytest.mark.parametrize("timeout", [math.inf, 1e300, 2**64, 9.3e9])
def test_huge_timeouts_are_accepted(timeout):
    drv, dom, _ = setup_state("idle")
    dom.begin_job(J.QUERY, timeout=timeout)
    assert dom.end_job() == 1


@pytest.mark.parametrize("method", ["lookup", "remove_domain"])
@pytest.mark.parametrize("name", [b"vm1", Weird(), [1], 1], ids=["bytes", "weird", "list", "int"])
def test_driver_name_must_be_str(method, name):
    drv, dom, _ = setup_state("idle")
    before = dom_state(dom)
    with pytest.raises(TypeError, match="must be a str"):
        getattr(drv, method)(name)
    assert dom_state(dom) == before and drv.domains() == ["vm1", "vm2"]


def test_dead_listed_domain_is_gone():
    # a domain unref'd to 0 while listed is no longer in the list: lookup and
    # remove_domain raise NoDomain, domains() omits it, its name is free again
    drv, dom, _ = setup_state("dead")
    assert drv.domains() == ["vm2"]
    for call in (drv.lookup, drv.remove_domain):
        with pytest.raises(mj.NoDomain):
            call("vm1")
    assert drv.domains() == ["vm2"] and "vm1" not in drv
    assert drv.add_domain("vm1").refs == 1


@pytest.mark.parametrize("api", [1, b"x", "a\0b", "a" * 1025])
def test_migration_phase_bad_api_changes_nothing(api):
    drv = mj.Driver()
    dom = drv.add_domain("vm1")
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3, api="begin3"):
        pass
    before = dom_state(dom)
    assert before[1] == 1 and dom.async_job == A.MIGRATION_OUT
    with pytest.raises((TypeError, ValueError)):
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3, api=api):
            pass
    assert dom_state(dom) == before


@pytest.mark.parametrize("parked", [True, False], ids=["parked", "running"])
def test_strict_refused_migration_phase_changes_nothing(parked):
    # The hostile test's rare failure ("migration_phase raised InternalError
    # ... and changed the state"): under strict_phases a refused phase in
    # migration_phase(...) gave its reference back with
    # migration_job_continue, which also parks the job -- the async owner
    # thread went from this thread to 0 when the job was running.  Now it
    # gives back only the reference, so nothing changes, parked or not.
    drv, dom, other = setup_state("strict")   # PERFORM3 started by this thread
    if parked:
        dom.migration_job_continue()
    handles = [dom, other]
    before = full_state([drv], handles)
    assert (dom.async_owner_thread == 0) is parked
    with pytest.raises(mj.InternalError, match="going backwards"):
        dom.migration_phase(A.MIGRATION_OUT, P.BEGIN3).__enter__()
    assert full_state([drv], handles) == before
