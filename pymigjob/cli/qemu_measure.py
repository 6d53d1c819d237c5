"""``demo --qemu --measure``: why the seed exists, measured on real QEMU.

Side by side in one run, the same workload against two pairs of daemons:

* the job model: Perform3 holds an async job whose mask lets QUERY through,
  with a short nested job per monitor command;
* the naive daemon (``daemon --naive``): one sync MODIFY job held for the
  whole migration, no async job, no mask.

Workload: guests migrate back and forth (bandwidth-limited, so Perform3
lasts a while) while clients query them continuously.  Reported: query
latency p50/p99 during the migrations, and their ratio.

Then migrations with no other load and no bandwidth limit: the time spent
in the library's job calls -- begins, phase changes, ends, with every
durable status write they make -- on both hosts, per migration and as a
fraction of QEMU's own migration time (``query-migrate``'s total-time);
and the same against daemons that keep no records (``--no-records``), to
tell the job calls from the durable writes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from .qemu_cluster import Cluster

__all__ = ["measure", "workload", "quiet_migrations"]


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def workload(c: Cluster, guests: list[str], rounds: int, bandwidth: int,
                   queriers: int = 8) -> tuple[list[float], list[dict[str, Any]]]:
    """Query latencies (s) taken while migrations ran, and the migration reports."""
    where = {g: "a" for g in guests}
    reports: list[dict[str, Any]] = []
    latencies: list[float] = []
    running = True

    async def migrator(guest: str) -> None:
        for _ in range(rounds):
            src = where[guest]
            dst = c.other(src)
            status, body = await c.call(src, "POST", f"/v1/domains/{guest}/migrate",
                                        {"destination": c.daemons[dst].url,
                                         "bandwidth": bandwidth})
            if status == 200:
                where[guest] = dst
                reports.append(body)

    async def querier(i: int) -> None:
        n = i
        while running:
            guest = guests[n % len(guests)]
            n += 1
            t0 = time.perf_counter()  # the wait a client sees, moves included
            for _ in range(3):
                status, _ = await c.call(where[guest], "POST", f"/v1/domains/{guest}/query",
                                         {"timeout": 120})
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                    break
                await asyncio.sleep(0.01)  # it was moving: ask where it is now
            await asyncio.sleep(0.002)

    queries = [asyncio.create_task(querier(i)) for i in range(queriers)]
    await asyncio.gather(*(migrator(g) for g in guests))
    running = False
    await asyncio.gather(*queries)
    return latencies, reports


async def quiet_migrations(c: Cluster, guest: str, count: int) -> list[dict[str, Any]]:
    reports: list[dict[str, Any]] = []
    where = "a" if (await c.call("a", "GET", f"/v1/domains/{guest}"))[0] == 200 else "b"
    for _ in range(count):
        dst = c.other(where)
        status, body = await c.call(where, "POST", f"/v1/domains/{guest}/migrate",
                                    {"destination": c.daemons[dst].url})
        if status == 200:
            reports.append(body)
            where = dst
    return reports


async def _pair(root: Path, extra: tuple[str, ...], guests: list[str]) -> Cluster:
    c = await Cluster(root, extra).start()
    for guest in guests:
        await c.call("a", "POST", "/v1/domains", {"name": guest})
        await c.call("a", "POST", f"/v1/domains/{guest}/start", {})
    return c


def _bookkeeping(calm: list[dict[str, Any]]) -> dict[str, Any]:
    qemu = [r["qemu_ms"] / 1e3 for r in calm if r.get("qemu_ms")]
    books = [r["bookkeeping"] for r in calm]
    return {"migrations": len(calm), "per_migration_ms": statistics.fmean(books) * 1e3,
            "calls_per_migration": statistics.fmean(r["bookkeeping_calls"] for r in calm),
            "qemu_ms": statistics.fmean(qemu) * 1e3, "fraction": sum(books) / sum(qemu),
            "wall_ms": statistics.fmean(r["seconds"] for r in calm) * 1e3}


async def run(root: Path, *, guests: int = 2, rounds: int = 5, bandwidth: int = 3_000_000,
              quiet: int = 12) -> dict[str, Any]:
    names = [f"vm{i}" for i in range(guests)]
    result: dict[str, Any] = {"guests": guests, "rounds": rounds, "bandwidth": bandwidth}
    for mode, extra in (("job model", ()), ("naive", ("--naive",))):
        c = await _pair(root / mode.replace(" ", "-"), extra, names)
        try:
            latencies, reports = await workload(c, names, rounds, bandwidth)
            result[mode] = {
                "queries": len(latencies), "p50_ms": _pct(latencies, 50) * 1e3,
                "p99_ms": _pct(latencies, 99) * 1e3,
                "max_ms": max(latencies, default=float("nan")) * 1e3,
                "migrations": len(reports),
                "migration_s": statistics.fmean(r["seconds"] for r in reports) if reports
                else float("nan"),
            }
            if mode == "job model":
                result["bookkeeping"] = _bookkeeping(await quiet_migrations(c, names[0], quiet))
        finally:
            await c.stop()
    c = await _pair(root / "no-records", ("--no-records",), names[:1])
    try:
        result["bookkeeping without records"] = _bookkeeping(
            await quiet_migrations(c, names[0], quiet))
    finally:
        await c.stop()
    model, naive = result["job model"], result["naive"]
    result["ratio_p50"] = naive["p50_ms"] / model["p50_ms"]
    result["ratio_p99"] = naive["p99_ms"] / model["p99_ms"]
    return result


def render(r: dict[str, Any]) -> str:
    lines = [f"query latency while {r['guests']} guests migrate back and forth "
             f"({r['rounds']} migrations each, {r['bandwidth'] / 1e6:g} MB/s):",
             f"  {'daemon':10} {'queries':>8} {'p50':>9} {'p99':>9} {'max':>9} "
             f"{'migration':>10}"]
    for mode in ("job model", "naive"):
        m = r[mode]
        lines.append(f"  {mode:10} {m['queries']:8d} {m['p50_ms']:7.1f}ms {m['p99_ms']:7.1f}ms "
                     f"{m['max_ms']:7.1f}ms {m['migration_s']:9.2f}s")
    lines.append(f"  naive / job model: p50 x{r['ratio_p50']:.0f}, p99 x{r['ratio_p99']:.0f}")
    b, bare = r["bookkeeping"], r["bookkeeping without records"]
    lines += [f"job bookkeeping per migration, both hosts, no other load "
              f"({b['migrations']} migrations, QEMU's own transfer {b['qemu_ms']:.1f} ms, "
              f"whole migration {b['wall_ms']:.0f} ms):",
              f"  with durable phase records: {b['per_migration_ms']:6.1f} ms in "
              f"{b['calls_per_migration']:.0f} job calls = {b['fraction'] * 100:5.0f}% of the "
              "QEMU migration time",
              f"  job calls alone (no records): {bare['per_migration_ms']:4.1f} ms "
              f"= {bare['fraction'] * 100:5.1f}% (QEMU {bare['qemu_ms']:.1f} ms)"]
    return "\n".join(lines)


async def measure(args: argparse.Namespace, root: Path) -> int:
    result = await run(root)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0
