"""The exception hierarchy.  Each error carries libvirt's code and bare
message; str() gives libvirt's formatted "<prefix>: <message>".  Each class
also subclasses the builtin it resembles, so callers may catch either."""

from __future__ import annotations

from .enums import ErrorCode


class Error(Exception):
    """Base of every pymigjob error."""

    default_code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, code: ErrorCode | int | None = None) -> None:
        error_code = ErrorCode(self.default_code if code is None else code)
        # args are always (message, int code): the same whoever raised it
        super().__init__(message, int(error_code))
        self.message = message
        self.code = error_code

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
}


#: how the reference limit's OPERATION_FAILED ends ("domain 'vm' already
#: has 2147483647 references, the most it can count")
REFS_LIMIT_TEXT = "references, the most it can count"


def error_from(code: int, message: str) -> Error:
    if code == ErrorCode.OPERATION_FAILED and message.endswith(REFS_LIMIT_TEXT):
        return OperationFailed(message, code)
    return ERROR_CLASSES.get(code, Error)(message, code)
