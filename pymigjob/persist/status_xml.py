"""The ``<job>`` element of a domain's status file: reading it with libvirt
11's rules and errors, writing it in libvirt 11's form.

:class:`~pymigjob.persist.status.JobStatus` converts through here; this module
knows the element, not the record.  Reading follows libvirt's parser
(qemuDomainObjPrivateXMLParseJob) step by step and in its order, so a
document with several faults gets the error libvirt reports first:

1. ``type``: any sync job label, else INTERNAL_ERROR ``Unknown job type %s``;
2. ``async``: any async job label, else ``Unknown async job type %s``; and
   only with it: ``phase`` (``Unknown job phase %s``), ``asyncStarted``
   (``Invalid async job start``) and ``asyncPaused`` (``yes`` or ``no``,
   else XML_ERROR ``Invalid value for attribute ...``);
3. ``flags``, even without ``async``: a hex unsigned int (strtoul's syntax,
   at most UINT_MAX), else XML_ERROR ``... Expected non-negative integer
   value``;
4. the children (the job's private data), see :func:`check_private`.

Two kinds of attribute: ``type``, ``async``, ``phase`` and ``asyncStarted``
are read through XPath strings, where an empty value counts as absent;
``asyncPaused`` and ``flags`` are read as raw attributes, where an empty
value is a value -- and not a valid one.

The children are kept verbatim and in order, each as the text ElementTree
writes for it (its own attributes in order, its text and its subtree); what
is dropped is what carries no data: whitespace-only text between the
children (indentation), comments, and text directly inside ``<job>``, which
libvirt neither reads nor writes.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Mapping, Optional

from ..enums import AsyncJob, Job, phase_from_string
from ..errors import InternalError, XmlError

__all__ = ["JobFields", "parse_job", "format_job", "normalize_child", "check_private",
           "job_from", "async_from", "phase_from", "UINT_MAX", "PARAM_KINDS"]

log = logging.getLogger("pymigjob")

#: libvirt's apiFlags are an unsigned int
UINT_MAX = 2**32 - 1
#: the value kinds of migration parameters (qemuMigrationParamType), for
#: the table a daemon may give the reader (see check_private)
PARAM_KINDS = ("int", "ull", "bool", "string")

# strtoul(s, &end, 16) consuming all of s: leading white space, a '+', an
# optional 0x; the '-' strtoul would take is refused (virStrToLong_uip)
_HEX = re.compile(r"[ \t\n\v\f\r]*\+?(?:0[xX])?([0-9a-fA-F]+)")
_DEC = re.compile(r"[0-9]+")
_INT = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_ULL = re.compile(r"[ \t\n\v\f\r]*\+?[0-9]+")


@dataclass(frozen=True, slots=True)
class JobFields:
    """What a ``<job>`` element holds, as values (JobStatus's fields)."""

    job: Job = Job.NONE
    async_job: AsyncJob = AsyncJob.NONE
    phase: int = 0
    owner_api: Optional[str] = None
    started: Optional[int] = None
    flags: int = 0
    async_paused: bool = False
    private: tuple[str, ...] = ()


# ---- labels with libvirt's errors ---------------------------------------------

def job_from(text: str) -> Job:
    try:
        return Job.from_label(text)
    except ValueError:
        raise InternalError(f"Unknown job type {text}") from None


def async_from(text: str) -> AsyncJob:
    try:
        return AsyncJob.from_label(text)
    except ValueError:
        raise InternalError(f"Unknown async job type {text}") from None


def phase_from(async_job: AsyncJob, text: Optional[str]) -> int:
    phase = phase_from_string(async_job, text)
    if phase < 0:
        raise InternalError(f"Unknown job phase {text}")
    return phase


def _invalid(attr: str, value: str, tail: str = "") -> XmlError:
    return XmlError(f"Invalid value for attribute '{attr}' in element 'job': "
                    f"'{value}'.{tail}")


def _flags(value: str) -> int:
    m = _HEX.fullmatch(value)
    if m is None or int(m.group(1), 16) > UINT_MAX:
        raise _invalid("flags", value, " Expected non-negative integer value")
    return int(m.group(1), 16)


def _paused(value: str) -> bool:
    # virXMLPropTristateBool: "yes" or "no"; "default" (and "") refused
    if value not in ("yes", "no"):
        raise _invalid("asyncPaused", value)
    return value == "yes"


# ---- reading ---------------------------------------------------------------------

def _element(text: str | bytes) -> Optional[ET.Element]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise InternalError(f"failed to parse job status XML: {e}") from None
    return root if root.tag == "job" else root.find(".//job")


def parse_job(text: str | bytes,
              migration_params: Optional[Mapping[str, str]] = None) -> JobFields:
    """The ``<job>`` element of `text` (the root, or the first ``job`` of a
    larger document: libvirt's ``./job[1]``; none means no job)."""
    elem = _element(text)
    if elem is None:
        return JobFields()
    # virXPathString: an empty attribute is no attribute
    get = lambda key: elem.get(key) or None  # noqa: E731
    job, async_job, phase, started, paused = Job.NONE, AsyncJob.NONE, 0, None, False
    if (value := get("type")) is not None:
        job = job_from(value)
    if (value := get("async")) is not None:
        async_job = async_from(value)
        phase = phase_from(async_job, get("phase"))
        if (value := get("asyncStarted")) is not None:
            if _DEC.fullmatch(value) is None or int(value) >= 2**64:
                raise InternalError("Invalid async job start")
            started = int(value)
        if (value := elem.get("asyncPaused")) is not None:
            paused = _paused(value)
    flags = _flags(value) if (value := elem.get("flags")) is not None else 0
    private = tuple(_child_text(child) for child in elem)
    check_private(async_job, private, migration_params, warn=True)
    if async_job == AsyncJob.NONE:
        # read (and checked) as libvirt does, but without an async job
        # libvirt writes none of them: a record without one has none
        phase, started, flags, paused = 0, None, 0, False
    return JobFields(job, async_job, phase, get("ownerAPI"), started, flags, paused, private)


def _child_text(child: ET.Element) -> str:
    child.tail = None  # the whitespace after it belongs to <job>
    return ET.tostring(child, encoding="unicode")


def normalize_child(text: object) -> str:
    """One private child as JobStatus keeps it (ElementTree's writing of
    the one element `text` holds); ValueError unless it is exactly one."""
    if not isinstance(text, str):
        raise TypeError(f"a private child must be a str, not {type(text).__name__}")
    try:
        elem = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"a private child must be one XML element: {e}") from None
    return _child_text(elem)


# ---- the children -------------------------------------------------------------------

def check_private(async_job: AsyncJob, private: tuple[str, ...],
                  migration_params: Optional[Mapping[str, str]] = None,
                  warn: bool = False) -> None:
    """libvirt's checks of the job's children (qemuDomainParseJobPrivate),
    those a lock library can make without knowing the guest or QEMU:

    * ``<disk migrating='yes'>`` without an outgoing migration: a warning
      (``Found disks marked for migration but we were not migrating``);
      the child is kept;
    * every ``tempBlockDirtyBitmaps/bitmap`` needs ``name`` and ``nodename``:
      ``malformed <tempBlockDirtyBitmaps> in status XML``;
    * every ``param`` of the first ``migParams`` needs ``name`` (``missing
      migration parameter name``) and ``value`` (``missing value for
      migration parameter '%s'``).

    Which parameter names exist and what values they take is QEMU's and the
    daemon's knowledge, not the lock library's: with `migration_params`
    (name -> one of PARAM_KINDS) those checks run too, with libvirt's texts
    (``unknown migration parameter '%s'``, ``invalid value '%s' for
    migration parameter '%s'``) and order; without it any name and value
    are kept.  ``<migrationSource>`` and ``<snapshotDelete>`` are kept
    unchecked (the first needs the domain's disks)."""
    children = [ET.fromstring(text) for text in private]
    if warn and async_job != AsyncJob.MIGRATION_OUT \
            and any(c.tag == "disk" and c.get("migrating") == "yes" for c in children):
        log.warning("Found disks marked for migration but we were not migrating")
    for c in children:
        if c.tag == "tempBlockDirtyBitmaps":
            for bitmap in c.findall("bitmap"):
                if bitmap.get("name") is None or bitmap.get("nodename") is None:
                    raise InternalError("malformed <tempBlockDirtyBitmaps> in status XML")
    params = next((c for c in children if c.tag == "migParams"), None)
    if params is not None:
        for param in params.findall("param"):
            _check_param(param, migration_params)


def _check_param(param: ET.Element, table: Optional[Mapping[str, str]]) -> None:
    name = param.get("name")
    if name is None:
        raise InternalError("missing migration parameter name")
    if table is not None and name not in table:
        raise InternalError(f"unknown migration parameter '{name}'")
    value = param.get("value")
    if value is None:
        raise InternalError(f"missing value for migration parameter '{name}'")
    if table is not None and not _param_ok(table[name], value):
        raise InternalError(f"invalid value '{value}' for migration parameter '{name}'")


def _param_ok(kind: str, value: str) -> bool:
    if kind == "int":      # virStrToLong_i
        return _INT.fullmatch(value) is not None and -2**31 <= int(value) < 2**31
    if kind == "ull":      # virStrToLong_ullp
        return _ULL.fullmatch(value) is not None and int(value) < 2**64
    if kind == "bool":     # virStringParseYesNo
        return value in ("yes", "no")
    if kind == "string":
        return True
    raise ValueError(f"migration parameter kind must be one of {PARAM_KINDS}, not {kind!r}")


# ---- writing ---------------------------------------------------------------------------

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;",
            "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def escape(value: str) -> str:
    if any(c in value for c in _ESCAPES):
        value = "".join(_ESCAPES.get(c, c) for c in value)
    return value


def format_job(job_label: str, async_label: str, phase_label: Optional[str],
               started: Optional[int], flags: int, async_paused: bool,
               owner_api: Optional[str], private: tuple[str, ...]) -> str:
    """libvirt 11's element (qemuDomainObjPrivateXMLFormatJob): ``type``,
    ``async``, ``phase`` when given, and while an async job exists (a
    `phase_label` or an async label other than ``none``) ``flags``,
    ``asyncStarted`` (when known) and ``asyncPaused='yes'`` (when true);
    then pymigjob's ``ownerAPI``; self-closing without children."""
    attrs = [("type", job_label), ("async", async_label)]
    if phase_label is not None:
        attrs.append(("phase", phase_label))
    if async_label != "none":
        attrs.append(("flags", f"0x{flags:x}"))
        if started is not None:
            attrs.append(("asyncStarted", str(started)))
        if async_paused:
            attrs.append(("asyncPaused", "yes"))
    if owner_api is not None:
        attrs.append(("ownerAPI", owner_api))
    head = "<job " + " ".join(f"{key}='{escape(value)}'" for key, value in attrs)
    if not private:
        return head + "/>"
    return head + ">" + "".join(private) + "</job>"
