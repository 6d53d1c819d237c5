"""``GET /metrics``: what an operator needs to see why a domain is stuck.

From the job guards (pymigjob.qemu.observe): how long begins waited and
jobs were held, per job kind; timeouts per kind; migrations by role and
outcome; how long each migration step took.  Read at scrape time from the
domains themselves: each domain's queue length, its jobs now (active job,
async job, phase, and the owner APIs -- the names a timeout would give) and
how long its async job has been running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

import pymigjob as mj
from pymigjob.qemu.observe import Observer

if TYPE_CHECKING:
    from pymigjob.qemu import Host

__all__ = ["Metrics"]

_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0)
_STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class _Domains:
    """A collector that reads every domain when scraped."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        queued = GaugeMetricFamily("pymigjob_jobs_queued",
                                   "Jobs holding or waiting for a domain (libvirt's "
                                   "jobsQueued)", labels=["domain"])
        jobs = GaugeMetricFamily("pymigjob_domain_jobs",
                                 "Always 1; the labels say which jobs hold the domain now "
                                 "and for which API", labels=["domain", "active", "owner_api",
                                                              "async_job", "phase",
                                                              "async_owner_api"])
        elapsed = GaugeMetricFamily("pymigjob_async_job_seconds",
                                    "How long the domain's async job has been running",
                                    labels=["domain", "async_job"])
        state = GaugeMetricFamily("pymigjob_domain_state",
                                  "Always 1; the label is the guest's last known state",
                                  labels=["domain", "state"])
        for name, vm in sorted(self.host.vms.items()):
            dom = vm.domain
            try:
                async_job = dom.async_job
                queued.add_metric([name], dom.jobs_queued)
                jobs.add_metric([name, dom.active_job.label, dom.owner_api or "",
                                 async_job.label,
                                 mj.phase_to_string(async_job, dom.phase) or "",
                                 dom.async_owner_api or ""], 1)
                if async_job != mj.AsyncJob.NONE:
                    elapsed.add_metric([name, async_job.label], dom.job_info.elapsed)
                state.add_metric([name, vm.shown_state], 1)
            except mj.NoDomain:
                continue  # removed while we read
        yield from (queued, jobs, elapsed, state)


class Metrics(Observer):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.waits = Histogram("pymigjob_job_wait_seconds", "Time a begin waited for its job",
                               ["job"], buckets=_WAIT_BUCKETS, registry=r)
        self.holds = Histogram("pymigjob_job_hold_seconds", "Time a job was held",
                               ["job"], buckets=_WAIT_BUCKETS, registry=r)
        self.timeouts = Counter("pymigjob_job_timeouts", "Begins that gave up (deadline or "
                                "max_queued)", ["job"], registry=r)
        self.migrations = Counter("pymigjob_migrations", "Migrations ended, by role and "
                                  "outcome", ["role", "outcome"], registry=r)
        self.steps = Histogram("pymigjob_migration_step_seconds", "Time each migration step "
                               "(phase) took", ["role", "step"], buckets=_STEP_BUCKETS,
                               registry=r)
        self.requests = Counter("pymigjob_http_requests", "Requests served, by route and "
                                "status", ["route", "status"], registry=r)
        self._domains: Optional[_Domains] = None

    def watch(self, host: Host) -> None:
        """Report `host`'s domains at every scrape."""
        if self._domains is None:
            self._domains = _Domains(host)
            self.registry.register(self._domains)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ---- Observer -----------------------------------------------------------

    def job_waited(self, job: str, seconds: float) -> None:
        self.waits.labels(job).observe(seconds)

    def job_held(self, job: str, seconds: float) -> None:
        self.holds.labels(job).observe(seconds)

    def job_timed_out(self, job: str) -> None:
        self.timeouts.labels(job).inc()

    def phase_took(self, role: str, phase: str, seconds: float) -> None:
        self.steps.labels(role, phase).observe(seconds)

    def migration_ended(self, role: str, outcome: str) -> None:
        self.migrations.labels(role, outcome).inc()
