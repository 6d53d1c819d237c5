"""What the QEMU layer tells an observer (the daemon's metrics), so that
this package does not depend on any metrics library.  Every method is a
no-op here; a daemon overrides the ones it records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Observer", "Ledger"]


class Observer:
    def job_waited(self, job: str, seconds: float) -> None:
        """A begin of `job` (a label: "query", "async nested", "migration out")
        got its job after waiting `seconds`."""

    def job_held(self, job: str, seconds: float) -> None:
        """A job of kind `job` ended after being held `seconds`."""

    def job_timed_out(self, job: str) -> None:
        """A begin of `job` gave up at its deadline (or on max_queued)."""

    def phase_took(self, role: str, phase: str, seconds: float) -> None:
        """One migration step (role "source" / "destination") ran `seconds`."""

    def migration_ended(self, role: str, outcome: str) -> None:
        """A migration ended: outcome "completed", "failed", "aborted", ..."""


@dataclass
class Ledger:
    """Time one migration spent in job bookkeeping: every begin, phase
    change and end of the library (the durable record writes included),
    measured around the calls.  Waits for a busy job are bookkeeping too,
    so measure on an otherwise idle domain."""

    seconds: float = 0.0
    calls: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.calls += 1
