"""Enums, labels and the phase/job-mask helper functions (api.md, top-level names)."""

from __future__ import annotations

import enum

import pytest

import pymigjob as mj

JOBS = [
    ("NONE", 0, "none"),
    ("QUERY", 1, "query"),
    ("DESTROY", 2, "destroy"),
    ("SUSPEND", 3, "suspend"),
    ("MODIFY", 4, "modify"),
    ("ABORT", 5, "abort"),
    ("MIGRATION_OP", 6, "migration operation"),
    ("MODIFY_MIGRATION_SAFE", 7, "modify migration safe"),
    ("ASYNC", 8, "none"),
    ("ASYNC_NESTED", 9, "async nested"),
]
ASYNC_JOBS = [
    ("NONE", 0, "none"),
    ("MIGRATION_OUT", 1, "migration out"),
    ("MIGRATION_IN", 2, "migration in"),
    ("SAVE", 3, "save"),
    ("DUMP", 4, "dump"),
    ("SNAPSHOT", 5, "snapshot"),
    ("START", 6, "start"),
    ("BACKUP", 7, "backup"),
]
PHASES = [
    ("NONE", 0, "none"),
    ("PERFORM2", 1, "perform2"),
    ("BEGIN3", 2, "begin3"),
    ("PERFORM3", 3, "perform3"),
    ("PERFORM3_DONE", 4, "perform3_done"),
    ("CONFIRM3_CANCELLED", 5, "confirm3_cancelled"),
    ("CONFIRM3", 6, "confirm3"),
    ("PREPARE", 7, "prepare"),
    ("FINISH2", 8, "finish2"),
    ("FINISH3", 9, "finish3"),
    ("POSTCOPY_FAILED", 10, "postcopy_failed"),
    ("BEGIN_RESUME", 11, "begin_resume"),
    ("PERFORM_RESUME", 12, "perform_resume"),
    ("CONFIRM_RESUME", 13, "confirm_resume"),
    ("PREPARE_RESUME", 14, "prepare_resume"),
    ("FINISH_RESUME", 15, "finish_resume"),
]
JOB_TYPES = [
    ("NONE", 0),
    ("BOUNDED", 1),
    ("UNBOUNDED", 2),
    ("COMPLETED", 3),
    ("FAILED", 4),
    ("CANCELLED", 5),
]
ERROR_CODES = [
    ("INTERNAL_ERROR", 1),
    ("OPERATION_FAILED", 9),
    ("NO_DOMAIN", 42),
    ("OPERATION_INVALID", 55),
    ("OPERATION_TIMEOUT", 68),
    ("OPERATION_ABORTED", 78),
]

MIGRATION_KINDS = [mj.AsyncJob.MIGRATION_OUT, mj.AsyncJob.MIGRATION_IN]
OTHER_KINDS = [mj.AsyncJob.NONE, mj.AsyncJob.SAVE, mj.AsyncJob.DUMP, mj.AsyncJob.SNAPSHOT,
               mj.AsyncJob.START, mj.AsyncJob.BACKUP]


# ---- members and values ---------------------------------------------------

@pytest.mark.parametrize("cls", [mj.Job, mj.AsyncJob, mj.Phase, mj.JobType, mj.ErrorCode])
def test_enums_are_intenums(cls):
    assert issubclass(cls, enum.IntEnum)


@pytest.mark.parametrize("cls, table", [
    (mj.Job, JOBS), (mj.AsyncJob, ASYNC_JOBS), (mj.Phase, PHASES),
])
def test_members_and_values_exact(cls, table):
    assert [(m.name, m.value) for m in cls] == [(n, v) for n, v, _ in table]


def test_job_type_members():
    assert [(m.name, m.value) for m in mj.JobType] == JOB_TYPES


@pytest.mark.parametrize("name, value", ERROR_CODES)
def test_error_codes_are_libvirt_numbers(name, value):
    assert mj.ErrorCode[name] == value
    assert mj.ErrorCode(value).name == name


# ---- labels -----------------------------------------------------------------

@pytest.mark.parametrize("cls, name, label", [
    *[(mj.Job, n, s) for n, _, s in JOBS],
    *[(mj.AsyncJob, n, s) for n, _, s in ASYNC_JOBS],
    *[(mj.Phase, n, s) for n, _, s in PHASES],
])
def test_label(cls, name, label):
    member = cls[name]
    assert member.label == label
    assert type(member.label) is str


def test_labels_quoted_in_api_md():
    assert mj.Job.MIGRATION_OP.label == "migration operation"
    assert mj.AsyncJob.MIGRATION_OUT.label == "migration out"
    assert mj.Phase.PERFORM3_DONE.label == "perform3_done"
    assert mj.Phase.PERFORM2.label == "perform2"  # emitted spelling, never "preform2"


@pytest.mark.parametrize("cls, name, label", [
    *[(mj.Job, n, s) for n, _, s in JOBS if n != "ASYNC"],
    *[(mj.AsyncJob, n, s) for n, _, s in ASYNC_JOBS],
    *[(mj.Phase, n, s) for n, _, s in PHASES],
])
def test_from_label_round_trip(cls, name, label):
    member = cls.from_label(label)
    assert member is cls[name]
    assert isinstance(member, cls)


def test_job_from_label_none_is_first_match():
    # ASYNC's label is "none" too; FromString returns the first match (§2.1)
    assert mj.Job.from_label("none") is mj.Job.NONE


def test_phase_from_label_accepts_seed_typo():
    assert mj.Phase.from_label("preform2") is mj.Phase.PERFORM2
    assert mj.Phase.from_label("perform2") is mj.Phase.PERFORM2


@pytest.mark.parametrize("cls", [mj.Job, mj.AsyncJob])
def test_preform2_alias_only_for_phases(cls):
    with pytest.raises(ValueError):
        cls.from_label("preform2")


@pytest.mark.parametrize("cls, text", [
    (mj.Job, ""), (mj.Job, "Query"), (mj.Job, "QUERY"), (mj.Job, " query"),
    (mj.Job, "query "), (mj.Job, "migration_operation"), (mj.Job, "async"),
    (mj.Job, "modify_migration_safe"),
    (mj.AsyncJob, ""), (mj.AsyncJob, "migration_out"), (mj.AsyncJob, "Save"),
    (mj.AsyncJob, "Snapshot"), (mj.AsyncJob, "backup "),
    (mj.Phase, ""), (mj.Phase, "Perform3"), (mj.Phase, "PERFORM3"),
    (mj.Phase, "perform3 "), (mj.Phase, "postcopy-failed"), (mj.Phase, "perform3\0"),
    (mj.Phase, "Preform2"),
])
def test_from_label_unknown_is_value_error(cls, text):
    with pytest.raises(ValueError):
        cls.from_label(text)


@pytest.mark.parametrize("cls", [mj.Job, mj.AsyncJob, mj.Phase])
@pytest.mark.parametrize("bad", [None, 3, b"none"])
def test_from_label_non_string_rejected(cls, bad):
    with pytest.raises((TypeError, ValueError)):
        cls.from_label(bad)


# ---- phase_to_string ----------------------------------------------------------

@pytest.mark.parametrize("kind", MIGRATION_KINDS)
@pytest.mark.parametrize("name, value, label", PHASES)
def test_phase_to_string_migration(kind, name, value, label):
    assert mj.phase_to_string(kind, value) == label
    assert mj.phase_to_string(kind, mj.Phase[name]) == label


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
@pytest.mark.parametrize("phase", [16, 99, -1, -99, 2**31, -(2**31) - 1])
def test_phase_to_string_migration_out_of_range_is_none(kind, phase):
    assert mj.phase_to_string(kind, phase) is None


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
@pytest.mark.parametrize("phase", [2**64, -(2**64), 2**200])
def test_phase_to_string_huge_phase_no_overflow_error(kind, phase):
    # "None when out of range"; never an OverflowError from the C boundary
    try:
        result = mj.phase_to_string(kind, phase)
    except ValueError:
        return
    assert result is None


@pytest.mark.parametrize("kind", OTHER_KINDS)
@pytest.mark.parametrize("phase", [0, 1, 3, 9, 10, 99, -1])
def test_phase_to_string_other_kinds_always_none(kind, phase):
    assert mj.phase_to_string(kind, phase) == "none"


@pytest.mark.parametrize("kind", [99, -1, 8, 2**64])
def test_phase_to_string_bad_async_kind(kind):
    # api.md item 4: numbers outside an enum's range are ValueError
    with pytest.raises(ValueError):
        mj.phase_to_string(kind, 0)


@pytest.mark.parametrize("args", [
    (mj.AsyncJob.MIGRATION_OUT, "perform3"),
    (mj.AsyncJob.MIGRATION_OUT, None),
    (mj.AsyncJob.MIGRATION_OUT, 3.0),
    ("migration out", 3),
    (None, 3),
    (1.0, 3),
])
def test_phase_to_string_wrong_types(args):
    with pytest.raises(TypeError):
        mj.phase_to_string(*args)


# ---- phase_from_string --------------------------------------------------------

@pytest.mark.parametrize("kind", list(mj.AsyncJob))
def test_phase_from_string_none_is_zero(kind):
    assert mj.phase_from_string(kind, None) == 0


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
@pytest.mark.parametrize("name, value, label", PHASES)
def test_phase_from_string_migration(kind, name, value, label):
    result = mj.phase_from_string(kind, label)
    assert result == value
    assert isinstance(result, int)


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
def test_phase_from_string_preform2_alias(kind):
    assert mj.phase_from_string(kind, "preform2") == mj.Phase.PERFORM2
    assert mj.phase_from_string(kind, "perform2") == mj.Phase.PERFORM2


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
@pytest.mark.parametrize("text", [
    "", "PERFORM3", "Perform3", "perform3 ", " perform3", "postcopy-failed",
    "Prepare_resume", "migration out", "perform3\0", "preform3",
])
def test_phase_from_string_migration_unknown(kind, text):
    assert mj.phase_from_string(kind, text) == -1


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_phase_from_string_other_kinds_accept_only_none(kind):
    assert mj.phase_from_string(kind, "none") == 0
    for _, value, label in PHASES[1:]:
        assert mj.phase_from_string(kind, label) == -1, label
    for text in ("", "preform2", "None", "NONE", "none "):
        assert mj.phase_from_string(kind, text) == -1, text


@pytest.mark.parametrize("kind", MIGRATION_KINDS)
def test_phase_string_round_trip(kind):
    for phase in mj.Phase:
        assert mj.phase_from_string(kind, mj.phase_to_string(kind, phase)) == phase


@pytest.mark.parametrize("kind", [99, -1, 8, 2**64])
def test_phase_from_string_bad_async_kind(kind):
    with pytest.raises(ValueError):
        mj.phase_from_string(kind, "none")


@pytest.mark.parametrize("args", [
    (mj.AsyncJob.MIGRATION_OUT, 3),
    (mj.AsyncJob.MIGRATION_OUT, 3.5),
    (mj.AsyncJob.SAVE, ["none"]),
    ("migration out", "perform3"),
    (None, "none"),
])
def test_phase_from_string_wrong_types(args):
    with pytest.raises(TypeError):
        mj.phase_from_string(*args)


# ---- job_mask / DEFAULT_JOB_MASK --------------------------------------------

def test_job_mask_empty_and_none_are_zero():
    assert mj.job_mask() == 0
    assert mj.job_mask(mj.Job.NONE) == 0
    assert mj.job_mask(mj.Job.NONE, mj.Job.NONE) == 0


@pytest.mark.parametrize("name, value, _label", JOBS[1:])
def test_job_mask_single(name, value, _label):
    assert mj.job_mask(mj.Job[name]) == 1 << (value - 1)
    assert mj.job_mask(value) == 1 << (value - 1)


def test_job_mask_combinations():
    J = mj.Job
    assert mj.job_mask(J.QUERY, J.DESTROY) == 0x03  # the seed's default mask
    assert mj.job_mask(J.QUERY, J.DESTROY, J.ABORT) == 0x13
    assert mj.job_mask(J.QUERY, J.DESTROY, J.ABORT, J.SUSPEND, J.MIGRATION_OP) == 0x37
    assert mj.job_mask(J.QUERY, J.DESTROY, J.ABORT, J.SUSPEND, J.MIGRATION_OP,
                       J.MODIFY_MIGRATION_SAFE) == 0x77  # an outgoing migration's
    assert mj.job_mask(J.DESTROY, J.MODIFY_MIGRATION_SAFE) == 0x42  # an incoming one's
    assert mj.job_mask(J.QUERY, J.QUERY) == 0x01
    assert mj.job_mask(J.NONE, J.MODIFY) == 0x08
    assert mj.job_mask(*mj.Job) == 0x1FF
    assert mj.job_mask(J.DESTROY, J.ASYNC) == 0x82  # libvirt's tracked jobs


def test_default_job_mask():
    assert mj.DEFAULT_JOB_MASK == 0x13
    assert isinstance(mj.DEFAULT_JOB_MASK, int)
    assert mj.DEFAULT_JOB_MASK == mj.job_mask(mj.Job.QUERY, mj.Job.DESTROY, mj.Job.ABORT)


@pytest.mark.parametrize("bad", [99, 10, -1, 2**64, -(2**64)])
def test_job_mask_out_of_range(bad):
    with pytest.raises(ValueError):
        mj.job_mask(bad)
    with pytest.raises(ValueError):
        mj.job_mask(mj.Job.QUERY, bad)


@pytest.mark.parametrize("bad", ["query", None, 1.0, b"\x01", [1]])
def test_job_mask_wrong_type(bad):
    with pytest.raises(TypeError):
        mj.job_mask(bad)
