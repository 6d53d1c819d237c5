"""A host: the domains one daemon manages, each with its QEMU, under one
``pymigjob.Driver`` whose job records live in the same state directory.

State directory layout::

    STATE/jobs/      the library's job records (Driver(state_dir=...))
    STATE/domains/   the domain definitions (definitions.py)
    STATE/qemu/      each QEMU's sockets, pidfile and log (process.py)

Every operation takes the job libvirt takes for it (start: MODIFY; query:
QUERY; a monitor command: MODIFY; destroy: DESTROY after killing QEMU;
abort: ABORT), and talks to QEMU only while holding it.  ``open()`` is the
restart path: it finds the QEMUs that outlived the previous daemon, carries
out ``Driver.recover()``'s decision on each (recovery.py) and kills any QEMU
no domain owns.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Coroutine, Mapping, Optional

import pymigjob as mj

from .definitions import Definition, Definitions
from .observe import Observer
from .process import QemuProcess, RuntimeFiles
from .recovery import Recovered, carry_out, facts_of
from .vm import Vm

__all__ = ["Host", "MODIFY_COMMANDS"]

log = logging.getLogger("pymigjob.qemu")

#: the monitor commands a client may send under a MODIFY job
MODIFY_COMMANDS = frozenset({"stop", "cont", "system_reset"})

_IN, _OUT = mj.AsyncJob.MIGRATION_IN, mj.AsyncJob.MIGRATION_OUT


class Host:
    def __init__(self, state_dir: str | Path, *, job_wait_timeout: float = 30.0,
                 max_queued: int = 0, park_timeout: Optional[float] = None,
                 migration_address: str = "127.0.0.1", observer: Optional[Observer] = None,
                 qemu_binary: Optional[str] = None, durable: bool = True) -> None:
        self.state_dir = Path(state_dir)
        self.definitions = Definitions(self.state_dir / "domains")
        self.runtime_dir = self.state_dir / "qemu"
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.observer = observer or Observer()
        self.migration_address = migration_address
        self.qemu_binary = qemu_binary
        # durable=False keeps no job records (nothing to recover after a
        # crash): only for measuring what the records cost
        self.driver = mj.Driver(job_wait_timeout, max_queued,
                                state_dir=str(self.state_dir / "jobs") if durable else None,
                                park_timeout=park_timeout, on_abandon=self._abandoned)
        self.vms: dict[str, Vm] = {}
        self.recovered: list[Recovered] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- the list -------------------------------------------------------------

    def vm(self, name: str) -> Vm:
        vm = self.vms.get(name) if isinstance(name, str) else None
        if vm is None:
            raise mj.NoDomain(f"no domain with matching name '{name}'")
        return vm

    def _add(self, definition: Definition) -> Vm:
        dom = self.driver.add_domain(definition.name)
        vm = Vm(dom, RuntimeFiles(self.runtime_dir, definition.name), definition.memory_mb,
                self.observer)
        self.vms[definition.name] = vm
        return vm

    def forget(self, name: str, *, undefine: bool) -> None:
        """Drop a domain whose QEMU is gone (its record goes too)."""
        self.vms.pop(name, None)
        if name in self.driver:
            self.driver.remove_domain(name)
        if undefine:
            self.definitions.delete(name)

    def define(self, name: str, memory_mb: int = 32) -> Vm:
        """A new domain, shut off (libvirt's define takes no job)."""
        definition = Definition(name, memory_mb)
        if name in self.vms:
            raise mj.OperationFailed(f"domain '{name}' already exists")
        vm = self._add(definition)
        self.definitions.save(definition)
        return vm

    def undefine(self, name: str) -> None:
        """Forget a shut-off domain (libvirt's undefine; no job, as there)."""
        vm = self.vm(name)
        if vm.process is not None:
            raise mj.OperationInvalid("cannot undefine an active domain; destroy it first")
        if vm.domain.jobs_queued:
            raise mj.OperationInvalid("domain has jobs; try again later")
        self.forget(name, undefine=True)

    def add_incoming(self, name: str, memory_mb: int) -> Vm:
        """The destination's domain for an incoming migration; defined (so a
        restart knows it) once its migration job is recorded."""
        definition = Definition(name, memory_mb)
        if name in self.vms:
            raise mj.OperationFailed(f"domain '{name}' already exists")
        return self._add(definition)

    def save_definition(self, vm: Vm) -> None:
        self.definitions.save(Definition(vm.name, vm.memory_mb))

    # ---- client operations -------------------------------------------------------

    async def start(self, name: str, paused: bool = False) -> None:
        vm = self.vm(name)
        async with vm.job(mj.Job.MODIFY, api="start"):
            await vm.launch(binary=self.qemu_binary)
            if not paused:
                await vm.qmp("cont")
            vm.note_status(await vm.qmp("query-status"))

    async def query(self, name: str, timeout: Optional[float] = None) -> dict[str, Any]:
        """QEMU's query-status, under a QUERY job."""
        vm = self.vm(name)
        async with vm.job(mj.Job.QUERY, api="query", timeout=timeout):
            vm.check_active()
            status: dict[str, Any] = await vm.qmp("query-status")
            vm.note_status(status)
            return status

    async def modify(self, name: str, command: str,
                     arguments: Optional[Mapping[str, object]] = None,
                     timeout: Optional[float] = None) -> Any:
        """One monitor command from MODIFY_COMMANDS, under a MODIFY job."""
        if command not in MODIFY_COMMANDS:
            raise mj.InvalidArgument(f"monitor command '{command}' is not allowed here "
                                     f"(allowed: {', '.join(sorted(MODIFY_COMMANDS))})")
        vm = self.vm(name)
        async with vm.job(mj.Job.MODIFY, api=f"modify:{command}", timeout=timeout):
            vm.check_active()
            reply = await vm.qmp(command, arguments)
            vm.note_status(await vm.qmp("query-status"))
            return reply

    async def destroy(self, name: str, timeout: Optional[float] = None) -> None:
        """libvirt's destroy: kill QEMU first (so no monitor command can keep
        the job from us), then take the DESTROY job to clean up."""
        vm = self.vm(name)
        if vm.process is not None:
            await vm.process.kill()
        async with vm.job(mj.Job.DESTROY, api="destroy", timeout=timeout):
            if vm.process is None:
                raise mj.OperationInvalid("domain is not running")
            await vm.stop()

    async def abort(self, name: str, timeout: Optional[float] = None) -> None:
        """virDomainAbortJob: an ABORT job flags the async job (so a migration
        not yet sent to QEMU never starts), then an ABORT job tells QEMU."""
        vm = self.vm(name)
        await vm.domain.abort_job_async(api="abort", timeout=timeout)
        async with vm.job(mj.Job.ABORT, api="abort", timeout=timeout):
            if vm.domain.async_job == _OUT and vm.running:
                await vm.qmp("migrate_cancel")

    def describe(self, name: str) -> dict[str, Any]:
        """State, job status and job statistics, read without a job (so it
        answers while a domain is stuck)."""
        vm = self.vm(name)
        dom = vm.domain
        info = dom.job_info
        return {
            "name": vm.name, "memory_mb": vm.memory_mb, "state": vm.shown_state,
            "reason": vm.reason if vm.process is not None else None,
            "pid": vm.process.pid if vm.process is not None else None,
            "job": {
                "active": dom.active_job.label, "owner_api": dom.owner_api,
                "async": dom.async_job.label, "async_owner_api": dom.async_owner_api,
                "phase": mj.phase_to_string(dom.async_job, dom.phase),
                "mask": dom.mask, "queued": dom.jobs_queued,
                "abort_requested": dom.abort_requested, "record": str(dom.job_status()),
            },
            "stats": {"type": info.type.name.lower(), "elapsed": round(info.elapsed, 6),
                      "monitor_commands": vm.monitor.commands,
                      "migration": vm.last_migration},
        }

    # ---- restart -----------------------------------------------------------------

    async def open(self) -> list[Recovered]:
        """Adopt the QEMUs that outlived the previous daemon, carry out the
        recovery decisions on them, kill QEMUs nobody owns."""
        self._loop = loop = asyncio.get_running_loop()
        definitions = self.definitions.load_all()
        store = self.driver.store
        records = store.load_all() if store is not None else {}
        for name in sorted(set(definitions) | set(records)):
            vm = self._add(definitions.get(name) or Definition(name))
            await vm.adopt()
            if vm.process is not None:
                async with vm.job(mj.Job.QUERY, api="reconnect"):
                    vm.note_status(await vm.qmp("query-status"))

        def act(rec: Any) -> None:  # in recover's thread, before the record changes
            done = asyncio.run_coroutine_threadsafe(carry_out(self.vms[rec.name], rec), loop)
            self.recovered.append(done.result())

        def facts(name: str, record: Any) -> Any:  # asked only where a row needs it
            return asyncio.run_coroutine_threadsafe(facts_of(self.vms[name]), loop).result()

        decisions = await asyncio.to_thread(self.driver.recover, act, facts=facts) \
            if store is not None else {}
        for name, rec in decisions.items():
            if not rec.kill:
                if name not in definitions:
                    if self.vms[name].process is None:
                        self.forget(name, undefine=True)  # migrated away before the crash
                    else:
                        self.save_definition(self.vms[name])
                continue
            self.vms.pop(name, None)
            if rec.status.async_job in (_IN, _OUT) and str(rec.action) == "kill":
                self.definitions.delete(name)  # the guest lives (or died) elsewhere
            else:
                self._add(definitions.get(name) or Definition(name))  # destroyed: shut off
        await self._kill_unowned()
        for rec in self.recovered:
            log.info("recovered %s", rec)
        return self.recovered

    async def _kill_unowned(self) -> None:
        for pidfile in sorted(self.runtime_dir.glob("*.pid")):
            name = pidfile.stem
            vm = self.vms.get(name)
            if vm is not None and vm.process is not None:
                continue
            files = RuntimeFiles(self.runtime_dir, name)
            orphan = QemuProcess.adopt(files)
            if orphan is not None:
                log.warning("killing QEMU pid %d of '%s': no domain owns it", orphan.pid, name)
                await orphan.kill()
            files.remove()

    async def close(self) -> None:
        """Let go of every monitor; the QEMUs keep running."""
        if self._tasks:  # auto-destroys under way: short, let them end
            await asyncio.wait(list(self._tasks), timeout=15)
        for vm in list(self.vms.values()):
            await vm.monitor.disconnect()
        self.driver.close()

    async def stop_all(self) -> None:
        """Kill every QEMU of this host (demo and test teardown)."""
        for vm in list(self.vms.values()):
            await vm.stop()

    # ---- incoming migrations whose source went away ---------------------------

    def _abandoned(self, outcome: Any) -> None:
        """on_abandon (timer thread or loop): an incoming migration still
        parked in PREPARE lost its source; destroy it, as libvirt's
        auto-destroy of an incoming domain does."""
        if outcome.parked and outcome.status.async_job == _IN and self._loop is not None:
            self._loop.call_soon_threadsafe(self.spawn, self.auto_destroy(outcome.name))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def auto_destroy(self, name: str) -> bool:
        vm = self.vms.get(name)
        if vm is None:
            return False
        dom = vm.domain
        # one locked step: a Finish3 that started meanwhile wins
        if not dom.migration_job_claim_parked(_IN, mj.Phase.PREPARE, mj.Phase.FINISH3,
                                              api="autodestroy"):
            return False
        log.warning("incoming migration of '%s' lost its source: destroying it", name)
        try:
            await vm.stop()
            self.definitions.delete(name)
        finally:
            dom.migration_job_finish()
            self.forget(name, undefine=True)
            self.observer.migration_ended("destination", "source lost")
        return True
