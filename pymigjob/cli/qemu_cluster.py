"""Two daemons as separate processes, each with its own state directory, on
two loopback addresses (two "hosts"), and a look at the real QEMUs behind
them -- for ``demo --qemu`` and the kill tests.

What is checked comes from the QEMUs themselves, over each one's observer
socket, and from /proc -- never from the daemons' word alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import aiohttp

import pymigjob as mj
from pymigjob.qemu import QemuProcess, RuntimeFiles
from pymigjob.qemu.monitor import connect_qmp
from pymigjob.qemu.reaper import Reaper

__all__ = ["DaemonProcess", "Cluster", "Guest", "observe", "qemu_pids_under"]


class DaemonProcess:
    """``python -m pymigjob daemon`` in a process of its own."""

    def __init__(self, name: str, address: str, state_dir: Path, token_file: Path,
                 extra: tuple[str, ...] = ()) -> None:
        self.name, self.address, self.state_dir = name, address, state_dir
        self.token_file, self.extra = token_file, extra
        self.port = 0  # picked at the first start, kept for restarts
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.recovered: list[dict[str, Any]] = []
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def crash_file(self) -> Path:
        """The crash points this daemon is armed with (pymigjob.qemu.crashpoints)."""
        return self.state_dir.parent / f"{self.name}.crash-at"

    async def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ, PYMIGJOB_CRASH_AT_FILE=str(self.crash_file))
        env.pop("PYMIGJOB_CRASH_AT", None)
        log = open(self.state_dir.parent / f"{self.name}.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pymigjob", "daemon", "--listen",
            f"{self.address}:{self.port}", "--state-dir", str(self.state_dir),
            "--token-file", str(self.token_file), *self.extra,
            stdout=asyncio.subprocess.PIPE, stderr=log, env=env, start_new_session=True)
        log.close()
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            hello = json.loads(line)
        except (asyncio.TimeoutError, ValueError):
            raise RuntimeError(f"daemon {self.name} did not start; see "
                               f"{self.state_dir.parent / (self.name + '.log')}") from None
        self.port = int(hello["listening"].rsplit(":", 1)[1])
        self.recovered = hello["recovered"]
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)

    async def wait_dead(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            if not await self.wait_dead(10):
                self.kill()
                await self.wait_dead(5)


@dataclass
class Guest:
    """One QEMU as seen over its observer socket."""

    side: str
    name: str
    pid: int
    status: Optional[str]       # QEMU's run state (None: it did not answer)
    running: bool
    migration: str


async def _ask(files: RuntimeFiles) -> Optional[dict[str, Any]]:
    try:
        client = await connect_qmp(files.inspect, "observer", timeout=2.0)
    except mj.Error:
        return None
    try:
        status = await client.execute("query-status")
        migration = await client.execute("query-migrate")
        return {"status": status["status"], "running": bool(status["running"]),
                "migration": str(migration.get("status", "none"))}
    except Exception:
        return None
    finally:
        try:
            await client.disconnect()
        except Exception:
            pass


async def observe(side: str, state_dir: Path) -> dict[str, Guest]:
    """Every live QEMU of one host, by domain name."""
    found: dict[str, Guest] = {}
    for pidfile in sorted((state_dir / "qemu").glob("*.pid")):
        files = RuntimeFiles(state_dir / "qemu", pidfile.stem)
        proc = QemuProcess.adopt(files)
        if proc is None:
            continue
        seen = await _ask(files)
        found[files.name] = Guest(side, files.name, proc.pid,
                                  seen and seen["status"], bool(seen and seen["running"]),
                                  seen["migration"] if seen else "?")
    return found


def qemu_pids_under(root: Path) -> set[int]:
    """Every live QEMU whose command line names a path under `root` (/proc)."""
    pids, needle = set(), os.fsencode(root)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2:][:1]
        if state != b"Z" and b"qemu-system" in argv.split(b"\0")[0] and needle in argv:
            pids.add(int(entry))
    return pids


@dataclass
class Cluster:
    """Daemons "a" (127.0.0.2) and "b" (127.0.0.3) under one directory."""

    root: Path
    extra: tuple[str, ...] = ()
    daemons: dict[str, DaemonProcess] = field(default_factory=dict)
    http: Optional[aiohttp.ClientSession] = None
    reaper: Optional[Reaper] = None

    async def start(self) -> Cluster:
        self.reaper = Reaper().start()   # QEMUs orphaned by a killed daemon come to us
        self.root.mkdir(parents=True, exist_ok=True)
        token = self.root / "token"
        token.write_text(secrets.token_hex(16))
        token.chmod(0o600)
        for name, address in (("a", "127.0.0.2"), ("b", "127.0.0.3")):
            state = self.root / name
            state.mkdir(parents=True, exist_ok=True)
            self.daemons[name] = DaemonProcess(name, address, state, token, self.extra)
        await asyncio.gather(*(d.start() for d in self.daemons.values()))
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self

    def other(self, side: str) -> str:
        return "b" if side == "a" else "a"

    async def call(self, side: str, method: str, path: str, body: Any = None,
                   timeout: float = 120.0) -> tuple[int, Any]:
        """(HTTP status, JSON) -- or (0, {"error": ...}) when the daemon is unreachable."""
        assert self.http is not None
        url = self.daemons[side].url + path
        try:
            async with self.http.request(method, url, json=body,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError) as e:
            return 0, {"error": {"code": 0, "name": "UNREACHABLE",
                                 "text": f"{type(e).__name__}: {e}"}}

    async def domains(self, side: str) -> Optional[dict[str, dict[str, Any]]]:
        status, body = await self.call(side, "GET", "/v1/domains", timeout=10)
        if status != 200:
            return None
        return {d["name"]: d for d in body["domains"]}

    async def settle(self, timeout: float = 15.0) -> bool:
        """Until no domain on either host has a job (a parked incoming
        migration whose source died is destroyed meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [await self.domains(s) for s in self.daemons]
            if all(v is not None and all(d["job"]["async"] == "none"
                                         and d["job"]["active"] == "none"
                                         for d in v.values()) for v in views):
                return True
            await asyncio.sleep(0.02)
        return False

    async def guests(self) -> dict[str, dict[str, Guest]]:
        return {side: await observe(side, d.state_dir) for side, d in self.daemons.items()}

    async def stop(self) -> None:
        """Destroy every guest, stop both daemons, kill any QEMU left."""
        for side in self.daemons:
            for name, dom in (await self.domains(side) or {}).items():
                if dom["pid"] is not None:
                    await self.call(side, "POST", f"/v1/domains/{name}/destroy", {})
        for d in self.daemons.values():
            await d.stop()
        for d in self.daemons.values():
            for pidfile in (d.state_dir / "qemu").glob("*.pid"):
                proc = QemuProcess.adopt(RuntimeFiles(pidfile.parent, pidfile.stem))
                if proc is not None:
                    await proc.kill()
        if self.http is not None:
            await self.http.close()
        if self.reaper is not None:
            self.reaper.stop()
