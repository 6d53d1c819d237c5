"""Argument checks of the pure twin.  Each gives the TypeError / ValueError
(or InvalidArgument) that the C-backed classes give for the same argument, so
that the two implementations are interchangeable down to the messages."""

from __future__ import annotations

from typing import NoReturn

from ..enums import AsyncJob, Job, Phase, _check_kind_type
from .._seconds import seconds
from ..errors import InvalidArgument
from ._tables import MJ_NAME_MAX

# the C core takes kinds as C ints: a number in that range but outside the
# enum is the core's "invalid <what> N" (InvalidArgument, a ValueError);
# a number beyond it is refused before it gets there (plain ValueError)
C_INT_MIN = -(2**31)
C_INT_MAX = 2**31
MASK_LIMIT = 2**64

_ENUMS = {"Job": Job, "AsyncJob": AsyncJob, "Phase": Phase}


def name(value: object, what: str) -> str:
    """A domain, API or reason name: a str without NUL, at most MJ_NAME_MAX
    bytes in UTF-8.  Returns it as a plain str."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters")
    if len(data) > MJ_NAME_MAX:
        raise ValueError(f"{what} is longer than {MJ_NAME_MAX} bytes")
    return value if type(value) is str else data.decode("utf-8")


def api(value: object) -> str | None:
    return None if value is None else name(value, "api")


def timeout(value: object, default: float) -> float:
    """Seconds to wait: None is `default`; otherwise a real number >= 0."""
    if value is None:
        return default
    return seconds(value, "timeout")


def kind_type(value: object, enum_name: str, what: str) -> None:
    """A job, async job or phase must be a plain int or a member of its own
    enum (not a bool, not another enum's member): checked first."""
    cls = value.__class__
    if cls is int or cls is _ENUMS[enum_name]:
        return
    _check_kind_type(_ENUMS[enum_name], value, what)


def kind_range(value: int, last: int, enum_name: str, c_what: str) -> int:
    """An int kind in [0, last), checked after the other arguments."""
    if 0 <= value < last:
        return int(value)
    bad_kind(value, enum_name, c_what)


def kind(value: object, last: int, enum_name: str, what: str, c_what: str) -> int:
    """kind_type and kind_range at once."""
    kind_type(value, enum_name, what)
    return kind_range(value, last, enum_name, c_what)  # type: ignore[arg-type]


def bad_kind(value: int, enum_name: str, c_what: str) -> NoReturn:
    if C_INT_MIN <= value < C_INT_MAX:
        raise InvalidArgument(f"invalid {c_what} {int(value)}")
    raise ValueError(f"{value!r} is not a valid {enum_name}")


def mask(value: object, what: str) -> int:
    """An async job mask, 0 <= mask < 2**64 (`what` names the accepted types)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"mask must be {what}, not {type(value).__name__}")
    if not 0 <= value < MASK_LIMIT:
        raise ValueError(f"mask must be in [0, 2**64), not {value!r}")
    return int(value)
