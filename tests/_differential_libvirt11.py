"""The differential machine's rules for libvirt 11's async job calls
(apiFlags, operations, release / discard / restore, post-copy, job data,
the cleanups of migration_job_continue): a mixin of
tests/backends/test_differential.py's DifferentialMachine, which supplies
``both``, ``same``, ``handles`` and the loop.  Hypothesis takes a
machine's rules from all its classes, sorted by name, so the split leaves
the examples as they were."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from _differential_support import (
    _cleanup_a,
    _cleanup_fails,
    aio_async_jobs,
    api_flags,
    api_names,
    async_jobs,
    errors,
    has_handles,
    job_states,
    masks,
    mostly,
    operations,
    phases,
    starts,
    timeouts,
    yes_no,
)


class Libvirt11Rules:
    """Rules over both drivers' handles (see the module's docstring)."""

    @has_handles
    @rule(data=st.data(), kind=async_jobs, api=api_names, flags=api_flags, op=operations)
    def begin_async_job_flags(self, data, kind, api, flags, op):
        self.both(data, lambda d: d.begin_async_job(kind, api, 0, flags, operation=op))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, mask=masks, flags=api_flags)
    def migration_job_start_flags(self, data, kind, mask, flags):
        self.both(data, lambda d: d.migration_job_start(kind, mask, None, 0, flags))

    @has_handles
    @rule(data=st.data(), kind=aio_async_jobs, api=api_names, timeout=timeouts,
          mask=masks, flags=api_flags, start=st.booleans())
    def async_begins_flags(self, data, kind, api, timeout, mask, flags, start):
        if start:
            self.both(data, lambda d: self.loop.run_until_complete(
                d.migration_job_start_async(kind, mask, api, timeout, flags)))
        else:
            self.both(data, lambda d: self.loop.run_until_complete(
                d.begin_async_job_async(kind, api, timeout, flags)))

    @has_handles
    @rule(data=st.data(), how=st.sampled_from(["is_allowed", "release", "discard", "mark",
                                                "clear", "run_cleanups", "remove_cleanup"]))
    def async_life(self, data, how):
        calls = {"is_allowed": lambda d: d.migration_job_is_allowed(),
                 "release": lambda d: d.release_async_job(),
                 "discard": lambda d: d.discard_async_job(),
                 "mark": lambda d: d.mark_postcopy_failed(),
                 "clear": lambda d: d.clear_postcopy_failed(),
                 "run_cleanups": lambda d: d.run_cleanups(),
                 "remove_cleanup": lambda d: d.remove_cleanup(_cleanup_a)}
        self.both(data, calls[how])

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, mask=masks, flags=api_flags,
          api=api_names, started=starts)
    def restore_async_job(self, data, kind, phase, mask, flags, api, started):
        self.both(data, lambda d: d.restore_async_job(kind, phase, mask=mask, flags=flags,
                                                      api=api, started=started))

    @has_handles
    @rule(data=st.data(), kind=async_jobs, phase=phases, postcopy=yes_no, cp=yes_no)
    def migration_can_resume(self, data, kind, phase, postcopy, cp):
        self.both(data, lambda d: d.migration_can_resume(kind, phase, postcopy=postcopy,
                                                         change_protection=cp))

    @has_handles
    @rule(data=st.data(), state=job_states, error=errors, stopped=yes_no,
          delta=mostly(st.one_of(st.none(), st.sampled_from([0.0, -1.5, 0.25, 3])),
                       st.sampled_from([float("nan"), float("inf"), "1", True, 10**400])))
    def set_job_state(self, data, state, error, stopped, delta):
        self.both(data, lambda d: d.set_job_state(state, error, stopped=stopped,
                                                  delta=delta))

    @has_handles
    @rule(data=st.data(), completed=yes_no, keep=yes_no)
    def job_stats(self, data, completed, keep):
        self.both(data, lambda d: d.job_stats(completed, keep))

    @has_handles
    @rule(data=st.data(), error=errors, finish=st.booleans())
    def end_async_job_error(self, data, error, finish):
        if finish:
            self.both(data, lambda d: d.migration_job_finish(error))
        else:
            self.both(data, lambda d: d.end_async_job(error=error))

    @has_handles
    @rule(data=st.data(), which=st.sampled_from(["same", "fails", "new", "bad"]))
    def migration_job_continue_cleanup(self, data, which):
        cleanup = {"same": _cleanup_a, "fails": _cleanup_fails, "new": lambda d: None,
                   "bad": 5}[which]
        self.both(data, lambda d: d.migration_job_continue(cleanup))
