"""The demo's other clients: queries and modifies on the source, queries on
the destination, and the disruptors (abort, destroy) -- a mixin of Demo."""

from __future__ import annotations

import queue
import random
import threading
import time
import traceback
from typing import Any, Callable, Tuple

import pymigjob as mj

from .plan import (
    AGENT_GAP,
    AGENT_HOLD,
    AGENT_MODIFY_APIS,
    AGENT_MODIFY_SHARE,
    AGENT_QUERY_APIS,
    DST_QUERY_GAP,
    MIGOP_SHARE,
    MODIFY_APIS,
    MODIFY_GAP,
    MODIFY_HOLD,
    OUT,
    QUERY_APIS,
    QUERY_GAP,
    QUERY_HOLD,
    WAITED,
    Job,
    _ms,
    _sleep,
    holder_of,
    phase_label,
)


class Clients:
    """The client threads of Demo (whose state they use)."""

    # Demo's state, as these methods use it
    src: Any
    dst: Any
    seed: int
    stop: threading.Event

    def _client(self, name: str, fn: Callable[..., None], *args: Any) -> None:
        def body() -> None:
            try:
                fn(*args)
            except BaseException:
                self.problem(f"client thread {name} crashed:\n" + traceback.format_exc())
        t = threading.Thread(target=body, name=name, daemon=True)
        self.clients.append(t)

    def query_client(self, idx: int) -> None:
        rng = random.Random(f"{self.seed}/query/{idx}")
        while not self.stop.is_set():
            name = rng.choice(self.names)
            d = self.handles[name]
            migop = rng.random() < MIGOP_SHARE
            job = Job.MIGRATION_OP if migop else Job.QUERY
            api = "migrateSetMaxSpeed" if migop else rng.choice(QUERY_APIS)
            t0 = time.perf_counter()
            try:
                with d.job(job, api=api):
                    granted = time.perf_counter()
                    waited = granted - t0
                    aj, ph = d.async_job, d.phase
                    result = "served"
                    if migop:
                        try:
                            d.check_migration_job(OUT)
                            result = "applied"
                        except mj.OperationInvalid as e:
                            result = "refused"
                            self.check(e.message == f"domain '{name}' is not being migrated",
                                       f"{api} on {name}: refusal text, got {e.message!r}")
                    else:
                        d.job_info
                    _sleep(rng, QUERY_HOLD)
                label = phase_label(aj, ph)
                self.log("migop" if migop else "query", name, "src", label,
                         f"{api}: {result}" + (f" (waited {_ms(waited)})" if waited >= WAITED else ""),
                         when=granted, api=api, waited=waited, during=aj == OUT, result=result)
            except mj.Error as e:
                # QUERY and MIGRATION_OP are allowed during a migration out:
                # they must never fail here.
                self.problem(f"{api} on {name} failed: {e}")
                self.log("error", name, "src", "", f"{api} FAILED: {e}")
            _sleep(rng, QUERY_GAP)

    def modify_client(self, idx: int) -> None:
        rng = random.Random(f"{self.seed}/modify/{idx}")
        timeout = self.args.timeout
        while not self.stop.is_set():
            name = rng.choice(self.names)
            d = self.handles[name]
            api = rng.choice(MODIFY_APIS)
            asked = phase_label(d.async_job, d.phase)
            t0 = time.perf_counter()
            try:
                with d.job(Job.MODIFY, api=api, timeout=timeout):
                    waited = time.perf_counter() - t0
                    self.check(d.async_job == mj.AsyncJob.NONE,
                               f"{api} on {name}: MODIFY runs only without an async job")
                    _sleep(rng, MODIFY_HOLD)
                if waited >= WAITED:
                    self.log("modify", name, "src", asked,
                             f"{api}: waited {_ms(waited)} (asked during {asked}), then ran",
                             api=api, waited=waited, result="waited")
                else:
                    self.log("modify", name, "src", asked, f"{api}: ran at once",
                             api=api, waited=waited, result="ran")
            except mj.JobTimeout as e:
                waited = time.perf_counter() - t0
                at = phase_label(d.async_job, d.phase)
                self.check(e.code == mj.ErrorCode.OPERATION_TIMEOUT,
                           f"{api} on {name}: timeout code is OPERATION_TIMEOUT")
                self.log("modify", name, "src", at,
                         f"{api}: gave up after {_ms(waited)}: {e}",
                         api=api, waited=waited, result="timeout", holder=holder_of(e),
                         asked=asked, at=at)
            except mj.Error as e:
                self.problem(f"{api} on {name} failed: {e!r}")
                self.log("error", name, "src", "", f"{api} FAILED: {e}")
            _sleep(rng, MODIFY_GAP)

    def agent_client(self) -> None:
        """Guest-agent calls on the source: the agent slot waits only for
        another agent job -- never for the monitor (sync) job or the
        migration's mask, so it runs beside both."""
        rng = random.Random(f"{self.seed}/agent")
        while not self.stop.is_set():
            name = rng.choice(self.names)
            d = self.handles[name]
            modify = rng.random() < AGENT_MODIFY_SHARE
            kind = mj.AgentJob.MODIFY if modify else mj.AgentJob.QUERY
            api = rng.choice(AGENT_MODIFY_APIS if modify else AGENT_QUERY_APIS)
            t0 = time.perf_counter()
            try:
                with d.agent(kind, api=api):
                    granted = time.perf_counter()
                    # what the other slots held as the agent job started
                    monitor, aj, ph = d.owner_api, d.async_job, d.phase
                    self.check(d.agent_job == kind and d.agent_owner_api == api,
                               f"{api} on {name}: the agent slot holds {kind.label}")
                    _sleep(rng, AGENT_HOLD)
                beside = [f"monitor={monitor}"] if monitor else []
                if aj != mj.AsyncJob.NONE:
                    beside.append(f"{aj.label} at {phase_label(aj, ph)}")
                self.log("agent", name, "src", phase_label(aj, ph),
                         f"{api} ({kind.label} agent job)"
                         + (f" beside {', '.join(beside)}" if beside else ""),
                         when=granted, api=api, waited=granted - t0,
                         beside_monitor=bool(monitor), during=aj != mj.AsyncJob.NONE)
            except mj.Error as e:
                # one agent client and no agent timeouts: nothing may refuse it
                self.problem(f"{api} on {name} failed: {e!r}")
                self.log("error", name, "src", "", f"{api} FAILED: {e}")
            _sleep(rng, AGENT_GAP)

    def dst_query_client(self) -> None:
        rng = random.Random(f"{self.seed}/dstquery")
        timeout = self.args.timeout
        while not self.stop.is_set():
            name = rng.choice(self.names)
            try:
                dd = self.dst.lookup(name)
            except mj.NoDomain:
                self.log("dstquery", name, "dst", "-", "getJobInfo: no such domain here",
                         result="absent")
                _sleep(rng, DST_QUERY_GAP)
                continue
            t0 = time.perf_counter()
            try:
                with dd.job(Job.QUERY, api="getJobInfo", timeout=timeout):
                    granted = time.perf_counter()
                    waited = granted - t0
                    aj, ph = dd.async_job, dd.phase
                    _sleep(rng, QUERY_HOLD)
                self.log("dstquery", name, "dst", phase_label(aj, ph),
                         f"getJobInfo: served after {_ms(waited)}", when=granted, result="served",
                         waited=waited)
            except mj.JobTimeout as e:
                try:
                    at = phase_label(dd.async_job, dd.phase)
                except mj.NoDomain:
                    at = "-"
                self.log("dstquery", name, "dst", at, f"getJobInfo: {e}",
                         result="timeout", holder=holder_of(e))
            except mj.NoDomain as e:
                self.log("dstquery", name, "dst", "-", f"getJobInfo: {e} (removed meanwhile)",
                         result="removed")
            except mj.Error as e:
                self.problem(f"destination getJobInfo on {name} failed: {e!r}")
            _sleep(rng, DST_QUERY_GAP)

    def _disruptor(self, q: "queue.Queue[Tuple[str, str]]", act: Callable[[str, str], None]) -> None:
        while True:
            try:
                name, point = q.get(timeout=0.02)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            act(name, point)

    def do_abort(self, name: str, point: str) -> None:
        d = self.handles[name]
        asked = phase_label(d.async_job, d.phase)
        t0 = time.perf_counter()
        try:
            d.abort_job(api="abortJob")
            waited = time.perf_counter() - t0
            self.log("abort", name, "src", asked,
                     f"abortJob: ABORT job granted after {_ms(waited)}, abort flag raised",
                     result="flagged", point=point)
        except mj.OperationInvalid as e:
            self.log("abort", name, "src", asked, f"abortJob refused: {e}",
                     result="refused", point=point)
        except mj.Error as e:
            self.problem(f"abortJob on {name} failed: {e!r}")

    def do_destroy(self, name: str, point: str) -> None:
        d = self.handles[name]
        self.vmstate[name].running = False   # libvirt kills QEMU first, then takes the job
        asked = phase_label(d.async_job, d.phase)
        self.log("destroy", name, "src", asked, "destroy: QEMU process killed; "
                                                "taking the DESTROY job")
        t0 = time.perf_counter()
        try:
            with d.job(Job.DESTROY, api="destroy"):
                waited = time.perf_counter() - t0
                aj, ph = d.async_job, d.phase
                _sleep(random.Random(f"{self.seed}/destroy/{name}"), MODIFY_HOLD)
            self.log("destroy", name, "src", phase_label(aj, ph),
                     f"destroy: DESTROY job held after {_ms(waited)} (the mask always "
                     f"allows it), domain shut off", result="destroyed", point=point)
        except mj.Error as e:
            self.problem(f"destroy on {name} failed: {e!r}")
