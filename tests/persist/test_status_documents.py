"""JobStatus against the documents in tests/data/status/: one file per case,
named for what it shows.

``<name>.xml`` is a document for ``JobStatus.from_xml`` whose first line is a
comment ``<!-- expect: {...} -->``; ``<name>.json`` holds ``{"document": <text
for JobStatus.from_json>, "expect": {...}}``.  ``expect`` is either

* the record: ``job``, ``async``, ``phase``, ``owner_api``, ``started``,
  ``flags``, ``async_paused``, ``private`` (a list of the children, as
  JobStatus keeps them), the missing ones empty; optionally ``xml``, exactly
  what ``to_xml()`` writes back (for the documents libvirt 11 would write
  differently: 2011 files, a spelling libvirt normalises); optionally
  ``params``, the migration parameter table to read with, and ``warning``,
  a text logged while reading; or
* ``{"error": "<class>", "message": ...}`` (the message when libvirt has one).

**Round trip.**  An XML document without ``xml`` must come back
*byte-equivalent*: the written element and the document's ``<job>`` have the
same attributes with the same values in the same order, and the same
children in the same order, each the same down its subtree (tag, attributes
in order, text, children).  Bytes may differ only where XML says nothing:
the quote character, how a character is escaped, ``<a/>`` against
``<a></a>``, and whitespace-only text between elements (indentation) --
ElementTree, which reads the children, rewrites the first three.  Every
case, ``xml`` or not, then reads back equal from what it wrote, in XML and
in JSON, and writing is a fixed point.

Add a case by adding a file; test_every_row_of_the_status_tables names the
files that stand for the rows of the reference's status-XML tables."""

from __future__ import annotations

import json
import logging
import os
import re
import xml.etree.ElementTree as ET

import pytest

import pymigjob as mj
from pymigjob.persist.status import JobStatus

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "data", "status")
EXPECT = re.compile(r"\A<!-- expect: (\{.*\}) -->\n", re.S)


def cases() -> list:
    found = []
    for name in sorted(os.listdir(DATA)):
        path = os.path.join(DATA, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".xml"):
            m = EXPECT.match(text)
            assert m, f"{name}: no <!-- expect: {{...}} --> first line"
            found.append(pytest.param("xml", text, json.loads(m.group(1)), id=name))
        elif name.endswith(".json"):
            case = json.loads(text)
            found.append(pytest.param("json", case["document"], case["expect"], id=name))
    return found


CASES = cases()
NAMES = {c.id for c in CASES}


def expected_status(expect: dict) -> JobStatus:
    async_job = mj.AsyncJob.from_label(expect.get("async", "none"))
    phase = mj.phase_from_string(async_job, expect.get("phase")) if async_job else 0
    return JobStatus(mj.Job.from_label(expect.get("job", "none")), async_job, phase,
                     expect.get("owner_api"), expect.get("started"),
                     expect.get("flags", 0), expect.get("async_paused", False),
                     tuple(expect.get("private", ())))


def parse(kind: str, document: str, params=None) -> JobStatus:
    if kind == "xml":
        return JobStatus.from_xml(document, params)
    return JobStatus.from_json(document)


def _text(value):
    return value if value is not None and value.strip() else ""


def same(a: ET.Element, b: ET.Element) -> bool:
    """Equal as XML says (see the module's "Round trip")."""
    return (a.tag == b.tag and list(a.attrib.items()) == list(b.attrib.items())
            and _text(a.text) == _text(b.text) and len(a) == len(b)
            and all(same(x, y) and _text(x.tail) == _text(y.tail) for x, y in zip(a, b)))


def job_element(document: str) -> ET.Element:
    root = ET.fromstring(document)
    return root if root.tag == "job" else root.find(".//job")


def test_there_are_cases_of_each_kind():
    kinds = [c.values[0] for c in CASES]
    errors = [c for c in CASES if "error" in c.values[2]]
    assert kinds.count("xml") >= 60 and kinds.count("json") >= 10 and len(errors) >= 30


@pytest.mark.parametrize("kind, document, expect", CASES)
def test_document(kind, document, expect, caplog):
    params = expect.get("params")
    if "error" in expect:
        with pytest.raises(getattr(mj, expect["error"])) as info:
            parse(kind, document, params)
        if "message" in expect:
            assert info.value.message == expect["message"]
            assert str(info.value) == f"{info.value.code.prefix}: {expect['message']}"
        return
    with caplog.at_level(logging.WARNING, logger="pymigjob"):
        status = parse(kind, document, params)
    warnings = [r.getMessage() for r in caplog.records if r.name == "pymigjob"]
    assert warnings == ([expect["warning"]] if "warning" in expect else [])
    assert status == expected_status(expect)
    written = status.to_xml()
    if "xml" in expect:
        assert written == expect["xml"]
    elif kind == "xml":
        original = job_element(document)
        assert same(ET.fromstring(written), original), (written, ET.tostring(original))
    # what is written reads back the same, either way, and writes the same
    assert JobStatus.from_xml(written, params) == status
    assert JobStatus.from_xml(written).to_xml() == written
    assert JobStatus.from_json(status.to_json()) == status


#: the rows of the reference's status XML tables (writing and parsing), each
#: with the documents that show it
ROWS = {
    # writing
    "type: the tracked sync job (destroy), else none": [
        "destroy-during-outgoing-migration.xml", "2011-modify.xml"],
    "no job at all: libvirt omits the element (pymigjob writes an empty one)": [
        "empty-record.xml", "no-job-element.xml"],
    "self-closing without children": ["libvirt11-perform3.xml"],
    "phase written when non-zero, as a label": [
        "libvirt11-perform3.xml", "libvirt11-phase-none-not-written.xml"],
    "phase of a non-migration job written as none": ["non-migration-phase-none.xml"],
    "flags and asyncStarted only while an async job exists": [
        "libvirt11-save.xml", "flags-without-async-are-dropped.xml",
        "started-without-async-is-ignored.xml"],
    "asyncPaused only when true": ["async-paused-yes.xml", "async-paused-no-is-not-written.xml"],
    "children: disk with migrationSource": ["disk-with-migration-source.xml"],
    "children: tempBlockDirtyBitmaps": ["temp-block-dirty-bitmaps.xml"],
    "children: migParams, any async kind": ["migparams-of-a-save.xml",
                                            "migparams-of-an-outgoing-migration.xml"],
    "children: snapshotDelete": ["snapshot-delete.xml"],
    "the reference's example (source, post-copy failed)": [
        "libvirt11-example-postcopy-failed.xml"],
    # parsing
    "no <job>: nothing changes": ["no-job-element.xml"],
    "type: any label, else Unknown job type": [
        "unknown-job-type.xml", "2011-modify.xml", "2011-async-nested.xml",
        "type-modify-migration-safe.xml", "job-type-is-case-sensitive.xml"],
    "async: any label, else Unknown async job type": [
        "unknown-async-job.xml", "async-backup.xml", "async-snapshot.xml", "async-start.xml"],
    "phase, read only with async, else Unknown job phase": [
        "unknown-phase.xml", "phase-without-async-is-ignored.xml",
        "migration-phase-of-a-save.xml", "resume-phase-of-a-backup.xml",
        "postcopy-failed-on-the-destination.xml"],
    "asyncStarted: base 10 unsigned, else Invalid async job start": [
        "negative-async-started.xml", "async-started-not-a-number.xml",
        "async-started-too-big.xml", "async-started-empty-is-absent.xml",
        "started-with-async-none-is-checked.xml"],
    "asyncPaused: yes or no, else the XML error": [
        "async-paused-default-is-refused.xml", "async-paused-bogus.xml",
        "async-paused-empty-is-refused.xml", "async-paused-without-async-is-ignored.xml"],
    "flags: hex unsigned int, even without async, else the XML error": [
        "flags-not-hex.xml", "flags-negative.xml", "flags-too-big.xml",
        "flags-empty-is-refused.xml", "flags-without-async-are-checked.xml",
        "flags-without-0x.xml", "flags-upper-case.xml", "flags-uint-max.xml"],
    "disk migrating without an outgoing migration: warning, ignored": [
        "disk-migrating-without-outgoing-migration.xml", "disk-unknown-dev-is-kept.xml"],
    "bitmap without name or nodename": [
        "bitmap-without-name.xml", "bitmap-without-nodename.xml"],
    "bad migration parameter": [
        "migparams-param-without-name.xml", "migparams-unknown-parameter.xml",
        "migparams-param-without-value.xml", "migparams-invalid-value.xml",
        "migparams-unknown-parameter-kept-without-a-table.xml"],
    "empty attribute counts as absent (XPath-read attributes)": [
        "empty-attributes-are-absent.xml", "empty-phase-is-absent.xml"],
}


def test_every_row_of_the_status_tables():
    missing = {row: [n for n in names if n not in NAMES] for row, names in ROWS.items()}
    assert not {row: n for row, n in missing.items() if n}


def test_an_empty_flags_or_async_paused_is_not_absent():
    """libvirt reads type/async/phase/asyncStarted through XPath strings
    (empty = absent) but flags and asyncPaused as raw attributes."""
    with pytest.raises(mj.XmlError):
        JobStatus.from_xml("<job type='none' async='save' flags=''/>")
    assert JobStatus.from_xml("<job type='none' async='save' asyncStarted=''/>").started is None
