"""JobStatus: the part of a domain's job state that libvirt persists.

libvirt writes ``<job type='…' async='…' phase='…'/>`` into the domain's status
file on every tracked change (qemuDomainObjPrivateXMLFormat) and reads it back
after a restart.  :class:`JobStatus` is that record, immutable, with
converters to and from the element and to and from JSON.  Every label goes
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
  libvirt's ``asyncStarted``), ``None`` without an async job.  ``owner_api`` is
  the async job's owner API (the sync owner's for a lone DESTROY job); libvirt
  does not persist it, so the element carries it as ``ownerAPI``, which
  libvirt's parser ignores.
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
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Optional, Protocol

from .._args import kind_type as _check_kind_type
from ..enums import AsyncJob, Job, Phase, phase_from_string, phase_to_string
from ..errors import InternalError

__all__ = ["JobStatus", "status_of"]

_MIGRATION_JOBS = (AsyncJob.MIGRATION_OUT, AsyncJob.MIGRATION_IN)


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One domain's persisted job state (immutable, hashable)."""

    job: Job = Job.NONE
    async_job: AsyncJob = AsyncJob.NONE
    phase: Phase = Phase.NONE
    owner_api: Optional[str] = None
    started: Optional[int] = None  # ms since the epoch; None without an async job

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
        if self.async_job == AsyncJob.NONE and (self.phase or self.started is not None):
            raise ValueError("phase and started need an async job")

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
        return " ".join(parts)

    # ---- XML -------------------------------------------------------------------

    def to_xml(self) -> str:
        """``<job type='…' async='…' phase='…'/>`` (phase only when non-zero)."""
        attrs = [("type", self.job.label), ("async", self.async_job.label)]
        if self.phase:
            attrs.append(("phase", self.phase_label or "none"))
        if self.started is not None:
            attrs.append(("asyncStarted", str(self.started)))
        if self.owner_api is not None:
            attrs.append(("ownerAPI", self.owner_api))
        body = " ".join(f"{key}='{_escape(value)}'" for key, value in attrs)
        return f"<job {body}/>"

    @classmethod
    def from_xml(cls, text: str | bytes) -> JobStatus:
        """Parse a ``<job>`` element, or the first ``job`` element of a larger
        document (libvirt's ``./job[1]``; none there means no job).  Unknown
        values raise InternalError with libvirt's texts."""
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"from_xml needs str or bytes, not {type(text).__name__}")
        try:
            root = ET.fromstring(text)
        except ET.ParseError as e:
            raise InternalError(f"failed to parse job status XML: {e}") from None
        elem = root if root.tag == "job" else root.find(".//job")
        if elem is None:
            return cls()
        # libvirt's virXPathString gives NULL for an empty attribute
        get = lambda key: elem.get(key) or None  # noqa: E731
        job, async_job, phase = Job.NONE, AsyncJob.NONE, 0
        text_type = get("type")
        if text_type is not None:
            job = _job_from(text_type)
        text_async = get("async")
        if text_async is not None:
            async_job = _async_from(text_async)
            phase = _phase_from(async_job, get("phase"))
        started = None
        text_started = get("asyncStarted")
        if text_started is not None and async_job != AsyncJob.NONE:
            if not text_started.isdigit() or int(text_started) >= 2**64:
                raise InternalError("Invalid async job start")
            started = int(text_started)
        return cls(job, async_job, phase, get("ownerAPI"), started)

    # ---- JSON ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Labels, as in the XML; ``phase`` is None when there is no async job."""
        return {
            "job": self.job.label,
            "async": self.async_job.label,
            "phase": self.phase_label,
            "owner_api": self.owner_api,
            "started": self.started,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> JobStatus:
        if not isinstance(data, dict):
            raise InternalError("job status JSON must be an object")
        unknown = set(data) - {"job", "async", "phase", "owner_api", "started"}
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
            if async_job == AsyncJob.NONE:
                started = None
        return cls(job, async_job, phase, data.get("owner_api"), started)

    @classmethod
    def from_json(cls, text: str | bytes) -> JobStatus:
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"from_json needs str or bytes, not {type(text).__name__}")
        try:
            data = json.loads(text)
        except ValueError as e:
            raise InternalError(f"failed to parse job status JSON: {e}") from None
        return cls.from_dict(data)


# ---- label parsing with libvirt's errors --------------------------------------

def _job_from(text: str) -> Job:
    try:
        return Job.from_label(text)
    except ValueError:
        raise InternalError(f"Unknown job type {text}") from None


def _async_from(text: str) -> AsyncJob:
    try:
        return AsyncJob.from_label(text)
    except ValueError:
        raise InternalError(f"Unknown async job type {text}") from None


def _phase_from(async_job: AsyncJob, text: Optional[str]) -> int:
    phase = phase_from_string(async_job, text)
    if phase < 0:
        raise InternalError(f"Unknown job phase {text}")
    return phase


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;",
            "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _escape(value: str) -> str:
    if any(c in value for c in _ESCAPES):
        value = "".join(_ESCAPES.get(c, c) for c in value)
    return value


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


def status_of(dom: _Timed, fields: tuple[int, int, int, Optional[str]]) -> JobStatus:
    """The domain's current JobStatus (Domain.job_status), from `fields`, one
    consistent reading of its (active job, async job, phase, owner API of the
    async job if any, else of the sync job), and its job_info."""
    active, async_job, phase, owner = fields
    job = Job.DESTROY if active == Job.DESTROY else Job.NONE
    if async_job == AsyncJob.NONE:
        started = None
        phase = 0
        if job == Job.NONE:
            owner = None
    else:
        started = _wall_start(dom, async_job)
    return JobStatus(job, AsyncJob(async_job), Phase(phase), owner, started)
