"""Request bodies: a JSON object whose fields are named, typed and bounded
up front; anything else is a 400 that changes nothing."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from aiohttp import web

import pymigjob as mj

__all__ = ["Field", "read_fields", "TIMEOUT", "MAX_TIMEOUT"]

MAX_TIMEOUT = 300.0
_MISSING = object()


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    default: Any = _MISSING                    # _MISSING: required
    check: Optional[Callable[[Any], Optional[str]]] = None   # returns what is wrong


def _timeout(value: Any) -> Optional[str]:
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        return f"must be > 0 and <= {MAX_TIMEOUT:g} seconds"
    return None


#: the optional job wait of every request that takes a job (None: the daemon's)
TIMEOUT = Field((int, float), None, _timeout)


async def read_fields(request: web.Request, spec: dict[str, Field]) -> dict[str, Any]:
    raw = await request.read()  # aiohttp refuses a body over client_max_size (413)
    data: Any = {}
    if raw.strip():
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise mj.InvalidArgument(f"request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise mj.InvalidArgument("request body must be a JSON object")
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise mj.InvalidArgument(f"unknown field '{unknown[0]}' (this request takes: "
                                 f"{', '.join(sorted(spec)) or 'nothing'})")
    out: dict[str, Any] = {}
    for name, field in spec.items():
        value = data.get(name, _MISSING)
        if value is _MISSING or (value is None and field.default is None):
            if field.default is _MISSING:
                raise mj.InvalidArgument(f"field '{name}' is required")
            out[name] = field.default
            continue
        kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise mj.InvalidArgument(f"field '{name}' must be {names}, not "
                                     f"{type(value).__name__}")
        problem = field.check(value) if field.check is not None else None
        if problem:
            raise mj.InvalidArgument(f"field '{name}' {problem}: {value!r}")
        out[name] = value
    return out
