"""What the application carries (aiohttp's typed application keys)."""

from __future__ import annotations

from typing import Optional

import aiohttp
from aiohttp import web

from pymigjob.qemu import Host

from .metrics import Metrics

__all__ = ["HOST", "TOKEN", "SESSIONS", "HTTP", "METRICS", "NAIVE", "PEERS", "MAX_BODY"]

HOST = web.AppKey("host", Host)
#: the shared peer token (None: peer calls refused)
TOKEN = web.AppKey("token", Optional[str])  # type: ignore[arg-type]
#: open migration sessions on this (destination) daemon, by domain
SESSIONS = web.AppKey("sessions", dict[str, web.WebSocketResponse])
#: the source's HTTP client for peer calls
HTTP = web.AppKey("http", aiohttp.ClientSession)
METRICS = web.AppKey("metrics", Metrics)
#: migrate the naive way (the measurement's baseline)
NAIVE = web.AppKey("naive", bool)
#: the hosts a migration may go to
PEERS = web.AppKey("peers", frozenset)
MAX_BODY = web.AppKey("max_body", int)
