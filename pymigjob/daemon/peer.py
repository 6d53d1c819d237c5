"""Daemon to daemon: the destination's routes and the source's client.

The source holds a *migration session* open for the whole migration -- a
WebSocket on which nothing is said; it stands for libvirt's connection
between the two daemons.  While it stands, the source calls Prepare3 and
Finish3 over plain HTTP.  When it falls (the source died, the network
broke):

* the destination treats an incoming migration still parked in PREPARE as
  abandoned, and destroys it (libvirt's auto-destroy of an incoming domain
  whose controlling connection closed);
* the source's Perform3 sees ``alive()`` turn false at its next poll and
  cancels ("Lost connection to destination host").

Every peer call carries ``Authorization: Bearer <token>``, the token both
daemons read from their --token-file; without one, peer routes are refused.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any, Optional

import aiohttp
from aiohttp import web

import pymigjob as mj
from pymigjob.qemu import Host, finish3, prepare3
from pymigjob.qemu.definitions import check_name
from pymigjob.qemu.migration import LOST_PEER, OutcomeUnknown

from .body import Field, read_fields
from .errors import PeerUnreachable, error_from_body
from .keys import HOST, SESSIONS, TOKEN

__all__ = ["HttpPeer", "peer_routes"]

log = logging.getLogger("pymigjob.daemon")

#: seconds between WebSocket pings: a half-open connection is noticed within two
HEARTBEAT = 2.0
#: a peer call that takes longer has lost its peer
CALL_TIMEOUT = 60.0


def _check_token(request: web.Request) -> None:
    token = request.app[TOKEN]
    if token is None:
        raise web.HTTPForbidden(text="peer calls are disabled: the daemon has no --token-file")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise web.HTTPUnauthorized(text="missing or wrong peer token")


def _source_gone(host: Host, name: str) -> None:
    """The session of `name`'s migration fell: an incoming migration still
    parked goes (Host.auto_destroy, through the library's abandon rule)."""
    vm = host.vms.get(name)
    if vm is not None and vm.domain.async_job == mj.AsyncJob.MIGRATION_IN:
        try:
            host.driver.abandon(name)
        except mj.NoDomain:
            pass


async def session(request: web.Request) -> web.StreamResponse:
    _check_token(request)
    name = check_name(request.match_info["name"])
    sessions = request.app[SESSIONS]
    if name in sessions:
        raise mj.OperationInvalid(f"a migration session for domain '{name}' is already open")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT)
    await ws.prepare(request)
    sessions[name] = ws
    try:
        async for _ in ws:  # nothing is said; the loop ends when the connection does
            pass
    finally:
        if sessions.get(name) is ws:
            del sessions[name]
        _source_gone(request.app[HOST], name)
    return ws


async def prepare(request: web.Request) -> web.Response:
    _check_token(request)
    fields = await read_fields(request, {"name": Field(str), "memory_mb": Field(int, 32),
                                         "running": Field(bool, True)})
    name = check_name(fields["name"])
    host, sessions = request.app[HOST], request.app[SESSIONS]
    if name not in sessions:
        raise mj.OperationInvalid(f"no migration session is open for domain '{name}'")
    result = await prepare3(host, fields)
    if name not in sessions:  # it fell while we prepared: nobody will finish this
        _source_gone(host, name)
        raise mj.OperationFailed(f"the migration session of domain '{name}' closed "
                                 "during Prepare3")
    return web.json_response(result)


async def finish(request: web.Request) -> web.Response:
    _check_token(request)
    fields = await read_fields(request, {"name": Field(str), "ok": Field(bool)})
    name = check_name(fields["name"])
    if fields["ok"] and name not in request.app[SESSIONS]:
        # the session fell: the incoming guest is being (or was) destroyed
        raise mj.OperationInvalid(f"no migration session is open for domain '{name}'")
    return web.json_response(await finish3(request.app[HOST], name, fields["ok"]))


def peer_routes() -> list[web.RouteDef]:
    return [web.get("/v1/peer/session/{name}", session),
            web.post("/v1/peer/prepare", prepare),
            web.post("/v1/peer/finish", finish)]


class HttpPeer:
    """The destination daemon as the source's migration sees it
    (pymigjob.qemu.migration.Peer), with the session held open."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: Optional[str],
                 name: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._name = name
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._watch: Optional[asyncio.Task[None]] = None

    async def __aenter__(self) -> HttpPeer:
        try:
            self._ws = await self._http.ws_connect(
                f"{self._base}/v1/peer/session/{self._name}", headers=self._headers,
                heartbeat=HEARTBEAT, timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        except aiohttp.WSServerHandshakeError as e:
            raise PeerUnreachable(f"the destination {self._base} refused the migration "
                                  f"session: HTTP {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            raise PeerUnreachable(f"cannot reach the destination {self._base}: "
                                  f"{e or type(e).__name__}") from None
        self._watch = asyncio.get_running_loop().create_task(self._watch_session())
        return self

    async def _watch_session(self) -> None:
        assert self._ws is not None
        async for _ in self._ws:
            pass

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._watch is not None:
            await asyncio.gather(self._watch, return_exceptions=True)

    def alive(self) -> bool:
        return self._ws is not None and not self._ws.closed and \
            self._watch is not None and not self._watch.done()

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST a peer call.  Not sent (session down, connection refused):
        PeerUnreachable.  Sent, or maybe sent, and no answer: OutcomeUnknown."""
        if not self.alive():
            raise mj.OperationFailed(LOST_PEER)
        try:
            async with self._http.post(f"{self._base}{path}", json=payload,
                                       headers=self._headers,
                                       timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT)) as r:
                text = await r.text()
        except aiohttp.ClientConnectorError as e:
            raise PeerUnreachable(f"{LOST_PEER}: {e}") from None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
            raise OutcomeUnknown(f"{LOST_PEER}: no answer to {path}: "
                                 f"{e or type(e).__name__}") from None
        if r.status != 200:
            raise error_from_body(r.status, text)
        try:
            answer = json.loads(text)
        except ValueError:
            raise PeerUnreachable(f"the destination answered {text[:200]!r}") from None
        if not isinstance(answer, dict):
            raise PeerUnreachable(f"the destination answered {text[:200]!r}")
        return answer

    async def prepare(self, description: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._call("/v1/peer/prepare", description)
        except OutcomeUnknown as e:  # harmless here: the session's end undoes it
            raise PeerUnreachable(e.message) from None
        if not isinstance(answer.get("uri"), str) or not answer["uri"].startswith("tcp:"):
            raise PeerUnreachable(f"the destination gave no migration URI: {answer!r}")
        return answer

    async def finish(self, name: str, ok: bool) -> dict[str, Any]:
        return await self._call("/v1/peer/finish", {"name": name, "ok": ok})
