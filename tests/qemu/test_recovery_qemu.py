"""Recovery carried out on real QEMU: a host is left behind mid-migration
(its job records on disk, its QEMUs running, nothing cleaned up), a new
host opens the same state directory, and QEMU's state is checked over the
observer socket."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import asyncio

import pymigjob as mj
from _qemu_helpers import guest, run, teardown, two_hosts
from pymigjob.qemu import Host, finish3, prepare3

OUT, IN = mj.AsyncJob.MIGRATION_OUT, mj.AsyncJob.MIGRATION_IN
P = mj.Phase


async def _crash(host: Host) -> None:
    """The daemon dies: QEMUs and records stay as they are."""
    for vm in host.vms.values():
        await vm.monitor.disconnect()
    host.driver.close()


async def _reopen(host: Host) -> Host:
    await _crash(host)
    again = Host(host.state_dir)
    await again.open()
    return again


async def _wait_migration(host: Host, name: str, done=("completed",)) -> None:
    vm = host.vm(name)
    for _ in range(1000):
        async with vm.nested(OUT):
            if (await vm.qmp("query-migrate")).get("status") in done:
                return
    raise AssertionError("migration did not end")


async def _source_at(a: Host, b: Host, phase: mj.Phase, *, complete: bool,
                     bandwidth: int = 2_000_000) -> None:
    """Drive vm1 from a to b up to `phase` by hand, leaving the job parked."""
    uri = (await prepare3(b, {"name": "vm1", "memory_mb": 32}))["uri"]
    vm = a.vm("vm1")
    async with vm.step(OUT, P.BEGIN3, first=True, api="test") as step:
        step.set_phase(P.PERFORM3)
        async with vm.nested(OUT):
            if not complete:
                await vm.qmp("migrate-set-parameters", {"max-bandwidth": bandwidth})
            await vm.qmp("migrate", {"uri": uri})
        if complete:
            await _wait_migration(a, "vm1")
            step.set_phase(P.PERFORM3_DONE)
        if phase in (P.CONFIRM3, P.CONFIRM3_CANCELLED):
            await finish3(b, "vm1", phase == P.CONFIRM3)
            step.set_phase(phase)


def _scenario(root, body):
    async def scenario():
        a, b = await two_hosts(root)
        hosts = [a, b]
        try:
            a.define("vm1")
            await a.start("vm1")
            await body(hosts)
        finally:
            await teardown(*hosts)
    run(scenario())


def test_source_killed_during_perform_cancels_and_resumes(state_root):
    async def body(hosts):
        a, b = hosts
        await _source_at(a, b, P.PERFORM3, complete=False)
        assert (await guest(a, "vm1"))["migration"] in ("setup", "active")
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.decision == "cancel-and-resume-if-paused" and "migrate_cancel" in rec.done
        seen = await guest(a, "vm1")
        assert seen["running"] and seen["migration"] == "cancelled"
        assert a.describe("vm1")["job"]["async"] == "none"
        # the destination lost its source: its paused incoming guest goes
        b.driver.abandon("vm1")
        await _settle(b)
        assert await guest(b, "vm1") is None

    _scenario(state_root, body)


async def _settle(host: Host, name: str = "vm1") -> None:
    """Until the destination's auto-destroy has run."""
    for _ in range(500):
        if name not in host.vms:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} is still on {host.state_dir}")


def test_source_killed_after_perform3_done_is_left_paused(state_root):
    async def body(hosts):
        a, b = hosts
        await _source_at(a, b, P.PERFORM3_DONE, complete=True)
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.decision == "leave-paused"
        assert (await guest(a, "vm1"))["status"] == "postmigrate"   # a third party decides
        b.driver.abandon("vm1")
        await _settle(b)
        assert await guest(b, "vm1") is None

    _scenario(state_root, body)


def test_source_killed_in_confirm3_is_killed(state_root):
    async def body(hosts):
        a, b = hosts
        await _source_at(a, b, P.CONFIRM3, complete=True)
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.decision == "kill" and rec.qemu_after is None
        assert await guest(a, "vm1") is None and "vm1" not in a.vms
        assert "vm1" not in a.definitions.load_all() and a.driver.store.load_all() == {}
        assert (await guest(b, "vm1"))["running"]

    _scenario(state_root, body)


def test_source_killed_in_confirm3_cancelled_resumes(state_root):
    async def body(hosts):
        a, b = hosts
        await _source_at(a, b, P.CONFIRM3_CANCELLED, complete=True)
        assert (await guest(a, "vm1"))["status"] == "postmigrate"
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.decision == "resume-if-paused" and "cont" in rec.done
        assert (await guest(a, "vm1"))["running"] and await guest(b, "vm1") is None

    _scenario(state_root, body)


def test_destination_killed_in_prepare_or_finish3_is_killed(state_root):
    async def body(hosts):
        a, b = hosts
        await _source_at(a, b, P.PERFORM3_DONE, complete=True)
        vm = b.vm("vm1")
        async with vm.step(IN, P.FINISH3, role="destination"):
            pass                                   # crashed before `cont`
        hosts[1] = b = await _reopen(b)
        (rec,) = b.recovered
        assert rec.record.startswith("job=none async=migration in phase=finish3")
        assert rec.decision == "kill" and await guest(b, "vm1") is None
        assert "vm1" not in b.vms and b.definitions.load_all() == {}

    _scenario(state_root, body)


def test_destroy_in_progress_is_finished_and_the_definition_stays(state_root):
    async def body(hosts):
        a, _ = hosts
        a.vm("vm1").domain.begin_job(mj.Job.DESTROY, api="destroy")   # then the crash
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.done.startswith("killed") and await guest(a, "vm1") is None
        assert a.describe("vm1")["state"] == "shut off" and "vm1" in a.definitions.load_all()
        await a.start("vm1")                        # and it can start again
        assert (await guest(a, "vm1"))["running"]

    _scenario(state_root, body)


def test_begin3_is_forgotten_and_a_paused_guest_stays_paused(state_root):
    async def body(hosts):
        a, _ = hosts
        await a.modify("vm1", "stop")
        vm = a.vm("vm1")
        async with vm.step(OUT, P.BEGIN3, first=True):
            pass
        hosts[0] = a = await _reopen(a)
        (rec,) = a.recovered
        assert rec.decision == "nothing"
        seen = await guest(a, "vm1")
        assert seen["status"] == "paused"
        assert a.describe("vm1")["state"] == "paused"

    _scenario(state_root, body)


def test_unowned_qemu_is_killed_and_idle_guests_are_adopted(state_root):
    async def body(hosts):
        a, _ = hosts
        a.define("idle")
        await a.start("idle", paused=True)
        # a QEMU whose domain is unknown (its definition lost)
        a.define("stray")
        await a.start("stray")
        a.definitions.delete("stray")
        hosts[0] = a = await _reopen(a)
        assert a.recovered == []                       # no job records to act on
        assert await guest(a, "stray") is None and "stray" not in a.vms
        assert a.describe("idle")["state"] == "paused"
        assert a.describe("vm1")["state"] == "running"
        assert (await a.query("vm1"))["running"]

    _scenario(state_root, body)
