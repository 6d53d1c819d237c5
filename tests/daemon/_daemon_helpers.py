"""In-process daemons on loopback addresses, a client, and a TCP proxy the
test can cut."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Optional

import aiohttp
from aiohttp import web

from pymigjob.daemon.app import make_app
from pymigjob.daemon.metrics import Metrics
from pymigjob.qemu import Host

TOKEN = "test-token"


class Daemon:
    def __init__(self, root: str, address: str, *, token: Optional[str] = TOKEN,
                 naive: bool = False, **host_options: Any) -> None:
        self.state_dir = Path(root) / address
        self.address = address
        self.token, self.naive = token, naive
        self.host_options = host_options
        self.url = ""

    async def start(self) -> Daemon:
        self.metrics = Metrics()
        self.host = Host(self.state_dir, migration_address=self.address,
                         observer=self.metrics, **self.host_options)
        await self.host.open()
        self.app = make_app(self.host, self.metrics, token=self.token, naive=self.naive)
        self.runner = web.AppRunner(self.app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.address, 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        self.url = f"http://{self.address}:{self.port}"
        self.http = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        await self.http.close()
        await self.runner.cleanup()
        await self.host.stop_all()
        await self.host.close()

    async def call(self, method: str, path: str, body: Any = None, *,
                   raw: Optional[bytes] = None,
                   headers: Optional[dict[str, str]] = None) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.http.request(method, self.url + path, data=data,
                                     headers=headers) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text


class Proxy:
    """Forwards a loopback port to a daemon; ``cut()`` drops every
    connection through it and refuses new ones."""

    def __init__(self, address: str, target: Daemon) -> None:
        self.address, self.target = address, target
        self.writers: list[asyncio.StreamWriter] = []
        self.server: Optional[asyncio.base_events.Server] = None

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, self.address, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://{self.address}:{self.port}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.target.address,
                                                             self.target.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
