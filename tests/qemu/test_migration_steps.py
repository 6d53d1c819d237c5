"""The v3 steps on real QEMU, two hosts in one process (no HTTP)."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import asyncio
import time

import pymigjob as mj
import pytest
from _qemu_helpers import LocalPeer, guest, run, teardown, two_hosts
from pymigjob.qemu import finish3, migrate

#: bytes/s: a 32 MB idle guest then takes a few hundred ms to send
SLOW = 3_000_000


async def _running(host, name="vm1"):
    host.define(name)
    await host.start(name)


def _records(host):
    return {name: str(status) for name, status in host.driver.store.load_all().items()}


def test_migrate_there_and_back(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            report = await migrate(a, "vm1", LocalPeer(b))
            assert report.outcome == "completed" and report.qemu_ms is not None
            assert set(report.phases) == {"prepare3", "perform3", "finish3", "confirm3"}
            assert "vm1" not in a.vms and "vm1" not in a.definitions.load_all()
            assert await guest(a, "vm1") is None                 # source QEMU quit
            assert (await guest(b, "vm1"))["status"] == "running"
            assert b.describe("vm1")["job"]["async"] == "none"
            assert _records(a) == {} and _records(b) == {"vm1": "job=none async=none"}
            await migrate(b, "vm1", LocalPeer(a))                # and back
            assert (await guest(a, "vm1"))["running"] and await guest(b, "vm1") is None
        finally:
            await teardown(a, b)

    run(scenario())


def test_queries_get_through_while_perform_runs(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            mig = asyncio.create_task(migrate(a, "vm1", LocalPeer(b), bandwidth=SLOW))
            vm = a.vm("vm1")
            while vm.domain.phase != mj.Phase.PERFORM3:
                await asyncio.sleep(0.002)
            waits, modify_error = [], None
            while not mig.done():
                t0 = time.perf_counter()
                try:
                    await a.query("vm1")
                except (mj.NoDomain, mj.OperationInvalid):
                    break                                      # migrated away meanwhile
                waits.append(time.perf_counter() - t0)
                if modify_error is None:                       # MODIFY: not in the mask
                    try:
                        await a.modify("vm1", "system_reset", timeout=0.02)
                    except mj.JobTimeout as e:
                        modify_error = e
            await mig
            assert len(waits) >= 5 and max(waits) < 0.25, waits
            assert modify_error is not None and "migratePerform3" in str(modify_error)
        finally:
            await teardown(a, b)

    run(scenario())


def test_abort_during_perform_cancels_and_source_runs(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            mig = asyncio.create_task(migrate(a, "vm1", LocalPeer(b), bandwidth=SLOW))
            while a.vm("vm1").domain.phase != mj.Phase.PERFORM3:
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.03)
            await a.abort("vm1")
            with pytest.raises(mj.OperationAborted, match="migration out: canceled by client") \
                    as caught:
                await mig
            assert caught.value.report.outcome == "aborted"
            assert (await guest(a, "vm1"))["status"] == "running"
            assert "vm1" not in b.vms and await guest(b, "vm1") is None
            assert a.describe("vm1")["job"]["async"] == "none"
            with pytest.raises(mj.OperationInvalid, match="no job is active"):
                await a.abort("vm1")
        finally:
            await teardown(a, b)

    run(scenario())


def test_destroy_during_perform(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            mig = asyncio.create_task(migrate(a, "vm1", LocalPeer(b), bandwidth=SLOW))
            while a.vm("vm1").domain.phase != mj.Phase.PERFORM3:
                await asyncio.sleep(0.002)
            await a.destroy("vm1")            # DESTROY passes the mask, between two polls
            with pytest.raises(mj.OperationInvalid, match="not running") as caught:
                await mig
            assert caught.value.report.outcome == "destroyed"
            assert a.describe("vm1")["state"] == "shut off"     # still defined
            assert await guest(a, "vm1") is None and await guest(b, "vm1") is None
            assert "vm1" not in b.vms
        finally:
            await teardown(a, b)

    run(scenario())


def test_lost_peer_fails_cleanly_and_destination_auto_destroys(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            peer = LocalPeer(b)
            mig = asyncio.create_task(migrate(a, "vm1", peer, bandwidth=SLOW))
            while a.vm("vm1").domain.phase != mj.Phase.PERFORM3:
                await asyncio.sleep(0.002)
            peer.up = False                               # the connection is cut
            b.driver.abandon("vm1")                       # ... and the destination sees it
            with pytest.raises(mj.Error, match="Lost connection to destination host|"
                               "not processing incoming migration|no domain") as caught:
                await mig
            assert caught.value.report.outcome in ("peer lost", "failed")
            assert (await guest(a, "vm1"))["status"] == "running"
            for _ in range(100):
                if "vm1" not in b.vms:
                    break
                await asyncio.sleep(0.01)
            assert "vm1" not in b.vms and await guest(b, "vm1") is None
        finally:
            await teardown(a, b)

    run(scenario())


def test_phase_out_of_order_changes_nothing(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(b)
            with pytest.raises(mj.OperationInvalid, match="not processing incoming migration"):
                await finish3(b, "vm1", True)
            with pytest.raises(mj.NoDomain):
                await finish3(b, "nope", True)
            assert (await guest(b, "vm1"))["status"] == "running"
            assert b.describe("vm1")["job"]["async"] == "none"
            with pytest.raises(mj.OperationInvalid, match="not running"):
                a.define("off")
                await migrate(a, "off", LocalPeer(b))
            assert "off" not in b.vms and a.describe("off")["job"]["async"] == "none"
        finally:
            await teardown(a, b)

    run(scenario())


def test_naive_migration_holds_the_sync_job_throughout(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            mig = asyncio.create_task(migrate(a, "vm1", LocalPeer(b), bandwidth=SLOW,
                                              naive=True))
            vm = a.vm("vm1")
            while vm.domain.active_job != mj.Job.MODIFY:
                await asyncio.sleep(0.002)
            assert vm.domain.async_job == mj.AsyncJob.NONE
            with pytest.raises(mj.JobTimeout, match="migrate \\(naive\\)"):
                await a.query("vm1", timeout=0.05)
            assert (await mig).outcome == "completed"
            assert (await guest(b, "vm1"))["running"]
        finally:
            await teardown(a, b)

    run(scenario())


def test_a_paused_guest_arrives_paused(state_root):
    async def scenario():
        a, b = await two_hosts(state_root)
        try:
            await _running(a)
            await a.modify("vm1", "stop")
            await migrate(a, "vm1", LocalPeer(b))
            assert (await guest(b, "vm1"))["status"] == "paused"
            assert b.describe("vm1")["state"] == "paused"
        finally:
            await teardown(a, b)

    run(scenario())
