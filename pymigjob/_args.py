"""Every check of a caller's argument, with its message, for both backends.

A check raises ``TypeError`` or ``ValueError`` (never a pymigjob error: those
are the core's) and changes nothing; each backend calls them in the same
order, so the two are interchangeable down to the messages.  This module
needs nothing but _constants and _ft, so every layer above may use it (enums
included).  A kind's *range* within its enum ("invalid job 99") is the
core's check, not an argument's: the C core makes it, the twin mirrors it
(pymigjob/pure/core.py).
"""

from __future__ import annotations

import uuid as _uuid
from enum import Enum
from numbers import Real
import threading
from typing import Any, NoReturn

from . import _ft
from ._constants import API_FLAGS_LIMIT, C_INT_MAX, C_INT_MIN, MASK_LIMIT, MJ_NAME_MAX

# ---- names -------------------------------------------------------------------


def name_bytes(value: object, what: str) -> bytes:
    """A domain, API or reason name: a str without NUL, at most MJ_NAME_MAX
    bytes in UTF-8.  Returns its UTF-8 encoding."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    data = value.encode("utf-8")
    if b"\0" in data:
        raise ValueError(f"{what} must not contain NUL characters")
    if len(data) > MJ_NAME_MAX:
        raise ValueError(f"{what} is longer than {MJ_NAME_MAX} bytes")
    return data


def name(value: object, what: str) -> str:
    """name_bytes' check; returns the name as a plain str."""
    data = name_bytes(value, what)
    return value if value.__class__ is str else data.decode("utf-8")  # type: ignore[return-value]


#: the most API names whose checked encodings api_bytes keeps (per thread on
#: a free-threaded build)
API_CACHE_MAX = 1024
#: str -> its checked encoding.  A plain dict, not functools.lru_cache: on a
#: free-threaded build the lru_cache takes its own lock on every call, from
#: every thread.  A dict is read without a lock there (and atomically under
#: the GIL).  Races, all harmless: two threads missing the same name both
#: store equal bytes (either object is right); the size check and the store
#: are two steps, so a few threads may each add one entry past the bound.
#: Full, it keeps what it has (no eviction); further names are checked on
#: every call.
#:
#: Free-threaded builds keep one such dict per thread instead (_TLS): a
#: cached bytes object that every thread is handed has its reference count
#: changed by each of them on every call, and two cores changing one count
#: take turns on its cache line (see _ft).  Per thread, each bytes object is
#: its thread's own; same bound and rules, and no race at all.
_API_CACHE: dict[str, bytes] = {}
_TLS = threading.local()
_PER_THREAD: bool = _ft.FREE_THREADED


def api_cache() -> dict[str, bytes]:
    """The cache api_bytes uses in the calling thread (the one shared dict on
    GIL builds)."""
    if not _PER_THREAD:
        return _API_CACHE
    try:
        return _TLS.api_cache  # type: ignore[no-any-return]
    except AttributeError:
        cache: dict[str, bytes] = {}
        _TLS.api_cache = cache
        return cache


def api_bytes(value: object) -> bytes | None:
    """An optional API name, encoded (None stays None).  A daemon passes the
    same few libvirt API names over and over: the checked encodings of plain
    strs are cached (refusals never are)."""
    if value is None:
        return None
    if value.__class__ is str:
        if _PER_THREAD:
            try:
                cache = _TLS.api_cache
            except AttributeError:
                cache = api_cache()
        else:
            cache = _API_CACHE
        data = cache.get(value)  # type: ignore[call-overload]
        if data is None:
            data = name_bytes(value, "api")
            if len(cache) < API_CACHE_MAX:
                cache[value] = data  # type: ignore[index]
        return data
    return name_bytes(value, "api")


def api(value: object) -> str | None:
    """An optional API name, as a plain str."""
    return None if value is None else name(value, "api")


# ---- seconds -------------------------------------------------------------------


def seconds(value: object, what: str) -> float:
    """`value` as float seconds >= 0: any real number (numbers.Real: int,
    float, Fraction, an int or float subclass, ...) but a bool.  Refused:
    anything else (TypeError), NaN, negatives and what no float can hold
    (ValueError).  Infinity is accepted."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number of seconds or None, "
                        f"not {type(value).__name__}")
    if not value >= 0:  # also catches NaN
        raise ValueError(f"{what} must be >= 0 seconds, not {value!r}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"{what} {value!r} is too large") from None
    if not result >= 0:  # a Real whose float() disagrees with its comparisons
        raise ValueError(f"{what} must be >= 0 seconds, not {value!r}")
    return result


def timeout(value: object) -> float:
    """A begin's `timeout` that is not None (None is the driver's default,
    each backend's own business): seconds() with the common cases first."""
    cls = value.__class__
    if (cls is float or cls is int) and value >= 0:  # type: ignore[operator]
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            pass
    return seconds(value, "timeout")


# ---- kinds (jobs, async jobs, phases) -------------------------------------------


def kind_type_error(cls: type, value: object, what: str, noun: str | None = None) -> TypeError:
    """The TypeError for a kind that is no int, a bool, or a member of another
    enum (an AsyncJob where a Job is expected: IntEnums of one value compare
    equal, so without this check one kind would silently pass for another).
    It names both types, and the member (`noun` replaces "a <cls>" for
    values that are no enum member)."""
    cls_name = cls.__name__
    a_cls = f"{'an' if cls_name[0] in 'AEIOU' else 'a'} {cls_name}"
    if isinstance(value, Enum):
        member = value.name
        shown = f"{type(value).__name__}.{member}" if member else repr(value)
        return TypeError(f"{what} must be {a_cls}, not {shown}")
    return TypeError(f"{what} must be {noun or a_cls}, not {type(value).__name__}")


def is_kind(value: object, cls: type) -> bool:
    """A plain int (or an int subclass that is no enum) or a member of cls
    itself: not a bool, not another enum's member."""
    vcls = value.__class__
    return vcls is int or vcls is cls or (
        isinstance(value, int) and not isinstance(value, (bool, Enum)))


def kind_type(value: object, cls: type, what: str, noun: str | None = None) -> None:
    """TypeError unless is_kind(value, cls).  The range is for the caller
    (or the core) to check."""
    vcls = value.__class__
    if vcls is not int and vcls is not cls and not is_kind(value, cls):
        raise kind_type_error(cls, value, what, noun)


def enum_value(cls: Any, value: object, what: str) -> int:
    """An int in cls's range, or TypeError / ValueError."""
    if value.__class__ is cls:
        return value  # type: ignore[return-value]
    kind_type(value, cls, what)
    if value not in cls._value2member_map_:
        raise ValueError(f"{value!r} is not a valid {cls.__name__}")
    return int(value)  # type: ignore[call-overload]


def bad_kind(cls: type, value: object, what: str) -> NoReturn:
    """Raise the TypeError / ValueError that explains a rejected kind."""
    enum_value(cls, value, what)
    raise ValueError(f"{value!r} is not a valid {cls.__name__}")


def c_int_kind(value: int, cls: type, what: str) -> None:
    """A kind the core can take (a C int): beyond that range it is a plain
    ValueError here, before the core (and before cffi, which would refuse
    it after a C begin's exception path was armed)."""
    # 0..256 first: small ints are immortal, so a free-threaded build counts
    # no reference for them; C_INT_MIN/MAX are ints no build can make
    # immortal or deferred, and every thread loading them changes their
    # counts (see _ft)
    if not (0 <= value <= 256 or C_INT_MIN <= value <= C_INT_MAX):
        bad_kind(cls, value, what)


def in_c_int(*values: int) -> bool:
    return all(C_INT_MIN <= v <= C_INT_MAX for v in values)


# ---- masks, settings -------------------------------------------------------------


def mask(value: object, types: str = "an int") -> int:
    """An async job mask, 0 <= mask < 2**64 (`types` names what is accepted,
    for the message: "an int", "an int or None")."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"mask must be {types}, not {type(value).__name__}")
    if not 0 <= value < MASK_LIMIT:
        raise ValueError(f"mask must be in [0, 2**64), not {value!r}")
    return int(value)


def optional_mask(value: object) -> int | None:
    return None if value is None else mask(value, "an int or None")


def driver_settings(job_wait_timeout: object, max_queued: object,
                    strict_phases: object) -> tuple[float, int, bool]:
    """Driver(job_wait_timeout, max_queued, strict_phases), checked."""
    # any real number (numbers.Real: Fraction too), as every timeout
    if isinstance(job_wait_timeout, bool) or not isinstance(job_wait_timeout, Real):
        raise TypeError("job_wait_timeout must be a number of seconds")
    if not job_wait_timeout >= 0:
        raise ValueError(f"job_wait_timeout must be >= 0, not {job_wait_timeout!r}")
    try:
        wait = float(job_wait_timeout)
    except OverflowError:
        raise ValueError(f"job_wait_timeout {job_wait_timeout!r} is too large") from None
    if isinstance(max_queued, bool) or not isinstance(max_queued, int):
        raise TypeError("max_queued must be an int")
    if not 0 <= max_queued < 2**31:
        raise ValueError(f"max_queued must be in [0, 2**31), not {max_queued!r}")
    if not isinstance(strict_phases, bool):
        raise TypeError("strict_phases must be a bool")
    return wait, int(max_queued), strict_phases


def park_timeout(value: object) -> float | None:
    """Driver(park_timeout=...): None, or seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError("park_timeout must be a number of seconds or None")
    if not value > 0:
        raise ValueError(f"park_timeout must be > 0, not {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"park_timeout {value!r} is too large") from None


_HEX = frozenset("0123456789abcdef")


def uuid(value: object) -> str | None:
    """A domain's uuid: None, a ``uuid.UUID``, or a str in libvirt's textual
    form, 32 hex digits as 8-4-4-4-12 with dashes, either case; returned lower
    case (how libvirt prints one).  Other types are TypeError, other texts
    ValueError."""
    if value is None:
        return None
    if isinstance(value, _uuid.UUID):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"uuid must be a str or uuid.UUID, not {type(value).__name__}")
    text = value.lower()
    parts = text.split("-")
    if (len(text) != 36 or [len(p) for p in parts] != [8, 4, 4, 4, 12]
            or not _HEX.issuperset("".join(parts))):
        raise ValueError(f"invalid uuid {value[:64]!r}: expected 8-4-4-4-12 hex digits")
    return text


def flag(value: object, what: str) -> bool:
    """A switch such as ``nowait``: a bool (an int is refused: ``nowait=5``
    is a mistake, not a wish)."""
    if value.__class__ is not bool:
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value  # type: ignore[return-value]


# ---- libvirt 11: the async job's life, post-copy, job data -----------------------


def api_flags(value: object) -> int:
    """libvirt's apiFlags: an int, 0 <= flags < 2**32 (a C unsigned int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"flags must be an int, not {type(value).__name__}")
    if not 0 <= value < API_FLAGS_LIMIT:
        raise ValueError(f"flags must be in [0, 2**32), not {value!r}")
    return int(value)


def started(value: object) -> int:
    """restore_async_job(started=...): ms since the epoch, an int in
    [0, 2**63); None (and 0) mean now.  Returns 0 for None."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"started must be an int (ms since the epoch) or None, "
                        f"not {type(value).__name__}")
    if not 0 <= value < 2**63:
        raise ValueError(f"started must be in [0, 2**63), not {value!r}")
    return int(value)


def delta(value: object) -> float | None:
    """set_job_state(delta=...): None, or a finite real number of seconds
    (negative too: clock skew)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"delta must be a number of seconds or None, "
                        f"not {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:
        raise ValueError(f"delta {value!r} is too large") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError(f"delta must be finite, not {value!r}")
    return result


def error_arg(value: object) -> str | None:
    """An optional error text (a job's failure): a name's rules."""
    return None if value is None else name(value, "error")



def error_text(exc: BaseException) -> str:
    """The text a failed job records for `exc`: str(exc) (its type's name
    when empty), without NUL, cut to MJ_NAME_MAX bytes of UTF-8."""
    try:
        text = str(exc) or type(exc).__name__
    except Exception:  # a broken __str__
        text = type(exc).__name__
    data = text.replace("\0", " ").encode("utf-8", "replace")[:MJ_NAME_MAX]
    return data.decode("utf-8", "ignore")


def cleanup(value: object) -> None:
    """migration_job_continue(cleanup=...): None or a callable."""
    if value is not None and not callable(value):
        raise TypeError(f"cleanup must be callable or None, not {type(value).__name__}")


# free-threaded builds: deferred reference counts for this module's shared
# objects (_TLS is loaded on every call with an API name; see _ft)
_ft.defer_globals(globals())
