"""Abandoned migrations (§7.3): Driver.abandon() and the park timeout."""

from __future__ import annotations

import logging
import threading
import time

import pytest

import pymigjob as mj
from pymigjob.persist.abandon import ABANDON_API, AbandonAction
from pymigjob.persist.status import JobStatus
from pymigjob.store import MemoryStore

from _mjhelpers import wait_until

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


class Saves(MemoryStore):
    def __init__(self):
        super().__init__()
        self.log = []

    def save(self, name, status):
        super().save(name, status)
        self.log.append((status.async_job, status.phase, status.owner_api))


def park(dom, async_job, *phases, api="api"):
    """A migration parked after `phases` (start, phases, continue)."""
    dom.migration_job_start(async_job, api=api)
    for ph in phases:
        dom.migration_job_set_phase(ph)
    dom.migration_job_continue()


@pytest.fixture
def calls():
    return []


@pytest.fixture
def adrv(calls):
    store = Saves()
    d = mj.Driver(job_wait_timeout=5.0, store=store, on_abandon=calls.append)
    yield d
    d.close()


def test_parked_after_begin3_is_cancelled(adrv, calls):
    dom = adrv.add_domain("vm1")
    park(dom, OUT, P.BEGIN3, api="begin3")
    adrv.store.log.clear()
    out = adrv.abandon("vm1")
    assert out.action == AbandonAction.CANCELLED and out.parked and out.reason == "explicit"
    assert out.status == JobStatus(J.NONE, OUT, P.BEGIN3, "begin3", out.status.started)
    assert out.warning is None
    assert dom.job_status() == JobStatus() and dom.refs == 1
    # modern libvirt: StartPhase(CONFIRM3_CANCELLED), then Finish
    assert adrv.store.log == [(OUT, P.CONFIRM3_CANCELLED, ABANDON_API), (A.NONE, P.NONE, None)]
    assert calls == [out]
    assert str(out).startswith("vm1: job=none async=migration out phase=begin3 -> cancelled")


def test_parked_after_perform3_done_is_cancelled_with_a_warning(adrv, calls, caplog):
    dom = adrv.add_domain("vm1")
    park(dom, OUT, P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE)
    with caplog.at_level(logging.WARNING, logger="pymigjob"):
        out = adrv.abandon("vm1")
    assert out.action == AbandonAction.CANCELLED
    text = ("Migration of domain vm1 finished but we don't know if the domain was "
            "successfully started on destination or not")
    assert out.warning == text
    assert text in caplog.text
    assert "The connection which controls migration of domain vm1 was closed" in caplog.text
    assert dom.job_status().idle and dom.refs == 1
    assert calls == [out]


def test_parked_prepare_is_left_for_auto_destroy(adrv, calls):
    dom = adrv.add_domain("vm1")
    park(dom, IN, P.PREPARE)
    out = adrv.abandon("vm1")
    assert out.action == AbandonAction.NOTHING and out.parked
    assert "auto-destroyed" in out.why
    assert dom.async_job == IN and dom.phase == P.PREPARE  # untouched
    assert calls == [out]  # the daemon is told, so it can destroy the domain
    dom.migration_job_finish()


@pytest.mark.parametrize("async_job, phases", [
    (OUT, (P.BEGIN3, P.PERFORM3)),      # libvirt: unreachable
    (OUT, (P.PERFORM2,)),
    (IN, (P.PREPARE, P.FINISH3)),
    (OUT, ()),                          # parked before any phase
])
def test_other_parked_phases_are_left_alone(adrv, calls, async_job, phases):
    dom = adrv.add_domain("vm1")
    park(dom, async_job, *phases)
    before = dom.job_status()
    out = adrv.abandon("vm1")
    assert out.action == AbandonAction.NOTHING and out.parked
    assert dom.job_status() == before
    assert calls == [out]
    dom.migration_job_finish()


def test_a_migration_driven_by_an_api_is_not_abandoned(adrv, calls):
    dom = adrv.add_domain("vm1")
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        out = adrv.abandon("vm1")  # inside the API: not parked
        assert out.action == AbandonAction.NOTHING and not out.parked
        assert "driven by an API" in out.why
    with dom.migration_phase(OUT, P.PERFORM3) as mig:
        assert not adrv.abandon("vm1").parked
        mig.finish()
    assert calls == []


def test_no_migration_job(adrv, calls):
    dom = adrv.add_domain("vm1")
    assert adrv.abandon("vm1").why == "no migration job"
    dom.begin_async_job(A.SAVE)
    assert adrv.abandon("vm1").action == AbandonAction.NOTHING
    dom.end_async_job()
    with pytest.raises(mj.NoDomain):
        adrv.abandon("nope")
    assert calls == []


def test_works_without_store_or_callback(drv):
    dom = drv.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    assert drv.abandon("vm1").action == AbandonAction.CANCELLED
    assert dom.job_status().idle


def test_strict_phases_driver():
    d = mj.Driver(strict_phases=True)
    dom = d.add_domain("vm1")
    park(dom, OUT, P.BEGIN3, P.PERFORM3, P.PERFORM3_DONE)
    assert d.abandon("vm1").action == AbandonAction.CANCELLED


def test_the_next_api_finds_the_job_gone(adrv):
    dom = adrv.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    adrv.abandon("vm1")
    with pytest.raises(mj.OperationInvalid, match="is not being migrated"):
        with dom.migration_phase(OUT, P.PERFORM3):
            pass
    assert dom.refs == 1


def test_callback_runs_outside_every_lock():
    seen = []

    def callback(out):
        # the domain and the driver are free: jobs, lookups and another
        # abandon all work from inside the callback
        d = drv.lookup(out.name)
        with d.job(J.MODIFY, timeout=1):
            pass
        seen.append(drv.abandon(out.name).action)

    drv = mj.Driver(on_abandon=callback)
    dom = drv.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    drv.abandon("vm1")
    assert seen == [AbandonAction.NOTHING]


def test_explicit_callback_errors_propagate():
    def callback(out):
        raise RuntimeError("boom")

    d = mj.Driver(on_abandon=callback)
    dom = d.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    with pytest.raises(RuntimeError, match="boom"):
        d.abandon("vm1")
    assert dom.job_status().idle  # the rule ran first


# ---- park timeout ------------------------------------------------------------------

def test_timeout_abandons_a_parked_migration():
    got = []
    done = threading.Event()

    def callback(out):
        got.append((out, threading.current_thread().name))
        done.set()

    d = mj.Driver(park_timeout=0.1, on_abandon=callback)
    dom = d.add_domain("vm1")
    t0 = time.monotonic()
    park(dom, OUT, P.BEGIN3, api="begin3")
    assert done.wait(5)
    assert time.monotonic() - t0 >= 0.09
    (out, thread), = got
    assert out.reason == "timeout" and out.action == AbandonAction.CANCELLED
    assert thread == "pymigjob-park-timer"
    assert dom.job_status().idle and dom.refs == 1
    wait_until(lambda: d._tracker._timer is None, "the timer thread to end")
    d.close()


def test_the_next_phase_in_time_stops_the_clock():
    got = []
    d = mj.Driver(park_timeout=0.5, on_abandon=got.append)
    dom = d.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    time.sleep(0.05)
    with dom.migration_phase(OUT, P.PERFORM3) as mig:  # unparks
        time.sleep(0.6)                                 # a long phase is fine
        mig.set_phase(P.PERFORM3_DONE)
    assert d._tracker.parked_names() == ["vm1"]         # parked again: a new clock
    time.sleep(0.05)
    with dom.migration_phase(OUT, P.CONFIRM3) as mig:
        mig.finish()
    assert d._tracker.parked_names() == []
    time.sleep(0.6)
    assert got == []
    d.close()


def test_timeout_leaves_prepare_but_reports_it_once():
    got = []
    d = mj.Driver(park_timeout=0.05, on_abandon=got.append)
    dom = d.add_domain("vm1")
    park(dom, IN, P.PREPARE)
    wait_until(lambda: got, "the callback")
    time.sleep(0.2)
    assert len(got) == 1 and got[0].action == AbandonAction.NOTHING
    assert dom.async_job == IN
    dom.migration_job_finish()
    d.close()


def test_timeout_callback_errors_are_logged(caplog):
    def callback(out):
        raise RuntimeError("boom")

    d = mj.Driver(park_timeout=0.05, on_abandon=callback)
    dom = d.add_domain("vm1")
    with caplog.at_level(logging.ERROR, logger="pymigjob"):
        park(dom, OUT, P.BEGIN3)
        wait_until(lambda: "boom" in caplog.text, "the logged error")
    assert dom.job_status().idle
    d.close()


def test_many_parked_domains_time_out_in_order():
    got = []
    d = mj.Driver(park_timeout=0.1, on_abandon=lambda out: got.append(out.name))
    for i in range(5):
        park(d.add_domain(f"vm{i}"), OUT, P.BEGIN3)
        time.sleep(0.01)
    wait_until(lambda: len(got) == 5, "five abandons")
    assert got == [f"vm{i}" for i in range(5)]
    d.close()


def test_removed_domain_is_not_abandoned():
    got = []
    d = mj.Driver(park_timeout=0.05, on_abandon=got.append)
    dom = d.add_domain("vm1")
    dom.migration_job_start(OUT)
    dom.migration_job_set_phase(P.BEGIN3)
    dom.ref()  # keep it alive past the removal
    dom.migration_job_continue()
    d.remove_domain("vm1")
    time.sleep(0.2)
    assert got == []
    dom.unref()
    d.close()


def test_close_stops_the_timer():
    got = []
    d = mj.Driver(park_timeout=0.1, on_abandon=got.append)
    dom = d.add_domain("vm1")
    park(dom, OUT, P.BEGIN3)
    d.close()
    time.sleep(0.2)
    assert got == [] and dom.async_job == OUT
    park_again = d.add_domain("vm2")
    park(park_again, OUT, P.BEGIN3)   # after close: no timer
    time.sleep(0.2)
    assert got == []
