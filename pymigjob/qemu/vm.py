"""One domain on one host: its job domain, its QEMU and its monitor."""

from __future__ import annotations

from typing import Any, Mapping, Optional

import pymigjob as mj

from .jobs import MigrationStep, NestedJob, SyncJob
from .monitor import NOT_RUNNING, Monitor
from .observe import Ledger, Observer
from .process import QemuProcess, RuntimeFiles

__all__ = ["Vm", "paused_reason"]

#: QEMU's run state -> libvirt's reason for a paused domain (lower case), as
#: libvirt maps them (qemuMonitorVMStatusToPausedReason); "running" is None
_PAUSED_REASON = {
    "paused": "user", "prelaunch": "user",
    "inmigrate": "migration", "postmigrate": "migration", "finish-migrate": "migration",
    "io-error": "ioerror", "save-vm": "save", "watchdog": "watchdog",
    "guest-panicked": "crashed", "shutdown": "shutdown",
}


def paused_reason(status: Mapping[str, Any]) -> Optional[str]:
    """From a ``query-status`` reply: why the guest is paused, None if it runs."""
    if status.get("running"):
        return None
    return _PAUSED_REASON.get(str(status.get("status")), "unknown")


class Vm:
    """A domain of a :class:`~pymigjob.qemu.host.Host`."""

    def __init__(self, dom: mj.Domain, files: RuntimeFiles, memory_mb: int,
                 observer: Observer) -> None:
        self.domain = dom
        self.files = files
        self.memory_mb = memory_mb
        self.observer = observer
        self.process: Optional[QemuProcess] = None
        self.monitor = Monitor(dom)
        #: QEMU's last migration statistics seen (query-migrate), for status
        self.last_migration: Optional[dict[str, Any]] = None
        #: the run state last seen from QEMU ("running", "paused"; "shut off"
        #: without a process) and why it is paused: status reads it without a job
        self.state = "shut off"
        self.reason: Optional[str] = None
        #: destination only: the guest ran on the source, so Finish3 resumes it
        self.resume_after_migration = True

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def running(self) -> bool:
        """QEMU is alive (running or paused) and its monitor connected."""
        return self.process is not None and self.monitor.connected and self.process.alive

    def __repr__(self) -> str:
        return f"<Vm {self.name} {'active' if self.running else 'inactive'}>"

    # ---- jobs and the monitor ---------------------------------------------

    def job(self, job: mj.Job, api: Optional[str] = None, timeout: Optional[float] = None,
            ledger: Optional[Ledger] = None) -> SyncJob:
        return SyncJob(self.domain, job, api, timeout, self.observer, ledger)

    def nested(self, async_job: mj.AsyncJob, api: Optional[str] = None,
               ledger: Optional[Ledger] = None) -> NestedJob:
        return NestedJob(self.domain, async_job, api, None, self.observer, ledger)

    def step(self, async_job: mj.AsyncJob, phase: mj.Phase, *, first: bool = False,
             api: Optional[str] = None, timeout: Optional[float] = None, role: str = "source",
             ledger: Optional[Ledger] = None) -> MigrationStep:
        return MigrationStep(self.domain, async_job, phase, first=first, api=api,
                             timeout=timeout, role=role, observer=self.observer, ledger=ledger)

    async def qmp(self, command: str, arguments: Optional[Mapping[str, object]] = None) -> Any:
        """One monitor command; the caller must hold a job (see Monitor)."""
        self.monitor.check_entered(command)
        if not self.running:
            await self.monitor.disconnect()
            raise mj.OperationInvalid(NOT_RUNNING)
        return await self.monitor.execute(command, arguments)

    def note_status(self, status: Mapping[str, Any]) -> None:
        """Remember QEMU's run state from a query-status reply."""
        self.reason = paused_reason(status)
        self.state = "running" if self.reason is None else "paused"

    @property
    def shown_state(self) -> str:
        return self.state if self.process is not None else "shut off"

    def check_active(self) -> None:
        """libvirt's virDomainObjIsActive check."""
        if self.process is None or not self.process.alive:
            raise mj.OperationInvalid(NOT_RUNNING)

    # ---- the process ---------------------------------------------------------

    async def launch(self, *, incoming: bool = False, binary: Optional[str] = None) -> None:
        """Start QEMU (paused) and connect the monitor.  The caller holds a
        job; resuming the vCPUs is a separate `cont`."""
        if self.running:
            raise mj.OperationInvalid("domain is already running")
        self.process = await QemuProcess.start(self.files, memory_mb=self.memory_mb,
                                               incoming=incoming, binary=binary)
        try:
            await self.monitor.connect(self.files.monitor)
        except BaseException:
            await self.stop()
            raise

    async def adopt(self) -> bool:
        """Find the QEMU a previous daemon left running; connect to it."""
        self.process = QemuProcess.adopt(self.files)
        if self.process is None:
            self.files.remove()
            return False
        try:
            await self.monitor.connect(self.files.monitor)
        except mj.Error:
            await self.stop()  # alive but deaf: libvirt kills such a domain too
            return False
        return True

    async def stop(self) -> None:
        """Kill QEMU (if any) and forget it."""
        await self.monitor.disconnect()
        if self.process is not None:
            await self.process.kill()
        else:
            self.files.remove()
        self.process = None
        self.state, self.reason = "shut off", None

    async def quit(self) -> None:
        """Ask QEMU to exit (the caller holds a job), then make sure it did."""
        try:
            await self.qmp("quit")
        except mj.OperationInvalid:
            pass  # QEMU closed the monitor before answering: it is leaving
        await self.monitor.disconnect()
        if self.process is not None and not await self.process.wait(5.0):
            await self.process.kill()
        await self.stop()
