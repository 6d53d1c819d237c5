"""JobStatus against the documents in tests/data/status/: one file per case.

``<name>.xml`` is a document for ``JobStatus.from_xml`` whose first line is a
comment ``<!-- expect: {...} -->``; ``<name>.json`` holds ``{"document": <text
for JobStatus.from_json>, "expect": {...}}``.  ``expect`` is either the record
by its labels (``job``, ``async``, ``phase``, ``owner_api``, ``started``; the
missing ones empty) and, optionally, ``xml``, what ``to_xml()`` writes back; or
``{"error": "InternalError", "message": ...}`` (the message when libvirt has
one).  Add a case by adding a file."""

from __future__ import annotations

import json
import os
import re

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


def expected_status(expect: dict) -> JobStatus:
    async_job = mj.AsyncJob.from_label(expect.get("async", "none"))
    phase = mj.phase_from_string(async_job, expect.get("phase")) if async_job else 0
    return JobStatus(mj.Job.from_label(expect.get("job", "none")), async_job, phase,
                     expect.get("owner_api"), expect.get("started"))


def parse(kind: str, document: str) -> JobStatus:
    return JobStatus.from_xml(document) if kind == "xml" else JobStatus.from_json(document)


def test_there_are_cases_of_each_kind():
    kinds = [c.values[0] for c in CASES]
    errors = [c for c in CASES if "error" in c.values[2]]
    assert kinds.count("xml") >= 20 and kinds.count("json") >= 10 and len(errors) >= 15


@pytest.mark.parametrize("kind, document, expect", CASES)
def test_document(kind, document, expect):
    if "error" in expect:
        with pytest.raises(getattr(mj, expect["error"])) as info:
            parse(kind, document)
        if "message" in expect:
            assert info.value.message == expect["message"]
            assert str(info.value) == f"{info.value.code.prefix}: {expect['message']}"
        return
    status = parse(kind, document)
    assert status == expected_status(expect)
    if "xml" in expect:
        assert status.to_xml() == expect["xml"]
    # what is written reads back the same, either way
    assert JobStatus.from_xml(status.to_xml()) == status
    assert JobStatus.from_json(status.to_json()) == status
