"""libvirt's virDomainJobData, as both backends report it: ``JobData``.

A running async job has a *current* record (its state, operation, start,
elapsed time, error); when it ends, the record becomes the domain's
*completed* one -- COMPLETED, FAILED (with the error) or CANCELED -- which
``Domain.job_stats(completed=True)`` reads once no async job runs (and
deletes, unless ``keep_completed``).  ``started`` and ``stopped`` are wall
clock times for display; ``elapsed`` comes from the monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import JobOperation, JobState


@dataclass(frozen=True, slots=True)
class JobData:
    """One job data record (virDomainJobData's part a lock library owns)."""

    state: JobState
    operation: JobOperation
    started: int           # ms since the epoch (wall clock); 0 when unset
    stopped: int           # ms since the epoch when the vCPUs stopped; 0 unset
    elapsed: float         # seconds, from the monotonic clock
    delta: float | None    # seconds (destination: received - sent), None unset
    error: str | None      # the failure's text


_STATE_OF = {int(m): m for m in JobState}
_OPERATION_OF = {int(m): m for m in JobOperation}


def job_data(state: int, operation: int, started: int, stopped: int, elapsed: float,
             delta: float | None, error: str | None) -> JobData:
    """A JobData from a backend's plain values."""
    return JobData(_STATE_OF[state], _OPERATION_OF[operation], started, stopped,
                   elapsed, delta, error)
