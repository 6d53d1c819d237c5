"""The only module that touches the compiled core: ffi, lib, and the
translation of the C last error into an exception."""

from __future__ import annotations

from typing import Any

from . import _args
from .errors import error_from

try:
    from ._core import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "pymigjob's C core (pymigjob._core) is not built: install the "
        "package with `pip install .` (needs gcc and the Python headers), "
        "or select the pure-Python twin explicitly: PYMIGJOB_IMPL=pure, or "
        "import pymigjob.pure"
    ) from exc

NULL: Any = ffi.NULL
WAITING: int = lib.MJ_WAITING
#: how long one C wait may block before Python gets to run signal handlers
WAIT_SLICE: float = lib.MJ_WAIT_SLICE


_ERROR_MAX: int = lib.MJ_ERROR_MAX
#: a begin left something in the sync slot (nested jobs too) or the async one
SYNC_SLOT, ASYNC_SLOT = False, True
_take_error = lib.mj_error_take
#: give back what this thread's newest begin on a domain left in a slot
abandon = lib.mj_begin_abandon


def take_error() -> tuple[int, str]:
    """Pop the calling thread's newest C error: (code, message).  Errors
    are a per-thread stack, so a library call made in between by a signal
    handler cannot replace the error of the call being reported."""
    buf = ffi.new("char[]", _ERROR_MAX)
    code = _take_error(buf, _ERROR_MAX)
    return code, ffi.string(buf).decode("utf-8", "replace")


def c_string(value: Any) -> str | None:
    """A `const char *` result as str (None for NULL)."""
    if value == NULL:
        return None
    return ffi.string(value).decode("utf-8", "replace")


def encode_name(value: object, what: str) -> bytes:
    """A domain or reason name for C (see _args.name_bytes)."""
    return _args.name_bytes(value, what)


def c_api(api: object) -> Any:
    """An optional API name for C (NULL for None; see _args.api_bytes)."""
    data = _args.api_bytes(api)
    return NULL if data is None else data


def c_timeout(timeout: object) -> float:
    """None -> the domain's default (-1 for C); otherwise seconds >= 0
    (see _args.timeout)."""
    return -1.0 if timeout is None else _args.timeout(timeout)


def last_error() -> Exception:
    """The calling thread's newest C error as a pymigjob exception, taken
    off its stack.  Call it once for each failed C call."""
    return error_from(*take_error())


def wait_pending() -> None:
    """Finish a begin that returned WAITING: wait in slices so that
    signal handlers (Ctrl-C) run in between; the deadline was fixed by the
    begin.  The caller's exception path gives back whatever the begin
    holds, including a grant whose return an exception overtook (see
    `abandon`)."""
    while True:
        rc = lib.mj_pending_wait(WAIT_SLICE)
        if rc != WAITING:
            break
    if rc < 0:
        raise last_error()


def settle(rc: int) -> None:
    """After a begin returned non-zero: raise its error, or wait out its
    place in the queue."""
    if rc < 0:
        raise last_error()
    wait_pending()
