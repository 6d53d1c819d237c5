"""Peer-to-peer migration between two daemons over HTTP, the migration
session, a cut connection, and the metrics an operator reads."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import asyncio

import pymigjob as mj
from _daemon_helpers import Daemon, Proxy
from _qemu_helpers import guest, run
from pymigjob.daemon.keys import SESSIONS

SLOW = 2_000_000


async def _pair(root, **kw):
    a = await Daemon(root, "127.0.0.2", **kw).start()
    b = await Daemon(root, "127.0.0.3", **kw).start()
    await a.call("POST", "/v1/domains", {"name": "vm1"})
    await a.call("POST", "/v1/domains/vm1/start")
    return a, b


async def _wait_phase(d, phase):
    for _ in range(2000):
        status, body = await d.call("GET", "/v1/domains/vm1")
        if status == 200 and body["job"]["phase"] == phase:
            return
        await asyncio.sleep(0.002)
    raise AssertionError(f"never reached {phase}")


def test_migrate_back_and_forth_over_http(state_root):
    async def scenario():
        a, b = await _pair(state_root)
        try:
            status, report = await a.call("POST", "/v1/domains/vm1/migrate",
                                          {"destination": b.url})
            assert status == 200 and report["outcome"] == "completed", report
            assert (await guest(b.host, "vm1"))["running"] and await guest(a.host, "vm1") is None
            status, report = await b.call("POST", "/v1/domains/vm1/migrate",
                                          {"destination": a.url, "bandwidth": SLOW})
            assert status == 200 and report["outcome"] == "completed"
            assert (await guest(a.host, "vm1"))["running"]
            assert not a.app[SESSIONS] and not b.app[SESSIONS]   # sessions closed
            status, body = await a.call("GET", "/metrics")
            text = body
            for needle in ('pymigjob_job_wait_seconds_count{job="modify"}',
                           'pymigjob_job_hold_seconds_count{job="async nested"}',
                           'pymigjob_job_hold_seconds_count{job="migration in"} 1.0',
                           'pymigjob_migrations_total{outcome="completed",role="destination"}',
                           'pymigjob_migration_step_seconds_count{role="destination",'
                           'step="prepare"}',
                           'pymigjob_jobs_queued{domain="vm1"} 0.0',
                           'pymigjob_domain_state{domain="vm1",state="running"} 1.0'):
                assert needle in text, needle
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_abort_and_busy_modify_over_http(state_root):
    async def scenario():
        a, b = await _pair(state_root)
        try:
            mig = asyncio.create_task(a.call("POST", "/v1/domains/vm1/migrate",
                                             {"destination": b.url, "bandwidth": SLOW}))
            await _wait_phase(a, "perform3")
            status, body = await a.call("POST", "/v1/domains/vm1/modify",
                                        {"command": "stop", "timeout": 0.05})
            assert status == 503 and "monitor=migratePerform3" in body["error"]["text"]
            status, _ = await a.call("POST", "/v1/domains/vm1/query")
            assert status == 200
            status, _ = await a.call("POST", "/v1/domains/vm1/abort")
            assert status == 200
            status, body = await mig
            assert status == 409 and body["error"]["code"] == mj.ErrorCode.OPERATION_ABORTED
            assert body["error"]["report"]["outcome"] == "aborted"
            assert (await guest(a.host, "vm1"))["running"]
            for _ in range(100):
                if "vm1" not in b.host.vms:
                    break
                await asyncio.sleep(0.01)
            assert "vm1" not in b.host.vms and await guest(b.host, "vm1") is None
            status, body = await a.call("GET", "/metrics")
            assert 'pymigjob_job_timeouts_total{job="modify"} 1.0' in body
            assert 'pymigjob_migrations_total{outcome="aborted",role="source"} 1.0' in body
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_cut_connection_during_perform(state_root):
    async def scenario():
        a, b = await _pair(state_root)
        proxy = await Proxy("127.0.0.4", b).start()
        try:
            mig = asyncio.create_task(a.call("POST", "/v1/domains/vm1/migrate",
                                             {"destination": proxy.url, "bandwidth": SLOW}))
            await _wait_phase(a, "perform3")
            await asyncio.sleep(0.05)
            await proxy.cut()
            status, body = await mig
            assert status in (500, 502), body
            assert "Lost connection to destination host" in body["error"]["text"]
            assert body["error"]["report"]["outcome"] == "peer lost"
            seen = await guest(a.host, "vm1")
            assert seen["running"] and seen["migration"] == "cancelled"
            status, body = await a.call("GET", "/v1/domains/vm1")
            assert body["job"]["async"] == "none" and body["state"] == "running"
            for _ in range(200):                # the destination saw its session fall
                if "vm1" not in b.host.vms:
                    break
                await asyncio.sleep(0.01)
            assert "vm1" not in b.host.vms and await guest(b.host, "vm1") is None
            assert b.host.driver.store.load_all() == {}
        finally:
            await a.stop()
            await b.stop()

    run(scenario())


def test_unreachable_destination_changes_nothing(state_root):
    async def scenario():
        a, b = await _pair(state_root)
        try:
            await b.stop()
            status, body = await a.call("POST", "/v1/domains/vm1/migrate",
                                        {"destination": b.url})
            assert status == 502 and "cannot reach the destination" in body["error"]["text"]
            assert (await guest(a.host, "vm1"))["running"]
            assert a.host.driver.store.load_all() == {}
        finally:
            await a.stop()

    run(scenario())


def test_wrong_token_refuses_the_session(state_root):
    async def scenario():
        a = await Daemon(state_root, "127.0.0.2", token="one").start()
        b = await Daemon(state_root, "127.0.0.3", token="two").start()
        try:
            await a.call("POST", "/v1/domains", {"name": "vm1"})
            await a.call("POST", "/v1/domains/vm1/start")
            status, body = await a.call("POST", "/v1/domains/vm1/migrate",
                                        {"destination": b.url})
            assert status == 502 and "HTTP 401" in body["error"]["text"]
            assert (await guest(a.host, "vm1"))["running"] and "vm1" not in b.host.vms
        finally:
            await a.stop()
            await b.stop()

    run(scenario())
