"""JobStatus: libvirt's <job type='…' async='…' phase='…'/> element and JSON.
Documents to parse, good and bad, are files: tests/data/status/ (read by
test_status_documents.py); what is here is built in code."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time

import pytest

import pymigjob as mj
from pymigjob.persist.status import JobStatus

A, P, J = mj.AsyncJob, mj.Phase, mj.Job
OUT, IN = A.MIGRATION_OUT, A.MIGRATION_IN


def test_exported():
    assert mj.JobStatus is JobStatus
    assert "JobStatus" in mj.__all__


# ---- the element ---------------------------------------------------------------

def test_phase_written_only_when_nonzero():
    assert JobStatus(J.NONE, OUT).to_xml() == \
        "<job type='none' async='migration out' flags='0x0'/>"
    assert JobStatus(J.DESTROY).to_xml() == "<job type='destroy' async='none'/>"
    assert JobStatus().to_xml() == "<job type='none' async='none'/>"


def test_empty_record():
    st = JobStatus()
    assert st.idle and st.phase_label is None
    assert JobStatus.from_xml(st.to_xml()) == st
    assert JobStatus.from_xml("<domstatus><privateData/></domstatus>") == st


def test_started_and_owner_are_attributes():
    st = JobStatus(J.NONE, IN, P.PREPARE, "remoteDispatchDomainMigratePrepare3Params",
                   1_700_000_000_123)
    text = st.to_xml()
    assert text == ("<job type='none' async='migration in' phase='prepare' "
                    "flags='0x0' asyncStarted='1700000000123' "
                    "ownerAPI='remoteDispatchDomainMigratePrepare3Params'/>")
    assert JobStatus.from_xml(text) == st


@pytest.mark.parametrize("owner", ["it's", 'a "quoted" <api> & more', "tab\there\nline",
                                   "ünïcode ☃"])
def test_owner_api_is_escaped(owner):
    st = JobStatus(J.NONE, OUT, P.BEGIN3, owner, 5)
    assert JobStatus.from_xml(st.to_xml()) == st
    assert JobStatus.from_json(st.to_json()) == st


def test_every_combination_round_trips():
    owners = (None, "api")
    for job, async_job, phase, owner in itertools.product(J, A, P, owners):
        if async_job == A.NONE and phase:
            continue
        if async_job not in (OUT, IN) and phase:
            continue  # written as 'none', see below
        if job == J.ASYNC:
            continue  # its label is 'none' (libvirt), see below
        started = None if async_job == A.NONE else 1234
        extras = [{}] if async_job == A.NONE else [
            {}, dict(flags=0xFFFFFFFF, async_paused=True),
            dict(flags=0x8101, private=("<disk dev='vda' migrating='no'/>", "<snapshotDelete/>"))]
        for extra in extras:
            st = JobStatus(job, async_job, phase, owner, started, **extra)
            assert JobStatus.from_xml(st.to_xml()) == st, st
            assert JobStatus.from_json(st.to_json()) == st, st
            assert JobStatus.from_xml(st.to_xml().encode()) == st


def test_async_sync_kind_reads_back_as_none():
    # an async job is never stored in `active`, so libvirt labels ASYNC 'none'
    assert JobStatus(J.ASYNC).to_xml() == "<job type='none' async='none'/>"
    assert JobStatus.from_xml(JobStatus(J.ASYNC).to_xml()) == JobStatus()


def test_non_migration_phase_is_written_as_none():
    # qemuDomainAsyncJobPhaseToString gives "none" for every non-migration job
    st = JobStatus(J.NONE, A.SAVE, P.PERFORM3)
    assert st.to_xml() == "<job type='none' async='save' phase='none' flags='0x0'/>"
    assert JobStatus.from_xml(st.to_xml()) == JobStatus(J.NONE, A.SAVE)


def test_from_xml_type_errors():
    with pytest.raises(TypeError):
        JobStatus.from_xml(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        JobStatus.from_json(42)  # type: ignore[arg-type]


# ---- JSON ----------------------------------------------------------------------

def test_json_uses_labels():
    st = JobStatus(J.DESTROY, OUT, P.PERFORM3_DONE, "perform3", 99)
    assert json.loads(st.to_json()) == {"job": "destroy", "async": "migration out",
                                        "phase": "perform3_done", "owner_api": "perform3",
                                        "started": 99, "flags": 0, "async_paused": False,
                                        "private": []}
    assert json.loads(JobStatus().to_json())["phase"] is None


# ---- the record itself ---------------------------------------------------------

def test_immutable_and_hashable():
    st = JobStatus(J.NONE, OUT, P.BEGIN3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.phase = P.PERFORM3  # type: ignore[misc]
    assert len({st, JobStatus(J.NONE, OUT, P.BEGIN3)}) == 1
    assert isinstance(st.job, J) and isinstance(st.phase, P)


def test_constructor_validates():
    with pytest.raises(ValueError):
        JobStatus(99)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        JobStatus("none")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        JobStatus(J.NONE, A.NONE, P.BEGIN3)
    with pytest.raises(ValueError):
        JobStatus(J.NONE, A.NONE, P.NONE, None, 5)
    with pytest.raises(TypeError):
        JobStatus(J.NONE, OUT, P.BEGIN3, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        JobStatus(J.NONE, OUT, P.BEGIN3, None, 1.5)  # type: ignore[arg-type]
    assert JobStatus(0, 1, 2).async_job is OUT


def test_str():
    assert str(JobStatus(J.DESTROY, OUT, P.PERFORM3)) == \
        "job=destroy async=migration out phase=perform3"
    assert str(JobStatus()) == "job=none async=none"


# ---- Domain.job_status() ---------------------------------------------------------

def test_job_status_of_an_idle_domain(dom):
    assert dom.job_status() == JobStatus()


def test_only_destroy_is_a_tracked_sync_job(dom):
    for job in (J.QUERY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP):
        with dom.job(job, api="x"):
            assert dom.job_status() == JobStatus(), job
    with dom.job(J.DESTROY, api="destroy"):
        assert dom.job_status() == JobStatus(J.DESTROY, owner_api="destroy")
    assert dom.job_status() == JobStatus()


def test_job_status_of_a_migration(dom):
    before = int(time.time() * 1000)
    with dom.migration(OUT, P.BEGIN3, api="begin3"):
        st = dom.job_status()
    after = int(time.time() * 1000)
    assert (st.job, st.async_job, st.phase, st.owner_api) == (J.NONE, OUT, P.BEGIN3, "begin3")
    assert before - 5 <= st.started <= after + 5
    # parked: the same record, the start time stable across readings
    for _ in range(50):
        assert dom.job_status() == st
    with dom.migration_phase(OUT, P.PERFORM3, api="perform3") as mig:
        with dom.job(J.DESTROY, api="destroy"):
            st2 = dom.job_status()
            assert st2 == JobStatus(J.DESTROY, OUT, P.PERFORM3, "perform3", st.started)
        mig.finish()
    assert dom.job_status() == JobStatus()


def test_job_status_of_save_and_nested(dom):
    dom.begin_async_job(A.SAVE, api="save")
    dom.begin_nested_job(A.SAVE)
    st = dom.job_status()
    assert (st.job, st.async_job, st.phase, st.owner_api) == (J.NONE, A.SAVE, P.NONE, "save")
    dom.end_nested_job()
    dom.end_async_job()
    assert dom.job_status().idle


def test_new_async_job_gets_a_new_start(dom):
    dom.begin_async_job(A.DUMP)
    first = dom.job_status().started
    dom.end_async_job()
    time.sleep(0.02)
    dom.begin_async_job(A.DUMP)
    second = dom.job_status().started
    dom.end_async_job()
    assert second >= first + 15


def test_job_status_of_a_dead_domain(drv):
    d = drv.add_domain("gone")
    drv.remove_domain("gone")
    with pytest.raises(mj.NoDomain):
        d.job_status()


# ---- 0.2: flags, async_paused, private -----------------------------------------

def test_flags_paused_and_private_are_written_in_libvirt_11_order():
    st = JobStatus(J.NONE, OUT, P.POSTCOPY_FAILED, None, 1715000000000, 0x8101, True,
                   ("<disk dev='vda' migrating='no'/>",))
    assert st.to_xml() == ("<job type='none' async='migration out' phase='postcopy_failed' "
                           "flags='0x8101' asyncStarted='1715000000000' asyncPaused='yes'>"
                           '<disk dev="vda" migrating="no" /></job>')
    assert JobStatus.from_xml(st.to_xml()) == st
    assert JobStatus.from_json(st.to_json()) == st
    assert str(st) == "job=none async=migration out phase=postcopy_failed paused"


def test_private_is_normalised_immutable_and_hashable():
    a = JobStatus(J.NONE, OUT, private=["<disk dev='vda'   migrating='no' />"])
    b = JobStatus(J.NONE, OUT, private=('<disk dev="vda" migrating="no"/>',))
    assert a == b and hash(a) == hash(b) and type(a.private) is tuple


@pytest.mark.parametrize("kw, exc", [
    (dict(flags=-1), ValueError), (dict(flags=2**32), ValueError), (dict(flags=True), TypeError),
    (dict(flags=1.0), TypeError), (dict(async_paused=1), TypeError),
    (dict(private="<a/>"), TypeError), (dict(private=(b"<a/>",)), TypeError),
    (dict(private=("<a>",)), ValueError), (dict(private=("<a/><b/>",)), ValueError),
    (dict(private=("text",)), ValueError),
])
def test_new_fields_validated(kw, exc):
    with pytest.raises(exc):
        JobStatus(J.NONE, OUT, **kw)


def test_flags_and_paused_need_an_async_job():
    for kw in (dict(flags=1), dict(async_paused=True)):
        with pytest.raises(ValueError):
            JobStatus(J.DESTROY, **kw)
    # children do not (libvirt writes them from the job's private data)
    assert JobStatus(J.DESTROY, private=("<a/>",)).private == ("<a />",)


# ---- any input: a record or libvirt's error, never anything else ------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_VALUES = st.one_of(st.sampled_from(["", "none", "yes", "no", "default", "0x0", "0x10", "-1",
                                     "12", "migration out", "migration in", "save", "backup",
                                     "perform3", "postcopy_failed", "destroy", "0xffffffff",
                                     "0x100000000", " 7", "+0x1"]),
                    st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                   blacklist_characters="\x00"), max_size=8))
_ATTRS = ("type", "async", "phase", "flags", "asyncStarted", "asyncPaused", "ownerAPI")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_ATTRS), _VALUES),
       st.lists(st.sampled_from(["<disk dev='vda' migrating='yes'/>", "<snapshotDelete/>",
                                 "<migParams><param name='x' value='1'/></migParams>",
                                 "<migParams><param/></migParams>",
                                 "<tempBlockDirtyBitmaps><bitmap name='b'/></tempBlockDirtyBitmaps>"]),
                max_size=3))
def test_any_job_element_reads_or_fails_with_an_error(attrs, children):
    from xml.sax.saxutils import quoteattr
    text = "<job " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + ">" \
        + "".join(children) + "</job>"
    try:
        status = JobStatus.from_xml(text)
    except mj.Error as e:
        assert isinstance(e, (mj.InternalError, mj.XmlError))
        return
    written = status.to_xml()
    assert JobStatus.from_xml(written) == status
    assert JobStatus.from_xml(written).to_xml() == written


def test_documents_with_an_xml_declaration():
    text = "<?xml version='1.0' encoding='UTF-8'?>\n<job type='none' async='save' flags='0x1'/>"
    assert JobStatus.from_xml(text.encode()).flags == 1
    assert JobStatus.from_xml(text).flags == 1
