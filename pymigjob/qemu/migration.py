"""The v3 migration protocol on QMP, source and destination, peer to peer.

The source drives every step in one call, as libvirt's peer-to-peer
migration does (one MIGRATION_OUT async job whose phase moves BEGIN3 ->
PERFORM3 -> PERFORM3_DONE -> CONFIRM3 or CONFIRM3_CANCELLED); the
destination's steps are separate calls from the source (a :class:`Peer`:
the daemon's HTTP client, or another Host in the same process for tests),
with its MIGRATION_IN job parked in PREPARE in between.

=============  ============================================================
Begin3         source: start MIGRATION_OUT, describe the guest
Prepare3       destination: start MIGRATION_IN (phase PREPARE), QEMU with
               ``-incoming defer``, ``migrate-incoming`` on a port of its
               choosing; returns the URI
Perform3       source: ``migrate``, then ``query-migrate`` every few ms, each
               in a short nested job -- between them QUERY, DESTROY and ABORT
               jobs get the monitor; then PERFORM3_DONE
Finish3        destination: ``cont`` on success, kill QEMU on failure
Confirm3       source: ``quit`` on success; on failure CONFIRM3_CANCELLED and
               ``cont`` if the migration left the guest paused
=============  ============================================================

Perform3 fails -- and cancels QEMU's migration -- when QEMU reports a
failure, when the job is aborted, when QEMU dies (destroy), or when the
peer's connection is lost (libvirt: "Lost connection to destination host").

When Finish3 was sent but its answer never came (:class:`OutcomeUnknown`),
the source cannot know whether the guest now runs on the destination; it
does what libvirt does for a migration abandoned in PERFORM3_DONE: ends the
job through CONFIRM3_CANCELLED *without* resuming the guest, and warns.  A
third party decides.  (libvirt's peer-to-peer code resumes the source
instead, and may then run the guest on both hosts.)

``naive=True`` runs the same steps under one sync MODIFY job held for the
whole migration, with no async job or mask: the baseline the job model
is measured against.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, Callable, Optional, Protocol, Union

import pymigjob as mj

from .crashpoints import crash_point
from .definitions import check_name
from .host import Host
from .jobs import MigrationStep
from .observe import Ledger
from .recovery import MIGRATING
from .vm import Vm, paused_reason

__all__ = ["Peer", "MigrationReport", "OutcomeUnknown", "migrate", "prepare3", "finish3",
           "POLL_INTERVAL"]

log = logging.getLogger("pymigjob.qemu")

_IN, _OUT = mj.AsyncJob.MIGRATION_IN, mj.AsyncJob.MIGRATION_OUT
Phase = mj.Phase

#: seconds between two query-migrate polls during Perform3
POLL_INTERVAL = 0.01

LOST_PEER = "Lost connection to destination host"
UNKNOWN_OUTCOME = ("Migration of domain %s finished but we don't know if the domain was "
                   "successfully started on destination or not")


class OutcomeUnknown(mj.OperationFailed):
    """Finish3 reached the destination, or may have; its answer did not come
    back.  A Peer raises it instead of a plain failure in that case."""


class Peer(Protocol):
    """The destination as the source sees it."""

    async def prepare(self, description: dict[str, Any]) -> dict[str, Any]:
        """Prepare3: returns at least {"uri": ...}."""

    async def finish(self, name: str, ok: bool) -> dict[str, Any]:
        """Finish3; raises when the destination failed or cannot be reached,
        OutcomeUnknown when the request may have arrived but no answer did."""

    def alive(self) -> bool:
        """The connection to the destination still stands."""


@dataclass
class MigrationReport:
    name: str
    outcome: str = "failed"          # completed | failed | aborted | destroyed | ...
    error: Optional[mj.Error] = None
    seconds: float = 0.0             # wall time of the whole migration
    qemu_ms: Optional[int] = None    # QEMU's own total-time for the transfer
    downtime_ms: Optional[int] = None
    bookkeeping: float = 0.0         # seconds in job calls, both sides
    bookkeeping_calls: int = 0
    phases: dict[str, float] = field(default_factory=dict)


# ---- source -------------------------------------------------------------------

class _NaiveStep:
    """The naive baseline's stand-in for a MigrationStep: phases are not
    tracked (there is no async job), the sync job is held throughout."""

    def __init__(self, vm: Vm, ledger: Ledger) -> None:
        self._job = vm.job(mj.Job.MODIFY, api="migrate (naive)", ledger=ledger)

    async def __aenter__(self) -> _NaiveStep:
        await self._job.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._job.__aexit__(*exc)

    def set_phase(self, phase: mj.Phase) -> bool:
        return True

    def finish(self) -> None:
        pass


_Step = Union[MigrationStep, _NaiveStep]
_Entry = Callable[[], AsyncContextManager[Any]]


def _entry(vm: Vm, naive: bool, ledger: Ledger) -> _Entry:
    """How the source enters its monitor: a nested job of the async job, or
    (naive) nothing -- the held sync job covers it."""
    if naive:
        return contextlib.nullcontext  # type: ignore[return-value]
    return lambda: vm.nested(_OUT, api="migrate", ledger=ledger)


async def _begin3(vm: Vm, entry: _Entry) -> dict[str, Any]:
    vm.check_active()
    async with entry():
        status = await vm.qmp("query-status")
    return {"name": vm.name, "memory_mb": vm.memory_mb, "running": bool(status["running"])}


async def _cancel(vm: Vm, entry: _Entry) -> None:
    """Make sure QEMU is not migrating any more (best effort)."""
    try:
        async with entry():
            if str((await vm.qmp("query-migrate")).get("status")) in MIGRATING:
                await vm.qmp("migrate_cancel")
        for _ in range(500):
            async with entry():
                if str((await vm.qmp("query-migrate")).get("status")) not in MIGRATING:
                    return
            await asyncio.sleep(POLL_INTERVAL)
    except mj.Error:
        pass  # QEMU is gone: nothing migrates


async def _perform3(vm: Vm, step: _Step, uri: str, peer: Peer, entry: _Entry,
                    bandwidth: Optional[int]) -> Optional[mj.Error]:
    """None on success (phase PERFORM3_DONE), else the error; QEMU is left
    not migrating either way."""
    step.set_phase(Phase.PERFORM3)
    dom = vm.domain
    try:
        async with entry():
            dom.check_abort()  # an abort that came before QEMU was told anything
            if bandwidth is not None:
                await vm.qmp("migrate-set-parameters", {"max-bandwidth": bandwidth})
            await vm.qmp("migrate", {"uri": uri})
        crash_point("source:migrating")
        stopping: Optional[mj.Error] = None  # why we asked QEMU to cancel
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            async with entry():
                info = await vm.qmp("query-migrate")
                vm.last_migration = info
                status = str(info.get("status"))
                if status == "completed":
                    if peer.alive():
                        break  # an abort that came too late loses, as in libvirt
                    raise mj.OperationFailed(LOST_PEER)
                if status not in MIGRATING:
                    if stopping is not None:
                        raise stopping
                    dom.check_abort()
                    if not peer.alive():  # QEMU failed because the destination went
                        raise mj.OperationFailed(LOST_PEER)
                    raise mj.OperationFailed(f"migration out job: unexpectedly failed: "
                                             f"{info.get('error-desc', status)}")
                if stopping is None:
                    if dom.abort_requested:
                        try:
                            dom.check_abort()
                        except mj.OperationAborted as e:
                            stopping = e
                    elif not peer.alive():
                        stopping = mj.OperationFailed(LOST_PEER)
                    if stopping is not None:
                        await vm.qmp("migrate_cancel")
    except mj.Error as e:
        await _cancel(vm, entry)
        return e
    step.set_phase(Phase.PERFORM3_DONE)
    crash_point("source:perform3-done")
    return None


async def _confirm3(host: Host, vm: Vm, step: _Step, ok: bool, entry: _Entry,
                    unknown: bool = False) -> None:
    if ok:
        step.set_phase(Phase.CONFIRM3)
        crash_point("source:confirm3")
        async with entry():
            await vm.quit()
        crash_point("source:quit")
        host.definitions.delete(vm.name)  # the guest lives on the destination now
        return
    step.set_phase(Phase.CONFIRM3_CANCELLED)
    crash_point("source:confirm3-cancelled")
    if unknown:
        log.warning(UNKNOWN_OUTCOME, vm.name)
        return  # leave the guest as it is: it may be running on the destination
    if vm.process is None or not vm.process.alive:
        return  # destroyed meanwhile: nothing to resume
    async with entry():
        status = await vm.qmp("query-status")
        if paused_reason(status) in ("migration", "unknown"):
            await vm.qmp("cont")
            status = await vm.qmp("query-status")
        vm.note_status(status)


def _outcome(error: Optional[mj.Error], vm: Vm) -> str:
    if error is None:
        return "completed"
    if isinstance(error, OutcomeUnknown):
        return "unknown"
    if isinstance(error, mj.OperationAborted):
        return "aborted"
    if vm.process is None or not vm.process.alive:
        return "destroyed"
    if str(error.message) == LOST_PEER:
        return "peer lost"
    return "failed"


async def migrate(host: Host, name: str, peer: Peer, *, bandwidth: Optional[int] = None,
                  naive: bool = False, timeout: Optional[float] = None) -> MigrationReport:
    """Migrate domain `name` to `peer` (peer to peer, v3).  Raises the
    migration's error after the source is consistent again; the report is
    attached to it as ``error.report``."""
    vm = host.vm(name)
    ledger = Ledger()
    report = MigrationReport(name)
    t0 = time.perf_counter()
    entry = _entry(vm, naive, ledger)
    step: Any = _NaiveStep(vm, ledger) if naive else \
        vm.step(_OUT, Phase.BEGIN3, first=True, api="migratePerform3", timeout=timeout,
                ledger=ledger)
    error: Optional[mj.Error] = None
    finished = unknown = False
    async with step:
        marks = [("begin3", time.perf_counter())]
        description = await _begin3(vm, entry)
        crash_point("source:begin3")
        try:
            prepared = await peer.prepare(description)
            report.bookkeeping += float(prepared.get("bookkeeping", 0.0))
            report.bookkeeping_calls += int(prepared.get("bookkeeping_calls", 0))
            crash_point("source:prepared")
        except mj.Error as e:
            error = e
        marks.append(("prepare3", time.perf_counter()))
        if error is None:
            error = await _perform3(vm, step, prepared["uri"], peer, entry, bandwidth)
            marks.append(("perform3", time.perf_counter()))
            if vm.last_migration is not None:
                report.qemu_ms = vm.last_migration.get("total-time")
                report.downtime_ms = vm.last_migration.get("downtime")
            try:
                done = await peer.finish(name, error is None)
                report.bookkeeping += float(done.get("bookkeeping", 0.0))
                report.bookkeeping_calls += int(done.get("bookkeeping_calls", 0))
                finished = error is None
                crash_point("source:finished")
            except OutcomeUnknown as e:
                error, unknown = e, error is None
            except mj.Error as e:
                error = error or e
            marks.append(("finish3", time.perf_counter()))
        await _confirm3(host, vm, step, finished, entry, unknown)
        step.finish()
        crash_point("source:done")
        marks.append(("confirm3", time.perf_counter()))
    if finished:
        host.forget(name, undefine=False)
    for (_, start), (phase, end) in zip(marks, marks[1:]):
        report.phases[phase] = end - start
        host.observer.phase_took("source", phase, end - start)
    report.seconds = time.perf_counter() - t0
    report.bookkeeping += ledger.seconds
    report.bookkeeping_calls += ledger.calls
    report.outcome = _outcome(error, vm)
    report.error = error
    host.observer.migration_ended("source", report.outcome)
    if error is not None:
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


# ---- destination ----------------------------------------------------------------

async def prepare3(host: Host, description: dict[str, Any]) -> dict[str, Any]:
    """Prepare3: a paused QEMU waiting for the migration; returns its URI.
    The MIGRATION_IN job stays parked in PREPARE."""
    name = check_name(description.get("name"))
    memory = description.get("memory_mb", 32)
    ledger = Ledger()
    vm = host.add_incoming(name, memory)
    vm.resume_after_migration = bool(description.get("running", True))
    try:
        async with vm.step(_IN, Phase.PREPARE, first=True, api="migratePrepare3",
                           role="destination", ledger=ledger):
            host.save_definition(vm)
            crash_point("destination:prepare")
            await vm.launch(incoming=True, binary=host.qemu_binary)
            crash_point("destination:qemu-started")
            async with vm.nested(_IN, api="migratePrepare3", ledger=ledger):
                await vm.qmp("migrate-incoming",
                             {"uri": f"tcp:{host.migration_address}:0"})
                info = await vm.qmp("query-migrate")
                vm.note_status(await vm.qmp("query-status"))
            port = info["socket-address"][0]["port"]
        crash_point("destination:prepared")
    except BaseException:
        await vm.stop()
        host.forget(name, undefine=True)
        raise
    return {"uri": f"tcp:{host.migration_address}:{port}", "bookkeeping": ledger.seconds,
            "bookkeeping_calls": ledger.calls}


async def finish3(host: Host, name: str, ok: bool) -> dict[str, Any]:
    """Finish3: run the guest if the migration completed, else kill it."""
    vm = host.vm(name)
    ledger = Ledger()
    failure: Optional[mj.Error] = None
    async with vm.step(_IN, Phase.FINISH3, api="migrateFinish3", role="destination",
                       ledger=ledger) as step:
        crash_point("destination:finish3")
        if ok:
            try:
                async with vm.nested(_IN, api="migrateFinish3", ledger=ledger):
                    info = await vm.qmp("query-migrate")
                    if info.get("status") != "completed":
                        raise mj.OperationFailed("migration in job: unexpectedly failed: "
                                                 f"QEMU reports {info.get('status')}")
                    if vm.resume_after_migration:  # a guest paused on the source stays so
                        await vm.qmp("cont")
                    crash_point("destination:resumed")
                    vm.note_status(await vm.qmp("query-status"))
            except mj.Error as e:
                failure = e
            else:
                step.finish()
                crash_point("destination:finished")
                host.observer.migration_ended("destination", "completed")
                return {"state": vm.state, "bookkeeping": ledger.seconds,
                        "bookkeeping_calls": ledger.calls}
        await vm.stop()
        host.definitions.delete(name)
        step.finish()
    host.forget(name, undefine=True)
    host.observer.migration_ended("destination", "failed")
    if failure is not None:
        raise failure
    return {"state": "shut off", "bookkeeping": ledger.seconds,
            "bookkeeping_calls": ledger.calls}
