"""Named instants of the v3 protocol at which a test can make this process
die as a SIGKILL would: ``PYMIGJOB_CRASH_AT=source:perform3-done`` (several,
comma-separated), or ``PYMIGJOB_CRASH_AT_FILE=PATH``, a file read at every
point, so a harness can re-arm a running daemon.  Unset, each point costs
one set lookup.  The kill test
(tests/qemu/test_kill_phases.py) and ``demo --qemu --crash`` kill a daemon at
every one of them, then restart it and check the guests."""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point"]

#: every point, in protocol order
POINTS = (
    "source:begin3",              # BEGIN3 recorded, guest described
    "destination:prepare",        # PREPARE recorded, no QEMU yet
    "destination:qemu-started",   # incoming QEMU up, not yet listening
    "destination:prepared",       # listening; the answer not yet sent
    "source:prepared",            # the source has the URI
    "source:migrating",           # `migrate` sent to QEMU
    "source:perform3-done",       # PERFORM3_DONE recorded
    "destination:finish3",        # FINISH3 recorded, guest not yet resumed
    "destination:resumed",        # `cont` done, job not yet ended
    "destination:finished",       # job ended; the answer not yet sent
    "source:finished",            # the source has Finish3's answer
    "source:confirm3",            # CONFIRM3 recorded, source QEMU still there
    "source:confirm3-cancelled",  # CONFIRM3_CANCELLED recorded, not yet resumed
    "source:quit",                # source QEMU gone, job not yet ended
    "source:done",                # job ended
)

_ARMED = frozenset(p.strip() for p in os.environ.get("PYMIGJOB_CRASH_AT", "").split(",")
                   if p.strip())
_FILE = os.environ.get("PYMIGJOB_CRASH_AT_FILE") or None


def _armed_in_file() -> list[str]:
    try:
        with open(_FILE) as f:  # type: ignore[arg-type]
            return f.read().replace(",", " ").split()
    except OSError:
        return []


def crash_point(name: str) -> None:
    if name in _ARMED or (_FILE is not None and name in _armed_in_file()):
        os.kill(os.getpid(), signal.SIGKILL)
