"""What must hold after any kill, once the daemons have recovered and
settled -- checked on the real QEMU processes:

1. no guest runs on both hosts;
2. every guest runs on exactly one host, or is paused on its source where
   that is the decision (recovery's leave-paused, or a migration whose
   Finish3 outcome the source could not know) -- never lost;
3. every QEMU belongs to a domain its daemon lists, with that pid, and
   every domain a daemon lists as active has that QEMU;
4. the records match: no job record left on disk, each daemon's record of
   each domain is the one on disk, each listed domain is defined on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pymigjob as mj

from .qemu_cluster import Cluster, Guest, qemu_pids_under

__all__ = ["Verdict", "check"]

IDLE = "job=none async=none"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    #: guest -> where it is: "a", "b", "a (paused)", "a + b (paused)", "nowhere"
    placement: dict[str, str] = field(default_factory=dict)
    #: guest -> the host whose QEMU runs it (None: paused or gone)
    runs_on: dict[str, Optional[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _where(sides: dict[str, Guest]) -> str:
    if not sides:
        return "nowhere"
    return " + ".join(side if g.running else f"{side} ({g.status})"
                      for side, g in sorted(sides.items()))


def _records(cluster: Cluster, side: str) -> dict[str, str]:
    driver = mj.Driver(state_dir=str(cluster.daemons[side].state_dir / "jobs"))
    try:
        return {name: str(status) for name, status in driver.store.load_all().items()}
    finally:
        driver.close()


async def check(cluster: Cluster, guests: set[str], may_be_paused: set[str],
                destroyed: set[str] = frozenset()) -> Verdict:  # type: ignore[assignment]
    verdict = Verdict()
    problems = verdict.problems
    seen = await cluster.guests()
    views = {side: await cluster.domains(side) for side in cluster.daemons}
    for side, view in views.items():
        if view is None:
            problems.append(f"daemon {side} does not answer")
            return verdict
    # 1 and 2, per guest
    for name in sorted(guests):
        sides = {side: found[name] for side, found in seen.items() if name in found}
        running = [side for side, g in sides.items() if g.running]
        verdict.placement[name] = _where(sides)
        verdict.runs_on[name] = running[0] if len(running) == 1 else None
        if len(running) > 1:
            problems.append(f"{name} RUNS ON BOTH HOSTS")
        elif name in destroyed:
            continue
        elif not sides:
            problems.append(f"{name} is lost: no QEMU on either host")
        elif len(sides) > len(running) and name not in may_be_paused:
            problems.append(f"{name} is paused ({verdict.placement[name]}) and no decision "
                            "says leave it paused")
    # 3: QEMUs and owners
    live = qemu_pids_under(cluster.root)
    owned: dict[int, str] = {}
    for side, view in views.items():
        assert view is not None
        for name, dom in view.items():
            if dom["pid"] is None:
                continue
            owned[dom["pid"]] = f"{side}/{name}"
            if name not in seen[side] or seen[side][name].pid != dom["pid"]:
                problems.append(f"daemon {side} lists {name} as active (pid {dom['pid']}) "
                                "but that QEMU is not running")
        for name in seen[side]:
            if name not in view or view[name]["pid"] is None:
                problems.append(f"QEMU of {name} on {side} is owned by no domain")
    for pid in sorted(live - set(owned)):
        problems.append(f"QEMU pid {pid} is owned by no daemon")
    # 4: records
    for side, view in views.items():
        assert view is not None
        disk = _records(cluster, side)
        defined = {p.stem for p in (cluster.daemons[side].state_dir / "domains").glob("*.json")}
        for name, record in disk.items():
            if record != IDLE:
                problems.append(f"{side}: job record of {name} left behind: {record}")
            if name not in view:
                problems.append(f"{side}: a record for {name}, a domain it does not list")
        for name, dom in view.items():
            if dom["job"]["record"] != disk.get(name, IDLE):
                problems.append(f"{side}: {name}'s record is {dom['job']['record']!r} in the "
                                f"daemon, {disk.get(name)!r} on disk")
            if name not in defined:
                problems.append(f"{side}: {name} is listed but not defined on disk")
        for name in defined - set(view):
            problems.append(f"{side}: {name} is defined on disk but not listed")
    return verdict
