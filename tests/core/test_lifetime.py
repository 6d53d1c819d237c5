"""Domain lifetime: references, lookups, removal and dead handles (api.md item 7,
DECISIONS.md)."""

from __future__ import annotations

import gc
import threading

import pytest

import pymigjob as mj
from _mjhelpers import DEADLINE, started

A = mj.AsyncJob
J = mj.Job
P = mj.Phase
GONE = "no domain with matching name 'vm1'"

DEAD_PROPERTIES = ["active_job", "async_job", "phase", "mask", "jobs_queued", "owner_api",
                   "async_owner_api", "job_info", "abort_requested", "owner_thread",
                   "async_owner_thread"]
DEAD_CALLS = [
    ("ref", lambda d: d.ref()),
    ("unref", lambda d: d.unref()),
    ("begin_job", lambda d: d.begin_job(J.QUERY, timeout=DEADLINE)),
    ("end_job", lambda d: d.end_job()),
    ("begin_async_job", lambda d: d.begin_async_job(A.SAVE, timeout=DEADLINE)),
    ("end_async_job", lambda d: d.end_async_job()),
    ("set_async_job_mask", lambda d: d.set_async_job_mask(0)),
    ("begin_nested_job", lambda d: d.begin_nested_job(A.SAVE, timeout=DEADLINE)),
    ("end_nested_job", lambda d: d.end_nested_job()),
    ("migration_job_start", lambda d: d.migration_job_start(A.MIGRATION_OUT)),
    ("migration_job_set_phase", lambda d: d.migration_job_set_phase(P.BEGIN3)),
    ("migration_job_start_phase", lambda d: d.migration_job_start_phase(P.PERFORM3)),
    ("migration_job_continue", lambda d: d.migration_job_continue()),
    ("check_migration_job", lambda d: d.check_migration_job(A.MIGRATION_OUT)),
    ("migration_job_finish", lambda d: d.migration_job_finish()),
    ("abort_job", lambda d: d.abort_job(timeout=DEADLINE)),
    ("check_abort", lambda d: d.check_abort()),
    ("with job", lambda d: d.job(J.QUERY).__enter__()),
    ("with nested_job", lambda d: d.nested_job(A.SAVE).__enter__()),
    ("with migration", lambda d: d.migration(A.MIGRATION_OUT, P.BEGIN3).__enter__()),
    ("with migration_phase",
     lambda d: d.migration_phase(A.MIGRATION_OUT, P.PERFORM3).__enter__()),
]


@pytest.fixture
def dead(drv):
    dom = drv.add_domain("vm1")
    assert drv.remove_domain("vm1") == 0
    return dom


# ---- lookups take no reference ------------------------------------------------------

def test_add_domain_starts_with_one_ref(drv):
    dom = drv.add_domain("vm1")
    assert dom.refs == 1
    assert dom.alive is True
    assert isinstance(dom, mj.Domain)


def test_lookup_takes_no_reference_and_returns_same_handle(drv, dom):
    handles = [drv.lookup("vm1") for _ in range(50)]
    assert all(h is dom for h in handles)
    assert dom.refs == 1
    del handles
    gc.collect()
    assert dom.refs == 1


def test_handles_never_count(drv):
    dom = drv.add_domain("vm1")
    dom.begin_job(J.MODIFY)
    del dom
    gc.collect()
    again = drv.lookup("vm1")
    assert again.refs == 2  # the state lives in the domain, not in the handle
    assert again.active_job == J.MODIFY
    assert again.end_job() == 1


def test_lookup_unknown(drv):
    with pytest.raises(mj.NoDomain) as ei:
        drv.lookup("vm1")
    assert ei.value.message == GONE


def test_lookup_is_exact(drv, dom):
    for name in ("VM1", "vm1 ", "vm", ""):
        with pytest.raises(mj.NoDomain):
            drv.lookup(name)


# ---- ref / unref ------------------------------------------------------------------------

def test_ref_unref(dom):
    assert dom.ref() == 2
    assert dom.ref() == 3
    assert dom.refs == 3
    assert dom.unref() == 2
    assert dom.unref() == 1
    assert dom.alive


def test_unref_to_zero_frees(dom):
    assert dom.unref() == 0
    assert dom.alive is False
    assert dom.refs == 0
    assert dom.name == "vm1"
    with pytest.raises(mj.NoDomain) as ei:
        dom.begin_job(J.QUERY)
    assert ei.value.message == GONE


def test_extra_ref_keeps_removed_domain_alive(drv, dom):
    dom.ref()
    assert drv.remove_domain("vm1") == 1
    assert dom.alive
    with pytest.raises(mj.NoDomain):
        drv.lookup("vm1")
    with pytest.raises(mj.NoDomain) as ei:  # a removed domain takes no new jobs
        dom.begin_job(J.QUERY, timeout=DEADLINE)
    assert ei.value.message == GONE
    assert dom.refs == 1
    assert dom.unref() == 0
    assert not dom.alive


# ---- remove_domain ---------------------------------------------------------------------

def test_remove_domain_returns_refs_left(drv, dom):
    dom.begin_job(J.MODIFY)
    assert drv.remove_domain("vm1") == 1
    assert dom.alive
    assert dom.active_job == J.MODIFY  # a held job is left alone
    assert dom.end_job() == 0
    assert not dom.alive


def test_remove_domain_unknown(drv):
    with pytest.raises(mj.NoDomain) as ei:
        drv.remove_domain("vm1")
    assert ei.value.message == GONE
    assert ei.value.code == mj.ErrorCode.NO_DOMAIN


def test_remove_domain_twice(drv, dom):
    assert drv.remove_domain("vm1") == 0
    with pytest.raises(mj.NoDomain):
        drv.remove_domain("vm1")


def test_remove_domain_with_held_job_twice(drv, dom):
    dom.begin_job(J.QUERY)
    drv.remove_domain("vm1")
    with pytest.raises(mj.NoDomain):
        drv.remove_domain("vm1")
    assert dom.refs == 1
    dom.end_job()


def test_remove_parked_migration_frees_domain(drv, dom):
    # between two migration APIs only the list holds the domain (§6.2)
    with dom.migration(A.MIGRATION_OUT, P.BEGIN3):
        pass
    assert dom.refs == 1
    assert drv.remove_domain("vm1") == 0
    assert not dom.alive
    with pytest.raises(mj.NoDomain):  # the next phase's lookup fails
        drv.lookup("vm1")
    with pytest.raises(mj.NoDomain):
        with dom.migration_phase(A.MIGRATION_OUT, P.PERFORM3):
            pytest.fail("block must not run")


def test_add_again_after_removal_is_a_new_domain(drv, dom):
    dom.begin_job(J.MODIFY)
    drv.remove_domain("vm1")
    new = drv.add_domain("vm1")
    assert new is not dom
    assert drv.lookup("vm1") is new
    assert new.refs == 1 and new.active_job == J.NONE
    new.begin_job(J.MODIFY, timeout=1.0)  # independent of the old one's job
    assert new.end_job() == 1
    assert dom.end_job() == 0
    assert not dom.alive
    assert new.alive


# ---- dead handles -------------------------------------------------------------------

def test_dead_handle_basic_reads(dead):
    assert dead.alive is False
    assert dead.refs == 0
    assert dead.name == "vm1"


@pytest.mark.parametrize("prop", DEAD_PROPERTIES)
def test_dead_handle_properties_raise(dead, prop):
    with pytest.raises(mj.NoDomain) as ei:
        getattr(dead, prop)
    assert ei.value.message == GONE


@pytest.mark.parametrize("label, call", DEAD_CALLS, ids=[c[0] for c in DEAD_CALLS])
def test_dead_handle_calls_raise(dead, label, call):
    with pytest.raises(mj.NoDomain) as ei:
        call(dead)
    assert ei.value.message == GONE
    assert dead.refs == 0 and not dead.alive


def test_dead_handle_is_active(dead):
    # api.md: migration_job_is_active never raises; DECISIONS: every call on a
    # dead handle raises NoDomain.  Either way it must not claim a job.
    try:
        assert dead.migration_job_is_active(A.MIGRATION_OUT) is False
    except mj.NoDomain:
        pass


def test_dead_handle_survives_driver_and_gc(drv):
    dom = drv.add_domain("vm1")
    drv.remove_domain("vm1")
    del drv
    gc.collect()
    assert dom.refs == 0
    with pytest.raises(mj.NoDomain):
        dom.begin_job(J.QUERY)


def test_handle_outliving_its_driver_does_not_crash():
    drv = mj.Driver(job_wait_timeout=1.0)
    dom = drv.add_domain("vm1")
    del drv
    gc.collect()
    try:
        dom.begin_job(J.QUERY)
    except mj.NoDomain:
        assert dom.refs == 0
    else:
        assert dom.end_job() == 1


def test_concurrent_readers_while_domain_dies(drv):
    """Readers hammer a handle from other threads while it is freed: every
    read either succeeds or raises NoDomain, never anything else."""
    for round_ in range(30):
        dom = drv.add_domain(f"vm{round_}")
        go = threading.Event()

        def reader():
            go.wait(DEADLINE)
            outcomes = set()
            for _ in range(300):
                try:
                    dom.active_job, dom.jobs_queued, dom.owner_api, dom.job_info
                    dom.migration_job_set_phase(P.BEGIN3)
                    dom.check_abort()
                    outcomes.add("ok")
                except mj.NoDomain:
                    outcomes.add("gone")
            return outcomes

        readers = [started(reader) for _ in range(2)]
        dom.begin_job(J.QUERY)
        go.set()
        drv.remove_domain(f"vm{round_}")
        assert dom.end_job() == 0
        for r in readers:
            assert r.join_ok() <= {"ok", "gone"}
        assert not dom.alive
