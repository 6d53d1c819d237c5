"""JobStatus: the part of a domain's job state that libvirt persists.

libvirt writes ``<job type='…' async='…' phase='…' flags='0x…'
asyncStarted='…' [asyncPaused='yes']>children</job>`` into the domain's
status file on every tracked change (qemuDomainObjPrivateXMLFormatJob) and
reads it back after a restart.  :class:`JobStatus` is that record, immutable,
with converters to and from the element (``pymigjob.persist.status_xml``,
libvirt 11's rules and errors) and to and from JSON.  Every label goes
through the enums' tables (``Job.label``, ``AsyncJob.label``,
``phase_to_string`` / ``phase_from_string``); nothing here repeats them.
Documents of every kind this module reads are in tests/data/status/.

Choices (docs/DECISIONS.md, "Persistence"):

* ``job`` is the *tracked* sync job, as libvirt writes it from 0.10.2 on: the
  active job when it is DESTROY, otherwise ``none``.  Parsing accepts any sync
  job label, so 2011-style files (``type='modify'``) still read.
* ``phase`` is written only when non-zero and read only when ``async`` is
  present (libvirt's rules); a non-migration async job's phase is always
  written as ``none``.
* ``started`` is the async job's start, in milliseconds since the epoch (modern
  libvirt's ``asyncStarted``), ``None`` without an async job or when the
  record does not say.  ``owner_api`` is the async job's owner API (the sync
  owner's for a lone DESTROY job); libvirt does not persist it, so the
  element carries it as ``ownerAPI``, which libvirt's parser ignores.
* ``flags`` (libvirt's apiFlags, 0 when unknown) and ``async_paused`` exist
  only with an async job, as libvirt writes them; ``private`` is the
  element's children, kept verbatim and in order (status_xml says what
  "verbatim" keeps).
* A record without any job converts to ``<job type='none' async='none'/>``
  (libvirt would leave the element out; parsing that back gives the same
  empty record).
"""

from __future__ import annotations

import json
import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol

from .._args import kind_type as _check_kind_type
from ..enums import AsyncJob, Job, Phase, phase_to_string
from ..errors import Error, InternalError
from . import status_xml
from .status_xml import async_from as _async_from, job_from as _job_from, \
    phase_from as _phase_from

__all__ = ["JobStatus", "status_of", "remember_start"]

_FIELDS = ("job", "async", "phase", "owner_api", "started", "flags", "async_paused",
           "private")


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One domain's persisted job state (immutable, hashable)."""

    job: Job = Job.NONE
    async_job: AsyncJob = AsyncJob.NONE
    phase: Phase = Phase.NONE
    owner_api: Optional[str] = None
    started: Optional[int] = None  # ms since the epoch; None without an async job
    flags: int = 0                 # libvirt's apiFlags; 0 without an async job
    async_paused: bool = False     # a failed post-copy migration's flag
    private: tuple[str, ...] = ()  # the <job> element's children, verbatim

    def __post_init__(self) -> None:
        # normalise to the enums (and reject what they reject) once, here
        for field, cls in (("job", Job), ("async_job", AsyncJob), ("phase", Phase)):
            value = getattr(self, field)
            if type(value) is cls:
                continue
            _check_kind_type(value, cls, field)
            object.__setattr__(self, field, cls(value))  # ValueError if out of range
        if self.owner_api is not None and not isinstance(self.owner_api, str):
            raise TypeError("owner_api must be a str or None")
        if self.started is not None:
            if isinstance(self.started, bool) or not isinstance(self.started, int):
                raise TypeError("started must be an int (ms since the epoch) or None")
            if not 0 <= self.started < 2**64:
                raise ValueError(f"started out of range: {self.started!r}")
        if isinstance(self.flags, bool) or not isinstance(self.flags, int):
            raise TypeError("flags must be an int")
        if not 0 <= self.flags <= status_xml.UINT_MAX:
            raise ValueError(f"flags out of range (an unsigned int): {self.flags!r}")
        if not isinstance(self.async_paused, bool):
            raise TypeError("async_paused must be a bool")
        if isinstance(self.private, (str, bytes)) or not isinstance(self.private, (tuple, list)):
            raise TypeError("private must be a tuple of str (XML elements)")
        private = tuple(status_xml.normalize_child(c) for c in self.private)
        if private != self.private or type(self.private) is not tuple:
            object.__setattr__(self, "private", private)
        if self.async_job == AsyncJob.NONE and (
                self.phase or self.started is not None or self.flags or self.async_paused):
            raise ValueError("phase, started, flags and async_paused need an async job")

    # ---- queries -------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """No sync job and no async job recorded."""
        return self.job == Job.NONE and self.async_job == AsyncJob.NONE

    @property
    def phase_label(self) -> Optional[str]:
        """The phase as libvirt writes it (``None`` when there is no async job)."""
        if self.async_job == AsyncJob.NONE:
            return None
        return phase_to_string(self.async_job, self.phase)

    def __str__(self) -> str:
        parts = [f"job={self.job.label}", f"async={self.async_job.label}"]
        if self.async_job != AsyncJob.NONE and self.phase:
            parts.append(f"phase={self.phase_label}")
        if self.async_paused:
            parts.append("paused")
        return " ".join(parts)

    # ---- XML -------------------------------------------------------------------

    def to_xml(self) -> str:
        """libvirt 11's ``<job>`` element (status_xml.format_job)."""
        return status_xml.format_job(
            self.job.label, self.async_job.label,
            (self.phase_label or "none") if self.phase else None,
            self.started, self.flags, self.async_paused, self.owner_api, self.private)

    @classmethod
    def from_xml(cls, text: str | bytes,
                 migration_params: Optional[Mapping[str, str]] = None) -> JobStatus:
        """Parse a ``<job>`` element, or the first ``job`` element of a larger
        document (libvirt's ``./job[1]``; none there means no job), with
        libvirt 11's checks and errors (status_xml.parse_job;
        `migration_params` is the optional table of check_private)."""
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"from_xml needs str or bytes, not {type(text).__name__}")
        f = status_xml.parse_job(text, migration_params)
        return cls(f.job, f.async_job, Phase(f.phase), f.owner_api, f.started, f.flags,
                   f.async_paused, f.private)

    # ---- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Labels, as in the XML; ``phase`` is None when there is no async job."""
        return {
            "job": self.job.label,
            "async": self.async_job.label,
            "phase": self.phase_label,
            "owner_api": self.owner_api,
            "started": self.started,
            "flags": self.flags,
            "async_paused": self.async_paused,
            "private": list(self.private),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> JobStatus:
        """The JSON form; the 0.1 form (without flags, async_paused and
        private) still reads."""
        if not isinstance(data, dict):
            raise InternalError("job status JSON must be an object")
        unknown = set(data) - set(_FIELDS)
        if unknown:
            raise InternalError(f"unknown job status field {sorted(unknown)[0]}")
        for key in ("job", "async", "phase", "owner_api"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise InternalError(f"job status field {key} must be a string")
        job = _job_from(data["job"]) if data.get("job") is not None else Job.NONE
        async_job, phase = AsyncJob.NONE, 0
        if data.get("async") is not None:
            async_job = _async_from(data["async"])
            phase = _phase_from(async_job, data.get("phase"))
        started = data.get("started")
        if started is not None:
            if isinstance(started, bool) or not isinstance(started, int) \
                    or not 0 <= started < 2**64:
                raise InternalError("Invalid async job start")
        flags = data.get("flags", 0)
        if isinstance(flags, bool) or not isinstance(flags, int) \
                or not 0 <= flags <= status_xml.UINT_MAX:
            raise InternalError("job status field flags must be an unsigned int")
        paused = data.get("async_paused", False)
        if not isinstance(paused, bool):
            raise InternalError("job status field async_paused must be a boolean")
        private = data.get("private", [])
        if not isinstance(private, list) or not all(isinstance(c, str) for c in private):
            raise InternalError("job status field private must be a list of strings")
        try:
            private = tuple(status_xml.normalize_child(c) for c in private)
        except ValueError as e:
            raise InternalError(f"job status field private: {e}") from None
        status_xml.check_private(async_job, private, warn=True)
        if async_job == AsyncJob.NONE:
            started, flags, paused = None, 0, False
        return cls(job, async_job, phase, data.get("owner_api"), started, flags, paused,
                   private)

    @classmethod
    def from_json(cls, text: str | bytes) -> JobStatus:
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"from_json needs str or bytes, not {type(text).__name__}")
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InternalError(f"failed to parse job status JSON: {e}") from None
        return cls.from_dict(data)


# ---- reading a live domain ------------------------------------------------------


class _Timed(Protocol):
    """What status_of reads of a domain besides its job fields: the public
    ``job_info`` (for the async job's start on the wall clock)."""

    @property
    def job_info(self) -> Any: ...


#: per domain: (async job, wall-clock start in s) of the last reading, so that
#: repeated readings of one async job give the same `started`
_STARTS: "weakref.WeakKeyDictionary[Any, tuple[int, float]]" = weakref.WeakKeyDictionary()
_STARTS_LOCK = threading.Lock()
_START_SLACK = 0.002  # s: how far two readings of one start may drift apart


def _wall_start(dom: _Timed, async_job: int) -> Optional[int]:
    """The async job's start in ms since the epoch, stable across readings
    (the core keeps a monotonic start; this maps it onto the wall clock)."""
    for _ in range(5):
        t0 = time.time()
        elapsed = dom.job_info.elapsed
        t1 = time.time()
        if t1 - t0 < 0.001:
            break
    start = t1 - elapsed
    with _STARTS_LOCK:
        last = _STARTS.get(dom)
        if last is not None and last[0] == async_job and abs(last[1] - start) < _START_SLACK:
            start = last[1]
        else:
            _STARTS[dom] = (async_job, start)
    return max(0, math.floor(start * 1000))


#: per domain: (async job, start in ms) of a job recovery restored with the
#: start its record gave; readings of that job give exactly this start
_PINS: "weakref.WeakKeyDictionary[Any, tuple[int, int]]" = weakref.WeakKeyDictionary()
_PIN_SPAN = 1.0  # s: a derived start this far from the pin is another job's


def remember_start(dom: _Timed, async_job: int, started_ms: int) -> None:
    """A restored async job's start is the record's: readings of `dom`'s
    status give exactly `started_ms`, however late and slow the reading
    (mapping the monotonic clock back drifts by milliseconds under load)."""
    with _STARTS_LOCK:
        _PINS[dom] = (async_job, started_ms)


def _start_of(dom: _Timed, async_job: int) -> Optional[int]:
    """The async job's start in ms since the epoch: a restored job's pin;
    else the job data's wall-clock start where the domain shows it (the
    incoming side's does not); else derived from job_info."""
    derived = _wall_start(dom, async_job)
    with _STARTS_LOCK:
        pin = _PINS.get(dom)
    if pin is not None:
        if pin[0] == async_job and abs(pin[1] - (derived or 0)) < _PIN_SPAN * 1000:
            return pin[1]
        with _STARTS_LOCK:
            _PINS.pop(dom, None)
    stats = getattr(dom, "job_stats", None)
    if stats is not None and async_job != AsyncJob.MIGRATION_IN:
        try:
            data = stats()
        except Error:  # the domain died meanwhile: its status read will say so
            data = None
        if data is not None and data.started:
            return int(data.started)
    return derived


def status_of(dom: _Timed, fields: tuple[int, int, int, Optional[str]]) -> JobStatus:
    """The domain's current JobStatus (Domain.job_status), from `fields`, one
    consistent reading of its (active job, async job, phase, owner API of the
    async job if any, else of the sync job), and its job data or job_info
    for the start (see _start_of)."""
    active, async_job, phase, owner = fields
    job = Job.DESTROY if active == Job.DESTROY else Job.NONE
    if async_job == AsyncJob.NONE:
        if job == Job.NONE:
            owner = None
        with _STARTS_LOCK:
            _PINS.pop(dom, None)  # a restored job, if any, has ended
        return JobStatus(job, AsyncJob.NONE, Phase.NONE, owner)
    started = _start_of(dom, async_job)
    # api_flags and async_paused (0.2): read after the fields; a change
    # between the two readings is a tracked change of its own, whose write
    # reads both again
    flags = getattr(dom, "api_flags", 0)
    paused = bool(getattr(dom, "async_paused", False))
    return JobStatus(job, AsyncJob(async_job), Phase(phase), owner, started, flags, paused)
