"""The exception hierarchy (it needs only the enums and _constants).  Each
error carries libvirt's code and bare message; str() gives libvirt's
formatted "<prefix>: <message>".  Each class also subclasses the builtin it
resembles, so callers may catch either.  ``error_from`` makes the exception
for an error the C core reported."""

from __future__ import annotations

import re

from ._constants import REFS_LIMIT_TEXT
from .enums import AsyncJob, ErrorCode, Job, Phase


class Error(Exception):
    """Base of every pymigjob error.

    A message that gives job kinds as libvirt's numbers ("unexpected async
    job 1 type expected 0", "invalid job 99") keeps its exact text, and the
    error also names the kinds: as attributes (e.g. `async_job` and
    `expected_async_job`, each the enum member, or the int when it is none),
    all of them in `kinds`, and in a note for whoever reads the traceback
    (Python 3.11+)."""

    default_code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, code: ErrorCode | int | None = None) -> None:
        error_code = ErrorCode(self.default_code if code is None else code)
        # args are always (message, int code): the same whoever raised it
        super().__init__(message, int(error_code))
        self.message = message
        self.code = error_code
        #: attribute name -> kind, for a message that gives kinds as numbers
        self.kinds: dict[str, int] = {}
        if error_code in _KIND_CODES and isinstance(message, str):
            _name_kinds(self, message)

    def __str__(self) -> str:
        return f"{self.code.prefix}: {self.message}"


class InternalError(Error, RuntimeError):
    default_code = ErrorCode.INTERNAL_ERROR


class InvalidArgument(Error, ValueError):
    default_code = ErrorCode.INVALID_ARG


class NoMemory(Error, MemoryError):
    default_code = ErrorCode.NO_MEMORY


class OperationFailed(Error, RuntimeError):
    default_code = ErrorCode.OPERATION_FAILED


class QueueFull(OperationFailed):
    """max_queued reached: "cannot acquire state change lock ... due to max_queued limit"."""


class SystemFailure(Error, OSError):
    default_code = ErrorCode.SYSTEM_ERROR


class NoDomain(Error, LookupError):
    default_code = ErrorCode.NO_DOMAIN


class OperationInvalid(Error, RuntimeError):
    default_code = ErrorCode.OPERATION_INVALID


class JobTimeout(Error, TimeoutError):
    default_code = ErrorCode.OPERATION_TIMEOUT


class OperationAborted(Error, RuntimeError):
    default_code = ErrorCode.OPERATION_ABORTED


class XmlError(Error, ValueError):
    """A status record libvirt would refuse to load (XML_ERROR)."""

    default_code = ErrorCode.XML_ERROR


class ArgumentUnsupported(Error, ValueError):
    default_code = ErrorCode.ARGUMENT_UNSUPPORTED


class OperationUnsupported(Error, RuntimeError):
    default_code = ErrorCode.OPERATION_UNSUPPORTED


#: the class for each code the core reports (OPERATION_FAILED is the queue
#: limit, unless error_from finds the reference limit's text)
ERROR_CLASSES: dict[int, type[Error]] = {
    ErrorCode.INTERNAL_ERROR: InternalError,
    ErrorCode.INVALID_ARG: InvalidArgument,
    ErrorCode.NO_MEMORY: NoMemory,
    ErrorCode.OPERATION_FAILED: QueueFull,
    ErrorCode.SYSTEM_ERROR: SystemFailure,
    ErrorCode.NO_DOMAIN: NoDomain,
    ErrorCode.OPERATION_INVALID: OperationInvalid,
    ErrorCode.OPERATION_TIMEOUT: JobTimeout,
    ErrorCode.OPERATION_ABORTED: OperationAborted,
    ErrorCode.XML_ERROR: XmlError,
    ErrorCode.ARGUMENT_UNSUPPORTED: ArgumentUnsupported,
    ErrorCode.OPERATION_UNSUPPORTED: OperationUnsupported,
}


# ---- kinds given as numbers in libvirt's texts ---------------------------------

_KIND_CODES = frozenset({ErrorCode.INTERNAL_ERROR, ErrorCode.INVALID_ARG})

#: every message of either implementation that gives kinds as numbers: its
#: pattern, then (attribute, enum, how the note introduces it) per number
_KIND_MESSAGES: tuple[tuple[re.Pattern[str], tuple[tuple[str, type, str], ...]], ...] = (
    (re.compile(r"unexpected async job (-?\d+) type expected (-?\d+)"),
     (("async_job", AsyncJob, "the nested job asked for async job"),
      ("expected_async_job", AsyncJob, "the domain's async job is"))),
    (re.compile(r"invalid async job (-?\d+) or migration phase (-?\d+)"),
     (("async_job", AsyncJob, "async job"), ("phase", Phase, "migration phase"))),
    (re.compile(r"invalid async job (-?\d+)"), (("async_job", AsyncJob, "async job"),)),
    (re.compile(r"invalid migration phase (-?\d+)"), (("phase", Phase, "migration phase"),)),
    (re.compile(r"invalid job (-?\d+)"), (("job", Job, "job"),)),
)


def _describe(cls: type, value: int) -> tuple[int, str]:
    """(the member or the int, its description for the note)."""
    member = cls._value2member_map_.get(value)  # type: ignore[attr-defined]
    if member is not None:
        return member, f"{value} = {cls.__name__}.{member.name} ({member.label!r})"
    first, last = min(cls), max(cls)  # type: ignore[type-var]
    return value, (f"{value}, which is no {cls.__name__} (those are {first.value} = "
                   f"{first.name} ... {last.value} = {last.name})")


def _name_kinds(err: Error, message: str) -> None:
    for pattern, fields in _KIND_MESSAGES:
        m = pattern.fullmatch(message)
        if m is None:
            continue
        parts = []
        for (attr, cls, intro), number in zip(fields, m.groups()):
            value, text = _describe(cls, int(number))
            err.kinds[attr] = value
            setattr(err, attr, value)
            parts.append(f"{intro} {text}")
        add_note(err, "pymigjob: " + "; ".join(parts))
        return


def error_from(code: int, message: str) -> Error:
    """The exception for an error the core reported: its class by code
    (OPERATION_FAILED is QueueFull, but for the reference limit's text)."""
    if code == ErrorCode.OPERATION_FAILED and message.endswith(REFS_LIMIT_TEXT):
        return OperationFailed(message, code)
    return ERROR_CLASSES.get(code, Error)(message, code)


def add_note(exc: BaseException, text: str) -> bool:
    """exc.add_note(text) where notes exist (Python 3.11+); False on 3.10."""
    note = getattr(exc, "add_note", None)
    if note is None:
        return False
    note(text)
    return True
