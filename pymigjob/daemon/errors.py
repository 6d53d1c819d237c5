"""Errors on the wire: every failure is JSON with libvirt's code and text
and an HTTP status that fits it; the peer turns that JSON back into the
same library error.

    {"error": {"code": 55, "name": "OPERATION_INVALID",
               "message": "domain is not running",
               "text": "Requested operation is not valid: domain is not running"}}
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable, Optional

from aiohttp import web

import pymigjob as mj

from .keys import MAX_BODY

__all__ = ["PeerUnreachable", "status_for", "error_body", "error_response",
           "error_from_body", "errors_middleware", "AUTH_FAILED", "NO_SUPPORT"]

log = logging.getLogger("pymigjob.daemon")

#: libvirt codes the library has no class for, used for HTTP-level refusals
AUTH_FAILED = (45, "AUTH_FAILED", "authentication failed")
NO_SUPPORT = (3, "NO_SUPPORT", "this function is not supported by the connection driver")


class PeerUnreachable(mj.OperationFailed):
    """The destination daemon could not be reached or answered nonsense."""


_BY_CODE: dict[int, int] = {
    mj.ErrorCode.INVALID_ARG: 400,
    mj.ErrorCode.NO_DOMAIN: 404,
    mj.ErrorCode.OPERATION_INVALID: 409,
    mj.ErrorCode.OPERATION_ABORTED: 409,
    mj.ErrorCode.OPERATION_TIMEOUT: 503,  # the job is busy: try again later
    mj.ErrorCode.OPERATION_FAILED: 500,
    mj.ErrorCode.INTERNAL_ERROR: 500,
}


def status_for(error: mj.Error) -> int:
    if isinstance(error, mj.QueueFull):
        return 503
    if isinstance(error, PeerUnreachable):
        return 502
    if str(error.message).endswith("already exists"):
        return 409
    return _BY_CODE.get(int(error.code), 500)


def error_body(error: mj.Error, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": int(error.code), "name": error.code.name,
                      "message": error.message, "text": str(error), **extra}}


def error_response(error: mj.Error, status: Optional[int] = None,
                   **extra: Any) -> web.Response:
    status = status or status_for(error)
    headers = {"Retry-After": "1"} if status == 503 else None
    return web.json_response(error_body(error, **extra), status=status, headers=headers)


def _plain(status: int, code: tuple[int, str, str], message: str) -> web.Response:
    number, name, prefix = code
    return web.json_response({"error": {"code": number, "name": name, "message": message,
                                        "text": f"{prefix}: {message}"}}, status=status)


_CLASSES: dict[int, type[mj.Error]] = {
    mj.ErrorCode.INVALID_ARG: mj.InvalidArgument, mj.ErrorCode.NO_DOMAIN: mj.NoDomain,
    mj.ErrorCode.OPERATION_INVALID: mj.OperationInvalid,
    mj.ErrorCode.OPERATION_TIMEOUT: mj.JobTimeout,
    mj.ErrorCode.OPERATION_ABORTED: mj.OperationAborted,
    mj.ErrorCode.INTERNAL_ERROR: mj.InternalError,
}


def error_from_body(status: int, text: str) -> mj.Error:
    """The library error a peer's JSON error stands for."""
    try:
        body = json.loads(text)["error"]
        code, message = int(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return PeerUnreachable(f"the destination answered HTTP {status}: {text[:200]!r}")
    cls = _CLASSES.get(code, mj.OperationFailed)
    return cls(message)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Library errors and aiohttp's own refusals (404, 405, 413, ...) as JSON."""
    try:
        return await handler(request)
    except mj.Error as e:
        return error_response(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        if e.status == 401 or e.status == 403:
            return _plain(e.status, AUTH_FAILED, e.text or e.reason)
        if e.status in (404, 405):
            what = "no such route" if e.status == 404 else \
                f"method {request.method} is not allowed here"
            return _plain(e.status, NO_SUPPORT, f"{what}: {request.method} {request.path}")
        message = e.reason if e.status != 413 else \
            f"request body too large (the limit is {request.app[MAX_BODY]} bytes)"
        return error_response(mj.InvalidArgument(message), status=e.status)
    except Exception:
        log.exception("unexpected failure serving %s %s", request.method, request.path)
        return error_response(mj.InternalError("unexpected failure in the daemon; see its log"))
