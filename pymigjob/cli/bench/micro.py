"""1. micro: the uncontended cost of the job primitives, against the pure
twin and the floor (two no-op cffi calls, a threading.Lock)."""

from __future__ import annotations

import math
import threading
import time
import timeit
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .common import TARGETS, load_c, load_pure, loadavg, median, min_round_time, noop, percentile

# ---------------------------------------------------------------------------
# 1. micro: uncontended cost


MIGRATION_STMT = """\
with dom.migration(MO, Phase.BEGIN3, api="begin3"):
    pass
with dom.migration_phase(MO, Phase.PERFORM3, api="perform3") as mig:
    with dom.nested_job(MO):
        pass
    mig.set_phase(Phase.PERFORM3_DONE)
with dom.migration_phase(MO, Phase.CONFIRM3, api="confirm3") as mig:
    mig.finish()
"""

#: key -> (what, statement run against an implementation's names)
MICRO_CASES: Dict[str, Tuple[str, str]] = {
    "begin_end": ("begin_job + end_job", "dom.begin_job(J); dom.end_job()"),
    "begin_end_api": ("begin_job(api=, timeout=) + end_job",
                      "dom.begin_job(J, api='setMemory', timeout=30.0); dom.end_job()"),
    "with_job": ("with dom.job(Job.MODIFY)", "with dom.job(J):\n    pass"),
    "agent_begin_end": ("begin_agent_job + end_agent_job",
                        "dom.begin_agent_job(AG); dom.end_agent_job()"),
    "migration": ("v3 migration out: 3 APIs, nested job, set_phase, finish", MIGRATION_STMT),
    "label": ("Phase.PERFORM3.label", "P.label"),
    "from_label": ("Phase.from_label('perform3')", "Phase.from_label('perform3')"),
    "phase_to_string": ("phase_to_string(MIGRATION_OUT, PERFORM3)",
                        "m.phase_to_string(MO, P)"),
    "phase_from_string": ("phase_from_string(MIGRATION_OUT, 'perform3')",
                          "m.phase_from_string(MO, 'perform3')"),
}

#: key -> {variant: statement}: more baselines of a case, run on the C-backed
#: library in the same interleaved rounds (the agent slot beside the sync one)
SAME_RUN: Dict[str, Dict[str, str]] = {
    "agent_begin_end": {"sync": "dom.begin_job(J); dom.end_job()"},
}

FLOOR_STMTS = {
    "noop2": "noop(); noop()",
    "lock": "lk.acquire(); lk.release()",
}


def _impl_globals(impl: Any) -> Dict[str, Any]:
    drv = impl.Driver()
    dom = drv.add_domain("bench-vm")
    return {"m": impl, "drv": drv, "dom": dom, "J": impl.Job.MODIFY,
            "MO": impl.AsyncJob.MIGRATION_OUT, "P": impl.Phase.PERFORM3,
            "Phase": impl.Phase, "AG": impl.AgentJob.QUERY}


class _Variant:
    """One statement, timed in rounds of K loops (timeit inlines the statement,
    so no Python call is added to either side of a ratio).

    Each round records the thread's CPU time per op (``per_op``: what the
    ratios and gates use -- preemption by other processes on a busy machine
    does not count in it) and the wall time per op (``per_op_wall``)."""

    def __init__(self, name: str, stmt: str, glb: Dict[str, Any]) -> None:
        self.name = name
        self.timer = timeit.Timer(stmt, timer=time.thread_time, globals=glb)
        self.k = 1
        self.per_op: List[float] = []
        self.per_op_wall: List[float] = []

    def calibrate(self, round_time: float) -> None:
        """K such that one round lasts about 1.3 x round_time of wall time."""
        k = 1
        while True:
            w0 = time.perf_counter()
            self.timer.timeit(k)
            t = time.perf_counter() - w0
            if t >= round_time / 8:
                break
            k *= 4 if t < round_time / 64 else 2
        self.k = max(1, int(k * 1.3 * round_time / t))

    def round(self) -> float:
        """One round; returns its wall time and records the per-op times."""
        w0 = time.perf_counter()
        cpu = self.timer.timeit(self.k)
        wall = time.perf_counter() - w0
        self.per_op.append(cpu / self.k)
        self.per_op_wall.append(wall / self.k)
        return wall

    def reset(self) -> None:
        self.per_op.clear()
        self.per_op_wall.clear()

    def median(self) -> float:
        return median(self.per_op)

    def median_wall(self) -> float:
        return median(self.per_op_wall)


class MicroBench:
    """One micro case: pymigjob, pure, noop2 and lock variants, interleaved."""

    def __init__(self, key: str, round_time: Optional[float] = None) -> None:
        self.key = key
        self.what, stmt = MICRO_CASES[key]
        self.round_time = max(round_time or 0.0, min_round_time())
        pure, self.pure_why = load_pure()
        self.variants: Dict[str, _Variant] = {
            "pymigjob": _Variant("pymigjob", stmt, _impl_globals(load_c()))}
        if pure is not None:
            self.variants["pure"] = _Variant("pure", stmt, _impl_globals(pure))
        for name, same in SAME_RUN.get(key, {}).items():
            self.variants[name] = _Variant(name, same, _impl_globals(load_c()))
        floor = {"noop": noop(), "lk": threading.Lock()}
        for name, s in FLOOR_STMTS.items():
            self.variants[name] = _Variant(name, s, floor)
        self.load_before = loadavg()
        for v in self.variants.values():
            v.calibrate(self.round_time)
            v.reset()
        self._turn = 0

    @property
    def baselines(self) -> List[_Variant]:
        return [v for n, v in self.variants.items() if n != "pymigjob"]

    def subject_round(self) -> float:
        return self.variants["pymigjob"].round()

    def baseline_round(self) -> None:
        """One round of every baseline, in a rotating order."""
        vs = self.baselines
        self._turn += 1
        for i in range(len(vs)):
            vs[(i + self._turn) % len(vs)].round()

    def run(self, rounds: int) -> Dict[str, Any]:
        """Stand-alone: all variants interleaved, one warm-up round dropped."""
        for r in range(rounds + 1):
            self.baseline_round()
            self.subject_round()
            if r == 0:
                for v in self.variants.values():
                    v.reset()
        return self.result()

    def result(self) -> Dict[str, Any]:
        med = {n: v.median() for n, v in self.variants.items()}
        subj = med["pymigjob"]
        res: Dict[str, Any] = {
            "case": self.key, "what": self.what,
            "ns_per_op": {n: round(x * 1e9, 1) for n, x in med.items()},
            "clock": "thread CPU time (ns_per_op, ratios); wall time in ns_per_op_wall",
            "ns_per_op_wall": {n: round(v.median_wall() * 1e9, 1)
                               for n, v in self.variants.items()},
            "rounds": len(self.variants["pymigjob"].per_op),
            "round_s": round(self.round_time, 3),
            "ops_per_round": {n: v.k for n, v in self.variants.items()},
            "iqr_pct": {n: _iqr_pct(v.per_op) for n, v in self.variants.items()},
            "ratios": {
                "pymigjob/noop2": subj / med["noop2"],
                "pymigjob/lock": subj / med["lock"],
            },
            "loadavg": {"before": self.load_before, "after": loadavg()},
            "pure": "measured" if "pure" in med else self.pure_why,
            "checks": [],
        }
        if "pure" in med:
            res["ratios"]["pure/pymigjob"] = med["pure"] / subj
        for name in SAME_RUN.get(self.key, {}):
            res["ratios"][f"pymigjob/{name}"] = subj / med[name]
        res["ratios"] = {k: round(v, 3) for k, v in res["ratios"].items()}
        r = res["ratios"]
        if self.key == "begin_end":
            res["checks"].append(TARGETS["begin_end/noop2"].check(r["pymigjob/noop2"]))
            res["checks"].append(TARGETS["pure/begin_end"].check(r.get("pure/pymigjob")))
        elif self.key == "with_job":
            res["checks"].append(TARGETS["with_job/noop2"].check(r["pymigjob/noop2"]))
        return res


def _iqr_pct(xs: Sequence[float]) -> float:
    if len(xs) < 4:
        return math.nan
    s = sorted(xs)
    q1, q3 = percentile(s, 25), percentile(s, 75)
    return round(100 * (q3 - q1) / median(s), 1)


