"""``python -m pymigjob demo --qemu``: the main job, on real QEMU.

Two daemons as separate processes (127.0.0.2 and 127.0.0.3, each with its
own state directory) and N guests.  Every guest migrates back and forth
while clients hammer queries, modifies, aborts and a destroy over HTTP;
then a timeline, a summary, and the guests' real QEMU states.

    --crash     instead: kill a daemon at every phase, restart, check (qemu_crash)
    --measure   instead: the job model against the naive daemon (qemu_measure)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["main", "missing"]


def missing() -> Optional[str]:
    """Why demo --qemu cannot run here, with how to fix it; None if it can."""
    try:
        import aiohttp  # noqa: F401
        import prometheus_client  # noqa: F401
        import qemu.qmp  # noqa: F401
    except ImportError as e:
        return (f"demo --qemu needs the qemu extra ({e.name} is missing):\n"
                "    pip install 'pymigjob[qemu]'")
    from pymigjob.qemu import find_qemu
    if find_qemu() is None:
        return ("demo --qemu needs QEMU (qemu-system-x86_64 is not on PATH):\n"
                "    apt-get install qemu-system-x86      # Debian/Ubuntu, ~11 s")
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pymigjob demo --qemu",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--guests", type=int, default=4, help="guests (default 4)")
    p.add_argument("--rounds", type=int, default=4,
                   help="migrations per guest (default 4)")
    p.add_argument("--bandwidth", type=int, default=4_000_000,
                   help="migration bandwidth in bytes/s, so Perform3 lasts a while "
                   "(default 4000000: ~0.2 s per 32 MB guest)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--crash", action="store_true", help="kill a daemon at every phase")
    p.add_argument("--kills", type=int, default=38, help="with --crash (default 38)")
    p.add_argument("--measure", action="store_true",
                   help="query latency and bookkeeping: job model vs naive daemon")
    p.add_argument("--json", metavar="PATH", help="with --measure: write the numbers there")
    p.add_argument("--keep", action="store_true", help="keep the state directories")
    return p


@dataclass
class Run:
    t0: float = field(default_factory=time.monotonic)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)
    destroyed: set[str] = field(default_factory=set)
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    query_latency: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    done: bool = False

    def note(self, text: str) -> None:
        self.timeline.append((time.monotonic() - self.t0, text))

    def count(self, kind: str, status: int, body: Any) -> None:
        label = str(status) if status < 400 else \
            f"{status} {body.get('error', {}).get('name', '?')}"
        self.answers.setdefault(kind, Counter())[label] += 1


async def _migrator(c: Any, run: Run, guest: str, rounds: int, bandwidth: int) -> None:
    for _ in range(rounds):
        if guest in run.destroyed:
            return
        src = run.where[guest]
        dst = c.other(src)
        run.note(f"{guest}: migrate {src} -> {dst}")
        status, body = await c.call(src, "POST", f"/v1/domains/{guest}/migrate",
                                    {"destination": c.daemons[dst].url,
                                     "bandwidth": bandwidth})
        report = body if status == 200 else body.get("error", {}).get("report", {})
        outcome = report.get("outcome", body.get("error", {}).get("name", "?"))
        run.outcomes[outcome] += 1
        phases = " ".join(f"{k} {v * 1000:.0f}ms" for k, v in report.get("phases", {}).items())
        why = "" if status == 200 else f": {body['error']['text'][:90]}"
        run.note(f"{guest}: {src} -> {dst} {outcome}{why} [{phases}]")
        if status == 200:
            run.where[guest] = dst
        await asyncio.sleep(0.05)


def _live(run: Run, guests: list[str], rng: random.Random) -> str:
    return rng.choice([g for g in guests if g not in run.destroyed] or guests)


async def _querier(c: Any, run: Run, guests: list[str], rng: random.Random) -> None:
    while not run.done:
        guest = _live(run, guests, rng)
        for side in (run.where[guest], c.other(run.where[guest])):
            t = time.monotonic()
            status, body = await c.call(side, "POST", f"/v1/domains/{guest}/query",
                                        {"timeout": 5})
            if status != 404:
                break
        run.count("query", status, body)
        if status == 200:
            run.query_latency.append(time.monotonic() - t)
        await asyncio.sleep(0.005)


async def _modifier(c: Any, run: Run, guests: list[str], rng: random.Random) -> None:
    shown = 0
    while not run.done:
        guest = _live(run, guests, rng)
        status, body = await c.call(run.where[guest], "POST", f"/v1/domains/{guest}/modify",
                                    {"command": "system_reset", "timeout": 0.2})
        run.count("modify", status, body)
        if status == 503 and shown < 3:  # the mask at work: MODIFY waits out a migration
            shown += 1
            run.note(f"{guest}: modify refused after 0.2 s: {body['error']['text']}")
        await asyncio.sleep(0.05)


async def _in_perform(c: Any, run: Run, guests: list[str]) -> Optional[str]:
    while not run.done:
        for guest in guests:
            status, body = await c.call(run.where[guest], "GET", f"/v1/domains/{guest}")
            if status == 200 and body["job"]["phase"] == "perform3":
                return guest
        await asyncio.sleep(0.01)
    return None


async def _aborter(c: Any, run: Run, guests: list[str], rng: random.Random) -> None:
    while not run.done:
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        guest = await _in_perform(c, run, guests)
        if guest is None:
            return
        status, body = await c.call(run.where[guest], "POST", f"/v1/domains/{guest}/abort", {})
        run.count("abort", status, body)
        run.note(f"{guest}: abort on {run.where[guest]} -> HTTP {status}")


async def _destroyer(c: Any, run: Run, guest: str, after: float) -> None:
    await asyncio.sleep(after)
    if await _in_perform(c, run, [guest]) is None:
        return
    side = run.where[guest]
    run.destroyed.add(guest)
    status, body = await c.call(side, "POST", f"/v1/domains/{guest}/destroy", {})
    run.count("destroy", status, body)
    run.note(f"{guest}: destroy on {side} during its migration -> HTTP {status}")


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else \
        (values[0] if values else 0.0)


async def demo(args: argparse.Namespace, root: Path) -> int:
    from .qemu_cluster import Cluster
    from .qemu_invariants import check

    c = await Cluster(root).start()
    rng = random.Random(args.seed)
    guests = [f"vm{i}" for i in range(args.guests)]
    run = Run()
    try:
        for guest in guests:
            await c.call("a", "POST", "/v1/domains", {"name": guest})
            await c.call("a", "POST", f"/v1/domains/{guest}/start", {})
            run.where[guest] = "a"
        print(f"daemons: a {c.daemons['a'].url}  b {c.daemons['b'].url}  "
              f"(state in {root}); {len(guests)} guests running on a")
        run.note("start")
        hammers = [asyncio.create_task(f) for f in
                   [_querier(c, run, guests, rng) for _ in range(4)]
                   + [_modifier(c, run, guests, rng), _aborter(c, run, guests, rng)]
                   + ([_destroyer(c, run, guests[-1], 1.0)] if len(guests) > 1 else [])]
        await asyncio.gather(*(_migrator(c, run, g, args.rounds, args.bandwidth)
                               for g in guests))
        run.done = True
        await asyncio.gather(*hammers)
        run.note("end")
        settled = await c.settle()
        verdict = await check(c, set(guests), set(), run.destroyed)
        print("\ntimeline")
        for t, text in run.timeline:
            print(f"  {t:7.3f}s  {text}")
        print("\nsummary")
        for kind, answers in sorted(run.answers.items()):
            print(f"  {kind:8} " + ", ".join(f"{n} x {a}" for a, n in answers.most_common()))
        lat = run.query_latency
        if lat:
            print(f"  query latency during migrations: p50 {_percentile(lat, 50) * 1e3:.1f} ms"
                  f", p99 {_percentile(lat, 99) * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms "
                  f"({len(lat)} queries)")
        print("  migrations: " + ", ".join(f"{n} {o}" for o, n in run.outcomes.most_common()))
        print("\nguests (their QEMUs, asked directly)")
        seen = await c.guests()
        for guest in guests:
            at = [f"{side}: pid {g.pid} {g.status}" for side, g in sorted(seen.items())
                  for name, g in [(guest, g.get(guest))] if g is not None]
            note = " (destroyed)" if guest in run.destroyed else ""
            print(f"  {guest}: {'; '.join(at) or 'no QEMU'}{note}")
        ok = verdict.ok and settled
        print("\ninvariants: " + ("ok -- no guest runs twice, none lost, every QEMU owned, "
                                  "records match" if ok else "; ".join(verdict.problems)))
        return 0 if ok else 1
    finally:
        await c.stop()


async def crash(args: argparse.Namespace, root: Path) -> int:
    from .qemu_cluster import Cluster
    from .qemu_crash import run_kills

    c = await Cluster(root).start()
    t0 = time.monotonic()
    try:
        kills = await run_kills(c, [f"vm{i}" for i in range(max(args.guests, 2))],
                                args.kills, args.seed)
    finally:
        await c.stop()
    bad = [k for k in kills if not k.verdict.ok]
    print(f"\n{len(kills)} kills ({sum(k.hit for k in kills)} at their point) in "
          f"{time.monotonic() - t0:.0f} s: {'all invariants held' if not bad else f'{len(bad)} failed'}")
    return 1 if bad or len(kills) < args.kills else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    reason = missing()
    if reason is not None:
        print(f"python -m pymigjob {reason}\n(the simulated demo needs neither: "
              "python -m pymigjob demo)", file=sys.stderr)
        return 2
    if args.guests < 1 or args.rounds < 1:
        print("--guests and --rounds must be at least 1", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="mjdemo", dir="/tmp"))
    try:
        if args.measure:
            from .qemu_measure import measure
            return asyncio.run(measure(args, root))
        return asyncio.run(crash(args, root) if args.crash else demo(args, root))
    finally:
        if args.keep:
            print(f"state kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
