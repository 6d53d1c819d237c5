"""Helpers of the QEMU tests: run a scenario, look at a QEMU over its
observer socket (not the daemon's monitor), a peer in the same process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Optional, TypeVar

from pymigjob.qemu import Host, finish3, prepare3
from pymigjob.qemu.monitor import connect_qmp

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def inspect(path: Path) -> Optional[dict[str, Any]]:
    """query-status and query-migrate of the QEMU behind an observer socket
    (None: no QEMU there)."""
    if not path.exists():
        return None
    try:
        client = await connect_qmp(path, "test-inspector", timeout=2.0)
    except Exception:
        return None
    try:
        status = await client.execute("query-status")
        migration = await client.execute("query-migrate")
        return {"status": status["status"], "running": status["running"],
                "migration": migration.get("status", "none")}
    except Exception:
        return None  # QEMU went away while we asked
    finally:
        try:
            await client.disconnect()
        except Exception:
            pass


async def guest(host: Host, name: str) -> Optional[dict[str, Any]]:
    from pymigjob.qemu import RuntimeFiles
    return await inspect(RuntimeFiles(host.runtime_dir, name).inspect)


class LocalPeer:
    """The destination Host, called directly (no HTTP)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.up = True

    async def prepare(self, description: dict[str, Any]) -> dict[str, Any]:
        return await prepare3(self.host, description)

    async def finish(self, name: str, ok: bool) -> dict[str, Any]:
        return await finish3(self.host, name, ok)

    def alive(self) -> bool:
        return self.up


async def two_hosts(root: str, **kw: Any) -> tuple[Host, Host]:
    a = Host(Path(root) / "a", **kw)
    b = Host(Path(root) / "b", **kw)
    await a.open()
    await b.open()
    return a, b


async def teardown(*hosts: Host) -> None:
    for host in hosts:
        await host.stop_all()
        await host.close()
