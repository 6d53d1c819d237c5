"""One QEMU process per domain: start it, find it again after a daemon
restart, kill it.

Every file of a domain's QEMU lives in one runtime directory (the daemon's
``state_dir/qemu``): the monitor socket the daemon talks to, a second
socket for observers (tests and the demo's summary read QEMU's own state
there without touching the daemon's monitor), QEMU's pidfile and its log.

QEMU runs in a session of its own, so a SIGKILL of the daemon, or a
Ctrl-C to the daemon's process group, leaves it running -- the situation
recovery is for.  A QEMU started by this process is reaped by it; one
adopted after a restart belongs to whoever inherited it (see reaper.py),
so liveness never relies on ``waitpid`` alone: a zombie counts as dead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pymigjob as mj

__all__ = ["QEMU_BINARY", "find_qemu", "RuntimeFiles", "QemuProcess"]

QEMU_BINARY = "qemu-system-x86_64"

#: a unix socket path longer than this does not fit in sockaddr_un
_SUN_PATH_MAX = 107


def find_qemu(binary: Optional[str] = None) -> Optional[str]:
    """The QEMU binary's path (PYMIGJOB_QEMU overrides), or None."""
    return shutil.which(binary or os.environ.get("PYMIGJOB_QEMU") or QEMU_BINARY)


@dataclass(frozen=True)
class RuntimeFiles:
    """Where one domain's QEMU keeps its sockets, pidfile and log."""

    directory: Path
    name: str

    @property
    def monitor(self) -> Path:
        return self.directory / f"{self.name}.qmp"

    @property
    def inspect(self) -> Path:
        return self.directory / f"{self.name}.inspect.qmp"

    @property
    def pidfile(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def check(self) -> None:
        for path in (self.monitor, self.inspect):
            if len(os.fsencode(path)) > _SUN_PATH_MAX:
                raise mj.OperationFailed(f"monitor socket path too long for a unix socket: "
                                         f"{path} (use a shorter state directory)")

    def remove(self) -> None:
        """Drop what a dead QEMU left behind (the log stays)."""
        for path in (self.monitor, self.inspect, self.pidfile):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


def _proc_state(pid: int) -> Optional[str]:
    """The state letter in /proc/PID/stat (None: no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name is in parentheses and may contain anything
    return stat[stat.rfind(b")") + 2:][:1].decode()


def _runs_with(pid: int, monitor: Path) -> bool:
    """PID is a live QEMU with this monitor socket (not a reused pid)."""
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(os.fsencode(monitor) in arg for arg in argv)


class QemuProcess:
    """A domain's QEMU.  ``start`` launches it, ``adopt`` finds one that
    outlived the daemon, ``kill`` ends it; ``alive`` asks /proc."""

    def __init__(self, files: RuntimeFiles, pid: int,
                 child: Optional[subprocess.Popen[bytes]] = None) -> None:
        self.files = files
        self.pid = pid
        self._child = child  # None when adopted: another process reaps it

    def __repr__(self) -> str:
        return f"<QemuProcess {self.files.name} pid={self.pid}>"

    @classmethod
    def command(cls, files: RuntimeFiles, binary: str, memory_mb: int,
                incoming: bool) -> list[str]:
        argv = [binary, "-name", f"guest={files.name}", "-machine", "pc,accel=tcg",
                "-m", str(memory_mb), "-smp", "1", "-nodefaults", "-no-user-config",
                "-display", "none",
                "-S",  # always start paused; `cont` runs it (libvirt does the same)
                "-qmp", f"unix:{files.monitor},server=on,wait=off",
                "-qmp", f"unix:{files.inspect},server=on,wait=off",
                "-pidfile", str(files.pidfile)]
        if incoming:
            argv += ["-incoming", "defer"]
        return argv

    @classmethod
    async def start(cls, files: RuntimeFiles, *, memory_mb: int = 32, incoming: bool = False,
                    binary: Optional[str] = None, timeout: float = 10.0) -> QemuProcess:
        """Launch QEMU (paused) and wait until its monitor socket exists."""
        path = find_qemu(binary)
        if path is None:
            raise mj.OperationFailed(f"cannot find {binary or QEMU_BINARY} "
                                     "(apt-get install qemu-system-x86)")
        files.check()
        files.directory.mkdir(parents=True, exist_ok=True)
        files.remove()
        with open(files.log, "ab") as log:
            child = subprocess.Popen(cls.command(files, path, memory_mb, incoming),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, close_fds=True)
        proc = cls(files, child.pid, child)
        deadline = time.monotonic() + timeout
        while not (files.monitor.exists() and files.inspect.exists()):
            if child.poll() is not None:
                raise mj.OperationFailed(f"QEMU for '{files.name}' exited with status "
                                         f"{child.returncode} at start: {proc.log_tail()}")
            if time.monotonic() > deadline:
                await proc.kill()
                raise mj.OperationFailed(f"QEMU for '{files.name}' did not open its monitor "
                                         f"within {timeout} s")
            await asyncio.sleep(0.005)
        return proc

    @classmethod
    def adopt(cls, files: RuntimeFiles) -> Optional[QemuProcess]:
        """The QEMU a previous daemon started for this domain, if it still
        runs (its pidfile names a live process with this domain's monitor)."""
        try:
            pid = int(files.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return cls(files, pid) if _runs_with(pid, files.monitor) else None

    @property
    def alive(self) -> bool:
        if self._child is not None and self._child.poll() is not None:
            return False
        return _runs_with(self.pid, self.files.monitor)

    async def wait(self, timeout: float) -> bool:
        """True once the process is gone (reaped or a zombie) within timeout."""
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def kill(self, grace: float = 1.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns once it is
        gone, with its sockets and pidfile removed."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if not self.alive:
                break
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
            if await self.wait(wait):
                break
        if self._child is not None:
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL did not work
                raise mj.OperationFailed(f"QEMU pid {self.pid} survived SIGKILL") from None
        self.files.remove()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.files.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"
