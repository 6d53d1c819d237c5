"""pymigjob/_constants.py (what Python uses) against the C core's own tables
(what C uses): every MJ_* constant, every label table, every from-string
lookup, the error prefixes, the phase functions and the masks, entry by
entry.  C stays the truth for the C core; this test keeps the two equal."""

from __future__ import annotations

from typing import Any

import pytest

from pymigjob import _constants as K
from pymigjob import enums

try:
    from pymigjob._c.binding import NULL, ffi, lib
except ImportError as exc:  # pragma: no cover - without the C core
    pytest.skip(f"the C core is not available: {exc}", allow_module_level=True)

pytestmark = pytest.mark.c_core

Job, AsyncJob, Phase, JobType, ErrorCode = (enums.Job, enums.AsyncJob, enums.Phase,
                                            enums.JobType, enums.ErrorCode)
AgentJob = enums.AgentJob

#: the C API's return values and buffer sizes: not table entries
C_ONLY = {"MJ_WAITING", "MJ_PHASE_SET", "MJ_PHASE_NO_JOB", "MJ_PHASE_BACKWARDS",
          "MJ_DEAD_U64", "MJ_ERROR_MAX"}
C_CONSTANTS = sorted(name for name in dir(lib) if name.startswith("MJ_"))

TABLES = {
    # enum: (labels in _constants, C to_string, C from_string, LAST)
    Job: (K.JOB_LABELS, lib.mj_job_to_string, lib.mj_job_from_string, lib.MJ_JOB_LAST),
    AsyncJob: (K.ASYNC_JOB_LABELS, lib.mj_async_job_to_string, lib.mj_async_job_from_string,
               lib.MJ_ASYNC_JOB_LAST),
    Phase: (K.PHASE_LABELS, lib.mj_phase_to_string, lib.mj_phase_from_string,
            lib.MJ_PHASE_LAST),
    JobType: (K.JOB_INFO_LABELS, lib.mj_job_info_type_to_string,
              lib.mj_job_info_type_from_string, lib.MJ_JOB_INFO_LAST),
    AgentJob: (K.AGENT_JOB_LABELS, lib.mj_agent_job_to_string, lib.mj_agent_job_from_string,
               lib.MJ_AGENT_JOB_LAST),
}
PROBE_TEXTS = ["", "none", "None", "NONE", "query", "destroy", "migration operation",
               "async nested", "migration out", "migration in", "save", "dump",
               "perform2", "preform2", "Perform2", "perform3", "perform3_done",
               "confirm3_cancelled", "finish3", "unbounded", "cancelled", "modify", "Query", " none",
               "none ", "é"]


def c_text(value: Any) -> str | None:
    return None if value == NULL else ffi.string(value).decode()


@pytest.mark.parametrize("name", C_CONSTANTS)
def test_every_c_constant_has_its_value_here(name):
    if name in C_ONLY:
        pytest.skip("a return value or buffer size of the C API, not a table entry")
    assert getattr(K, name) == getattr(lib, name)


def test_every_constant_here_is_a_c_constant():
    ours = sorted(name for name in dir(K) if name.startswith("MJ_"))
    assert [name for name in ours if not hasattr(lib, name)] == []


@pytest.mark.parametrize("cls", list(TABLES), ids=lambda c: c.__name__)
def test_labels_equal_c(cls):
    labels, to_string, _, last = TABLES[cls]
    assert labels == tuple(c_text(to_string(i)) for i in range(last))
    assert [m.label for m in cls] == list(labels)
    for value in (-1, last, last + 1, 2**31 - 1, -(2**31)):
        assert to_string(value) == NULL


@pytest.mark.parametrize("cls", list(TABLES), ids=lambda c: c.__name__)
def test_from_label_equals_c(cls):
    labels, _, from_string, _ = TABLES[cls]
    for text in PROBE_TEXTS + list(labels):
        c_value = from_string(text.encode("utf-8"))
        try:
            ours = cls.from_label(text)
        except ValueError:
            ours = -1
        assert ours == c_value, text


def test_prefixes_equal_c():
    for code in list(range(0, 100)) + [-1, 2**31 - 1]:
        assert K.ERROR_PREFIXES.get(code) == c_text(lib.mj_error_prefix(code)), code
    for code in ErrorCode:
        assert code.prefix == c_text(lib.mj_error_prefix(code))


def test_phase_functions_equal_c():
    for async_job in AsyncJob:
        for phase in list(range(-3, K.MJ_PHASE_LAST + 3)) + [2**31 - 1, -(2**31)]:
            assert (enums.phase_to_string(async_job, phase)
                    == c_text(lib.mj_async_job_phase_to_string(async_job, phase))), \
                (async_job, phase)
        for text in PROBE_TEXTS:
            assert (enums.phase_from_string(async_job, text)
                    == lib.mj_async_job_phase_from_string(async_job, text.encode())), \
                (async_job, text)
        assert enums.phase_from_string(async_job, None) == \
            lib.mj_async_job_phase_from_string(async_job, NULL) == 0


def test_masks_equal_c():
    assert enums.DEFAULT_JOB_MASK == lib.MJ_DEFAULT_JOB_MASK
    assert K.MJ_MIGRATION_OUT_JOB_MASK == lib.MJ_MIGRATION_OUT_JOB_MASK
    assert enums.job_mask(Job.NONE) == 0
    assert enums.job_mask(*Job) == (1 << (K.MJ_JOB_LAST - 1)) - 1


def test_limits_equal_c():
    assert K.C_INT_MAX == K.MJ_REFS_MAX == lib.MJ_REFS_MAX
    assert K.MJ_WAIT_SLICE == lib.MJ_WAIT_SLICE
