"""The monitor is entered only under a job (libvirt's EnterMonitor /
EnterMonitorAsync), one command at a time; anything else raises before a
byte goes to QEMU."""

from __future__ import annotations

from _qemu_skip import require_qemu

require_qemu()

import asyncio
import contextvars

import pymigjob as mj
import pytest
from _qemu_helpers import run, teardown, two_hosts
from pymigjob.qemu import Host, MonitorNotEntered

OUT = mj.AsyncJob.MIGRATION_OUT


async def _started(root: str) -> Host:
    host, other = await two_hosts(root)
    await other.close()
    host.define("vm1")
    await host.start("vm1")
    return host


def test_no_job_no_command(state_root):
    async def scenario():
        host = await _started(state_root)
        vm = host.vm("vm1")
        sent = vm.monitor.commands
        try:
            for attempt in (vm.qmp("query-status"), vm.monitor.execute("query-status")):
                with pytest.raises(MonitorNotEntered, match="holds no job"):
                    await attempt
            assert vm.monitor.commands == sent            # nothing reached QEMU
            async with vm.job(mj.Job.QUERY):
                assert (await vm.qmp("query-status"))["running"] is True
                # a task of the holder (wait_for's, on 3.11) holds it too
                await asyncio.wait_for(vm.qmp("query-status"), 5)
            with pytest.raises(MonitorNotEntered):
                await vm.qmp("query-status")             # the job has ended
            assert vm.monitor.commands == sent + 2
        finally:
            await teardown(host)

    run(scenario())


def test_another_coroutine_cannot_use_the_holders_job(state_root):
    async def scenario():
        host = await _started(state_root)
        vm = host.vm("vm1")
        may_go, done = asyncio.Event(), asyncio.Event()

        async def intruder():           # started before the job: not its holder
            await may_go.wait()
            try:
                with pytest.raises(MonitorNotEntered):
                    await vm.qmp("query-status")
            finally:
                done.set()

        task = asyncio.create_task(intruder())
        leftover = None
        try:
            async with vm.job(mj.Job.MODIFY, api="holder"):
                may_go.set()
                await done.wait()
                # a task spawned under the job but outliving it is refused
                gate = asyncio.Event()

                async def late():
                    await gate.wait()
                    await vm.qmp("query-status")
                leftover = asyncio.create_task(late())
            gate.set()
            with pytest.raises(MonitorNotEntered):
                await leftover
            await task
        finally:
            await teardown(host)

    run(scenario())


def test_nested_job_only_for_the_async_jobs_driver(state_root):
    async def scenario():
        host = await _started(state_root)
        vm = host.vm("vm1")
        try:
            async with vm.step(OUT, mj.Phase.BEGIN3, first=True, api="migrate"):
                async with vm.nested(OUT):
                    assert vm.domain.active_job == mj.Job.ASYNC_NESTED
                    await vm.qmp("query-migrate")
                # QUERY passes the migration's mask; its holder uses the monitor
                async with vm.job(mj.Job.QUERY, api="query"):
                    await vm.qmp("query-status")

                async def other_request():      # not the one driving the phase
                    with pytest.raises(mj.InternalError, match="driving that async job"):
                        async with vm.nested(OUT):
                            pass
                # a request of its own: a fresh context, as a server gives each request
                await asyncio.create_task(other_request(), context=contextvars.Context())
                assert vm.domain.active_job == mj.Job.NONE
                # MODIFY is outside the mask: it waits, and names the blocker
                with pytest.raises(mj.JobTimeout, match="monitor=migrate"):
                    async with vm.job(mj.Job.MODIFY, timeout=0.05):
                        pass
            # the step parked the job: its driver's context no longer owns it
            with pytest.raises(mj.InternalError, match="driving that async job"):
                async with vm.nested(OUT):
                    pass
            async with vm.step(OUT, mj.Phase.CONFIRM3_CANCELLED) as step:
                step.finish()
            assert vm.domain.async_job == mj.AsyncJob.NONE
        finally:
            await teardown(host)

    run(scenario())


class _SlowClient:
    """Stands in for qemu.qmp's client: records how many commands overlap."""

    def __init__(self) -> None:
        self.inflight = self.most = 0

    async def execute(self, command, arguments=None):
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        await asyncio.sleep(0.01)
        self.inflight -= 1
        return {}

    async def disconnect(self):
        pass


def test_one_command_in_flight(state_root):
    async def scenario():
        host = await _started(state_root)
        vm = host.vm("vm1")
        real, fake = vm.monitor._client, _SlowClient()
        vm.monitor._client = fake
        try:
            async with vm.job(mj.Job.QUERY):
                await asyncio.gather(*(vm.monitor.execute("query-status") for _ in range(5)))
            assert fake.most == 1
        finally:
            vm.monitor._client = real
            await teardown(host)

    run(scenario())
