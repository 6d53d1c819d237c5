"""The client API: each handler reads its fields, makes one Host call (which
takes the job libvirt takes for it) and answers JSON.

    GET  /v1/domains                       list
    POST /v1/domains          {name, memory_mb?}          create (define)
    GET  /v1/domains/{name}                status: job status and statistics
    DELETE /v1/domains/{name}              undefine (shut off only)
    POST /v1/domains/{name}/start    {paused?}            MODIFY job
    POST /v1/domains/{name}/query    {timeout?}           QUERY job: query-status
    POST /v1/domains/{name}/modify   {command, arguments?, timeout?}   MODIFY job
    POST /v1/domains/{name}/destroy  {timeout?}           kill, then DESTROY job
    POST /v1/domains/{name}/migrate  {destination, bandwidth?, timeout?}
    POST /v1/domains/{name}/abort    {timeout?}           ABORT jobs
    GET  /v1/host                          what recovery did at start
    GET  /metrics                          Prometheus
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict
from typing import Any, Optional

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from yarl import URL

import pymigjob as mj
from pymigjob.qemu import MigrationReport, migrate
from pymigjob.qemu.definitions import MAX_MEMORY_MB, check_name

from .body import TIMEOUT, Field, read_fields
from .errors import error_response
from .keys import HOST, HTTP, METRICS, NAIVE, PEERS, TOKEN
from .peer import HttpPeer

__all__ = ["client_routes"]


def _name(request: web.Request) -> str:
    return check_name(request.match_info["name"])


def _memory(value: Any) -> Optional[str]:
    return None if 16 <= value <= MAX_MEMORY_MB else f"must be in [16, {MAX_MEMORY_MB}]"


def _bandwidth(value: Any) -> Optional[str]:
    return None if 1024 <= value <= 10**12 else "must be in [1024, 10**12] bytes/s"


async def list_domains(request: web.Request) -> web.Response:
    host = request.app[HOST]
    return web.json_response({"domains": [host.describe(n) for n in sorted(host.vms)]})


async def create(request: web.Request) -> web.Response:
    f = await read_fields(request, {"name": Field(str), "memory_mb": Field(int, 32, _memory)})
    host = request.app[HOST]
    host.define(check_name(f["name"]), f["memory_mb"])
    return web.json_response(host.describe(f["name"]), status=201)


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[HOST].describe(_name(request)))


async def undefine(request: web.Request) -> web.Response:
    request.app[HOST].undefine(_name(request))
    return web.json_response({})


async def start(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"paused": Field(bool, False)})
    host = request.app[HOST]
    await host.start(name, f["paused"])
    return web.json_response(host.describe(name))


async def query(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"timeout": TIMEOUT})
    return web.json_response({"status": await request.app[HOST].query(name, f["timeout"])})


async def modify(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"command": Field(str), "arguments": Field(dict, None),
                                    "timeout": TIMEOUT})
    reply = await request.app[HOST].modify(name, f["command"], f["arguments"], f["timeout"])
    return web.json_response({"return": reply})


async def destroy(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"timeout": TIMEOUT})
    host = request.app[HOST]
    await host.destroy(name, f["timeout"])
    return web.json_response(host.describe(name))


async def abort(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"timeout": TIMEOUT})
    await request.app[HOST].abort(name, f["timeout"])
    return web.json_response({})


def _report(report: MigrationReport) -> dict[str, Any]:
    out = asdict(report)
    out.pop("error")
    return out


def _destination(request: web.Request, text: str) -> str:
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host \
            or url.path not in ("", "/") or url.query_string:
        raise mj.InvalidArgument(f"destination must be a daemon's base URL "
                                 f"(http://HOST:PORT): {text!r}")
    allowed = request.app[PEERS]
    try:
        loopback = ipaddress.ip_address(url.host).is_loopback
    except ValueError:
        loopback = url.host == "localhost"
    if url.host not in allowed and not loopback:
        raise mj.InvalidArgument(f"destination host {url.host} is not allowed "
                                 "(loopback, or --allow-peer)")
    return str(url).rstrip("/")


async def migrate_domain(request: web.Request) -> web.Response:
    name = _name(request)
    f = await read_fields(request, {"destination": Field(str),
                                    "bandwidth": Field(int, None, _bandwidth),
                                    "timeout": TIMEOUT})
    destination = _destination(request, f["destination"])
    app = request.app
    app[HOST].vm(name)  # an unknown domain is a 404 before any connection
    try:
        async with HttpPeer(app[HTTP], destination, app[TOKEN], name) as peer:
            report = await migrate(app[HOST], name, peer, bandwidth=f["bandwidth"],
                                   naive=app[NAIVE], timeout=f["timeout"])
    except mj.Error as e:
        failed: Optional[MigrationReport] = getattr(e, "report", None)
        if failed is None:
            raise
        return error_response(e, report=_report(failed))
    return web.json_response(_report(report))


async def host_info(request: web.Request) -> web.Response:
    host = request.app[HOST]
    return web.json_response({"state_dir": str(host.state_dir), "naive": request.app[NAIVE],
                              "recovered": [asdict(r) for r in host.recovered],
                              "version": mj.__version__})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def client_routes() -> list[web.RouteDef]:
    return [
        web.get("/v1/domains", list_domains),
        web.post("/v1/domains", create),
        web.get("/v1/domains/{name}", status),
        web.delete("/v1/domains/{name}", undefine),
        web.post("/v1/domains/{name}/start", start),
        web.post("/v1/domains/{name}/query", query),
        web.post("/v1/domains/{name}/modify", modify),
        web.post("/v1/domains/{name}/destroy", destroy),
        web.post("/v1/domains/{name}/migrate", migrate_domain),
        web.post("/v1/domains/{name}/abort", abort),
        web.get("/v1/host", host_info),
        web.get("/metrics", metrics),
    ]
