"""The only module that touches the compiled core: ffi, lib, and the
translation of the C last error into an exception."""

from __future__ import annotations

import functools
from typing import Any

from ._seconds import seconds

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
_NAME_MAX: int = lib.MJ_NAME_MAX
WAITING: int = lib.MJ_WAITING
#: how long one C wait may block before Python gets to run signal handlers
WAIT_SLICE: float = lib.MJ_WAIT_SLICE


_ERROR_MAX: int = lib.MJ_ERROR_MAX
#: a C int's range: a kind outside it would fail in cffi's conversion,
#: before the C begin runs (see `abandon`)
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
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
    """A domain or API name for C: str only, no NUL, at most MJ_NAME_MAX bytes."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters")
    if len(data) > _NAME_MAX:
        raise ValueError(f"{what} is longer than {_NAME_MAX} bytes")
    return data


@functools.lru_cache(maxsize=1024)
def _encoded_api(value: str) -> bytes:
    return encode_name(value, "api")


def c_api(api: object) -> Any:
    """An optional API name for C (NULL for None).  A daemon passes the same
    few libvirt API names over and over: their checked encodings are cached
    (only plain str; refusals are never cached)."""
    if api is None:
        return NULL
    if api.__class__ is str:
        return _encoded_api(api)
    return encode_name(api, "api")


def c_timeout(timeout: object) -> float:
    """None -> the domain's default (-1 for C); otherwise seconds >= 0: any
    real number (numbers.Real: int, float, Fraction, ...), not a bool."""
    if timeout is None:
        return -1.0
    cls = timeout.__class__
    if cls is not float and cls is not int:
        return seconds(timeout, "timeout")
    if not timeout >= 0:  # also catches NaN
        raise ValueError(f"timeout must be >= 0 seconds, not {timeout!r}")
    try:
        return float(timeout)
    except OverflowError:
        raise ValueError(f"timeout {timeout!r} is too large") from None


def last_error() -> Exception:
    """The calling thread's newest C error as a pymigjob exception, taken
    off its stack.  Call it once for each failed C call."""
    from .errors import error_from  # errors -> enums -> this module

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
