"""A domain's QMP monitor, entered only under a job.

libvirt's EnterMonitor / EnterMonitorAsync: a command goes to QEMU only
from the caller that holds the domain's sync job, or a nested job of its
running async job (see jobs.py for what "holds" means under asyncio).
Anything else raises :class:`MonitorNotEntered` before a byte is sent.  On
top of that, one command is in flight per monitor at a time (QMP replies
in order anyway; the lock keeps a timed-out command's late reply from
being read as the next command's).

QEMU's failures come back as library errors with libvirt's wording:
a dead or vanished QEMU is ``OperationInvalid("domain is not running")``,
a command QEMU refuses is ``OperationFailed`` with QEMU's own text.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Mapping, Optional

from qemu.qmp import ExecuteError, QMPClient, QMPError

import pymigjob as mj

from .jobs import held_sync_job

__all__ = ["Monitor", "MonitorNotEntered", "NOT_RUNNING", "connect_qmp"]

log = logging.getLogger("pymigjob.qemu")

NOT_RUNNING = "domain is not running"

#: seconds a monitor command may take before the caller gives up on it
COMMAND_TIMEOUT = 10.0


class MonitorNotEntered(mj.InternalError):
    """A monitor command from a caller that holds no job on the domain."""


async def connect_qmp(path: Path, name: str, timeout: float = 5.0) -> QMPClient:
    """A QMP session on a QEMU socket (retried until QEMU accepts it)."""
    client = QMPClient(name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.connect(str(path))
            return client
        except (QMPError, OSError) as e:
            if loop.time() > deadline:
                raise mj.OperationFailed(f"cannot connect to QEMU monitor {path}: {e}") from None
            await asyncio.sleep(0.01)


class Monitor:
    """The daemon's QMP session with one domain's QEMU."""

    def __init__(self, dom: mj.Domain) -> None:
        self.domain = dom
        self._client: Optional[QMPClient] = None
        self._lock = asyncio.Lock()
        self.commands = 0  # sent, for tests and the status route

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def connect(self, path: Path, timeout: float = 5.0) -> None:
        await self.disconnect()
        self._client = await connect_qmp(path, f"pymigjob:{self.domain.name}", timeout)

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except (QMPError, OSError, EOFError):
                pass  # QEMU already closed its end

    def check_entered(self, command: str) -> mj.Job:
        """The job the caller holds, or MonitorNotEntered."""
        job = held_sync_job(self.domain)
        if job is None:
            raise MonitorNotEntered(
                f"refusing to send '{command}' to the monitor of '{self.domain.name}': the "
                "caller holds no job on the domain (take a sync job, or a nested job of "
                "the running async job, first)")
        return job

    async def execute(self, command: str, arguments: Optional[Mapping[str, object]] = None,
                      timeout: float = COMMAND_TIMEOUT) -> Any:
        """Send one command as the holder of a job; QEMU's reply."""
        self.check_entered(command)
        async with self._lock:
            self.check_entered(command)  # still held after waiting for the lock
            client = self._client
            if client is None:
                raise mj.OperationInvalid(NOT_RUNNING)
            self.commands += 1
            try:
                return await asyncio.wait_for(client.execute(command, arguments), timeout)
            except ExecuteError as e:
                raise mj.OperationFailed(f"QEMU refused '{command}': {e.error.desc}") from None
            except asyncio.TimeoutError:
                raise mj.OperationFailed(f"QEMU did not answer '{command}' within "
                                         f"{timeout} s") from None
            except (QMPError, OSError, EOFError) as e:
                log.debug("monitor of %s lost during %s: %r", self.domain.name, command, e)
                await self.disconnect()
                raise mj.OperationInvalid(NOT_RUNNING) from None
