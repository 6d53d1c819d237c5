"""A migration whose post-copy phase fails and is resumed: the stream
breaks after the switch to post-copy, both sides park their async job as
post-copy failed (the guest's memory is split between the hosts, so neither
may finish it), and the resume flow -- begin_resume, prepare_resume,
perform_resume, finish_resume, confirm_resume, each checked with
migration_can_resume first -- completes it.  A mixin of Migration."""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import pymigjob as mj

from .plan import IN, OUT, POLL, Phase, _sleep, phase_label

PF = Phase.POSTCOPY_FAILED


class StreamBroken(Exception):
    """The demo's migration stream breaking after the switch to post-copy."""


class PostcopyResume:
    """The post-copy failure and the resume flow of one Migration."""

    # Migration's state, as these methods use it
    src: Any
    dst: Any
    name: str
    rng: Any
    src_phases: List[str]
    dst_phases: List[str]
    outcome: str
    vm: Any
    log: Callable[..., None]
    check: Callable[[bool, str], bool]
    monitor: Callable[..., float]
    parked: Callable[..., None]

    def postcopy_breaks(self, d: mj.Domain) -> None:
        """Inside perform3: switch to post-copy, then lose the stream; the
        guard parks the job as post-copy failed instead of finishing it."""
        self.monitor(d, OUT, "perform3")                 # migrate-start-postcopy
        d.set_job_state(mj.JobState.POSTCOPY)
        self.check(d.postcopy, "perform3: post-copy once the job state says so")
        self.log("src", "perform3", "monitor: migrate-start-postcopy; job state postcopy: "
                                    "the guest runs on the destination now")
        _sleep(self.rng, POLL)
        raise StreamBroken("migration stream broken in post-copy")

    def after_postcopy_failure(self, dom: mj.Domain, side: str, async_job: int,
                               api: str) -> None:
        ph = phase_label(dom.async_job, dom.phase)
        self.check(dom.phase == PF and dom.async_paused,
                   f"{api}: post-copy failed: phase {ph}, async_paused {dom.async_paused}")
        self.check(dom.async_job == async_job and dom.async_owner_thread == 0,
                   f"{api}: the failed post-copy job is kept, parked")
        self.log(side, ph, f"post-copy failed: the job stays, parked, async_paused "
                           f"(refs {dom.refs}); it waits for a resume")

    def finish3_postcopy_failed(self) -> Optional[Callable]:
        """Finish3 on the destination sees the broken stream too."""
        dd = self.dst
        try:
            with dd.migration_phase(IN, Phase.FINISH3, api="finish3"):
                self.dst_phases.append(phase_label(dd.async_job, dd.phase))
                dd.set_job_state(mj.JobState.POSTCOPY)
                raise StreamBroken("incoming post-copy stream broken")
        except StreamBroken:
            pass
        self.dst_phases.append(phase_label(dd.async_job, dd.phase))
        self.after_postcopy_failure(dd, "dst", IN, "finish3")
        return self.begin_resume

    def _resume_phase(self, dom: mj.Domain, side: str, async_job: int, expected: int,
                      phase: int, api: str, monitor: str, last: bool = False) -> None:
        dom.migration_can_resume(async_job, expected)
        phases = self.src_phases if side == "src" else self.dst_phases
        with dom.migration_phase(async_job, phase, api=api) as mig:
            phases.append(phase_label(dom.async_job, dom.phase))
            self.check(dom.async_owner_api == api, f"{api}: async owner API is {api!r}")
            self.monitor(dom, async_job, api)
            if last:
                mig.finish()
        self.log(side, phase_label(async_job, phase),
                 f"migration_can_resume({phase_label(async_job, expected)}) passed; "
                 f"monitor: {monitor}" + ("; job finished" if last else "; job parked"))

    def begin_resume(self) -> Optional[Callable]:
        d = self.src
        self._resume_phase(d, "src", OUT, PF, Phase.BEGIN_RESUME, "begin_resume",
                           "query-migrate says postcopy-paused")
        try:   # a second begin_resume is refused: the resume is under way
            d.migration_can_resume(OUT, PF)
            self.check(False, "begin_resume: a second resume must be refused")
        except mj.OperationInvalid as e:
            self.check(e.message == f"resuming failed post-copy migration of domain "
                                    f"{self.name} already in progress",
                       f"begin_resume: second resume refused, got {e.message!r}")
            self.log("src", "begin_resume", f"a second begin_resume: {e}")
        return self.prepare_resume

    def prepare_resume(self) -> Optional[Callable]:
        self._resume_phase(self.dst, "dst", IN, PF, Phase.PREPARE_RESUME, "prepare_resume",
                           "migrate-recover")
        return self.perform_resume

    def perform_resume(self) -> Optional[Callable]:
        d = self.src
        d.clear_postcopy_failed()        # QEMU's postcopy-recover event
        self.dst.clear_postcopy_failed()
        self._resume_phase(d, "src", OUT, Phase.BEGIN_RESUME, Phase.PERFORM_RESUME,
                           "perform_resume", "migrate resume=true")
        return self.finish_resume

    def finish_resume(self) -> Optional[Callable]:
        self._resume_phase(self.dst, "dst", IN, Phase.PREPARE_RESUME, Phase.FINISH_RESUME,
                           "finish_resume", "the last pages arrived", last=True)
        return self.confirm_resume

    def confirm_resume(self) -> Optional[Callable]:
        d = self.src
        self._resume_phase(d, "src", OUT, Phase.PERFORM_RESUME, Phase.CONFIRM_RESUME,
                           "confirm_resume", "quit: the source QEMU is gone", last=True)
        stats = d.job_stats(completed=True)
        self.check(stats is not None and stats.state == mj.JobState.COMPLETED,
                   f"confirm_resume: the completed job record says COMPLETED, got {stats}")
        self.check(not d.async_paused and d.async_job == mj.AsyncJob.NONE,
                   "confirm_resume: the source's async job ended")
        self.vm.running = False          # the guest lives on the destination now
        self.outcome = "completed"
        if stats is not None:
            self.log("src", "-", f"completed after a post-copy resume: job stats "
                                 f"{stats.state.name}, {stats.elapsed * 1000:.0f} ms in all")
        return None
