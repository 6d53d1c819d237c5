"""A kill at every phase: SIGKILL the source or the destination daemon at
each step boundary of the v3 protocol (pymigjob.qemu.crashpoints) and at
random instants inside Perform3, restart it, let it recover, and check the
real QEMUs (qemu_invariants).  Used by ``demo --qemu --crash`` and
tests/qemu/test_kill_phases.py.

Each round migrates every guest to the other host at once, with the victim
daemon armed (through its crash-point file) to die at one point -- or
killed from here at a random instant once one of its migrations is in
Perform3.  A round that should end in CONFIRM3_CANCELLED aborts a migration
to get there.  After the check, this harness is the "third party" for a
guest left paused: it resumes it, or, if the guest runs on the other host,
destroys and undefines the paused copy.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from pymigjob.qemu.crashpoints import POINTS

from .qemu_cluster import Cluster
from .qemu_invariants import Verdict, check

__all__ = ["Kill", "RANDOM_POINTS", "plan", "run_kills"]

RANDOM_POINTS = ("source:random-in-perform", "destination:random-in-perform")
#: bytes/s for rounds killed inside Perform3: a 32 MB idle guest (~0.7 MB sent)
#: then takes ~0.5 s
SLOW = 1_500_000


@dataclass
class Kill:
    n: int
    point: str
    victim: str
    hit: bool = False                   # the victim died at the point
    migrations: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)
    seconds: float = 0.0

    def __str__(self) -> str:
        state = "ok" if self.verdict.ok else "PROBLEMS: " + "; ".join(self.verdict.problems)
        placed = ", ".join(f"{g}: {w}" for g, w in sorted(self.verdict.placement.items()))
        return (f"#{self.n:<3} kill {self.victim} at {self.point:<32} "
                f"{'' if self.hit else '(point not reached) '}"
                f"| {'; '.join(self.migrations)} | recovery: "
                f"{'; '.join(self.recovered) or 'nothing recorded'} | now {placed} | "
                f"{state} ({self.seconds:.1f} s)")


def plan(kills: int) -> list[str]:
    """Every boundary, then two random instants per side, over and over."""
    cycle = list(POINTS) + list(RANDOM_POINTS) * 2
    return [cycle[i % len(cycle)] for i in range(kills)]


async def _phase(cluster: Cluster, side: str, guest: str) -> str:
    status, body = await cluster.call(side, "GET", f"/v1/domains/{guest}", timeout=5)
    return body["job"]["phase"] if status == 200 else "?"


async def _when_performing(cluster: Cluster, moves: dict[str, tuple[str, str]],
                           victim: str, role: str, timeout: float = 10.0) -> Optional[str]:
    """A guest whose migration involves the victim in `role` and is in Perform3."""
    involved = [g for g, (src, dst) in moves.items()
                if (src if role == "source" else dst) == victim]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for guest in involved:
            if await _phase(cluster, moves[guest][0], guest) == "perform3":
                return guest
        await asyncio.sleep(0.005)
    return None


def _choose_victim(runs_on: dict[str, Optional[str]], role: str,
                   rng: random.Random) -> str:
    sources = sorted({side for side in runs_on.values() if side is not None})
    if role == "source":
        return rng.choice(sources)
    return rng.choice(sorted({"b" if s == "a" else "a" for s in sources}))


async def _third_party(cluster: Cluster, verdict: Verdict) -> None:
    """Settle the guests left paused: resume, or drop the paused copy."""
    seen = await cluster.guests()
    for guest in verdict.placement:
        paused = [side for side, found in seen.items()
                  if guest in found and not found[guest].running]
        for side in paused:
            if verdict.runs_on.get(guest) is not None:
                await cluster.call(side, "POST", f"/v1/domains/{guest}/destroy", {})
                await cluster.call(side, "DELETE", f"/v1/domains/{guest}")
            else:
                await cluster.call(side, "POST", f"/v1/domains/{guest}/modify",
                                   {"command": "cont"})


def _describe(guest: str, src: str, dst: str, answer: tuple[int, Any]) -> str:
    status, body = answer
    if status == 200:
        return f"{guest} {src}->{dst} completed"
    error = body.get("error", {})
    outcome = error.get("report", {}).get("outcome") or error.get("name", "?")
    return f"{guest} {src}->{dst} {outcome}"


async def one_kill(cluster: Cluster, n: int, point: str, runs_on: dict[str, Optional[str]],
                   rng: random.Random) -> Kill:
    t0 = time.monotonic()
    role = point.split(":")[0]
    victim_side = _choose_victim(runs_on, role, rng)
    kill = Kill(n, point, victim_side)
    victim = cluster.daemons[victim_side]
    crash_file = victim.crash_file
    at_random = point in RANDOM_POINTS
    crash_file.write_text("" if at_random else point)
    moves = {g: (side, cluster.other(side)) for g, side in runs_on.items() if side}
    bandwidth = SLOW if at_random or point == "source:confirm3-cancelled" else None
    tasks = {g: asyncio.create_task(cluster.call(
        src, "POST", f"/v1/domains/{g}/migrate",
        {"destination": cluster.daemons[dst].url,
         **({"bandwidth": bandwidth} if bandwidth else {})}))
        for g, (src, dst) in moves.items()}
    if at_random:
        guest = await _when_performing(cluster, moves, victim_side, role)
        if guest is not None:
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            victim.kill()
    elif point == "source:confirm3-cancelled":  # only a failed migration gets there
        guest = await _when_performing(cluster, moves, victim_side, role)
        if guest is not None:
            await cluster.call(victim_side, "POST", f"/v1/domains/{guest}/abort", {})
    kill.hit = await victim.wait_dead(15.0)
    crash_file.write_text("")
    if not kill.hit:
        victim.kill()
        await victim.wait_dead(5.0)
    await victim.start()
    answers = {g: await task for g, task in tasks.items()}
    kill.migrations = [_describe(g, *moves[g], answers[g]) for g in sorted(moves)]
    kill.recovered = [f"{r['name']} {r['decision']}" for r in victim.recovered]
    settled = await cluster.settle()
    may_be_paused = {r["name"] for r in victim.recovered if r["decision"] == "leave-paused"}
    may_be_paused |= {g for g, (status, body) in answers.items() if status != 200 and
                      body.get("error", {}).get("report", {}).get("outcome") == "unknown"}
    kill.verdict = await check(cluster, set(runs_on), may_be_paused)
    if not settled:
        kill.verdict.problems.append("jobs still held 15 s after the restart")
    await _third_party(cluster, kill.verdict)
    kill.seconds = time.monotonic() - t0
    return kill


async def run_kills(cluster: Cluster, guests: list[str], kills: int, seed: int = 1,
                    report: Callable[[Kill], None] = print) -> list[Kill]:
    rng = random.Random(seed)
    for i, guest in enumerate(guests):   # spread over both hosts
        side = "a" if i % 2 == 0 else "b"
        await cluster.call(side, "POST", "/v1/domains", {"name": guest})
        await cluster.call(side, "POST", f"/v1/domains/{guest}/start", {})
    verdict = await check(cluster, set(guests), set())
    done: list[Kill] = []
    for n, point in enumerate(plan(kills), 1):
        kill = await one_kill(cluster, n, point, dict(verdict.runs_on), rng)
        report(kill)
        done.append(kill)
        verdict = await check(cluster, set(guests), set())   # after the third party
        if not verdict.ok:
            kill.verdict.problems += [f"after settling paused guests: {p}"
                                      for p in verdict.problems]
            break
    return done
