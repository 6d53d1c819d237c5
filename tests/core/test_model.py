"""A model of the single-threaded rules, checked against the library.

A hypothesis state machine runs random sequences of every primitive on one
domain (begins with ``timeout=0`` so nothing blocks) and compares every
observable property, every return value and every error (class and exact
message) with a small Python model written from docs/api.md,
docs/DECISIONS.md and libvirt 0.9.4's qemu_domain.c -- not from the
implementation.
"""

from __future__ import annotations

import logging
import threading

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import pymigjob as mj  # noqa: E402

J, A, P = mj.Job, mj.AsyncJob, mj.Phase
LOCK = "cannot acquire state change lock"
SYNC = [J.QUERY, J.DESTROY, J.SUSPEND, J.MODIFY, J.ABORT, J.MIGRATION_OP]
KINDS = [A.MIGRATION_OUT, A.MIGRATION_IN, A.SAVE, A.DUMP]
ASYNC_LABEL = {A.MIGRATION_OUT: "migration out", A.MIGRATION_IN: "migration in",
               A.SAVE: "save", A.DUMP: "dump"}
PHASE_LABEL = ["none", "perform2", "begin3", "perform3", "perform3_done",
               "confirm3_cancelled", "confirm3", "prepare", "finish2", "finish3",
               "postcopy_failed", "begin_resume", "perform_resume", "confirm_resume",
               "prepare_resume", "finish_resume"]
apis = st.sampled_from([None, "a", "b"])
masks = st.sampled_from([0, 0x01, 0x08, 0x13, 0x37, 0x42, 0x77, 0x1FF, 2**64 - 1])


def bit(job):
    return 1 << (int(job) - 1)


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


class JobModel(RuleBasedStateMachine):
    """Model state mirrors the Domain properties."""

    def __init__(self):
        super().__init__()
        self.me = threading.get_ident()
        self.log = _Records()
        self.logger = logging.getLogger("pymigjob")
        self.old_level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.log)

    def teardown(self):
        self.logger.removeHandler(self.log)
        self.logger.setLevel(self.old_level)

    @initialize(max_queued=st.sampled_from([0, 0, 1, 2, 3]), strict=st.booleans())
    def setup(self, max_queued, strict):
        self.max_queued = max_queued
        self.strict = strict
        self.dom = mj.Driver(job_wait_timeout=5.0, max_queued=max_queued,
                             strict_phases=strict).add_domain("vm1")
        self.refs = 1
        self.active, self.owner_api, self.owner_thread = J.NONE, None, 0
        self.extra_refs = 0
        self.reset_async()
        self.queued = 0
        self.agent, self.agent_api = mj.AgentJob.NONE, None

    def reset_async(self):
        self.async_job, self.async_api, self.async_thread = A.NONE, None, 0
        self.phase, self.mask, self.info, self.abort = 0, mj.DEFAULT_JOB_MASK, \
            mj.JobType.NONE, False

    # ---- helpers ----------------------------------------------------------------

    def expect_error(self, call, cls, message):
        with pytest.raises(cls) as ei:
            call()
        assert type(ei.value) is cls or isinstance(ei.value, cls)
        assert ei.value.message == message, (ei.value.message, message)

    def lock_text(self, blocker, suffix=""):
        return LOCK + (f" (held by monitor={blocker})" if blocker else "") + suffix

    def sync_blocker(self, job):
        if self.async_job != A.NONE and not (self.mask & bit(job)):
            return self.async_api
        return self.owner_api

    def try_sync(self, job, call, nested=False):
        """Predict a sync or nested begin with timeout=0; returns True if granted."""
        blocker = self.owner_api if nested else self.sync_blocker(job)
        exempt = job == J.DESTROY
        if self.max_queued and not exempt and self.queued + 1 > self.max_queued:
            self.expect_error(call, mj.QueueFull,
                              self.lock_text(blocker, " due to max_queued limit"))
            return False
        mask_ok = nested or self.async_job == A.NONE or bool(self.mask & bit(job))
        if not mask_ok or self.active != J.NONE:
            self.expect_error(call, mj.JobTimeout, self.lock_text(blocker))
            return False
        assert call() is True
        return True

    def try_async(self, call, migration=False):
        if migration and self.async_job in (A.MIGRATION_OUT, A.MIGRATION_IN):
            # libvirt 11's qemuMigrationJobIsAllowed: refused at once
            self.expect_error(call, mj.OperationInvalid, "another migration job is "
                              "already running for domain 'vm1'")
            return False
        blocker = self.async_api if self.async_job != A.NONE else self.owner_api
        if self.async_job != A.NONE or self.active != J.NONE:
            self.expect_error(call, mj.JobTimeout, self.lock_text(blocker))
            return False
        assert call() is True
        return True

    # ---- sync jobs -----------------------------------------------------------------

    @rule(job=st.sampled_from(SYNC), api=apis)
    def begin_job(self, job, api):
        if self.try_sync(job, lambda: self.dom.begin_job(job, api=api, timeout=0)):
            self.active, self.owner_api, self.owner_thread = job, api, self.me
            self.refs += 1
            self.queued += 1

    @rule(job=st.sampled_from([J.NONE, J.ASYNC, J.ASYNC_NESTED]))
    def begin_invalid_job(self, job):
        self.expect_error(lambda: self.dom.begin_job(job, timeout=0), mj.InternalError,
                          "Attempt to start invalid job")

    @precondition(lambda self: self.active == J.NONE or self.refs > 1)
    @rule()
    def end_job(self):
        if self.active == J.NONE:
            self.expect_error(self.dom.end_job, mj.OperationInvalid,
                              "no job is active on the domain")
            return
        self.refs -= 1
        self.queued -= 1
        self.active, self.owner_api, self.owner_thread = J.NONE, None, 0
        assert self.dom.end_job() == self.refs

    # ---- agent jobs (libvirt 11: a slot of their own, no mask) ------------------------

    @rule(kind=st.sampled_from([mj.AgentJob.QUERY, mj.AgentJob.MODIFY]), api=apis,
          nowait=st.booleans())
    def begin_agent_job(self, kind, api, nowait):
        call = lambda: self.dom.begin_agent_job(kind, api=api, timeout=0,  # noqa: E731
                                                nowait=nowait)
        blocker = LOCK + (f" (held by agent={self.agent_api})" if self.agent_api else "")
        if self.max_queued and self.queued + 1 > self.max_queued:
            self.expect_error(call, mj.QueueFull, blocker + " due to max_queued limit")
        elif self.agent != mj.AgentJob.NONE:
            if nowait:
                assert call() is False
            else:
                self.expect_error(call, mj.JobTimeout, blocker)
        else:
            assert call() is True
            self.agent, self.agent_api = kind, api
            self.refs += 1
            self.queued += 1

    @rule(job=st.sampled_from(SYNC), api=apis)
    def begin_job_nowait(self, job, api):
        call = lambda: self.dom.begin_job(job, api=api, nowait=True)  # noqa: E731
        if self.max_queued and job != J.DESTROY and self.queued + 1 > self.max_queued:
            self.expect_error(call, mj.QueueFull,
                              self.lock_text(self.sync_blocker(job), " due to max_queued limit"))
        elif self.active != J.NONE or not (self.async_job == A.NONE
                                           or self.mask & bit(job)):
            assert call() is False
        else:
            assert call() is True
            self.active, self.owner_api, self.owner_thread = job, api, self.me
            self.refs += 1
            self.queued += 1

    @precondition(lambda self: self.agent == mj.AgentJob.NONE or self.refs > 1)
    @rule()
    def end_agent_job(self):
        if self.agent == mj.AgentJob.NONE:
            self.expect_error(self.dom.end_agent_job, mj.OperationInvalid,
                              "no agent job is active on the domain")
            return
        self.refs -= 1
        self.queued -= 1
        self.agent, self.agent_api = mj.AgentJob.NONE, None
        assert self.dom.end_agent_job() == self.refs

    # ---- async jobs ------------------------------------------------------------------

    @rule(kind=st.sampled_from(KINDS), api=apis)
    def begin_async_job(self, kind, api):
        if self.try_async(lambda: self.dom.begin_async_job(kind, api=api, timeout=0)):
            self.reset_async()
            self.async_job, self.async_api, self.async_thread = kind, api, self.me
            self.info = mj.JobType.UNBOUNDED     # the job data: ACTIVE
            self.refs += 1
            self.queued += 1

    @rule(kind=st.sampled_from(KINDS), api=apis, mask=st.one_of(st.none(), masks))
    def migration_job_start(self, kind, api, mask):
        call = lambda: self.dom.migration_job_start(kind, mask=mask, api=api, timeout=0)  # noqa: E731
        if self.try_async(call, kind in (A.MIGRATION_OUT, A.MIGRATION_IN)):
            self.reset_async()
            self.async_job, self.async_api, self.async_thread = kind, api, self.me
            if mask is None:
                mask = 0x42 if kind == A.MIGRATION_IN else 0x77
            self.mask = mask | bit(J.DESTROY)
            self.info = mj.JobType.UNBOUNDED
            self.refs += 1
            self.queued += 1

    @rule()
    def begin_async_none(self):
        self.expect_error(lambda: self.dom.begin_async_job(A.NONE, timeout=0),
                          mj.InternalError, "Attempt to start invalid job")

    @precondition(lambda self: self.async_job == A.NONE or self.refs > 1)
    @rule(finish=st.booleans())
    def end_async_job(self, finish):
        call = self.dom.migration_job_finish if finish else self.dom.end_async_job
        if self.async_job == A.NONE:
            self.expect_error(call, mj.OperationInvalid, "no job is active on the domain")
            return
        self.refs -= 1
        self.queued -= 1
        self.reset_async()
        assert call() == self.refs

    @rule(mask=masks)
    def set_async_job_mask(self, mask):
        assert self.dom.set_async_job_mask(mask) is None
        if self.async_job != A.NONE:
            self.mask = mask | bit(J.DESTROY)

    # ---- nested jobs ----------------------------------------------------------------

    @rule(kind=st.sampled_from(KINDS), api=apis)
    def begin_nested_job(self, kind, api):
        call = lambda: self.dom.begin_nested_job(kind, api=api, timeout=0)  # noqa: E731
        if kind != self.async_job:
            self.expect_error(call, mj.InternalError,
                              f"unexpected async job {int(kind)} type expected "
                              f"{int(self.async_job)}")
            return
        if self.try_sync(J.ASYNC_NESTED, call, nested=True):
            self.active, self.owner_api, self.owner_thread = J.ASYNC_NESTED, api, self.me
            self.refs += 1
            self.queued += 1

    @precondition(lambda self: self.active != J.ASYNC_NESTED or self.refs > 1)
    @rule()
    def end_nested_job(self):
        if self.active != J.ASYNC_NESTED:
            self.expect_error(self.dom.end_nested_job, mj.OperationInvalid,
                              "no nested job is active on the domain")
            return
        self.refs -= 1
        self.queued -= 1
        self.active, self.owner_api, self.owner_thread = J.NONE, None, 0
        assert self.dom.end_nested_job() == self.refs

    # ---- phases ------------------------------------------------------------------------

    def forward(self, data_phase):
        """A phase the rule accepts: the resume range from anywhere, any
        other phase only forwards."""
        return data_phase if data_phase >= P.POSTCOPY_FAILED else max(self.phase, data_phase)

    @rule(phase=st.integers(0, 15), api=apis, start=st.booleans())
    def phase_forward(self, phase, api, start):
        phase = P(self.forward(phase))
        call = self.dom.migration_job_start_phase if start else self.dom.migration_job_set_phase
        result = call(phase, api=api)
        if start:
            self.refs += 1
            self.extra_refs += 1
        if self.async_job == A.NONE:
            assert result is False
            return
        assert result is True
        self.phase = phase
        self.async_thread = self.me
        if api is not None:
            self.async_api = api

    @precondition(lambda self: self.async_job != A.NONE and self.phase > 0)
    @rule(data=st.data(), start=st.booleans(), api=apis)
    def phase_backwards(self, data, start, api):
        """Refused: logged (or InternalError when strict), nothing changes --
        not the owner thread, not the owner API (qemuMigrationJobSetPhase) --
        except start_phase's reference."""
        phase = P(data.draw(st.integers(0, min(self.phase, P.POSTCOPY_FAILED) - 1)))
        method = self.dom.migration_job_start_phase if start else self.dom.migration_job_set_phase
        call = lambda p: method(p, api=api)  # noqa: E731
        text = (f"migration protocol going backwards {PHASE_LABEL[self.phase]} => "
                f"{PHASE_LABEL[phase]}")
        self.log.records.clear()
        if self.strict:
            self.expect_error(lambda: call(phase), mj.InternalError, text)
        else:
            assert call(phase) is False
            errors = [r for r in self.log.records
                      if r.name == "pymigjob" and r.levelno >= logging.ERROR]
            assert len(errors) == 1 and text in errors[0].getMessage()
        if start:
            self.refs += 1
            self.extra_refs += 1

    @precondition(lambda self: self.refs > 1)
    @rule()
    def migration_job_continue(self):
        self.refs -= 1
        self.async_thread = 0
        assert self.dom.migration_job_continue() == self.refs

    @rule(kind=st.sampled_from(list(A)))
    def is_active(self, kind):
        assert self.dom.migration_job_is_active(kind) is (kind == self.async_job)
        if kind == self.async_job:
            assert self.dom.check_migration_job(kind) is None
        else:
            what = ("is not processing incoming migration" if kind == A.MIGRATION_IN
                    else "is not being migrated")
            self.expect_error(lambda: self.dom.check_migration_job(kind),
                              mj.OperationInvalid, f"domain 'vm1' {what}")

    # ---- abort ------------------------------------------------------------------------

    @rule(api=apis)
    def abort_job(self, api):
        call = lambda: self.dom.abort_job(api=api, timeout=0)  # noqa: E731
        blocker = self.sync_blocker(J.ABORT)
        if self.max_queued and self.queued + 1 > self.max_queued:
            self.expect_error(call, mj.QueueFull,
                              self.lock_text(blocker, " due to max_queued limit"))
        elif (self.async_job != A.NONE and not self.mask & bit(J.ABORT)) \
                or self.active != J.NONE:
            self.expect_error(call, mj.JobTimeout, self.lock_text(blocker))
        elif self.async_job == A.NONE:
            self.expect_error(call, mj.OperationInvalid, "no job is active on the domain")
        elif self.async_job == A.MIGRATION_IN:
            self.expect_error(call, mj.OperationInvalid,
                              "cannot abort incoming migration; use virDomainDestroy instead")
        else:
            assert call() is None
            self.abort = True

    @rule()
    def check_abort(self):
        if self.abort:
            self.expect_error(self.dom.check_abort, mj.OperationAborted,
                              f"{ASYNC_LABEL[self.async_job]}: canceled by client")
        else:
            assert self.dom.check_abort() is None

    # ---- references --------------------------------------------------------------------

    @rule()
    def ref(self):
        self.refs += 1
        self.extra_refs += 1
        assert self.dom.ref() == self.refs

    @precondition(lambda self: self.refs > 1)
    @rule()
    def unref(self):
        self.refs -= 1
        assert self.dom.unref() == self.refs

    # ---- the whole observable state after every step -----------------------------------

    @invariant()
    def state_matches(self):
        if not hasattr(self, "dom"):
            return
        d = self.dom
        assert d.alive is True
        assert d.refs == self.refs
        assert d.active_job == self.active
        assert d.owner_api == self.owner_api
        assert d.owner_thread == self.owner_thread
        assert d.async_job == self.async_job
        assert d.async_owner_api == self.async_api
        assert d.async_owner_thread == self.async_thread
        assert d.phase == self.phase
        assert d.mask == self.mask
        assert d.jobs_queued == self.queued
        assert d.job_info.type == self.info
        assert d.abort_requested is self.abort
        assert d.agent_job == self.agent
        assert d.agent_owner_api == self.agent_api
        assert d.agent_owner_thread == (self.me if self.agent else 0)


JobModel.TestCase.settings = settings(
    max_examples=120, stateful_step_count=50, deadline=None, derandomize=True,
    database=None, suppress_health_check=[HealthCheck.too_slow])
test_job_model = JobModel.TestCase
