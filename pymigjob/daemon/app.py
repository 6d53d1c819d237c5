"""The application factory: one Host, its routes, the error middleware."""

from __future__ import annotations

from typing import AsyncIterator, Iterable, Optional

import aiohttp
from aiohttp import web

from pymigjob.qemu import Host

from .errors import errors_middleware
from .handlers import client_routes
from .keys import HOST, HTTP, MAX_BODY, METRICS, NAIVE, PEERS, SESSIONS, TOKEN
from .metrics import Metrics
from .peer import peer_routes

__all__ = ["make_app", "MAX_BODY_BYTES"]

#: a request body larger than this is refused (413) before it is parsed
MAX_BODY_BYTES = 64 * 1024


@web.middleware
async def count_requests(request: web.Request, handler):  # type: ignore[no-untyped-def]
    response = await handler(request)
    route = request.match_info.route.resource
    canonical = route.canonical if route is not None else "unmatched"
    request.app[METRICS].requests.labels(canonical, str(response.status)).inc()
    return response


def make_app(host: Host, metrics: Metrics, *, token: Optional[str] = None,
             naive: bool = False, peers: Iterable[str] = (),
             max_body: int = MAX_BODY_BYTES) -> web.Application:
    # the error middleware is the inner one, so the counter sees its statuses
    app = web.Application(middlewares=[count_requests, errors_middleware],
                          client_max_size=max_body)
    app[HOST] = host
    app[METRICS] = metrics
    app[TOKEN] = token
    app[NAIVE] = naive
    app[PEERS] = frozenset(peers)
    app[MAX_BODY] = max_body
    app[SESSIONS] = {}
    app.add_routes(client_routes() + peer_routes())
    metrics.watch(host)

    async def http_client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    app.cleanup_ctx.append(http_client)
    return app
